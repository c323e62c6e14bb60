package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// subscription is one exchange's symbols (trades and books).
type subscription struct {
	exchange string
	symbols  []string
}

// replicaConfig is what every generation of a replica is built from.
type replicaConfig struct {
	index    int
	instance string
	natsURL  string
	conn     publisher.ConnConfig // URLs are filled from natsURL
	pub      publisher.Config
	subs     []subscription
	wsURL    string // the replica's proxy, ws://
	restURL  string // the replica's proxy, http://
	tune     func(*bridge.StreamConfig)
	logger   *slog.Logger
	rec      *recorder
}

// GenerationStats are the counters of one replica generation (from its
// start to its kill or shutdown).
type GenerationStats struct {
	Replica   string                          `json:"replica"`
	Gen       int                             `json:"gen"`
	Started   time.Time                       `json:"started"`
	Ended     time.Time                       `json:"ended"`
	Killed    bool                            `json:"killed"`
	Streams   map[string]bridge.Stats         `json:"streams"`
	Publisher publisher.Stats                 `json:"publisher"`
	Service   publisher.SnapshotServiceStats  `json:"snapshot_service"`
	States    publisher.StateWriterStats      `json:"state_writer"`
	Errors    []string                        `json:"errors,omitempty"` // streams that stopped with an error
	Symbols   map[string][]bridge.SymbolState `json:"-"`
}

// replica is one bridge process, wired like `mdbridge run`
// (cmd/mdbridge/app.go): its own NATS connection, JetStream publisher,
// md_state writer, snapshot requester and control service, one
// bridge.Stream per exchange. A generation is one start-to-stop life;
// kill ends it abruptly (no flush, no final state), like a crash.
type replica struct {
	cfg replicaConfig

	mu      sync.Mutex
	gen     int
	up      bool
	started time.Time
	nc      *nats.Conn
	pub     *publisher.JetStream
	states  *publisher.StateWriter
	svc     *publisher.SnapshotService
	streams []*bridge.Stream
	runWG   sync.WaitGroup
	errMu   sync.Mutex
	errs    []string
	history []GenerationStats
	lastPub *publisher.JetStream // the publisher of the generation that ended last
}

func newReplica(cfg replicaConfig) *replica { return &replica{cfg: cfg} }

// name is the replica's letter ("A", "B", ...).
func (r *replica) name() string { return string(rune('A' + r.cfg.index)) }

// generation is the label of the current (or next) generation, e.g. "A#2".
func (r *replica) generation() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%s#%d", r.name(), r.gen)
}

func (r *replica) isUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// start builds and runs a new generation. On error it releases what it
// started.
func (r *replica) start(ctx context.Context) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return nil
	}
	r.gen++
	log := r.cfg.logger.With("replica", r.name(), "gen", r.gen)
	defer func() {
		if err != nil {
			r.closeLocked()
		}
	}()
	cc := r.cfg.conn
	cc.URLs = []string{r.cfg.natsURL}
	cc.Name = r.cfg.instance
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if r.nc, err = publisher.Connect(cctx, cc, log); err != nil {
		return fmt.Errorf("replica %s: %w", r.name(), err)
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		return err
	}
	if _, err = publisher.EnsureStream(cctx, js, r.cfg.pub); err != nil {
		return fmt.Errorf("replica %s: stream: %w", r.name(), err)
	}
	kv, err := publisher.EnsureStateBucket(cctx, js, r.cfg.pub)
	if err != nil {
		return fmt.Errorf("replica %s: state bucket: %w", r.name(), err)
	}
	if r.pub, err = publisher.NewJetStream(cctx, r.nc, r.cfg.pub, log); err != nil {
		return fmt.Errorf("replica %s: publisher: %w", r.name(), err)
	}
	if r.states, err = publisher.NewStateWriter(kv, r.cfg.pub, log); err != nil {
		return err
	}
	requester, err := publisher.NewSnapshotRequester(r.nc, r.cfg.pub, r.cfg.instance)
	if err != nil {
		return err
	}
	// One REST limiter per venue per process with cmd/mdbridge's default
	// budgets (MDB_BINANCE_WEIGHT_PER_MINUTE, MDB_BYBIT_REQUESTS_PER_MINUTE;
	// spot and linear share Bybit's).
	limiters := map[string]*resilience.RateLimitManager{}
	limiter := func(venue string) (*resilience.RateLimitManager, error) {
		if l, ok := limiters[venue]; ok {
			return l, nil
		}
		def, _ := resilience.ExchangeDefaults(venue)
		l, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: def.RequestsPerMinute})
		limiters[venue] = l
		return l, err
	}
	// Trades published while no replica ran are backfilled from the
	// stream's last stored trade id (as cmd/mdbridge wires it).
	resumer := publisher.NewTradeResumer(js, r.cfg.pub)
	pub := teePublisher{next: r.pub, rec: r.cfg.rec, replica: r.cfg.index}
	sink := teeSink{next: r.states, rec: r.cfg.rec, replica: r.cfg.index}
	r.streams = nil
	for _, sub := range r.cfg.subs {
		var ex bridge.Exchange
		switch sub.exchange {
		case "binance":
			l, lerr := limiter("binance")
			if lerr != nil {
				return lerr
			}
			ex, err = binance.New(binance.Config{WSURL: r.cfg.wsURL, RESTURL: r.cfg.restURL, Limiter: l, Logger: log})
		default:
			l, lerr := limiter("bybit")
			if lerr != nil {
				return lerr
			}
			market := bybit.MarketSpot
			if sub.exchange == "bybit-linear" {
				market = bybit.MarketLinear
			}
			ex, err = bybit.New(bybit.Config{WSURL: r.cfg.wsURL, RESTURL: r.cfg.restURL, Market: market, Limiter: l, Logger: log})
		}
		if err != nil {
			return fmt.Errorf("replica %s: %s adapter: %w", r.name(), sub.exchange, err)
		}
		res := resilience.DefaultResilienceConfig()
		sc := bridge.StreamConfig{
			Exchange: ex, Symbols: sub.symbols, Channels: bridge.ChannelTrade | bridge.ChannelBook,
			Resilience: &res, Instance: r.cfg.instance,
		}
		if r.cfg.tune != nil {
			r.cfg.tune(&sc)
		}
		s, err := bridge.NewStream(sc, pub, bridge.WithLogger(log), bridge.WithStateSink(sink), bridge.WithSnapshotRequester(recordingRequester{next: requester, rec: r.cfg.rec, replica: r.cfg.index}),
			bridge.WithTradeResumer(resumer))
		if err != nil {
			return fmt.Errorf("replica %s: %s stream: %w", r.name(), sub.exchange, err)
		}
		r.streams = append(r.streams, s)
	}
	if r.svc, err = publisher.StartSnapshotService(r.nc, r.cfg.pub,
		recordingSource{Streams: r.streams, rec: r.cfg.rec, replica: r.cfg.index}, log); err != nil {
		return fmt.Errorf("replica %s: snapshot service: %w", r.name(), err)
	}
	r.errMu.Lock()
	r.errs = nil
	r.errMu.Unlock()
	for _, s := range r.streams {
		r.runWG.Add(1)
		go func() {
			defer r.runWG.Done()
			if err := s.Run(context.Background()); err != nil {
				log.Error("stream stopped with an error", "exchange", s.Exchange(), "err", err)
				r.errMu.Lock()
				r.errs = append(r.errs, fmt.Sprintf("%s gen %d %s stream: %v", r.name(), r.gen, s.Exchange(), err))
				r.errMu.Unlock()
			}
		}()
	}
	r.up, r.started = true, time.Now()
	log.Info("replica started")
	return nil
}

