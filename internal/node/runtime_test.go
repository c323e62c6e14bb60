package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
)

// testParse is a minimal spec parser for the node tests (cmd/mdbridge's
// ParseSubscriptions is the real one): "<ex>:<ch,...>:<SYM,...>;...". It
// checks the form only; the node checks exchanges and channels.
func testParse(spec string) ([]Subscription, error) {
	var out []Subscription
	for g := range strings.SplitSeq(spec, ";") {
		parts := strings.Split(strings.TrimSpace(g), ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("invalid subscription spec: group %q", g)
		}
		var ch bridge.Channel
		for c := range strings.SplitSeq(parts[1], ",") {
			one, err := bridge.ParseChannel(c)
			if err != nil {
				return nil, fmt.Errorf("invalid subscription spec: %w", err)
			}
			ch |= one
		}
		syms := strings.Split(parts[2], ",")
		for _, s := range syms {
			if err := bridge.ValidateIdent(strings.ReplaceAll(s, "*", "X")); err != nil {
				return nil, fmt.Errorf("invalid subscription spec: %w", err)
			}
		}
		out = append(out, Subscription{Exchange: parts[0], Channels: ch, Symbols: syms})
	}
	return out, nil
}

// runtimeEnv is an embedded server and a simulator with three Binance
// symbols.
func runtimeEnv(t *testing.T) (*testEnv, jetstream.JetStream) {
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
	for _, s := range []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"} {
		markets = append(markets, exsim.MarketConfig{Venue: exsim.Binance, Symbol: s, TradeRate: 20, BookRate: 10})
	}
	sim, err := exsim.New(exsim.Config{Seed: 5, Markets: markets, BookLevels: 20, BinanceWeightLimit: 1_000_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	env := &testEnv{ns: ns, sim: sim}
	js, err := jetstream.New(env.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return env, js
}

func runtimeConfig(env *testEnv, instance string) Config {
	return Config{
		Instance:  instance,
		Publisher: publisher.Config{Storage: jetstream.MemoryStorage, StateRefresh: time.Second},
		Subscriptions: []Subscription{
			{Exchange: "binance", Channels: bridge.ChannelTrade, Symbols: []string{"BTCUSDT"}},
		},
		Venues: Venues{
			BinanceWSURL: env.sim.BinanceWSURL(), BinanceRESTURL: env.sim.BinanceRESTURL(),
			BinanceBookDepth: 100, BinanceWeightPerMinute: 1_000_000,
		},
		Runtime: &Runtime{Parse: testParse},
		Tune:    func(sc *bridge.StreamConfig) { sc.StateInterval = time.Second },
	}
}

func (w *streamWatch) tradeCount(sym string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.trades[sym])
}

func (w *streamWatch) eventCount(sym string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events[sym]
}

func (w *streamWatch) hasBook(sym string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.books[sym] != nil && w.books[sym].Valid()
}

// connected reports whether md_state has sym CONNECTED on instance.
func (v *stateView) state(sym, instance string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range v.entries {
		if st.Symbol == sym && st.Instance == instance {
			return st.State
		}
	}
	return ""
}

// readStatus reads an instance's SubscribeStatus.
func readStatus(t *testing.T, kv jetstream.KeyValue, instance string) (SubscribeStatus, error) {
	t.Helper()
	var st SubscribeStatus
	e, err := kv.Get(context.Background(), StatusKey(instance))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(e.Value(), &st)
}

// TestRuntimeSubscriptions: a running replica (no cluster) follows the
// spec key: an added symbol's trades appear in the stream and md_state; a
// channel added to a symbol brings its book; a removed symbol stops and
// its md_state entry goes; an invalid spec is rejected, reported in the
// status key and the running set stays; deleting the key returns to the
// start set.
func TestRuntimeSubscriptions(t *testing.T) {
	env, js := runtimeEnv(t)
	ctx := context.Background()
	cfg := runtimeConfig(env, "solo")
	n, err := New(cfg, testLogger("solo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background(), env.connect(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	watch := watchStream(t, js)
	states, err := js.KeyValue(ctx, publisher.DefaultKVBucket)
	if err != nil {
		t.Fatal(err)
	}
	view := watchStates(t, states)
	cfgKV, err := js.KeyValue(ctx, DefaultConfigBucket)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func() error) {
		t.Helper()
		waitUntil(t, 2*time.Minute, 50*time.Millisecond, what, cond)
	}
	trades := func(sym string, min int) func() error {
		return func() error {
			if c := watch.tradeCount(sym); c < min {
				return fmt.Errorf("%s: %d trades in the stream", sym, c)
			}
			return nil
		}
	}
	wait("start set running", trades("BTCUSDT", 1))
	if st, err := readStatus(t, cfgKV, "solo"); err != nil || st.Source != SourceStart || st.Spec != "binance:trade:BTCUSDT" {
		t.Fatalf("status %+v, %v", st, err)
	}

	// Add ETHUSDT.
	rev, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:BTCUSDT,ETHUSDT"))
	if err != nil {
		t.Fatal(err)
	}
	wait("ETHUSDT added", func() error {
		if err := trades("ETHUSDT", 5)(); err != nil {
			return err
		}
		if s := view.state("ETHUSDT", "solo"); s != "CONNECTED" {
			return fmt.Errorf("ETHUSDT md_state %q", s)
		}
		return nil
	})
	wait("status after add", func() error {
		st, err := readStatus(t, cfgKV, "solo")
		if err == nil && (st.Source != SourceKV || st.Revision != rev || st.Units != 2 || st.Changes != 1) {
			err = fmt.Errorf("%+v", st)
		}
		return err
	})

	// Add the book channel to ETHUSDT (a channel change restarts the unit).
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:BTCUSDT;binance:trade,book:ETHUSDT")); err != nil {
		t.Fatal(err)
	}
	wait("ETHUSDT book", func() error {
		if !watch.hasBook("ETHUSDT") {
			return fmt.Errorf("no valid ETHUSDT book in the stream")
		}
		return nil
	})

	// Remove BTCUSDT.
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade,book:ETHUSDT")); err != nil {
		t.Fatal(err)
	}
	wait("BTCUSDT removed", func() error {
		if s := view.state("BTCUSDT", "solo"); s != "" {
			return fmt.Errorf("BTCUSDT md_state still %q", s)
		}
		if n.Streams().Serves("binance", "BTCUSDT") {
			return fmt.Errorf("a stream still carries BTCUSDT")
		}
		return nil
	})
	// No BTCUSDT trade after the removal: ETHUSDT trades published later
	// arrive, BTCUSDT's count stays.
	eth := watch.tradeCount("ETHUSDT")
	wait("ETHUSDT flowing after the removal", trades("ETHUSDT", eth+20))
	btc := watch.tradeCount("BTCUSDT")
	eth = watch.tradeCount("ETHUSDT")
	wait("ETHUSDT flowing", trades("ETHUSDT", eth+20))
	if c := watch.tradeCount("BTCUSDT"); c != btc {
		t.Fatalf("BTCUSDT trades went on after its removal: %d, then %d", btc, c)
	}

	// Invalid specs: rejected, reported, the running set stays.
	for _, bad := range []string{"binance:trade:BTC.USDT", "kraken:trade:XBTUSD", "binance:liquidation:ETHUSDT"} {
		rev, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		var st SubscribeStatus
		wait("rejection of "+bad, func() (err error) {
			st, err = readStatus(t, cfgKV, "solo")
			if err == nil && st.RejectedRevision != rev {
				err = fmt.Errorf("%+v", st)
			}
			return err
		})
		t.Logf("%s: rejected: %s", bad, st.Rejected)
		if st.Spec != "binance:trade,book:ETHUSDT" || st.Source != SourceKV || st.Rejected == "" {
			t.Fatalf("status after %s: %+v", bad, st)
		}
		if got := render(n.Subscriptions()); got != "binance:trade,book:ETHUSDT" {
			t.Fatalf("running set after %s: %s", bad, got)
		}
	}
	if st, _ := n.SubscribeStatus(); st.RejectedTotal != 3 {
		t.Fatalf("rejected total %d", st.RejectedTotal)
	}
	eth = watch.tradeCount("ETHUSDT")
	wait("ETHUSDT still flowing", trades("ETHUSDT", eth+10))

	// A universe pattern: every trading *USDT symbol of the simulator.
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:*USDT")); err != nil {
		t.Fatal(err)
	}
	wait("universe *USDT", func() error {
		for _, s := range []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"} {
			if st := view.state(s, "solo"); st != "CONNECTED" {
				return fmt.Errorf("%s md_state %q", s, st)
			}
		}
		if st, _ := n.SubscribeStatus(); st.Spec != "binance:trade:*USDT" || st.Units != 3 || st.Symbols != 3 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	// A pattern that matches nothing is rejected like an invalid spec.
	rev, err = cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:*XYZ"))
	if err != nil {
		t.Fatal(err)
	}
	wait("rejection of an empty universe", func() error {
		st, err := readStatus(t, cfgKV, "solo")
		if err == nil && (st.RejectedRevision != rev || !strings.Contains(st.Rejected, "empty universe")) {
			err = fmt.Errorf("%+v", st)
		}
		return err
	})

	// Deleting the key returns to the start set.
	if err := cfgKV.Delete(ctx, DefaultSubscribeKey); err != nil {
		t.Fatal(err)
	}
	wait("back to the start set", func() error {
		for _, sym := range []string{"ETHUSDT", "SOLUSDT"} {
			if s := view.state(sym, "solo"); s != "" {
				return fmt.Errorf("%s md_state still %q", sym, s)
			}
		}
		if s := view.state("BTCUSDT", "solo"); s != "CONNECTED" {
			return fmt.Errorf("BTCUSDT md_state %q", s)
		}
		return nil
	})
	if st, _ := n.SubscribeStatus(); st.Source != SourceStart || st.Rejected != "" {
		t.Fatalf("status %+v", st)
	}

	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if _, err := readStatus(t, cfgKV, "solo"); err == nil {
		t.Fatal("the status key survived a graceful shutdown")
	}
}

