package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/node"
	"github.com/qldata/mdbridge/publisher"
)

// app is a running bridge: NATS (embedded or external), the bridge replica
// (internal/node: publisher, state writer, snapshot control service, one
// bridge.Stream per exchange and channel set) and the HTTP endpoints.
type app struct {
	cfg    *Config
	logger *slog.Logger
	start  time.Time

	embedded *publisher.Embedded
	node     *node.Node
	metrics  *ingestMetrics
	errc     chan error // fatal errors of the streams and the HTTP server
	http     *http.Server
	httpLn   net.Listener
}

// publisherConfig maps the environment configuration onto publisher.Config.
func (c *Config) publisherConfig() (publisher.Config, error) {
	storage, err := publisher.ParseStorage(c.StreamStorage)
	if err != nil {
		return publisher.Config{}, configError("STREAM_STORAGE", "%v", err)
	}
	policy, err := publisher.ParseDropPolicy(c.BufferPolicy)
	if err != nil {
		return publisher.Config{}, configError("BUFFER_POLICY", "%v", err)
	}
	pc := publisher.Config{
		Stream: c.Stream, SubjectPrefix: c.SubjectPrefix, Storage: storage,
		Replicas: c.StreamReplicas, DuplicateWindow: c.DuplicateWindow, MaxAge: c.MaxAge, MaxBytes: c.streamMaxBytes(),
		KVBucket: c.KVBucket, ControlPrefix: c.ControlPrefix,
		BufferMessages: c.BufferMessages, BufferBytes: c.BufferBytes, DropPolicy: policy,
	}
	return pc, pc.Validate()
}

// streamMaxBytes maps MDB_MAX_BYTES onto publisher.Config.MaxBytes: 0 and
// -1 both mean unlimited (-1 there: 0 would leave a limit set on the stream
// earlier in place).
func (c *Config) streamMaxBytes() int64 {
	if c.MaxBytes <= 0 {
		return -1
	}
	return c.MaxBytes
}

func ptr[T any](v T) *T { return &v }

func (c *Config) connConfig(urls []string) publisher.ConnConfig {
	return publisher.ConnConfig{
		URLs: urls, User: c.NATSUser, Password: publisher.Secret(c.NATSPassword.Reveal()),
		Token: publisher.Secret(c.NATSToken.Reveal()), NKeySeedFile: c.NATSNKeyFile,
		CredsFile: c.NATSCredsFile, TLSCA: c.NATSTLSCA, TLSCert: c.NATSTLSCert, TLSKey: c.NATSTLSKey,
		Name: c.NATSName, ConnectTimeout: c.ConnectWait,
	}
}

// nodeConfig maps the environment configuration onto the replica's.
func (c *Config) nodeConfig(pc publisher.Config) node.Config {
	nc := node.Config{
		Instance: c.Instance, Publisher: pc, Resilience: ptr(c.Resilience), Cluster: c.clusterConfig(),
		UniverseRefresh: c.UniverseRefresh,
		Venues: node.Venues{
			BinanceWSURL: c.BinanceWSURL, BinanceRESTURL: c.BinanceRESTURL,
			BinanceBookDepth: c.BinanceBookDepth, BinanceWeightPerMinute: c.share(c.BinanceWeightPerMin),
			BybitWSURL: c.BybitWSURL, BybitRESTURL: c.BybitRESTURL,
			BybitBookDepth: c.BybitBookDepth, BybitRequestsPerMinute: c.share(c.BybitRequestsPerMin),
			BinanceUSDMWSURL: c.USDMWSURL, BinanceUSDMRESTURL: c.USDMRESTURL,
			BinanceUSDMBookDepth: c.USDMBookDepth, BinanceUSDMWeightPerMinute: c.share(c.USDMWeightPerMin),
			BinanceUSDMOpenInterestEvery: cmp.Or(c.USDMOpenInterestEvery, -1), // 0 (off) is the adapter's default otherwise
			OKXWSURL:                     c.OKXWSURL, OKXRESTURL: c.OKXRESTURL,
			IPShare: c.IPShare, // connect gates, connections per IP, OKX budget
		},
	}
	nc.Subscriptions = nodeSubscriptions(c.subs)
	if c.ConfigBucket != "" {
		nc.Runtime = &node.Runtime{Bucket: c.ConfigBucket, Key: node.DefaultSubscribeKey, Parse: parseNodeSubscriptions}
	}
	silence := c.SilenceCheck
	if silence == 0 {
		silence = -1 // off (the library's 0 means its default)
	}
	stale := bridge.StaleConfig{After: c.StaleAfter, Channels: c.stale}
	tsync := c.TimeSyncInterval
	nc.Tune = func(sc *bridge.StreamConfig) {
		sc.SilenceCheck = silence
		sc.TimeSyncInterval = tsync
		sc.Stale = stale
	}
	return nc
}

