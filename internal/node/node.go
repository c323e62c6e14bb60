package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// drainWait bounds the wait for the NATS connection's drain at the end of
// Shutdown.
const drainWait = 2 * time.Second

// Node is one bridge replica; see the package documentation.
type Node struct {
	cfg       Config
	log       *slog.Logger
	exchanges []bridge.Exchange // one per subscription of Config.Subscriptions
	adapters  *adapterSet       // every exchange's adapter, built on demand

	subMu    sync.Mutex
	spec     []Subscription // the subscription set asked for (universe patterns unresolved)
	active   []Subscription // the subscription set running now (patterns resolved)
	changeMu sync.Mutex     // one change of the running set at a time
	uni      *universe

	nc      *nats.Conn
	js      jetstream.JetStream
	pub     *publisher.JetStream
	states  *publisher.StateWriter
	svc     *publisher.SnapshotService
	streams bridge.Streams
	runWG   sync.WaitGroup

	// cluster mode (Config.Cluster set)
	ccfg        cluster.Config
	coord       *cluster.Coordinator
	runner      *unitRunner
	coordCancel context.CancelFunc
	coordDone   chan struct{}

	// runtime subscriptions (Config.Runtime set) and universe refreshes
	rt       *specFollower
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	started bool
	closed  bool
}

