package publisher

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults of EmbeddedConfig.
const (
	DefaultEmbeddedHost     = "127.0.0.1"
	DefaultEmbeddedPort     = 4222
	DefaultEmbeddedStoreDir = "./data"
	DefaultEmbeddedName     = "mdbridge-embedded"
	DefaultReadyTimeout     = 10 * time.Second
)

// EmbeddedConfig configures the in-process nats-server. The zero value
// listens on 127.0.0.1:4222 (so the nats CLI can connect) with JetStream
// storing in ./data.
type EmbeddedConfig struct {
	// Host to listen on. Default 127.0.0.1.
	Host string
	// Port to listen on. 0 means 4222; -1 picks a free port.
	Port int
	// StoreDir is the JetStream store directory. Default ./data.
	StoreDir string
	// ServerName is the server's name. Default "mdbridge-embedded".
	ServerName string
	// MaxMemory and MaxStore limit JetStream memory and file storage in
	// bytes; 0 lets the server choose.
	MaxMemory int64
	MaxStore  int64
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10 s.
	ReadyTimeout time.Duration
	// Configure, if set, adjusts the server options last (authorization,
	// TLS, limits). It runs after the fields above are applied.
	Configure func(*server.Options)
}

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv  *server.Server
	log  *slog.Logger
	port int    // the port it listened on, kept after Shutdown
	url  string // the client URL, kept after Shutdown
}

// StartEmbedded starts nats-server with JetStream and waits until it accepts
// connections. It returns ErrEmbedded (wrapped) when the server cannot start,
// e.g. because the port is taken.
func StartEmbedded(cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	if cfg.Host == "" {
		cfg.Host = DefaultEmbeddedHost
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultEmbeddedPort
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = DefaultEmbeddedStoreDir
	}
	if cfg.ServerName == "" {
		cfg.ServerName = DefaultEmbeddedName
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Port < -1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("%w: EmbeddedConfig.Port %d: want 1..65535, 0 (4222) or -1 (random)", ErrConfig, cfg.Port)
	}
	log := orDiscard(logger).With("component", "nats-server")
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if cfg.Port > 0 {
		// nats-server reports a taken port only in its log and never becomes
		// ready; probe first for a clear, immediate error.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot listen on %s: %w", ErrEmbedded, addr, err)
		}
		_ = l.Close()
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		NoSigs:             true,
	}
	if cfg.Configure != nil {
		cfg.Configure(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	h := log.Handler()
	srv.SetLogger(serverLogger{log: log}, h.Enabled(context.Background(), slog.LevelDebug), false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: not ready on %s within %s (port in use? store dir %s writable?)",
			ErrEmbedded, addr, cfg.ReadyTimeout, cfg.StoreDir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: JetStream did not start (store dir %s)", ErrEmbedded, cfg.StoreDir)
	}
	e := &Embedded{srv: srv, log: log, url: srv.ClientURL()}
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		e.port = a.Port
	}
	log.Info("embedded NATS server started", "url", e.ClientURL(), "store_dir", cfg.StoreDir)
	return e, nil
}

// ClientURL returns the URL clients connect to, e.g. nats://127.0.0.1:4222.
// After Shutdown it still returns the URL the server served on.
func (e *Embedded) ClientURL() string { return e.url }

// Port returns the port the server listens on (useful with Port -1). After
// Shutdown it still returns the port the server served on, so a restart
// with EmbeddedConfig.Port set to it comes back at the same address.
func (e *Embedded) Port() int { return e.port }

// Server returns the underlying nats-server, for tests and diagnostics.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server after its JetStream stores are flushed, bounded
// by ctx. Shut down the clients first (publisher Shutdown, state writer
// WriteFinal, then nats.Conn.Drain) so nothing is in flight.
func (e *Embedded) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		e.log.Info("embedded NATS server stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: shutdown: %w", ErrEmbedded, ctx.Err())
	}
}

// serverLogger adapts slog to nats-server's Logger (notices at Debug: the
// startup banner is long), formatting only when the
// level is enabled.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(format string, v ...any)  { l.logf(slog.LevelDebug-4, format, v) }
