package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// rigConfig describes a simulator + bridge + publisher set-up.
type rigConfig struct {
	markets      []exsim.MarketConfig // Binance markets
	simURL       string               // an external simulator serving markets (see ServeSim); "": start one in process
	channels     bridge.Channel
	connections  int  // 0: the bridge's own plan
	backpressure bool // the simulator waits for slow clients
	bookDepth    int  // Binance REST snapshot depth (0: adapter default)
	weightPerMin int  // Binance REST weight per minute (0: resilience.ExchangeDefaults)
	bookBuffer   int  // bridge.StreamConfig.BookBufferLimit (0: the bridge's default)
	pcfg         publisher.Config
	tap          *ackTap // nil: publish on an untapped connection
}

// rig is a running simulator, bridge and publisher wired as `mdbridge run`
// wires them: publisher.JetStream, the md_state writer, the snapshot
// control service and requester, one bridge.Stream with the Binance
// adapter (REST limiter from resilience.ExchangeDefaults). The publishing
// connection is separate from the state/control connection so that the
// tap on it sees nothing but PubAcks of the data stream.
type rig struct {
	log     *slog.Logger
	sim     simulator
	simStop context.CancelFunc
	pubNC   *nats.Conn
	ctlNC   *nats.Conn
	js      jetstream.JetStream // on ctlNC
	pub     *publisher.JetStream
	states  *publisher.StateWriter
	snapsvc *publisher.SnapshotService
	stream  *bridge.Stream
	symbols []string
	topics  int
	rest    *restCounter
	runErr  chan error
}

// startRig starts the simulator (labelled sim) and the bridge (labelled
// bridge) and returns once the bridge's Run is called; see waitConnected.
func startRig(ctx context.Context, env *natsEnv, rc rigConfig, log *slog.Logger) (r *rig, err error) {
	r = &rig{log: log, runErr: make(chan error, 1), rest: &restCounter{}}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	for _, m := range rc.markets {
		r.symbols = append(r.symbols, m.Symbol)
	}
	r.topics = len(r.symbols)
	if rc.channels&bridge.ChannelBook != 0 && rc.channels&bridge.ChannelTrade != 0 {
		r.topics *= 2
	}
	if rc.simURL != "" {
		r.sim, err = newRemoteSim(rc.simURL, log)
	} else {
		var sim *exsim.Server
		if sim, err = startSim(ctx, rc, log, &r.simStop); sim != nil {
			r.sim = sim
		}
	}
	if err != nil {
		return r, err
	}
	withComponent(ctx, compBridge, func(bctx context.Context) { err = r.startBridge(bctx, env, rc) })
	return r, err
}

// startSim starts an in-process simulator (labelled sim); stop receives
// the function that ends it.
func startSim(ctx context.Context, rc rigConfig, log *slog.Logger, stop *context.CancelFunc) (sim *exsim.Server, err error) {
	withComponent(ctx, compSim, func(context.Context) {
		sim, err = exsim.New(exsim.Config{Markets: rc.markets, Seed: 1, Backpressure: rc.backpressure}, log.With("component", "exsim"))
		if err != nil {
			return
		}
		sctx, cancel := context.WithCancel(context.Background())
		*stop = cancel
		err = sim.Start(sctx)
	})
	if err != nil {
		return sim, fmt.Errorf("%w: simulator: %w", ErrSetup, err)
	}
	return sim, nil
}

func (r *rig) startBridge(ctx context.Context, env *natsEnv, rc rigConfig) (err error) {
	r.pubNC, err = env.connect(ctx, "mdbridge-bench", rc.tap)
	if err != nil {
		return err
	}
	if r.ctlNC, err = env.connect(ctx, "mdbridge-bench-control", nil); err != nil {
		return err
	}
	if r.js, err = jetstream.New(r.ctlNC); err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if err := freshStream(ctx, r.js, rc.pcfg); err != nil {
		return err
	}
	kv, err := publisher.EnsureStateBucket(ctx, r.js, rc.pcfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if r.pub, err = publisher.NewJetStream(ctx, r.pubNC, rc.pcfg, r.log); err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if r.states, err = publisher.NewStateWriter(kv, rc.pcfg, r.log); err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	requester, err := publisher.NewSnapshotRequester(r.ctlNC, rc.pcfg, "bench")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	def, _ := resilience.ExchangeDefaults(binance.Name)
	if rc.weightPerMin > 0 {
		def.RequestsPerMinute = rc.weightPerMin
	}
	limiter, err := resilience.NewRateLimitManager(def.RateLimitConfig())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	ex, err := binance.New(binance.Config{
		WSURL: r.sim.BinanceWSURL(), RESTURL: r.sim.BinanceRESTURL(), MicrosecondTimestamps: true,
		BookDepth: rc.bookDepth, Limiter: limiter,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &countingTransport{base: http.DefaultTransport, c: r.rest}},
	}, r.log)

	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	sc := bridge.StreamConfig{Exchange: ex, Symbols: r.symbols, Channels: rc.channels, Instance: "bench", BookBufferLimit: rc.bookBuffer}
	if rc.connections > 0 {
		sc.MaxTopicsPerConn = (r.topics + rc.connections - 1) / rc.connections
		if ch := rc.channels; ch&bridge.ChannelBook != 0 && ch&bridge.ChannelTrade != 0 && sc.MaxTopicsPerConn%2 == 1 {
			sc.MaxTopicsPerConn++ // all topics of a symbol share a connection
		}
		sc.MaxConnections = max(rc.connections, 5)
	}
	sc.StateSink, sc.SnapshotRequester = r.states, requester
	if r.stream, err = bridge.NewStream(sc, r.pub, r.log); err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if r.snapsvc, err = publisher.NewSnapshotService(r.ctlNC, r.pub, r.stream, r.log); err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	go func() { r.runErr <- r.stream.Run(context.Background()) }()
	return nil
}