// statsLocked collects the generation's counters. r.mu is held.
func (r *replica) statsLocked(killed bool) GenerationStats {
	g := GenerationStats{Replica: r.name(), Gen: r.gen, Started: r.started, Ended: time.Now(), Killed: killed,
		Streams: map[string]bridge.Stats{}, Symbols: map[string][]bridge.SymbolState{}}
	for _, s := range r.streams {
		g.Streams[s.Exchange()] = s.Stats()
		g.Symbols[s.Exchange()] = s.States()
	}
	if r.pub != nil {
		g.Publisher = r.pub.Stats()
	}
	if r.svc != nil {
		g.Service = r.svc.Stats()
	}
	if r.states != nil {
		g.States = r.states.Stats()
	}
	r.errMu.Lock()
	g.Errors = append([]string(nil), r.errs...)
	r.errMu.Unlock()
	return g
}

// kill ends the generation abruptly: the streams stop at once (a pending
// publish is cancelled), the snapshot service and state writer stop without
// final writes, the publisher abandons what JetStream has not acknowledged,
// and the NATS connection is closed, as when the process dies.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return
	}
	for _, s := range r.streams {
		_ = s.Close()
	}
	r.runWG.Wait()
	g := r.statsLocked(true)
	r.closeLocked()
	if r.lastPub != nil {
		g.Publisher = r.lastPub.Stats() // Abandoned is only known once it is closed
	}
	r.history = append(r.history, g)
	r.up = false
	r.cfg.rec.markDown(r.cfg.index, "KILLED")
	r.cfg.logger.Warn("replica killed", "replica", r.name(), "gen", r.gen, "abandoned", g.Publisher.Abandoned)
}

// closeLocked releases everything without waiting for acks (kill, and
// start's error path).
func (r *replica) closeLocked() {
	for _, s := range r.streams {
		_ = s.Close()
	}
	r.runWG.Wait()
	if r.svc != nil {
		r.svc.Close()
	}
	if r.states != nil {
		r.states.Close()
	}
	if r.pub != nil {
		r.pub.Close()
	}
	if r.nc != nil {
		r.nc.Close()
	}
	r.lastPub = r.pub
	r.svc, r.states, r.pub, r.nc, r.streams = nil, nil, nil, nil, nil
}

// shutdown stops the generation gracefully, as `mdbridge run` does on
// SIGTERM: streams, snapshot service, publisher flush (every event acked),
// final DISCONNECTED states, NATS drain.
func (r *replica) shutdown(ctx context.Context) (GenerationStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return GenerationStats{}, nil
	}
	var errs []error
	for _, s := range r.streams {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s stream: %w", s.Exchange(), err))
		}
	}
	r.runWG.Wait()
	if err := r.svc.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("snapshot service: %w", err))
	}
	if err := r.pub.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("publisher flush: %w", err))
	}
	if err := r.states.WriteFinal(ctx); err != nil {
		errs = append(errs, fmt.Errorf("final state: %w", err))
	}
	g := r.statsLocked(false)
	if err := r.nc.Drain(); err == nil {
		for i := 0; i < 100 && !r.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.closeLocked()
	r.history = append(r.history, g)
	r.up = false
	return g, errors.Join(errs...)
}

// live returns the running generation's publisher stats (ok false when
// down).
func (r *replica) pubStats() (publisher.Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return publisher.Stats{}, false
	}
	return r.pub.Stats(), true
}