// New validates cfg and builds the exchange adapters, without touching the
// network. Errors: the publisher's configuration error (wrapping
// publisher.ErrConfig), or a *SubscriptionError (StageAdapter). A nil
// logger discards.
func New(cfg Config, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Publisher.Validate(); err != nil {
		return nil, err
	}
	adapters := newAdapterSet(cfg.Venues, logger)
	exs, err := buildExchanges(cfg.Subscriptions, adapters)
	if err != nil {
		return nil, err
	}
	for i, sub := range cfg.Subscriptions {
		if _, err := checkPatterns(sub); err != nil {
			return nil, &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageUniverse, Err: err}
		}
	}
	n := &Node{cfg: cfg, log: logger, exchanges: exs, adapters: adapters, spec: cfg.Subscriptions, active: cfg.Subscriptions,
		uni: newUniverse(cfg.Venues, adapters)}
	if cfg.Runtime != nil {
		if n.rt, err = newSpecFollower(n, *cfg.Runtime); err != nil {
			return nil, err
		}
	}
	if cfg.Cluster != nil {
		n.ccfg = *cfg.Cluster
		n.ccfg.Instance = cfg.Instance
		n.ccfg.Units = unitsOf(cfg.Subscriptions)
		n.ccfg.StaleAfter = cmp.Or(n.ccfg.StaleAfter, cfg.Publisher.StaleAfter, 3*cmp.Or(cfg.Publisher.StateRefresh, publisher.DefaultStateRefresh))
		n.ccfg.Storage = cmp.Or(n.ccfg.Storage, cfg.Publisher.Storage)
		n.ccfg.Replicas = cmp.Or(n.ccfg.Replicas, cfg.Publisher.Replicas)
		if err := n.ccfg.Validate(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Start takes ownership of nc (it is closed by Shutdown or Close, and on
// error), provisions the stream and the state bucket, starts the
// publisher, the state writer, the snapshot requester, one bridge.Stream
// per subscription and the snapshot service, then runs the streams. On
// error it has released what it started. Errors: provisioning and start-up
// errors of the publisher package, a *SubscriptionError (StageStream), or
// ErrStarted.
func (n *Node) Start(ctx context.Context, nc *nats.Conn) (err error) {
	if n.started {
		return ErrStarted
	}
	n.started, n.nc = true, nc
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	pc := n.cfg.Venues.snapshotDefaults(n.cfg.Publisher, n.cfg.Subscriptions)
	if n.js, err = jetstream.New(nc); err != nil {
		return err
	}
	// NewJetStream provisions the stream (once per start).
	if n.pub, err = publisher.NewJetStream(ctx, nc, pc, n.log); err != nil {
		return fmt.Errorf("provisioning stream %s and starting the publisher: %w", cmp.Or(pc.Stream, publisher.DefaultStream), err)
	}
	kv, err := publisher.EnsureStateBucket(ctx, n.js, pc)
	if err != nil {
		return fmt.Errorf("provisioning KV bucket %s: %w", cmp.Or(pc.KVBucket, publisher.DefaultKVBucket), err)
	}
	if n.states, err = publisher.NewStateWriter(kv, pc, n.log); err != nil {
		return fmt.Errorf("state writer: %w", err)
	}
	n.states.SetDropCounter(n.pub.SymbolDropped) // drops visible per symbol and instance
	requester, err := publisher.NewSnapshotRequester(nc, queueWait(pc), n.cfg.Instance)
	if err != nil {
		return fmt.Errorf("snapshot requester: %w", err)
	}
	if n.cfg.Cluster != nil || n.rt != nil || hasPatterns(n.cfg.Subscriptions) {
		return n.startDynamic(ctx, kv, requester)
	}
	if err := n.buildStreams(requester); err != nil {
		return err
	}
	var src publisher.SnapshotSource = n.streams
	if n.cfg.Hooks.Source != nil {
		src = n.cfg.Hooks.Source(n.streams)
	}
	if n.svc, err = publisher.NewSnapshotService(nc, n.pub, src, n.log); err != nil {
		return fmt.Errorf("snapshot service: %w", err)
	}
	for _, s := range n.streams {
		n.runWG.Add(1)
		go func() {
			defer n.runWG.Done()
			if err := s.Run(context.Background()); err != nil && n.cfg.OnStreamError != nil {
				n.cfg.OnStreamError(fmt.Errorf("%s stream: %w", s.Exchange(), err))
			}
		}()
	}
	return nil
}

// streamMaker returns what builds the streams: an exchange, channels and
// symbols, publishing through the publisher hook, with the resumer and the
// venue's connect gate shared by all. It may be called from any goroutine.
func (n *Node) streamMaker(req bridge.SnapshotRequester) func(ex string, ch bridge.Channel, symbols []string, sink bridge.StateSink) (*bridge.Stream, error) {
	h := n.cfg.Hooks
	var pub bridge.Publisher = n.pub
	if h.Publisher != nil {
		pub = h.Publisher(pub)
	}
	if h.Requester != nil {
		req = h.Requester(req)
	}
	// Trades published while no replica ran are backfilled from the
	// stream's last stored trade id.
	resumer := publisher.NewTradeResumer(n.js, n.cfg.Publisher)
	// The venues' connect limits are per IP: every stream of a venue (Bybit
	// spot and linear are one venue) takes its attempts from one gate.
	gates := map[string]*bridge.ConnectGate{}
	var gmu sync.Mutex
	return func(exName string, ch bridge.Channel, symbols []string, sink bridge.StateSink) (*bridge.Stream, error) {
		ex, err := n.adapters.get(exName)
		if err != nil {
			return nil, err
		}
		res := resilience.DefaultResilienceConfig()
		if n.cfg.Resilience != nil {
			res = *n.cfg.Resilience
		}
		sc := bridge.StreamConfig{
			Exchange: ex, Symbols: symbols, Channels: ch,
			Resilience: &res, Instance: n.cfg.Instance,
			SnapshotsPerMinute: n.cfg.Venues.snapshotsPerMinute(exName),
		}
		if n.cfg.Tune != nil {
			n.cfg.Tune(&sc)
		}
		venue := venueOf(exName)
		gmu.Lock()
		gate := gates[venue]
		if gate == nil {
			if gate, err = n.cfg.Venues.connectGate(ex, sc.ConnectSpacing); err != nil {
				gmu.Unlock()
				return nil, err
			}
			gates[venue] = gate
		}
		gmu.Unlock()
		if sc.MaxConnections == 0 && n.cfg.Venues.IPShare > 1 {
			// The venue's connections per IP, this replica's part.
			sc.MaxConnections = n.cfg.Venues.shareLimits(ex.Limits()).MaxConnectionsPerIP
		}
		sc.StateSink, sc.SnapshotRequester, sc.TradeResumer, sc.ConnectGate = sink, req, resumer, gate
		return bridge.NewStream(sc, pub, n.log)
	}
}

// sink is the md_state writer behind the StateSink hook.
func (n *Node) sink() bridge.StateSink {
	var sink bridge.StateSink = n.states
	if n.cfg.Hooks.StateSink != nil {
		sink = n.cfg.Hooks.StateSink(sink)
	}
	return sink
}

// buildStreams builds one bridge.Stream per subscription.
func (n *Node) buildStreams(requester bridge.SnapshotRequester) error {
	mk := n.streamMaker(requester)
	sink := n.sink()
	for i, sub := range n.cfg.Subscriptions {
		s, err := mk(sub.Exchange, sub.Channels, sub.Symbols, sink)
		if err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageStream, Err: err}
		}
		n.streams = append(n.streams, s)
	}
	return nil
}

// startDynamic starts the streams through the unit runner, whose streams
// change at run time: in cluster mode the coordinator starts this
// replica's share of the units; with runtime subscriptions the spec
// follower reads the KV key first (the key, when present and valid, wins
// over Config.Subscriptions) and then follows it.
func (n *Node) startDynamic(ctx context.Context, states jetstream.KeyValue, requester *publisher.SnapshotRequester) error {
	n.runner = &unitRunner{
		n: n, log: n.log, stop: make(chan struct{}),
		handover: cmp.Or(n.ccfg.HandoverTimeout, cluster.DefaultHandoverTimeout),
	}
	// Hooks.Source does not apply: the streams change at run time.
	var src publisher.SnapshotSource = n.runner
	n.runner.mk = n.streamMaker(&clusterRequester{next: requester, src: n.runner, pub: n.pub})
	n.runner.sinkBase = n.sink()
	var err error
	if n.rt != nil {
		if err := n.rt.load(ctx); err != nil {
			return err
		}
	} else {
		resolved, err := n.uni.resolve(ctx, n.cfg.Subscriptions, false)
		if err != nil {
			return err
		}
		n.setSets(n.cfg.Subscriptions, resolved)
	}
	if n.cfg.Cluster != nil {
		// Only the replicas carrying a unit subscribe its control subject
		// (unitRunner.launch): another replica cannot serve it.
		n.svc, err = publisher.NewUnitSnapshotService(n.nc, n.pub, src, n.log)
		n.runner.svc = n.svc
	} else {
		n.svc, err = publisher.NewSnapshotService(n.nc, n.pub, src, n.log)
	}
	if err != nil {
		return fmt.Errorf("snapshot service: %w", err)
	}
	if n.cfg.Cluster == nil {
		if err := n.runner.StartUnits(ctx, unitsOf(n.subscriptions())); err != nil {
			return err
		}
	} else {
		members, err := cluster.EnsureBucket(ctx, n.js, n.ccfg, n.log)
		if err != nil {
			return err
		}
		n.ccfg.Units = unitsOf(n.subscriptions())
		ccfg := n.ccfg
		ccfg.Conn = n.nc // the watches are set up again on its reconnects
		if n.coord, err = cluster.New(ccfg, members, states, n.runner, n.log); err != nil {
			return err
		}
		cctx, cancel := context.WithCancel(context.Background())
		n.coordCancel, n.coordDone = cancel, make(chan struct{})
		go func() {
			defer close(n.coordDone)
			if err := n.coord.Run(cctx); err != nil {
				n.log.Error("cluster coordinator stopped", "err", err)
				if n.cfg.OnStreamError != nil {
					n.cfg.OnStreamError(err)
				}
			}
		}()
	}
	bctx, cancel := context.WithCancel(context.Background())
	n.bgCancel = cancel
	if n.rt != nil {
		n.bgWG.Go(func() { n.rt.follow(bctx) })
	}
	n.bgWG.Go(func() { n.refreshLoop(bctx, cmp.Or(n.cfg.UniverseRefresh, DefaultUniverseRefresh)) })
	return nil
}

// setSets records the spec and its resolution as the running set
// (before the streams start).
func (n *Node) setSets(spec, resolved []Subscription) {
	n.subMu.Lock()
	n.spec, n.active = spec, resolved
	n.subMu.Unlock()
	n.uni.mu.Lock()
	if hasPatterns(spec) {
		n.uni.stats.Symbols = len(unitsOf(resolved))
	}
	n.uni.mu.Unlock()
}

// specSet returns the subscription set asked for, patterns unresolved.
func (n *Node) specSet() []Subscription {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	return n.spec
}

// subscriptions returns the subscription set running now.
func (n *Node) subscriptions() []Subscription {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	return n.active
}

// Shutdown stops the node gracefully, as `mdbridge run` does on SIGTERM:
// the streams stop reading, the snapshot service drains, the publisher
// flushes and waits for every ack, the state writer writes the final
// DISCONNECTED states, and the NATS connection drains (at most 2 s) and
// closes. ctx bounds the whole. It returns every step's error, joined.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.started || n.closed {
		return nil
	}
	var errs []error
	if n.bgCancel != nil {
		n.bgCancel()
		n.bgWG.Wait()
		if n.rt != nil {
			n.rt.leave(ctx)
		}
	}
	if n.coord != nil {
		// Leave the cluster first: the others take over this replica's
		// units, and it keeps them until they are CONNECTED there.
		dctx, cancel := context.WithTimeout(ctx, n.runner.handover)
		if err := n.coord.Drain(dctx); err != nil {
			n.log.Warn("leaving the cluster", "err", err)
		}
		cancel()
		n.coordCancel()
		<-n.coordDone
	}
	if n.runner != nil {
		if err := n.runner.shutdown(ctx, true); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range n.streams {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s stream: %w", s.Exchange(), err))
		}
	}
	n.runWG.Wait()
	if err := n.svc.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("snapshot service: %w", err))
	}
	if err := n.pub.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("publisher flush: %w (unacknowledged events: %d)", err, n.pub.Stats().BufferedMsgs))
	}
	st := n.pub.Stats()
	n.log.Info("publisher flushed", "published", st.Published, "acked", st.Acked, "duplicates", st.Duplicates, "dropped", st.Dropped)
	if err := n.states.WriteFinal(ctx); err != nil {
		errs = append(errs, fmt.Errorf("final state: %w", err))
	}
	if err := n.nc.Drain(); err == nil {
		wait, cancel := context.WithTimeout(ctx, drainWait)
		for !n.nc.IsClosed() && wait.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}
	n.Close()
	return errors.Join(errs...)
}

