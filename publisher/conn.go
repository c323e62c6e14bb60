package publisher

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Defaults of ConnConfig.
const (
	DefaultClientName     = "mdbridge"
	DefaultConnectTimeout = 10 * time.Second
	DefaultReconnectWait  = 500 * time.Millisecond
	DefaultPingInterval   = 10 * time.Second
)

// ConnConfig configures the NATS connection. At most one authentication
// method may be set: User/Password, Token, NKeySeedFile, NKeySeed or
// CredsFile. TLS is used when TLSCA or TLSCert is set or a URL has the tls://
// scheme. It implements slog.LogValuer without its secrets.
type ConnConfig struct {
	// URLs of the NATS servers (nats://, tls://, ws://, wss://). Required.
	// Credentials embedded in a URL are redacted from logs and errors.
	URLs []string
	// User and Password for user/password authentication.
	User     string
	Password Secret
	// Token for token authentication.
	Token Secret
	// NKeySeedFile is the path of a file holding an NKey user seed.
	NKeySeedFile string
	// NKeySeed is an NKey user seed ("SU...") given directly.
	NKeySeed Secret
	// CredsFile is the path of a .creds file (user JWT and NKey seed).
	CredsFile string
	// TLSCA is a PEM file of CAs that verify the server's certificate.
	TLSCA string
	// TLSCert and TLSKey are the PEM client certificate and key for mutual
	// TLS; set both or neither.
	TLSCert string
	TLSKey  string
	// Name is the client connection name shown by the server. Default
	// "mdbridge".
	Name string
	// ConnectTimeout bounds the initial connection attempts (the context may
	// end them earlier). Default 10 s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts, which go on
	// forever. Default 500 ms (nats.go adds jitter).
	ReconnectWait time.Duration
	// PingInterval is how often the client pings the server; three missed
	// pongs declare the connection dead. Default 10 s.
	PingInterval time.Duration
	// ReconnectBufSize is nats.go's buffer for messages published while
	// reconnecting. 0 (the default) disables it: the JetStream publisher has
	// its own bounded buffer, and a nats.go buffer would flush messages
	// written during an outage ahead of the publisher's ordered retries.
	// Only set it for connections that do not carry a JetStream publisher.
	ReconnectBufSize int
	// Dialer, if set, opens the network connections instead of nats.go's
	// own dialer (the benchmark uses it to observe the socket).
	Dialer nats.CustomDialer
}

func (c ConnConfig) withDefaults() ConnConfig {
	c.Name = cmp.Or(c.Name, DefaultClientName)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultConnectTimeout)
	c.ReconnectWait = cmp.Or(c.ReconnectWait, DefaultReconnectWait)
	c.PingInterval = cmp.Or(c.PingInterval, DefaultPingInterval)
	return c
}

// authMethod names the configured authentication method (no secrets).
func (c ConnConfig) authMethod() string {
	var m []string
	if c.User != "" || c.Password != "" {
		m = append(m, "user/password")
	}
	if c.Token != "" {
		m = append(m, "token")
	}
	if c.NKeySeedFile != "" || c.NKeySeed != "" {
		m = append(m, "nkey")
	}
	if c.CredsFile != "" {
		m = append(m, "creds")
	}
	for _, u := range c.URLs {
		if pu, err := url.Parse(strings.TrimSpace(u)); err == nil && pu.User != nil {
			m = append(m, "url credentials")
			break
		}
	}
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, "+")
}

// RedactURLs returns the URLs, comma-separated, with any user info (a
// password or a token) replaced: for messages and logs.
func RedactURLs(urls []string) string {
	out := make([]string, 0, len(urls))
	for _, u := range urls {
		out = append(out, redactURL(u))
	}
	return strings.Join(out, ",")
}

func redactURL(u string) string {
	u = strings.TrimSpace(u)
	pu, err := url.Parse(u)
	if err != nil {
		return "<unparsable url>"
	}
	if pu.User != nil {
		// A lone user part may be a token: hide it too.
		pu.User = url.User(redacted)
	}
	return strings.Replace(pu.String(), url.PathEscape(redacted), redacted, 1)
}

// String describes the configuration without secrets (also for %v, %+v).
func (c ConnConfig) String() string {
	return fmt.Sprintf("{URLs:%s Auth:%s User:%s TLS:%t Name:%s}",
		RedactURLs(c.URLs), c.authMethod(), c.User, c.TLSCA != "" || c.TLSCert != "", c.Name)
}

// GoString describes the configuration without secrets (for %#v).
func (c ConnConfig) GoString() string { return "publisher.ConnConfig" + c.String() }

// LogValue describes the configuration without secrets.
func (c ConnConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("urls", RedactURLs(c.URLs)),
		slog.String("auth", c.authMethod()),
		slog.String("user", c.User),
		slog.Bool("tls", c.TLSCA != "" || c.TLSCert != ""),
		slog.String("name", c.Name),
	)
}

// MarshalJSON encodes the configuration with the credentials embedded in
// URLs redacted (Secret fields redact themselves), so a ConnConfig dumped as
// JSON never carries a password or token.
func (c ConnConfig) MarshalJSON() ([]byte, error) {
	type plain ConnConfig // no methods: no recursion
	p := plain(c)
	if c.URLs != nil {
		p.URLs = make([]string, len(c.URLs))
		for i, u := range c.URLs {
			p.URLs[i] = redactURL(u)
		}
	}
	return json.Marshal(p)
}