// newApp starts everything; the streams read once it returns. On error it
// has released what it started.
func newApp(ctx context.Context, cfg *Config, logger *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, logger: logger, start: time.Now(), metrics: newIngestMetrics(), errc: make(chan error, len(cfg.subs)+1)}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	pubCfg, err := cfg.publisherConfig()
	if err != nil {
		return nil, err
	}
	// Validate the NATS connection settings before anything starts.
	urls := splitList(cfg.NATSURL)
	if len(urls) > 0 {
		if err := cfg.connConfig(urls).Validate(); err != nil {
			return nil, fmt.Errorf("configuration: MDB_NATS_*: %w", err)
		}
	}
	// Build the replica (adapters) first: it only validates, so a bad
	// subscription fails before NATS is touched.
	ncfg := cfg.nodeConfig(pubCfg)
	ncfg.Hooks.Publisher = a.metrics.wrap
	ncfg.OnStreamError = func(err error) {
		select {
		case a.errc <- err:
		default: // one error stops the app; in cluster mode streams come and go
		}
	}
	if a.node, err = node.New(ncfg, logger); err != nil {
		return nil, a.configError(err)
	}
	if cfg.HTTPAddr != "" {
		if a.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("MDB_HTTP_ADDR %s: %w (is another mdbridge running? set MDB_HTTP_ADDR to a free port)", cfg.HTTPAddr, err)
		}
	}
	if len(urls) == 0 {
		host, port, _ := net.SplitHostPort(cfg.EmbeddedListen)
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, configError("EMBEDDED_LISTEN", "port %q is not a number", port)
		}
		a.embedded, err = publisher.StartEmbedded(publisher.EmbeddedConfig{Host: host, Port: p, StoreDir: cfg.DataDir}, logger)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS on %s (store %s): %w (set MDB_EMBEDDED_LISTEN to a free port, or MDB_NATS_URL to use an external server)", cfg.EmbeddedListen, cfg.DataDir, err)
		}
		urls = []string{a.embedded.ClientURL()}
		logger.Info("embedded NATS started", "url", urls[0], "store", cfg.DataDir)
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectWait)
	defer cancel()
	nc, err := publisher.Connect(cctx, cfg.connConfig(urls), logger)
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s within MDB_NATS_CONNECT_TIMEOUT=%s: %w (check MDB_NATS_URL and credentials)", publisher.RedactURLs(urls), cfg.ConnectWait, err)
	}
	if err := a.node.Start(cctx, nc); err != nil {
		return nil, a.configError(err)
	}
	return a, nil
}

// configError names the MDB_* variables behind a subscription the replica
// cannot serve.
func (a *app) configError(err error) error {
	var se *node.SubscriptionError
	if !errors.As(err, &se) {
		return err
	}
	if se.Stage == node.StageAdapter {
		return fmt.Errorf("configuration: %s adapter: %w (check MDB_%s_WS_URL and MDB_%s_REST_URL)", se.Exchange, se.Err, venueEnv(se.Exchange), venueEnv(se.Exchange))
	}
	if se.Index < len(a.cfg.subs) && a.cfg.subs[se.Index].Exchange == se.Exchange {
		return fmt.Errorf("configuration: MDB_SUBSCRIBE group %s: %w", a.cfg.subs[se.Index], se.Err)
	}
	return fmt.Errorf("subscription %s: %w", se.Exchange, se.Err)
}

func venueEnv(exchange string) string {
	if strings.HasPrefix(exchange, "bybit") {
		return "BYBIT"
	}
	if strings.HasPrefix(exchange, "okx") {
		return "OKX"
	}
	return "BINANCE"
}

// run serves until ctx ends or a stream fails, then shuts down in order:
// stop reading, flush publishes and wait for acks, write DISCONNECTED, drain
// NATS. It returns the process exit code.
func (a *app) run(ctx context.Context) int {
	if a.httpLn != nil {
		a.http = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := a.http.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	var subs []string
	for _, sub := range a.node.Subscriptions() {
		subs = append(subs, sub.String())
	}
	httpAddr := "" // the bound address: MDB_HTTP_ADDR may ask for port 0
	if a.httpLn != nil {
		httpAddr = a.httpLn.Addr().String()
	}
	a.logger.Info("mdbridge running", "instance", a.cfg.Instance, "subscribe", strings.Join(subs, ";"),
		"stream", a.cfg.Stream, "http", httpAddr)

	code := exitOK
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	case err := <-a.errc:
		a.logger.Error("stopping after a fatal error", "err", err)
		code = exitFailure
	}
	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer scancel()
	if err := a.shutdown(sctx); err != nil {
		a.logger.Error("shutdown incomplete", "err", err)
		code = exitFailure
	}
	return code
}

// shutdown stops the replica gracefully (node.Shutdown: streams, snapshot
// service, publisher flush, final state, NATS drain), then the HTTP
// endpoints and the embedded NATS server.
func (a *app) shutdown(ctx context.Context) error {
	err := a.node.Shutdown(ctx)
	if a.http != nil {
		_ = a.http.Shutdown(ctx)
	}
	a.close()
	return err
}

// close releases everything without waiting for acks (error paths, and the
// last step of shutdown).
func (a *app) close() {
	if a.node != nil {
		a.node.Close()
	}
	if a.embedded != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = a.embedded.Shutdown(ctx)
		cancel()
	}
	if a.httpLn != nil && a.http == nil {
		a.httpLn.Close()
	}
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
