package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// app is a running bridge: NATS (embedded or external), the publisher, the
// state writer, the snapshot control service, one bridge.Stream per
// exchange and channel set, and the HTTP endpoints.
type app struct {
	cfg    *Config
	logger *slog.Logger
	start  time.Time

	embedded *publisher.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	pubCfg   publisher.Config
	pub      *publisher.JetStream
	states   *publisher.StateWriter
	snapsvc  *publisher.SnapshotService
	specs    []streamSpec
	streams  []*bridge.Stream
	metrics  *ingestMetrics
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
		Replicas: c.StreamReplicas, DuplicateWindow: c.DuplicateWindow, MaxAge: c.MaxAge,
		KVBucket: c.KVBucket, ControlPrefix: c.ControlPrefix,
		BufferMessages: c.BufferMessages, BufferBytes: c.BufferBytes, DropPolicy: policy,
	}
	return pc, pc.Validate()
}

func (c *Config) connConfig(urls []string) publisher.ConnConfig {
	return publisher.ConnConfig{
		URLs: urls, User: c.NATSUser, Password: publisher.Secret(c.NATSPassword.Reveal()),
		Token: publisher.Secret(c.NATSToken.Reveal()), NKeySeedFile: c.NATSNKeyFile,
		CredsFile: c.NATSCredsFile, TLSCA: c.NATSTLSCA, TLSCert: c.NATSTLSCert, TLSKey: c.NATSTLSKey,
		Name: c.NATSName, ConnectTimeout: c.ConnectWait,
	}
}

// newApp starts everything but the streams' read loops. On error it has
// released what it started.
func newApp(ctx context.Context, cfg *Config, logger *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, logger: logger, start: time.Now()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.pubCfg, err = cfg.publisherConfig(); err != nil {
		return nil, err
	}
	// Validate the NATS connection settings before anything starts.
	urls := splitList(cfg.NATSURL)
	if len(urls) > 0 {
		if err := cfg.connConfig(urls).Validate(); err != nil {
			return nil, fmt.Errorf("configuration: MDB_NATS_*: %w", err)
		}
	}
	// Build the adapters and streams first: they only validate, so a bad
	// subscription fails before NATS is touched.
	if err := a.buildStreams(); err != nil {
		return nil, err
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
	if a.nc, err = publisher.Connect(cctx, cfg.connConfig(urls), logger); err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s within MDB_NATS_CONNECT_TIMEOUT=%s: %w (check MDB_NATS_URL and credentials)", strings.Join(redactURLs(urls), ","), cfg.ConnectWait, err)
	}
	if a.js, err = jetstream.New(a.nc); err != nil {
		return nil, err
	}
	if _, err = publisher.EnsureStream(cctx, a.js, a.pubCfg); err != nil {
		return nil, fmt.Errorf("provisioning stream %s: %w", a.pubCfg.Stream, err)
	}
	kv, err := publisher.EnsureStateBucket(cctx, a.js, a.pubCfg)
	if err != nil {
		return nil, fmt.Errorf("provisioning KV bucket %s: %w", a.pubCfg.KVBucket, err)
	}
	if a.pub, err = publisher.NewJetStream(cctx, a.nc, a.pubCfg, logger); err != nil {
		return nil, err
	}
	if a.states, err = publisher.NewStateWriter(kv, a.pubCfg, logger); err != nil {
		return nil, err
	}
	requester, err := publisher.NewSnapshotRequester(a.nc, a.pubCfg, cfg.Instance)
	if err != nil {
		return nil, err
	}
	a.metrics = newIngestMetrics()
	if err := a.startStreams(requester); err != nil {
		return nil, err
	}
	if a.snapsvc, err = publisher.StartSnapshotService(a.nc, a.pubCfg, bridge.Streams(a.streams), logger); err != nil {
		return nil, err
	}
	return a, nil
}

// streamSpec is one bridge.Stream to build: an exchange and channel set with
// its symbols.
type streamSpec struct {
	sub Subscription
	ex  bridge.Exchange
}

