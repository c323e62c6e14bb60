package node

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/internal/nettest"
	"github.com/qldata/mdbridge/publisher"
)

// clusterRig is an embedded JetStream server, the simulator with nsym
// Binance symbols (trades and books) and replicas of one cluster
// configuration, with a consumer of the stream and a watch of md_state.
type clusterRig struct {
	t            *testing.T
	env          *testEnv
	symbols      []string
	units        []cluster.Unit
	ccfg         cluster.Config
	stateRefresh time.Duration
	watch        *streamWatch
	view         *stateView
}

func newClusterRig(t *testing.T, seed uint64, nsym int, ccfg cluster.Config) *clusterRig {
	t.Helper()
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ns.Shutdown(ctx)
	})
	var markets []exsim.MarketConfig
	var symbols []string
	for i := range nsym {
		sym := fmt.Sprintf("S%03dUSDT", i)
		symbols = append(symbols, sym)
		markets = append(markets, exsim.MarketConfig{Venue: exsim.Binance, Symbol: sym, TradeRate: 2, BookRate: 2})
	}
	sim, err := exsim.New(exsim.Config{Seed: seed, Markets: markets, BookLevels: 20, BinanceWeightLimit: 10_000_000, InboundLimit: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	c := &clusterRig{t: t, env: &testEnv{ns: ns, sim: sim}, symbols: symbols, ccfg: ccfg, stateRefresh: time.Second}
	c.units = unitsOf(c.config("x").Subscriptions)
	return c
}

func (c *clusterRig) config(name string) Config {
	ccfg := c.ccfg
	return Config{
		Instance:  name,
		Publisher: publisher.Config{Storage: jetstream.MemoryStorage, StateRefresh: c.stateRefresh, SnapshotRate: 1000, SnapshotBurst: 1000},
		Subscriptions: []Subscription{
			{Exchange: "binance", Channels: bridge.ChannelTrade | bridge.ChannelBook, Symbols: c.symbols},
		},
		Venues: Venues{
			BinanceWSURL: c.env.sim.BinanceWSURL(), BinanceRESTURL: c.env.sim.BinanceRESTURL(),
			BinanceBookDepth: 100, BinanceWeightPerMinute: 10_000_000,
		},
		Cluster: &ccfg,
		Tune: func(sc *bridge.StreamConfig) {
			sc.StateInterval = c.stateRefresh
		},
	}
}

// start starts replica name on nc (nil: a direct connection).
func (c *clusterRig) start(name string, nc *nats.Conn) *Node {
	c.t.Helper()
	if nc == nil {
		nc = c.env.connect(c.t)
	}
	n, err := New(c.config(name), testLogger(name))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := n.Start(context.Background(), nc); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(n.Close)
	return n
}

// observe starts the stream consumer and the md_state watch (once a
// replica has provisioned them).
func (c *clusterRig) observe() {
	c.t.Helper()
	js, err := jetstream.New(c.env.connect(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	c.watch = watchStream(c.t, js)
	var kv jetstream.KeyValue
	waitUntil(c.t, time.Minute, 50*time.Millisecond, "bucket md_state", func() (err error) {
		kv, err = js.KeyValue(context.Background(), publisher.DefaultKVBucket)
		return err
	})
	c.view = watchStates(c.t, kv)
}

// assign is the assignment over members.
func (c *clusterRig) assign(members []string) map[cluster.Unit][]string {
	return cluster.Assign(c.units, members, c.ccfg.Redundancy)
}

// owned returns the units the assignment over members gives instance.
func (c *clusterRig) owned(members []string, instance string) []cluster.Unit {
	var out []cluster.Unit
	for u, owners := range c.assign(members) {
		if slices.Contains(owners, instance) {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b cluster.Unit) int {
		return strings.Compare(a.String(), b.String())
	})
	return out
}

// steady waits until md_state shows every unit on exactly the owners the
// assignment over members gives (fresh entries, not DISCONNECTED), all
// CONNECTED.
func (c *clusterRig) steady(step string, members []string) {
	c.t.Helper()
	want := c.assign(members)
	waitUntil(c.t, 3*time.Minute, 250*time.Millisecond, step, func() error {
		own, conn, err := c.view.owners(3 * c.stateRefresh)
		if err != nil {
			return err
		}
		bad, notConn := 0, 0
		var example string
		for _, u := range c.units {
			w := slices.Clone(want[u])
			slices.Sort(w)
			if !slices.Equal(own[u], w) {
				bad++
				example = fmt.Sprintf("%v on %v, want %v", u, own[u], w)
			} else if !conn[u] {
				notConn++
			}
		}
		if bad+notConn > 0 {
			return fmt.Errorf("%d units with other owners (e.g. %s), %d not CONNECTED", bad, example, notConn)
		}
		return nil
	})
	c.t.Logf("%s: every one of %d units on its %d owner(s) among %v, CONNECTED", step, len(c.units), c.ccfg.Redundancy, members)
}

// booksValid waits until every consumer book is valid and has reached the
// simulator's book as it is now (the book follows the venue again).
func (c *clusterRig) booksValid(step string) {
	c.t.Helper()
	target := map[string]int64{}
	for _, sym := range c.symbols {
		b, err := c.env.sim.Book(exsim.Binance, sym)
		if err != nil {
			c.t.Fatal(err)
		}
		target[sym] = b.LastUpdateID
	}
	waitUntil(c.t, 2*time.Minute, 100*time.Millisecond, step+": every consumer book valid", func() error {
		c.watch.mu.Lock()
		defer c.watch.mu.Unlock()
		for _, sym := range c.symbols {
			b := c.watch.books[sym]
			switch {
			case b == nil || !b.Valid():
				return fmt.Errorf("%s: no valid book", sym)
			case b.LastID() < target[sym]:
				return fmt.Errorf("%s: book at %d, simulator was at %d", sym, b.LastID(), target[sym])
			}
		}
		return nil
	})
}

// finish stops the markets and checks the stream against the simulator:
// every trade exactly once, every book equal, no book gap, no msg id
// stored twice.
func (c *clusterRig) finish() {
	c.t.Helper()
	for _, sym := range c.symbols {
		if err := c.env.sim.SetRates(exsim.Binance, sym, 0, 0); err != nil {
			c.t.Fatal(err)
		}
	}
	c.watch.matchSimulator(c.t, c.env.sim, c.symbols)
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	if len(c.watch.dups) > 0 || len(c.watch.bad) > 0 {
		c.t.Errorf("%d msg ids stored twice (e.g. %v), %d undecodable", len(c.watch.dups), c.watch.dups[:min(3, len(c.watch.dups))], len(c.watch.bad))
	}
	gaps, ntr := 0, 0
	for _, n := range c.watch.gaps {
		gaps += n
	}
	if gaps > 0 {
		c.t.Errorf("consumer books saw %d gaps (%v)", gaps, c.watch.gaps)
	}
	for _, ids := range c.watch.trades {
		ntr += len(ids)
	}
	c.t.Logf("stream: %d msg ids, %d Binance trades, 0 missing, 0 duplicated; %d books equal to the simulator's, %d gaps",
		len(c.watch.ids), ntr, len(c.symbols), gaps)
}

// TestClusterRollingRestart: 3 replicas with R=1; each in turn stops as on
// SIGTERM (Shutdown: it drains, its units move to the others
// make-before-break) and a new replica starts, under the same instance
// name (a StatefulSet) or a new one (a Deployment); after each stop and
// each start every unit is CONNECTED on its one owner in md_state and every
// consumer book is valid and following the venue. At the end the stream
// holds every Binance trade exactly once, no consumer book ever saw a gap,
// and every book equals the simulator's.
func TestClusterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster integration test")
	}
	const nsym = 9 // few and slow markets: as cheap under -race
	c := newClusterRig(t, 16, nsym, cluster.Config{Redundancy: 1, Heartbeat: time.Second, Expiry: 6 * time.Second, Tick: 200 * time.Millisecond, HandoverTimeout: time.Minute})
	members := []string{"r1", "r2", "r3"}
	nodes := map[string]*Node{}
	for _, name := range members {
		nodes[name] = c.start(name, nil)
	}
	c.observe()
	c.steady("3 replicas", members)
	c.booksValid("3 replicas")
	// From now on every unit always has a CONNECTED owner in md_state:
	// a draining replica keeps its units until their new owners are
	// CONNECTED, a joining one takes them over the same way.
	c.view.trackContinuity()

	var handovers, timeouts uint64
	for _, step := range []struct{ old, next string }{{"r1", "r1"}, {"r2", "r2b"}, {"r3", "r3"}} {
		if len(c.owned(members, step.old)) == 0 {
			t.Fatalf("%s owns no unit among %v: the step would move nothing (choose other symbols)", step.old, members)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		err := nodes[step.old].Shutdown(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s: Shutdown: %v", step.old, err)
		}
		delete(nodes, step.old)
		members = slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == step.old })
		c.steady(step.old+" stopped", members)
		c.booksValid(step.old + " stopped")
		for name, n := range nodes {
			st := n.Cluster().Stats()
			t.Logf("%s: %+v", name, st)
		}

		nodes[step.next] = c.start(step.next, nil)
		members = append(members, step.next)
		slices.Sort(members)
		if len(c.owned(members, step.next)) == 0 {
			t.Fatalf("%s owns no unit among %v: the step would move nothing (choose other symbols)", step.next, members)
		}
		c.steady(step.next+" started", members)
		c.booksValid(step.next + " started")
	}
	for name, n := range nodes {
		waitUntil(t, time.Minute, 200*time.Millisecond, name+" released what it lost", func() error {
			if st := n.Cluster().Stats(); st.Releasing != 0 || st.BelowR != 0 {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
		st := n.Cluster().Stats()
		t.Logf("%s: %+v", name, st)
		handovers += st.Handovers
		timeouts += st.Timeouts
	}
	if handovers == 0 {
		t.Error("no handover counted by the replicas that joined")
	}
	if timeouts != 0 {
		t.Errorf("%d handovers timed out", timeouts)
	}
	if gaps := c.view.continuityGaps(); len(gaps) > 0 {
		t.Errorf("%d md_state changes left a unit without a CONNECTED owner, e.g. %v", len(gaps), gaps[:min(3, len(gaps))])
	}
	c.finish()
}

// TestClusterCutOff: 3 replicas with R=1; r3 reaches NATS through a proxy
// that is cut until r3's membership entry has expired from the bucket
// (longer than the TTL), r1 and r2 have taken over r3's units, and a
// fourth replica has joined. Meanwhile r3 is frozen: it starts nothing
// (its counters and its running units stay as they were) and keeps its
// streams CONNECTED to the venue. Healed, it converges to the current
// assignment over 4 replicas: it releases the units r4 now owns, md_state
// shows every unit on exactly its one owner, and the stream holds every
// Binance trade exactly once with every book equal to the simulator's.
func TestClusterCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster integration test")
	}
	const nsym = 9 // few and slow markets: as cheap under -race
	// A membership TTL of 4 s (the default is 6 s) keeps the cut short.
	c := newClusterRig(t, 17, nsym, cluster.Config{Redundancy: 1, Heartbeat: time.Second, Expiry: 4 * time.Second, Tick: 200 * time.Millisecond, HandoverTimeout: time.Minute})
	three := []string{"r1", "r2", "r3"}
	four := []string{"r1", "r2", "r3", "r4"}
	mine := c.owned(three, "r3")
	var toR4 int
	for _, u := range mine {
		if slices.Contains(c.assign(four)[u], "r4") {
			toR4++
		}
	}
	if len(mine) == 0 || toR4 == 0 {
		t.Fatalf("r3 owns %d units of which %d go to r4 when it joins: choose other symbols", len(mine), toR4)
	}

	proxy := nettest.NewCutProxy(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(c.env.ns.Port())))
	nc3, err := publisher.Connect(context.Background(), publisher.ConnConfig{URLs: []string{proxy.NATSURL()}, ReconnectWait: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc3.Close)
	nodes := map[string]*Node{}
	for _, name := range three {
		var nc *nats.Conn
		if name == "r3" {
			nc = nc3
		}
		nodes[name] = c.start(name, nc)
	}
	r3 := nodes["r3"]
	c.observe()
	c.steady("3 replicas", three)
	c.booksValid("3 replicas")
	waitUntil(t, time.Minute, 100*time.Millisecond, "r3 carries its units", func() error {
		if got := r3.Cluster().Running(); !slices.Equal(got, mine) {
			return fmt.Errorf("r3 runs %v, owns %v", got, mine)
		}
		return nil
	})
	before := r3.Cluster().Stats()

	proxy.SetCut(true)
	waitUntil(t, time.Minute, 100*time.Millisecond, "r3 frozen", func() error {
		if !r3.Cluster().Stats().Frozen {
			return fmt.Errorf("%+v", r3.Cluster().Stats())
		}
		return nil
	})
	// The cut outlasts the TTL: r3's entry is gone from the bucket.
	js, err := jetstream.New(c.env.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	mkv, err := js.KeyValue(context.Background(), cluster.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, 200*time.Millisecond, "r3's membership entry expired", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ms, err := cluster.ReadMembers(ctx, mkv)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Instance == "r3" {
				return fmt.Errorf("r3 listed, %s old", m.Age)
			}
		}
		return nil
	})
	c.steady("r3 cut off", []string{"r1", "r2"})
	nodes["r4"] = c.start("r4", nil)
	c.steady("r3 cut off, r4 joined", []string{"r1", "r2", "r4"})
	c.booksValid("r3 cut off, r4 joined")

	// r3, frozen, took nothing new and its streams still follow the venue.
	st := r3.Cluster().Stats()
	if !st.Frozen || st.Gained != before.Gained || st.Handovers != before.Handovers || st.Timeouts != before.Timeouts {
		t.Errorf("r3 during the cut: %+v, before it: %+v (want frozen, nothing gained or released)", st, before)
	}
	if got := r3.Cluster().Running(); !slices.Equal(got, mine) {
		t.Errorf("r3 runs %v during the cut, ran %v before", got, mine)
	}
	waitUntil(t, time.Minute, 100*time.Millisecond, "r3's streams CONNECTED to the venue during the cut", func() error {
		seen := map[string]bool{}
		for _, s := range r3.Streams() {
			for _, ss := range s.States() {
				if ss.State != "CONNECTED" {
					return fmt.Errorf("%s %s", ss.Symbol, ss.State)
				}
				seen[ss.Symbol] = true
			}
		}
		for _, u := range mine {
			if !seen[u.Symbol] {
				return fmt.Errorf("%s not carried", u.Symbol)
			}
		}
		return nil
	})

	proxy.SetCut(false)
	waitUntil(t, time.Minute, 100*time.Millisecond, "r3 thawed", func() error {
		if r3.Cluster().Stats().Frozen {
			return fmt.Errorf("%+v", r3.Cluster().Stats())
		}
		return nil
	})
	c.steady("r3 back", four)
	want := c.owned(four, "r3")
	waitUntil(t, time.Minute, 100*time.Millisecond, "r3 runs its current share", func() error {
		st := r3.Cluster().Stats()
		if got := r3.Cluster().Running(); !slices.Equal(got, want) || st.Releasing != 0 || st.Members != 4 {
			return fmt.Errorf("r3 runs %v, owns %v; %+v", got, want, st)
		}
		return nil
	})
	c.booksValid("r3 back")
	// Its share over 4 replicas is part of what it ran: it had nothing to
	// start, only units to release.
	if st := r3.Cluster().Stats(); st.Gained != before.Gained || st.Handovers != before.Handovers+uint64(len(mine)-len(want)) {
		t.Errorf("r3 after the cut: %+v, before it: %+v (want nothing gained, %d released)", st, before, len(mine)-len(want))
	}
	for name, n := range nodes {
		t.Logf("%s: %+v", name, n.Cluster().Stats())
	}
	t.Logf("r3 released %d of its %d units to r4", len(mine)-len(want), len(mine))
	c.finish()
}