// connected reports how many connection slots are CONNECTED and how many
// there are.
func (r *rig) connected() (up, total int) {
	cs := r.stream.Stats().Connections
	for _, c := range cs {
		if c.State == "CONNECTED" {
			up++
		}
	}
	return up, len(cs)
}

// waitConnected waits until every connection slot of the bridge is
// CONNECTED and the simulator has every topic subscribed, and returns how
// long that took from since.
func (r *rig) waitConnected(ctx context.Context, since time.Time, timeout time.Duration, tick func(up, total int)) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		up, total := r.connected()
		if up == total && total > 0 {
			took := time.Since(since)
			if r.simTopics() >= r.topics {
				return took, nil
			}
		}
		if tick != nil {
			tick(up, total)
		}
		select {
		case err := <-r.runErr:
			r.runErr <- err
			return 0, fmt.Errorf("%w: bridge stopped: %v", ErrSetup, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case now := <-t.C:
			if now.After(deadline) {
				return 0, fmt.Errorf("%w: %d of %d connections CONNECTED after %s", ErrSetup, up, total, timeout)
			}
		}
	}
}

// simTopics counts the streams subscribed on the simulator's open
// connections.
func (r *rig) simTopics() int {
	n := 0
	for _, c := range r.sim.Conns() {
		if c.Open {
			n += len(c.Subscriptions)
		}
	}
	return n
}

// counters returns the bridge's and publisher's counters.
func (r *rig) counters() *BridgeCounters {
	st, ps := r.stream.Stats(), r.pub.Stats()
	return &BridgeCounters{
		Frames: st.Frames, Received: st.Received, Emitted: st.Emitted, Duplicates: st.Duplicates,
		Gaps: st.Gaps, Malformed: st.Malformed, Reconnects: st.Reconnects,
		Published: ps.Published, Retries: ps.Retries, Failures: ps.Failures, Dropped: ps.Dropped, Rejected: ps.Rejected,
		SimSlowDisconnects: r.sim.Stats().SlowDisconnects,
	}
}

// shutdown stops in the order of `mdbridge run`: the stream, the snapshot
// service, the publisher (flushing acks), the final states, then the
// connections and the simulator.
func (r *rig) shutdown(ctx context.Context) error {
	var errs []error
	if r.stream != nil {
		if err := r.stream.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("bridge stream: %w", err))
		}
	}
	if r.snapsvc != nil {
		if err := r.snapsvc.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("snapshot service: %w", err))
		}
	}
	if r.pub != nil {
		if err := r.pub.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("publisher: %w", err))
		}
	}
	if r.states != nil {
		if err := r.states.WriteFinal(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final state: %w", err))
		}
	}
	r.close()
	return errors.Join(errs...)
}

// close releases everything without waiting.
func (r *rig) close() {
	if r.stream != nil {
		_ = r.stream.Close()
	}
	if r.snapsvc != nil {
		_ = r.snapsvc.Close()
	}
	if r.pub != nil {
		_ = r.pub.Close()
	}
	if r.states != nil {
		_ = r.states.Close()
	}
	for _, nc := range []*nats.Conn{r.pubNC, r.ctlNC} {
		if nc != nil {
			nc.Close()
		}
	}
	if r.sim != nil {
		_ = r.sim.Close()
	}
	if r.simStop != nil {
		r.simStop()
	}
}

// restCounter counts REST answers by status class relevant to rate limits.
type restCounter struct {
	requests, tooMany, banned, forbidden atomic.Uint64
}

// countingTransport is an http.RoundTripper that counts rate-limit answers
// (429, 418, 403) of the adapter's REST calls.
type countingTransport struct {
	base http.RoundTripper
	c    *restCounter
}

// RoundTrip implements http.RoundTripper.
func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	t.c.requests.Add(1)
	if err == nil {
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			t.c.tooMany.Add(1)
		case http.StatusTeapot:
			t.c.banned.Add(1)
		case http.StatusForbidden:
			t.c.forbidden.Add(1)
		}
	}
	return resp, err
}
