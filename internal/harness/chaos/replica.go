package chaos

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/internal/node"
	"github.com/qldata/mdbridge/publisher"
)

// subscription is one exchange's symbols and channels (trades, books or
// both: see marketChannels).
type subscription struct {
	exchange string
	symbols  []string
	channels bridge.Channel
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
	// bybitDepth is the Bybit orderbook depth (0: the adapter's default).
	bybitDepth int
	// wrapPub, if set, wraps the publisher the streams see (inside the
	// recorder's tee), e.g. to hold publishes back in a test.
	wrapPub func(bridge.Publisher) bridge.Publisher
	tune    func(*bridge.StreamConfig)
	logger  *slog.Logger
	rec     *recorder
	// cluster is the cluster mode configuration (a copy per generation;
	// Instance and Units are filled by the node).
	cluster cluster.Config
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

// replica is one bridge process, wired like `mdbridge run` by
// internal/node: its own NATS connection, JetStream publisher, md_state
// writer, snapshot requester and control service, one bridge.Stream per
// exchange, with the recorder's taps around the publisher, the state sink,
// the requester and the snapshot source. A generation is one start-to-stop
// life; kill ends it abruptly (no flush, no final state), like a crash.
type replica struct {
	cfg replicaConfig

	mu  sync.Mutex
	gen int
	up  bool
	// starting: a generation is being built and connected (r.mu not
	// held meanwhile).
	starting bool
	started  time.Time
	node     *node.Node // the current generation's, or the last one's once it ended
	errMu    sync.Mutex
	errs     []string
	history  []GenerationStats
	// seen are the streams of the current generation observed so far
	// (observe): in cluster mode a generation starts and retires streams
	// as units move, and a retired stream's counters count too.
	seen map[*bridge.Stream]streamSeen
}

// streamSeen is the last observation of one stream.
type streamSeen struct {
	stats  bridge.Stats
	states []bridge.SymbolState
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

// nodeConfig is the replica's node configuration for the generation
// labelled name#gen: trades and books of every subscription through the
// replica's proxy, the default REST budgets, the recorder's taps.
func (r *replica) nodeConfig(log *slog.Logger, gen int) node.Config {
	c := r.cfg
	cc := c.cluster
	nc := node.Config{
		Instance: c.instance, Publisher: c.pub, Tune: c.tune, Cluster: &cc,
		Venues: node.Venues{BinanceWSURL: c.wsURL, BinanceRESTURL: c.restURL, BybitWSURL: c.wsURL, BybitRESTURL: c.restURL,
			BybitBookDepth: c.bybitDepth, BinanceUSDMWSURL: c.wsURL, BinanceUSDMRESTURL: c.restURL,
			OKXWSURL: c.wsURL, OKXRESTURL: c.restURL},
		Hooks: node.Hooks{
			Publisher: func(p bridge.Publisher) bridge.Publisher {
				if c.wrapPub != nil {
					p = c.wrapPub(p)
				}
				return teePublisher{next: p, rec: c.rec, replica: c.index}
			},
			StateSink: func(s bridge.StateSink) bridge.StateSink { return teeSink{next: s, rec: c.rec, replica: c.index} },
			Requester: func(q bridge.SnapshotRequester) bridge.SnapshotRequester {
				return recordingRequester{next: q, rec: c.rec, replica: c.index}
			},
			Source: func(s bridge.Streams) publisher.SnapshotSource {
				return recordingSource{Streams: s, rec: c.rec, replica: c.index}
			},
		},
		OnStreamError: func(err error) {
			log.Error("stream stopped with an error", "err", err)
			r.errMu.Lock()
			r.errs = append(r.errs, fmt.Sprintf("%s gen %d %v", r.name(), gen, err))
			r.errMu.Unlock()
		},
	}
	for _, sub := range c.subs {
		nc.Subscriptions = append(nc.Subscriptions, node.Subscription{
			Exchange: sub.exchange, Channels: cmp.Or(sub.channels, bridge.ChannelTrade|bridge.ChannelBook), Symbols: sub.symbols})
	}
	return nc
}

// start builds and runs a new generation. On error it releases what it
// started. r.mu is not held while the node connects (up to 10 s while NATS
// is down), so that observers (owner samples) are not held up.
func (r *replica) start(ctx context.Context) error {
	r.mu.Lock()
	if r.up || r.starting {
		r.mu.Unlock()
		return nil
	}
	r.starting = true
	r.gen++
	gen := r.gen
	r.mu.Unlock()
	n, err := r.startGen(ctx, gen)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starting = false
	if err != nil {
		return err
	}
	r.node, r.up, r.started = n, true, time.Now()
	r.seen = map[*bridge.Stream]streamSeen{}
	return nil
}

// startGen builds, connects and starts generation gen's node.
func (r *replica) startGen(ctx context.Context, gen int) (*node.Node, error) {
	log := r.cfg.logger.With("replica", r.name(), "gen", gen)
	n, err := node.New(r.nodeConfig(log, gen), log)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", r.name(), err)
	}
	cc := r.cfg.conn
	cc.URLs = []string{r.cfg.natsURL}
	cc.Name = r.cfg.instance
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := publisher.Connect(cctx, cc, log)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", r.name(), err)
	}
	r.errMu.Lock()
	r.errs = nil
	r.errMu.Unlock()
	if err := n.Start(cctx, nc); err != nil {
		return nil, fmt.Errorf("replica %s: %w", r.name(), err)
	}
	log.Info("replica started")
	return n, nil
}

// streamsLocked are the running generation's streams (none when down).
// r.mu is held.
func (r *replica) streamsLocked() bridge.Streams {
	if !r.up {
		return nil
	}
	return r.node.Streams()
}