// TestRuntimeSubscriptionsAtStart: a key present at start wins over the
// start set; an invalid one is reported and the start set runs.
func TestRuntimeSubscriptionsAtStart(t *testing.T) {
	env, js := runtimeEnv(t)
	ctx := context.Background()
	cfgKV, err := EnsureConfigBucket(ctx, js, "", jetstream.MemoryStorage, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:SOLUSDT")); err != nil {
		t.Fatal(err)
	}
	n := env.start(t, runtimeConfig(env, "a"))
	t.Cleanup(n.Close)
	if got := render(n.Subscriptions()); got != "binance:trade:SOLUSDT" {
		t.Fatalf("running %s, want the key's spec", got)
	}
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:nope:SOLUSDT")); err != nil {
		t.Fatal(err)
	}
	n2 := env.start(t, runtimeConfig(env, "b"))
	t.Cleanup(n2.Close)
	st, _ := n2.SubscribeStatus()
	if got := render(n2.Subscriptions()); got != "binance:trade:BTCUSDT" || st.Source != SourceStart || !strings.Contains(st.Rejected, "nope") {
		t.Fatalf("running %s, status %+v", got, st)
	}
	// The first replica keeps its set too.
	waitUntil(t, time.Minute, 20*time.Millisecond, "a rejects", func() error {
		if st, _ := n.SubscribeStatus(); st.RejectedTotal != 1 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if got := render(n.Subscriptions()); got != "binance:trade:SOLUSDT" {
		t.Fatalf("running %s", got)
	}
}

// TestRuntimeSubscriptionsCluster: two replicas in cluster mode (R=1)
// converge on a changed spec: every unit of the new set on exactly one
// CONNECTED owner with its trades in the stream, a removed unit without
// any md_state entry.
func TestRuntimeSubscriptionsCluster(t *testing.T) {
	env, js := runtimeEnv(t)
	ctx := context.Background()
	var nodes []*Node
	for _, name := range []string{"c1", "c2"} {
		cfg := runtimeConfig(env, name)
		cfg.Cluster = &cluster.Config{Redundancy: 1, Heartbeat: time.Second, Expiry: 6 * time.Second, Tick: 200 * time.Millisecond, HandoverTimeout: time.Minute}
		n := env.start(t, cfg)
		t.Cleanup(n.Close)
		nodes = append(nodes, n)
	}
	watch := watchStream(t, js)
	states, err := js.KeyValue(ctx, publisher.DefaultKVBucket)
	if err != nil {
		t.Fatal(err)
	}
	view := watchStates(t, states)
	cfgKV, err := js.KeyValue(ctx, DefaultConfigBucket)
	if err != nil {
		t.Fatal(err)
	}
	converged := func(step string, want, gone []string) {
		t.Helper()
		waitUntil(t, 3*time.Minute, 100*time.Millisecond, step, func() error {
			own, conn, _ := view.owners(5 * time.Second)
			for _, s := range want {
				u := cluster.Unit{Market: "binance", Symbol: s}
				if len(own[u]) != 1 || !conn[u] {
					return fmt.Errorf("%s: owners %v, connected %v", s, own[u], conn[u])
				}
				if watch.tradeCount(s) == 0 {
					return fmt.Errorf("%s: no trades", s)
				}
			}
			for _, s := range gone {
				for _, name := range []string{"c1", "c2"} {
					if st := view.state(s, name); st != "" {
						return fmt.Errorf("%s still in md_state on %s (%s)", s, name, st)
					}
				}
			}
			for _, n := range nodes {
				if st := n.Cluster().Stats(); st.Units != len(want) || st.Members != 2 {
					return fmt.Errorf("%s: %+v", n.cfg.Instance, st)
				}
			}
			return nil
		})
		t.Logf("%s: converged", step)
	}
	converged("start set", []string{"BTCUSDT"}, nil)
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:BTCUSDT,ETHUSDT,SOLUSDT")); err != nil {
		t.Fatal(err)
	}
	converged("3 symbols", []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}, nil)
	if _, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:ETHUSDT,SOLUSDT")); err != nil {
		t.Fatal(err)
	}
	converged("BTCUSDT removed", []string{"ETHUSDT", "SOLUSDT"}, []string{"BTCUSDT"})
	var retired uint64
	for _, n := range nodes {
		retired += n.Cluster().Stats().Retired
	}
	if retired != 1 {
		t.Fatalf("retired %d units, want 1", retired)
	}
}
