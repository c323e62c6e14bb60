package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
)

// TestUniverse: binance:trade:*USDT and bybit-linear:trade:* follow the
// simulator's instrument lists (Bybit read in pages of 2): the trading
// symbols that match run, a symbol listed at run time starts (its trades
// in the stream), a delisted one is released (its md_state entry goes),
// within refreshes, checked from the stream and md_state; a refresh that
// would leave a pattern empty keeps the running set; a pattern matching
// nothing at start is an ErrEmptyUniverse error.
func TestUniverse(t *testing.T) {
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
	for _, s := range []string{"AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDBTC"} {
		markets = append(markets, exsim.MarketConfig{Venue: exsim.Binance, Symbol: s, TradeRate: 20})
	}
	for _, s := range []string{"L1USDT", "L2USDT", "L3USDT", "L4USDT", "L5USDT"} {
		markets = append(markets, exsim.MarketConfig{Venue: exsim.BybitLinear, Symbol: s, TradeRate: 20})
	}
	sim, err := exsim.New(exsim.Config{Seed: 9, Markets: markets, BinanceWeightLimit: 1_000_000, BybitRequestLimit: 1_000_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	// CCCUSDT is not listed yet; L5USDT is halted.
	if err := sim.SetListed(exsim.Binance, "CCCUSDT", false); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetListed(exsim.BybitLinear, "L5USDT", false); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{ns: ns, sim: sim}
	cfg := Config{
		Instance:  "u",
		Publisher: publisher.Config{Storage: jetstream.MemoryStorage, StateRefresh: time.Second},
		Subscriptions: []Subscription{
			{Exchange: "binance", Channels: bridge.ChannelTrade, Symbols: []string{"*USDT"}},
			{Exchange: "bybit-linear", Channels: bridge.ChannelTrade, Symbols: []string{"*"}},
		},
		Venues: Venues{
			BinanceWSURL: sim.BinanceWSURL(), BinanceRESTURL: sim.BinanceRESTURL(), BinanceWeightPerMinute: 1_000_000,
			BybitWSURL: sim.BybitWSURL(), BybitRESTURL: sim.BybitRESTURL(), BybitRequestsPerMinute: 1_000_000,
		},
		UniverseRefresh: 200 * time.Millisecond,
		Tune:            func(sc *bridge.StreamConfig) { sc.StateInterval = time.Second },
	}
	n, err := New(cfg, testLogger("u"))
	if err != nil {
		t.Fatal(err)
	}
	n.uni.pageLimit = 2
	if err := n.Start(context.Background(), env.connect(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	js, err := jetstream.New(env.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	watch := watchStream(t, js)
	states, err := js.KeyValue(context.Background(), publisher.DefaultKVBucket)
	if err != nil {
		t.Fatal(err)
	}
	view := watchStates(t, states)
	// running waits until md_state shows want CONNECTED (on this
	// replica) with their trades in the stream, and none of gone.
	running := func(step string, want, gone []string) {
		t.Helper()
		waitUntil(t, 2*time.Minute, 50*time.Millisecond, step, func() error {
			for _, s := range want {
				if st := view.state(s, "u"); st != "CONNECTED" {
					return fmt.Errorf("%s: md_state %q", s, st)
				}
				if watch.eventCount(s) == 0 {
					return fmt.Errorf("%s: nothing in the stream", s)
				}
			}
			for _, s := range gone {
				if st := view.state(s, "u"); st != "" || n.Streams().Serves(exchangeOf(s), s) {
					return fmt.Errorf("%s still carried (md_state %q)", s, st)
				}
			}
			return nil
		})
		t.Logf("%s: %v running, %v not", step, want, gone)
	}
	running("start", []string{"AAAUSDT", "BBBUSDT", "L1USDT", "L2USDT", "L3USDT", "L4USDT"}, []string{"CCCUSDT", "DDDBTC", "L5USDT"})

	// Listings and delistings at run time.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sim.SetListed(exsim.Binance, "CCCUSDT", true))
	must(sim.SetListed(exsim.Binance, "AAAUSDT", false))
	must(sim.SetListed(exsim.BybitLinear, "L5USDT", true))
	must(sim.SetListed(exsim.BybitLinear, "L1USDT", false))
	running("listed and delisted", []string{"BBBUSDT", "CCCUSDT", "L2USDT", "L3USDT", "L4USDT", "L5USDT"}, []string{"AAAUSDT", "L1USDT"})
	if st := n.Universe(); st.Listed != 2 || st.Delisted != 2 || st.Symbols != 6 {
		t.Fatalf("universe stats %+v", st)
	}

	// Every *USDT symbol delisted: the refresh fails, the set stays.
	failures := n.Universe().Failures
	must(sim.SetListed(exsim.Binance, "BBBUSDT", false))
	must(sim.SetListed(exsim.Binance, "CCCUSDT", false))
	waitUntil(t, time.Minute, 20*time.Millisecond, "failed refreshes", func() error {
		if st := n.Universe(); st.Failures < failures+2 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if !n.Streams().Serves("binance", "BBBUSDT") || !n.Streams().Serves("binance", "CCCUSDT") {
		t.Fatal("an empty universe released the running set")
	}

	// A pattern that matches nothing at start.
	bad := cfg
	bad.Subscriptions = []Subscription{{Exchange: "binance", Channels: bridge.ChannelTrade, Symbols: []string{"*XYZ"}}}
	n2, err := New(bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = n2.Start(context.Background(), env.connect(t))
	var se *SubscriptionError
	if !errors.Is(err, ErrEmptyUniverse) || !errors.As(err, &se) || se.Index != 0 || se.Stage != StageUniverse {
		t.Fatalf("Start: %v", err)
	}
	t.Log(err)
}

func exchangeOf(sym string) string {
	if sym[0] == 'L' {
		return "bybit-linear"
	}
	return "binance"
}

// TestUniverseCluster: two replicas in cluster mode (R=1) with
// binance:trade:*USDT follow a listing and a delisting: every matching
// trading symbol on exactly one CONNECTED owner, the delisted one on none.
func TestUniverseCluster(t *testing.T) {
	env, js := runtimeEnv(t) // BTCUSDT, ETHUSDT, SOLUSDT
	if err := env.sim.SetListed(exsim.Binance, "SOLUSDT", false); err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	for _, name := range []string{"k1", "k2"} {
		cfg := runtimeConfig(env, name)
		cfg.Runtime = nil
		cfg.Subscriptions = []Subscription{{Exchange: "binance", Channels: bridge.ChannelTrade, Symbols: []string{"*USDT"}}}
		cfg.UniverseRefresh = 200 * time.Millisecond
		cfg.Cluster = &cluster.Config{Redundancy: 1, Heartbeat: time.Second, Expiry: 6 * time.Second, Tick: 200 * time.Millisecond, HandoverTimeout: time.Minute}
		n := env.start(t, cfg)
		t.Cleanup(n.Close)
		nodes = append(nodes, n)
	}
	states, err := js.KeyValue(context.Background(), publisher.DefaultKVBucket)
	if err != nil {
		t.Fatal(err)
	}
	view := watchStates(t, states)
	converged := func(step string, want, gone []string) {
		t.Helper()
		waitUntil(t, 3*time.Minute, 100*time.Millisecond, step, func() error {
			own, conn, _ := view.owners(5 * time.Second)
			for _, s := range want {
				u := cluster.Unit{Market: "binance", Symbol: s}
				if len(own[u]) != 1 || !conn[u] {
					return fmt.Errorf("%s: owners %v, connected %v", s, own[u], conn[u])
				}
			}
			for _, s := range gone {
				if o := own[cluster.Unit{Market: "binance", Symbol: s}]; len(o) != 0 {
					return fmt.Errorf("%s still on %v", s, o)
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
	converged("start", []string{"BTCUSDT", "ETHUSDT"}, []string{"SOLUSDT"})
	if err := env.sim.SetListed(exsim.Binance, "SOLUSDT", true); err != nil {
		t.Fatal(err)
	}
	if err := env.sim.SetListed(exsim.Binance, "BTCUSDT", false); err != nil {
		t.Fatal(err)
	}
	converged("listed SOLUSDT, delisted BTCUSDT", []string{"ETHUSDT", "SOLUSDT"}, []string{"BTCUSDT"})
}

// TestUniverseUSDMOKX: binance-usdm:trade:*USDT, okx:trade:*-USDT and
// okx-swap:trade:*-USDT-SWAP follow the simulator's instrument lists
// (/fapi/v1/exchangeInfo, /api/v5/public/instruments SPOT and SWAP): the
// live symbols that match run, a symbol listed at run time starts (its
// trades in the stream, md_state CONNECTED), a delisted one is released
// (its md_state entry goes, its stream stops), and the counters say so.
func TestUniverseUSDMOKX(t *testing.T) {
	u := startUniverseNode(t, map[exsim.Venue][]string{
		exsim.BinanceUSDM: {"FAUSDT", "FBUSDT", "FCUSDT", "FDBTC"},
		exsim.OKXSpot:     {"OA-USDT", "OB-USDT", "OC-USDT", "OD-BTC"},
		exsim.OKXSwap:     {"SA-USDT-SWAP", "SB-USDT-SWAP", "SC-USDT-SWAP"},
	}, func(sim *exsim.Server) {
		// Not listed yet: FCUSDT, OC-USDT, SC-USDT-SWAP.
		u0 := universeNode{t: t, sim: sim}
		u0.must(sim.SetListed(exsim.BinanceUSDM, "FCUSDT", false))
		u0.must(sim.SetListed(exsim.OKXSpot, "OC-USDT", false))
		u0.must(sim.SetListed(exsim.OKXSwap, "SC-USDT-SWAP", false))
	}, []Subscription{
		{Exchange: "binance-usdm", Channels: bridge.ChannelTrade, Symbols: []string{"*USDT"}},
		{Exchange: "okx", Channels: bridge.ChannelTrade, Symbols: []string{"*-USDT"}},
		{Exchange: "okx-swap", Channels: bridge.ChannelTrade, Symbols: []string{"*-USDT-SWAP"}},
	})
	sim, n, must, running := u.sim, u.n, u.must, u.running
	running("start", []string{"FAUSDT", "FBUSDT", "OA-USDT", "OB-USDT", "SA-USDT-SWAP", "SB-USDT-SWAP"},
		[]string{"FCUSDT", "FDBTC", "OC-USDT", "OD-BTC", "SC-USDT-SWAP"})
	if st := n.Universe(); st.Symbols != 0 && st.Symbols != 6 {
		t.Fatalf("universe stats at start %+v", st)
	}

	must(sim.SetListed(exsim.BinanceUSDM, "FCUSDT", true))
	must(sim.SetListed(exsim.BinanceUSDM, "FAUSDT", false))
	must(sim.SetListed(exsim.OKXSpot, "OC-USDT", true))
	must(sim.SetListed(exsim.OKXSpot, "OA-USDT", false))
	must(sim.SetListed(exsim.OKXSwap, "SC-USDT-SWAP", true))
	must(sim.SetListed(exsim.OKXSwap, "SA-USDT-SWAP", false))
	running("listed and delisted", []string{"FBUSDT", "FCUSDT", "OB-USDT", "OC-USDT", "SB-USDT-SWAP", "SC-USDT-SWAP"},
		[]string{"FAUSDT", "OA-USDT", "SA-USDT-SWAP"})
	if st := n.Universe(); st.Listed != 3 || st.Delisted != 3 || st.Symbols != 6 || st.Failures != 0 {
		t.Fatalf("universe stats %+v", st)
	}
}

// TestUniverseQuarterlies: delivery contracts in the venues' lists (exsim
// lists Binance USD-M quarterlies "QAUSDT_YYMMDD" with contractType
// CURRENT_QUARTER / NEXT_QUARTER, OKX expiry futures under instType
// FUTURES). binance-usdm:trade:*USDT resolves to the perpetuals only, "*"
// to the quarterlies as well, which run (their trades in the stream); a
// quarterly that delivers (exchangeInfo status DELIVERING) is released
// like a delisting. okx-swap:* resolves to the swaps only: OKX lists its
// futures under another instType.
func TestUniverseQuarterlies(t *testing.T) {
	// Delivery dates ahead of the wall clock the simulator runs on.
	now := time.Now().UTC()
	q1 := "QAUSDT_" + now.AddDate(0, 2, 0).Format("060102")
	q2 := "QAUSDT_" + now.AddDate(0, 5, 0).Format("060102")
	fut := "SA-USDT-" + now.AddDate(0, 2, 0).Format("060102")
	u := startUniverseNode(t, map[exsim.Venue][]string{
		exsim.BinanceUSDM: {"QAUSDT", "QBUSDT", q1, q2},
		exsim.OKXSwap:     {"SA-USDT-SWAP", fut},
	}, nil, []Subscription{
		{Exchange: "binance-usdm", Channels: bridge.ChannelTrade, Symbols: []string{"*"}},
	})
	ctx := context.Background()
	resolve := func(exchange, pattern string) []string {
		t.Helper()
		r, err := u.n.uni.resolve(ctx, []Subscription{{Exchange: exchange, Channels: bridge.ChannelTrade, Symbols: []string{pattern}}}, true)
		if err != nil {
			t.Fatalf("%s:%s: %v", exchange, pattern, err)
		}
		return slices.Sorted(slices.Values(r[0].Symbols))
	}
	if got := resolve("binance-usdm", "*USDT"); !slices.Equal(got, []string{"QAUSDT", "QBUSDT"}) {
		t.Fatalf("binance-usdm *USDT = %v, want the perpetuals", got)
	}
	if got := resolve("binance-usdm", "*"); !slices.Equal(got, []string{"QAUSDT", q1, q2, "QBUSDT"}) {
		t.Fatalf("binance-usdm * = %v, want the perpetuals and the quarterlies", got)
	}
	if got := resolve("okx-swap", "*"); !slices.Equal(got, []string{"SA-USDT-SWAP"}) {
		t.Fatalf("okx-swap * = %v, want the swap only (not the FUTURES %s)", got, fut)
	}
	u.running("start", []string{"QAUSDT", "QBUSDT", q1, q2}, nil)
	u.must(u.sim.SetListed(exsim.BinanceUSDM, q1, false)) // delivering
	u.running("the current quarter delivered", []string{"QAUSDT", "QBUSDT", q2}, []string{q1})
	if st := u.n.Universe(); st.Delisted != 1 || st.Symbols != 3 || st.Failures != 0 {
		t.Fatalf("universe stats %+v", st)
	}
}

// universeNode is a node on a simulator with the given markets, its
// universe patterns refreshed every 200 ms, with the stream and md_state
// watched.
type universeNode struct {
	t    *testing.T
	sim  *exsim.Server
	n    *Node
	exOf map[string]string // symbol → exchange
	// running waits until every symbol of want runs (CONNECTED in
	// md_state, events in the stream) and none of gone is carried.
	running func(step string, want, gone []string)
}

func (u universeNode) must(err error) {
	u.t.Helper()
	if err != nil {
		u.t.Fatal(err)
	}
}

// startUniverseNode starts the simulator with markets, calls prepare (nil:
// nothing) before the node starts on subs, and starts the node.
func startUniverseNode(t *testing.T, markets map[exsim.Venue][]string, prepare func(*exsim.Server), subs []Subscription) universeNode {
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ns.Shutdown(ctx)
	})
	u := universeNode{t: t, exOf: map[string]string{}}
	var mcs []exsim.MarketConfig
	for v, syms := range markets {
		for _, s := range syms {
			mcs = append(mcs, exsim.MarketConfig{Venue: v, Symbol: s, TradeRate: 20})
			u.exOf[s] = string(v)
		}
	}
	slices.SortFunc(mcs, func(a, b exsim.MarketConfig) int { return strings.Compare(a.Symbol, b.Symbol) })
	sim, err := exsim.New(exsim.Config{Seed: 11, Markets: mcs, USDMWeightLimit: 1_000_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u.sim = sim
	if prepare != nil {
		prepare(sim)
	}
	env := &testEnv{ns: ns, sim: sim}
	cfg := Config{
		Instance:      "u",
		Publisher:     publisher.Config{Storage: jetstream.MemoryStorage, StateRefresh: time.Second},
		Subscriptions: subs,
		Venues: Venues{
			BinanceUSDMWSURL: sim.BinanceUSDMWSURL(), BinanceUSDMRESTURL: sim.BinanceUSDMRESTURL(), BinanceUSDMWeightPerMinute: 1_000_000,
			OKXWSURL: sim.OKXWSURL(), OKXRESTURL: sim.OKXRESTURL(),
		},
		UniverseRefresh: 200 * time.Millisecond,
		Tune:            func(sc *bridge.StreamConfig) { sc.StateInterval = time.Second },
	}
	n, err := New(cfg, testLogger("u"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background(), env.connect(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	u.n = n
	js, err := jetstream.New(env.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	watch := watchStream(t, js)
	states, err := js.KeyValue(context.Background(), publisher.DefaultKVBucket)
	if err != nil {
		t.Fatal(err)
	}
	view := watchStates(t, states)
	u.running = func(step string, want, gone []string) {
		t.Helper()
		waitUntil(t, 2*time.Minute, 50*time.Millisecond, step, func() error {
			for _, s := range want {
				if st := view.state(s, "u"); st != "CONNECTED" {
					return fmt.Errorf("%s: md_state %q", s, st)
				}
				if watch.eventCount(s) == 0 {
					return fmt.Errorf("%s: nothing in the stream", s)
				}
			}
			for _, s := range gone {
				if st := view.state(s, "u"); st != "" || n.Streams().Serves(u.exOf[s], s) {
					return fmt.Errorf("%s still carried (md_state %q)", s, st)
				}
			}
			return nil
		})
		t.Logf("%s: %v running, %v not", step, want, gone)
	}
	return u
}