// buildStreams builds one adapter per exchange (sharing one REST limiter
// per venue, as the exchanges limit per IP) and the stream specs.
func (a *app) buildStreams() error {
	adapters := map[string]bridge.Exchange{}
	limiters := map[string]*resilience.RateLimitManager{}
	perMinute := map[string]int{"binance": a.cfg.BinanceWeightPerMin, "bybit": a.cfg.BybitRequestsPerMin}
	limiter := func(venue string) (*resilience.RateLimitManager, error) {
		if l, ok := limiters[venue]; ok {
			return l, nil
		}
		l, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: perMinute[venue]})
		limiters[venue] = l
		return l, err
	}
	for _, sub := range a.cfg.subs {
		if _, ok := adapters[sub.Exchange]; ok {
			continue
		}
		var (
			ex  bridge.Exchange
			err error
		)
		switch sub.Exchange {
		case "binance":
			l, lerr := limiter("binance")
			if lerr != nil {
				return lerr
			}
			ex, err = binance.New(binance.Config{WSURL: a.cfg.BinanceWSURL, RESTURL: a.cfg.BinanceRESTURL, BookDepth: a.cfg.BinanceBookDepth, Limiter: l, Logger: a.logger})
		case "bybit", "bybit-linear":
			// Spot and linear share Bybit's per-IP REST limit.
			l, lerr := limiter("bybit")
			if lerr != nil {
				return lerr
			}
			market := "spot"
			if sub.Exchange == "bybit-linear" {
				market = "linear"
			}
			ex, err = bybit.New(bybit.Config{WSURL: a.cfg.BybitWSURL, RESTURL: a.cfg.BybitRESTURL, Market: market, BookDepth: a.cfg.BybitBookDepth, Limiter: l, Logger: a.logger})
		default:
			err = fmt.Errorf("unknown exchange %q", sub.Exchange)
		}
		if err != nil {
			return fmt.Errorf("configuration: %s adapter: %w (check MDB_%s_WS_URL and MDB_%s_REST_URL)", sub.Exchange, err, venueEnv(sub.Exchange), venueEnv(sub.Exchange))
		}
		adapters[sub.Exchange] = ex
	}
	a.specs = a.specs[:0]
	for _, sub := range a.cfg.subs {
		a.specs = append(a.specs, streamSpec{sub: sub, ex: adapters[sub.Exchange]})
	}
	return nil
}

func venueEnv(exchange string) string {
	if strings.HasPrefix(exchange, "bybit") {
		return "BYBIT"
	}
	return "BINANCE"
}

func (a *app) startStreams(requester bridge.SnapshotRequester) error {
	resumer := publisher.NewTradeResumer(a.js, a.pubCfg)
	for _, sp := range a.specs {
		res := a.cfg.Resilience
		s, err := bridge.NewStream(bridge.StreamConfig{
			Exchange: sp.ex, Symbols: sp.sub.Symbols, Channels: sp.sub.Channels,
			Resilience: &res, Instance: a.cfg.Instance,
		}, a.metrics.wrap(a.pub),
			bridge.WithLogger(a.logger),
			bridge.WithStateSink(a.states),
			bridge.WithSnapshotRequester(requester),
			// Trades published while no replica ran are backfilled from
			// the stream's last stored trade id.
			bridge.WithTradeResumer(resumer),
		)
		if err != nil {
			return fmt.Errorf("configuration: MDB_SUBSCRIBE group %s: %w", sp.sub, err)
		}
		a.streams = append(a.streams, s)
	}
	return nil
}

// run serves until ctx ends or a stream fails, then shuts down in order:
// stop reading, flush publishes and wait for acks, write DISCONNECTED, drain
// NATS. It returns the process exit code.
func (a *app) run(ctx context.Context) int {
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(a.streams)+1)
	for _, s := range a.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(runCtx); err != nil {
				errc <- fmt.Errorf("%s stream: %w", s.Exchange(), err)
			}
		}()
	}
	if a.httpLn != nil {
		a.http = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := a.http.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	var subs []string
	for _, sp := range a.specs {
		subs = append(subs, sp.sub.String())
	}
	a.logger.Info("mdbridge running", "instance", a.cfg.Instance, "subscribe", strings.Join(subs, ";"),
		"stream", a.pubCfg.Stream, "http", a.cfg.HTTPAddr)

	code := exitOK
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	case err := <-errc:
		a.logger.Error("stopping after a fatal error", "err", err)
		code = exitFailure
	}
	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer scancel()
	if err := a.shutdown(sctx, &wg); err != nil {
		a.logger.Error("shutdown incomplete", "err", err)
		code = exitFailure
	}
	return code
}

func (a *app) shutdown(ctx context.Context, streams *sync.WaitGroup) error {
	var errs []error
	for _, s := range a.streams {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s stream: %w", s.Exchange(), err))
		}
	}
	streams.Wait()
	if a.snapsvc != nil {
		if err := a.snapsvc.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("snapshot service: %w", err))
		}
	}
	if a.pub != nil {
		if err := a.pub.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("publisher flush: %w (unacknowledged events: %d)", err, a.pub.Stats().BufferedMsgs))
		}
		st := a.pub.Stats()
		a.logger.Info("publisher flushed", "published", st.Published, "acked", st.Acked, "duplicates", st.Duplicates, "dropped", st.Dropped)
	}
	if a.states != nil {
		if err := a.states.WriteFinal(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final state: %w", err))
		}
	}
	if a.http != nil {
		_ = a.http.Shutdown(ctx)
	}
	a.close()
	return errors.Join(errs...)
}

// close releases everything without waiting for acks (error paths, and the
// last step of shutdown).
func (a *app) close() {
	if a.snapsvc != nil {
		a.snapsvc.Close()
	}
	if a.states != nil {
		a.states.Close()
	}
	if a.pub != nil {
		a.pub.Close()
	}
	if a.nc != nil {
		if a.nc.IsConnected() {
			_ = a.nc.Drain()
			for i := 0; i < 50 && !a.nc.IsClosed(); i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		a.nc.Close()
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

// redactURLs drops user info from URLs for messages.
func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				u = u[:scheme+3] + "[redacted]@" + u[at+1:]
			}
		}
		out[i] = u
	}
	return out
}
