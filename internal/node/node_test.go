package node

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
)

// testEnv is an embedded JetStream server and the simulator with a
// Binance and a Bybit spot market.
type testEnv struct {
	ns  *publisher.Embedded
	sim *exsim.Server
}

func newTestEnv(t *testing.T) *testEnv {
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
	sim, err := exsim.New(exsim.Config{Seed: 7, Markets: []exsim.MarketConfig{
		{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 50, BookRate: 20},
		{Venue: exsim.BybitSpot, Symbol: "BTCUSDT", TradeRate: 50, BookRate: 20},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &testEnv{ns: ns, sim: sim}
}

func (e *testEnv) config() Config {
	return Config{
		Instance:  "node-test",
		Publisher: publisher.Config{Storage: jetstream.MemoryStorage},
		Subscriptions: []Subscription{
			{Exchange: "binance", Channels: bridge.ChannelTrade, Symbols: []string{"BTCUSDT"}},
			{Exchange: "binance", Channels: bridge.ChannelBook, Symbols: []string{"BTCUSDT"}},
			{Exchange: "bybit", Channels: bridge.ChannelTrade | bridge.ChannelBook, Symbols: []string{"BTCUSDT"}},
		},
		Venues: Venues{
			BinanceWSURL: e.sim.BinanceWSURL(), BinanceRESTURL: e.sim.BinanceRESTURL(),
			BybitWSURL: e.sim.BybitWSURL(), BybitRESTURL: e.sim.BybitRESTURL(),
		},
	}
}

// connect dials the embedded server.
func (e *testEnv) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := publisher.Connect(context.Background(), publisher.ConnConfig{URLs: []string{e.ns.ClientURL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (e *testEnv) start(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background(), e.connect(t)); err != nil {
		t.Fatal(err)
	}
	return n
}

// stored returns the number of messages in the data stream and the
// md_state entries.
func (e *testEnv) stored(t *testing.T) (msgs uint64, states map[string]string) {
	t.Helper()
	ctx := context.Background()
	var (
		stream jetstream.Stream
		kv     jetstream.KeyValue
		keys   []string
	)
	js, err := jetstream.New(e.connect(t))
	if err == nil {
		stream, err = js.Stream(ctx, publisher.DefaultStream)
	}
	if err == nil {
		kv, err = js.KeyValue(ctx, publisher.DefaultKVBucket)
	}
	if err == nil {
		keys, err = kv.Keys(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	states = map[string]string{}
	for _, k := range keys {
		if en, err := kv.Get(ctx, k); err == nil {
			states[k] = string(en.Value())
		}
	}
	info := stream.CachedInfo()
	return info.State.Msgs, states
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodePublishesAndShutsDown runs a node against the simulator: the
// hooks see the events and states, every stream connects, and the
// graceful shutdown leaves every published event acknowledged, the final
// states DISCONNECTED and the connection closed.
func TestNodePublishesAndShutsDown(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	var hooked, putStates atomic.Int64
	var tuned int
	cfg.Tune = func(sc *bridge.StreamConfig) { tuned++; sc.StateInterval = 100 * time.Millisecond }
	cfg.Hooks.Publisher = func(p bridge.Publisher) bridge.Publisher {
		return bridge.HandlerFunc(func(ctx context.Context, evs []bridge.Event) error {
			hooked.Add(int64(len(evs)))
			return p.Publish(ctx, evs)
		})
	}
	cfg.Hooks.StateSink = func(s bridge.StateSink) bridge.StateSink {
		return stateFunc(func(st bridge.SymbolState) { putStates.Add(1); s.PutState(st) })
	}
	cfg.OnStreamError = func(err error) { t.Errorf("stream error: %v", err) }
	n := env.start(t, cfg)
	defer n.Close()
	if tuned != 3 || len(n.Streams()) != 3 {
		t.Fatalf("tuned %d streams, built %d; want 3", tuned, len(n.Streams()))
	}
	waitFor(t, "every stream connected and events acknowledged", func() bool {
		for _, s := range n.Streams() {
			for _, st := range s.States() {
				if st.State != "CONNECTED" {
					return false
				}
			}
		}
		return n.Publisher().Stats().Acked > 100
	})
	// Both Binance streams share one adapter (and its REST limiter).
	if n.Streams()[0].Exchange() != "binance" || n.Streams()[2].Exchange() != "bybit" {
		t.Fatalf("stream order: %s, %s", n.Streams()[0].Exchange(), n.Streams()[2].Exchange())
	}
	if n.exchanges[0] != n.exchanges[1] {
		t.Fatal("the two Binance subscriptions got different adapters")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	st := n.Publisher().Stats()
	// Acked counts duplicates too; the publisher also carries the snapshot
	// service's snapshots (at most one per fetch), which bypass the hook.
	if st.Published == 0 || st.Published != st.Acked || st.Abandoned != 0 || st.Dropped != 0 {
		t.Fatalf("publisher after shutdown: %+v; want every published event acked", st)
	}
	fetches := n.SnapshotService().Stats().Fetches
	if got := hooked.Load(); got == 0 || uint64(got)+fetches < st.Published {
		t.Fatalf("publisher hook saw %d events, snapshot service fetched %d, publisher published %d", got, fetches, st.Published)
	}
	if putStates.Load() == 0 {
		t.Fatal("state sink hook saw no state")
	}
	if !n.Conn().IsClosed() {
		t.Fatal("NATS connection not closed after Shutdown")
	}
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	n.Close() // no-op after Shutdown

	// The stream holds what the publisher, its one writer, stored (events
	// and snapshots); md_state the final DISCONNECTED states.
	msgs, states := env.stored(t)
	if msgs != st.Acked-st.Duplicates {
		t.Fatalf("stream holds %d messages, publisher acked %d (%d duplicates)", msgs, st.Acked, st.Duplicates)
	}
	if len(states) != 2 {
		t.Fatalf("md_state %v; want binance and bybit BTCUSDT", states)
	}
	for k, v := range states {
		if !strings.Contains(v, "DISCONNECTED") {
			t.Fatalf("md_state %s = %s; want DISCONNECTED", k, v)
		}
	}
}

// TestNodeClose stops a node abruptly: no final state, the connection
// closed, Shutdown afterwards does nothing.
func TestNodeClose(t *testing.T) {
	env := newTestEnv(t)
	n := env.start(t, env.config())
	waitFor(t, "events acknowledged", func() bool { return n.Publisher().Stats().Acked > 10 })
	n.Close()
	if !n.Conn().IsClosed() {
		t.Fatal("NATS connection not closed after Close")
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	if err := n.Start(context.Background(), nil); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}
}

func TestNewErrors(t *testing.T) {
	cfg := Config{Subscriptions: []Subscription{
		{Exchange: "binance", Symbols: []string{"BTCUSDT"}},
		{Exchange: "kraken", Symbols: []string{"XBTUSD"}},
	}}
	_, err := New(cfg, nil)
	var se *SubscriptionError
	if !errors.As(err, &se) || se.Index != 1 || se.Exchange != "kraken" || se.Stage != StageAdapter {
		t.Fatalf("unknown exchange: %v (%+v)", err, se)
	}
	if want := `kraken adapter: unknown exchange "kraken"`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}

	cfg.Subscriptions = cfg.Subscriptions[:1]
	cfg.Venues.BinanceWSURL = "http://not-a-websocket"
	if _, err := New(cfg, nil); !errors.As(err, &se) || se.Stage != StageAdapter || se.Index != 0 {
		t.Fatalf("bad Binance URL: %v", err)
	}

	cfg.Venues.BinanceWSURL = ""
	cfg.Publisher.Stream = "bad.name"
	if _, err := New(cfg, nil); !errors.Is(err, publisher.ErrConfig) {
		t.Fatalf("bad stream name: %v, want publisher.ErrConfig", err)
	}
}

// TestStartStreamError: a subscription the bridge refuses fails Start
// with its index, and Start releases the connection.
func TestStartStreamError(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.Subscriptions[2].Symbols = []string{"BTC.USDT"}
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := env.connect(t)
	err = n.Start(context.Background(), nc)
	var se *SubscriptionError
	if !errors.As(err, &se) || se.Index != 2 || se.Stage != StageStream || !errors.Is(err, bridge.ErrBadIdent) {
		t.Fatalf("Start: %v (%+v)", err, se)
	}
	if !nc.IsClosed() {
		t.Fatal("Start's error path left the connection open")
	}
}

type stateFunc func(bridge.SymbolState)

func (f stateFunc) PutState(st bridge.SymbolState) { f(st) }

// TestUSDMBudgetFollowsLiveLimits: the binance-usdm REST budget is the
// configured one, lowered to the simulator's live REQUEST_WEIGHT limit.
func TestUSDMBudgetFollowsLiveLimits(t *testing.T) {
	sim, err := exsim.New(exsim.Config{USDMWeightLimit: 1500, Markets: []exsim.MarketConfig{{Venue: exsim.BinanceUSDM, Symbol: "BTCUSDT"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	v := Venues{BinanceUSDMWSURL: sim.BinanceUSDMWSURL(), BinanceUSDMRESTURL: sim.BinanceUSDMRESTURL()}
	if got := usdmBudget(v, nil); got != 1500 {
		t.Fatalf("budget %d, want the live 1500", got)
	}
	v.BinanceUSDMWeightPerMinute = 1000
	if got := usdmBudget(v, nil); got != 1000 {
		t.Fatalf("budget %d, want the configured 1000 (below the live limit)", got)
	}
}