// statsLocked collects the generation's counters once it has ended. r.mu
// is held.
func (r *replica) statsLocked(killed bool) GenerationStats {
	g := GenerationStats{Replica: r.name(), Gen: r.gen, Started: r.started, Ended: time.Now(), Killed: killed,
		Streams: map[string]bridge.Stats{}, Symbols: map[string][]bridge.SymbolState{}}
	r.observeLocked()
	for s, o := range r.seen {
		st := g.Streams[s.Exchange()]
		addStats(&st, o.stats)
		g.Streams[s.Exchange()] = st
		g.Symbols[s.Exchange()] = append(g.Symbols[s.Exchange()], o.states...)
	}
	// After Close: the publisher's Abandoned is only known once it is closed.
	g.Publisher = r.node.Publisher().Stats()
	g.Service = r.node.SnapshotService().Stats()
	g.States = r.node.States().Stats()
	r.errMu.Lock()
	g.Errors = append([]string(nil), r.errs...)
	r.errMu.Unlock()
	return g
}

// kill ends the generation abruptly (node.Close): the streams stop at once
// (a pending publish is cancelled), the snapshot service and state writer
// stop without final writes, the publisher abandons what JetStream has not
// acknowledged, and the NATS connection is closed, as when the process
// dies.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return
	}
	r.node.Close()
	g := r.statsLocked(true)
	r.history = append(r.history, g)
	r.up = false
	r.cfg.rec.markDown(r.cfg.index, "KILLED")
	r.cfg.logger.Warn("replica killed", "replica", r.name(), "gen", r.gen, "abandoned", g.Publisher.Abandoned)
}

// shutdown stops the generation gracefully, as `mdbridge run` does on
// SIGTERM (node.Shutdown): streams, snapshot service, publisher flush
// (every event acked), final DISCONNECTED states, NATS drain.
func (r *replica) shutdown(ctx context.Context) (GenerationStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return GenerationStats{}, nil
	}
	err := r.node.Shutdown(ctx)
	g := r.statsLocked(false)
	r.history = append(r.history, g)
	r.up = false
	return g, err
}

// counted returns the trades the replica declared lost for a market over
// all its generations (the running one included): its missing and dropped
// counters, as md_state reports them.
func (r *replica) counted(exchange, symbol string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	add := func(states []bridge.SymbolState) {
		for _, st := range states {
			if st.Symbol == symbol {
				n += st.Missing + st.Dropped
			}
		}
	}
	for _, g := range r.history {
		add(g.Symbols[exchange])
	}
	if r.up {
		r.observeLocked()
		for s, o := range r.seen {
			if s.Exchange() == exchange {
				add(o.states)
			}
		}
	}
	return n
}

// observeLocked records the counters and states of the generation's
// running streams (r.mu held, the generation up or just ended).
func (r *replica) observeLocked() {
	if r.node == nil || r.seen == nil {
		return
	}
	for _, s := range r.node.Streams() {
		r.seen[s] = streamSeen{stats: s.Stats(), states: s.States()}
	}
}

// ownership is what one replica carries at one instant: the units its
// cluster coordinator runs, and which of them its streams report
// CONNECTED.
type ownership struct {
	running   map[cluster.Unit]bool
	connected map[cluster.Unit]bool
}

// observe records the streams' counters (see seen) and returns the
// replica's ownership (ok false when down).
func (r *replica) observe() (ownership, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return ownership{}, false
	}
	r.observeLocked()
	o := ownership{running: map[cluster.Unit]bool{}, connected: map[cluster.Unit]bool{}}
	if c := r.node.Cluster(); c != nil {
		for _, u := range c.Running() {
			o.running[u] = true
		}
	}
	for _, s := range r.node.Streams() {
		for _, st := range s.States() {
			u := cluster.Unit{Market: st.Exchange, Symbol: st.Symbol}
			if o.running[u] && st.State == "CONNECTED" {
				o.connected[u] = true
			}
		}
	}
	return o, true
}

// carries reports whether the running generation carries the market.
func (r *replica) carries(exchange, symbol string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return false
	}
	c := r.node.Cluster()
	if c == nil {
		return true
	}
	return slices.Contains(c.Running(), cluster.Unit{Market: exchange, Symbol: symbol})
}

// clusterStats returns the running generation's coordinator counters.
func (r *replica) clusterStats() (cluster.Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up || r.node.Cluster() == nil {
		return cluster.Stats{}, false
	}
	return r.node.Cluster().Stats(), true
}

// addStats adds b's counters to a (a generation's streams of one exchange).
func addStats(a *bridge.Stats, b bridge.Stats) {
	a.Frames += b.Frames
	a.Received += b.Received
	a.Emitted += b.Emitted
	a.Duplicates += b.Duplicates
	a.Gaps += b.Gaps
	a.Snapshots += b.Snapshots
	a.Backfilled += b.Backfilled
	a.Missing += b.Missing
	a.Dropped += b.Dropped
	a.Malformed += b.Malformed
	a.Reconnects += b.Reconnects
	a.Rotations += b.Rotations
	a.SilenceProbes += b.SilenceProbes
	a.SilentFeeds += b.SilentFeeds
	a.Superseded += b.Superseded
	a.StaleAlerts += b.StaleAlerts
	a.SnapshotBusy += b.SnapshotBusy
	a.Connections = append(a.Connections, b.Connections...)
}

// live returns the running generation's publisher stats (ok false when
// down).
func (r *replica) pubStats() (publisher.Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return publisher.Stats{}, false
	}
	return r.node.Publisher().Stats(), true
}