// Validate reports invalid fields, naming them.
func (c ConnConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: ConnConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...)))
	}
	if len(c.URLs) == 0 {
		bad("URLs", "no NATS URL")
	}
	for i, u := range c.URLs {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.Host == "" {
			bad("URLs", "entry %d (%s) is not a URL like nats://host:4222", i, redactURL(u))
			continue
		}
		switch pu.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			bad("URLs", "entry %d (%s): scheme %q, want nats, tls, ws or wss", i, redactURL(u), pu.Scheme)
		}
	}
	n := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "" || c.NKeySeed != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		bad("User", "several authentication methods set (%s); set only one", c.authMethod())
	}
	if c.Password != "" && c.User == "" {
		bad("User", "password set without a user")
	}
	if c.NKeySeedFile != "" && c.NKeySeed != "" {
		bad("NKeySeed", "both NKeySeedFile and NKeySeed set")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("TLSCert", "TLSCert and TLSKey must be set together")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ConnectTimeout", c.ConnectTimeout}, {"ReconnectWait", c.ReconnectWait}, {"PingInterval", c.PingInterval}} {
		if d.v < 0 {
			bad(d.name, "%s: must not be negative", d.v)
		}
	}
	return errors.Join(errs...)
}

// tlsConfig builds the client TLS configuration, or nil when TLS is not
// configured.
func (c ConnConfig) tlsConfig() (*tls.Config, error) {
	if c.TLSCA == "" && c.TLSCert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("%w: ConnConfig.TLSCA: %w", ErrTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ConnConfig.TLSCA: %s holds no PEM certificate", ErrTLS, c.TLSCA)
		}
		cfg.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: ConnConfig.TLSCert/TLSKey (%s, %s): %w", ErrTLS, c.TLSCert, c.TLSKey, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// natsOptions translates c into nats.go options.
func (c ConnConfig) natsOptions(log *slog.Logger) ([]nats.Option, error) {
	limiter := newLogLimiter(5 * time.Second)
	bufSize := c.ReconnectBufSize
	if bufSize == 0 {
		bufSize = -1
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		nats.ReconnectBufSize(bufSize),
		nats.PingInterval(c.PingInterval),
		nats.MaxPingsOutstanding(3),
		nats.Timeout(2 * time.Second),
		nats.IgnoreAuthErrorAbort(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Info("NATS connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if limiter.allow("async") {
				subj := ""
				if sub != nil {
					subj = sub.Subject
				}
				log.Warn("NATS asynchronous error", "subject", subj, "err", err)
			}
		}),
	}
	if c.Dialer != nil {
		opts = append(opts, nats.SetCustomDialer(c.Dialer))
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token.Reveal()))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ConnConfig.NKeySeedFile %s: %w", ErrConfig, c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.NKeySeed != "":
		kp, err := nkeys.FromSeed([]byte(c.NKeySeed.Reveal()))
		if err != nil {
			return nil, fmt.Errorf("%w: ConnConfig.NKeySeed: not a valid NKey seed", ErrConfig)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: ConnConfig.NKeySeed: not a valid NKey seed", ErrConfig)
		}
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// Connect dials NATS and returns a connection that reconnects forever. The
// initial connection is retried until ctx ends or cfg.ConnectTimeout passes;
// credentials the server rejects fail at once with ErrAuth, TLS problems with
// ErrTLS, and an unreachable server with ErrConnect. Errors and log lines
// never contain passwords, tokens or seeds.
//
// The caller owns the connection: drain or close it after the publisher,
// state writer and snapshot service built on it are shut down.
func Connect(ctx context.Context, cfg ConnConfig, logger *slog.Logger) (*nats.Conn, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := orDiscard(logger).With("component", "nats")
	opts, err := cfg.natsOptions(log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimSpace(u)
	}
	servers := strings.Join(urls, ",")
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(servers, opts...)
		if err == nil {
			log.Info("NATS connected", "url", nc.ConnectedUrlRedacted(), "config", cfg)
			return nc, nil
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("%w: %s rejected the %s credentials (%v); check the configured user/password, token, NKey seed or creds file",
				ErrAuth, RedactURLs(cfg.URLs), cfg.authMethod(), err)
		}
		if isTLSError(err) {
			return nil, fmt.Errorf("%w: %s: %v; check the CA, client certificate and URL scheme",
				ErrTLS, RedactURLs(cfg.URLs), err)
		}
		log.Warn("NATS not reachable, retrying", "urls", RedactURLs(cfg.URLs), "attempt", attempt, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w at %s after %d attempts: %v (%w)", ErrConnect, RedactURLs(cfg.URLs), attempt, err, context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrNkeysNotSupported)
}

func isTLSError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &record) || errors.As(err, &alert) || errors.As(err, &verify) ||
		errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted) ||
		// The server closed the connection right after the handshake (a
		// missing client certificate under TLS 1.3): retrying cannot help.
		errors.Is(err, nats.ErrTLS) ||
		// A remote alert (e.g. "certificate required") has no exported type.
		strings.Contains(err.Error(), "tls: ")
}

// orDiscard returns l, or a logger that discards everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