// Close stops the node at once, as when the process dies: the streams
// stop (a pending publish is cancelled), the snapshot service and the
// state writer stop without final writes, the publisher abandons what
// JetStream has not acknowledged (counted in its Stats().Abandoned), and
// the NATS connection closes. It waits for the streams' Run to return.
func (n *Node) Close() {
	if !n.started || n.closed {
		return
	}
	n.closed = true
	if n.bgCancel != nil {
		n.bgCancel()
		n.bgWG.Wait()
	}
	if n.coord != nil {
		n.coordCancel()
		<-n.coordDone
	}
	if n.runner != nil {
		_ = n.runner.shutdown(context.Background(), false)
	}
	for _, s := range n.streams {
		_ = s.Close()
	}
	n.runWG.Wait()
	if n.svc != nil {
		n.svc.Close()
	}
	if n.states != nil {
		n.states.Close()
	}
	if n.pub != nil {
		n.pub.Close()
	}
	if n.nc != nil {
		n.nc.Close()
	}
}

// Conn is the node's NATS connection.
func (n *Node) Conn() *nats.Conn { return n.nc }

// JetStream is the JetStream context on Conn.
func (n *Node) JetStream() jetstream.JetStream { return n.js }

// Publisher is the node's JetStream publisher.
func (n *Node) Publisher() *publisher.JetStream { return n.pub }

// States is the node's md_state writer.
func (n *Node) States() *publisher.StateWriter { return n.states }

// SnapshotService is the node's snapshot control service.
func (n *Node) SnapshotService() *publisher.SnapshotService { return n.svc }

// Streams are the node's streams, in the order of Config.Subscriptions;
// in cluster mode, the streams running now (they change as units move).
func (n *Node) Streams() bridge.Streams {
	if n.runner != nil {
		return n.runner.streams()
	}
	return n.streams
}

// Cluster is the node's cluster coordinator (nil unless Config.Cluster is
// set).
func (n *Node) Cluster() *cluster.Coordinator { return n.coord }
