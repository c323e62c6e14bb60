package bridge_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/resilience"
)

func offlineBinance(t testing.TB) bridge.Exchange {
	t.Helper()
	a, err := binance.New(binance.Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewStreamValidates(t *testing.T) {
	ex := offlineBinance(t)
	bad := resilience.DefaultResilienceConfig()
	bad.ReconnectDelay = -time.Second
	nop := bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil })
	tests := []struct {
		name string
		cfg  bridge.StreamConfig
		pub  bridge.Publisher
		want string
	}{
		{"no exchange", bridge.StreamConfig{Symbols: []string{"BTCUSDT"}}, nop, "Exchange is required"},
		{"no symbols", bridge.StreamConfig{Exchange: ex}, nop, "no symbols"},
		{"subject injection", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTC.USDT"}}, nop, "'.'"},
		{"wildcard", bridge.StreamConfig{Exchange: ex, Symbols: []string{"*"}}, nop, "'*'"},
		{"duplicate symbol", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT", "BTCUSDT"}}, nop, "listed twice"},
		{"bad instance", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, Instance: "a b"}, nop, "instance"},
		{"negative duration", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, OverlapTimeout: -1}, nop, "OverlapTimeout"},
		{"negative size", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, PendingLimit: -1}, nop, "PendingLimit"},
		{"bad resilience", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, Resilience: &bad}, nop, "ReconnectDelay"},
		{"bad channel", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, Channels: 8}, nop, "channel"},
		{"bad gap policy", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, BookGapPolicy: 9}, nop, "BookGapPolicy"},
		{"no publisher", bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}}, nil, "Publisher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bridge.NewStream(tt.cfg, tt.pub, nil)
			if !errors.Is(err, bridge.ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestRunOnce(t *testing.T) {
	nop := bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil })
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: offlineBinance(t), Symbols: []string{"BTCUSDT"}}, nop, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, bridge.ErrClosed) {
		t.Fatalf("Run after Shutdown: %v, want ErrClosed", err)
	}
}

// TestRunTwiceAndContextStop: a second Run is refused; cancelling Run's
// context stops the stream cleanly.
func TestRunTwiceAndContextStop(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 20, 0)}})
	col := newCollector()
	s, err := bridge.NewStream(testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, "BTCUSDT"), col, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	eventually(t, 5*time.Second, "trades", func() bool { return len(col.tradesOf("binance", "BTCUSDT")) > 0 })
	if err := s.Run(ctx); !errors.Is(err, bridge.ErrClosed) {
		t.Fatalf("second Run: %v, want ErrClosed", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestHandlerErrorStopsStream: a handler error ends Run with that error.
func TestHandlerErrorStopsStream(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 50, 0)}})
	boom := errors.New("disk full")
	var n atomic.Int64
	h := bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		if n.Add(int64(len(evs))) > 5 {
			return boom
		}
		return nil
	})
	s, err := bridge.NewStream(testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, "BTCUSDT"), h, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Run(ctx); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the handler's error", err)
	}
}

// TestAutoReconnectOff: with resilience disabled (the seed's
// resilience=False) a lost connection ends Run with ErrConnectionLost.
func TestAutoReconnectOff(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 50, 0)}})
	col := newCollector()
	cfg := testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, "BTCUSDT")
	off := resilience.DisabledResilienceConfig()
	cfg.Resilience = &off
	s, err := bridge.NewStream(cfg, col, nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	eventually(t, 5*time.Second, "trades", func() bool { return len(col.tradesOf("binance", "BTCUSDT")) > 0 })
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, bridge.ErrConnectionLost) {
			t.Fatalf("Run = %v, want ErrConnectionLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the connection was lost")
	}
}

// gateProxy forwards TCP connections to a target while open, and refuses
// them (accept and close at once) while shut.
type gateProxy struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	wg     sync.WaitGroup
}

func newGateProxy(t *testing.T, target string) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

func (p *gateProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.open.Load() {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

// TestFailedStateKeepsRetrying: after MaxReconnectAttempts failures the
// state is FAILED, retries continue at the maximum delay (FAILED ->
// CONNECTING -> FAILED ...), and once the venue is reachable the stream
// connects: a feed never stops for good.
func TestFailedStateKeepsRetrying(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 30, 0)}})
	proxy := newGateProxy(t, sim.Addr())
	ex, err := binance.New(binance.Config{WSURL: "ws://" + proxy.ln.Addr().String(), RESTURL: sim.BinanceRESTURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT")
	res := *cfg.Resilience
	res.MaxReconnectAttempts = 3
	res.ReconnectDelay = 10 * time.Millisecond
	res.ReconnectDelayMax = 150 * time.Millisecond
	cfg.Resilience = &res
	col, states := newCollector(), &stateLog{}
	cfg.StateSink = states
	s, err := bridge.NewStream(cfg, col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	failedTwice := func() bool {
		n := 0
		for _, st := range states.all() {
			if st.State == "FAILED" {
				n++
			}
		}
		return n >= 2
	}
	eventually(t, 10*time.Second, "FAILED reported twice (retries continue after FAILED)", failedTwice)
	if len(col.tradesOf("binance", "BTCUSDT")) != 0 {
		t.Fatal("trades through a closed proxy")
	}
	proxy.open.Store(true)
	eventually(t, 10*time.Second, "trades once the venue is reachable", func() bool {
		return len(col.tradesOf("binance", "BTCUSDT")) > 0
	})
	// The reported states follow the seed's diagram.
	var seq []string
	for _, st := range states.all() {
		if len(seq) == 0 || seq[len(seq)-1] != st.State {
			seq = append(seq, st.State)
		}
	}
	legal := map[string]bool{
		"CONNECTING>FAILED": true, "FAILED>CONNECTING": true, "CONNECTING>CONNECTED": true,
		"DISCONNECTED>CONNECTING": true, "CONNECTED>RECONNECTING": true, "RECONNECTING>CONNECTED": true,
		"RECONNECTING>FAILED": true, "CONNECTED>DISCONNECTED": true,
	}
	for i := 1; i < len(seq); i++ {
		if !legal[seq[i-1]+">"+seq[i]] {
			t.Fatalf("reported %s -> %s, not in the state diagram (sequence %v)", seq[i-1], seq[i], seq)
		}
	}
	if seq[0] != "CONNECTING" || seq[len(seq)-1] != "CONNECTED" {
		t.Fatalf("state sequence %v", seq)
	}
	st, _ := states.last("BTCUSDT")
	if st.Attempt != 0 || st.Connection == "" || st.Instance != "test" || st.Exchange != "binance" {
		t.Fatalf("state after recovery %+v", st)
	}
}

// TestSnapshotSource: Stream.Snapshot serves the publisher's control
// service: fresh REST snapshots, coalesced, for the stream's symbols only.
func TestSnapshotSource(t *testing.T) {
	t.Parallel()
	log := &requestLog{}
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 0, 20)}})
	ex := newBinance(t, sim, &http.Client{Transport: log})
	cfg := testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT")
	s, err := bridge.NewStream(cfg, newCollector(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	evs := make([]bridge.Event, 8)
	errs := make([]error, 8)
	for i := range evs {
		wg.Add(1)
		go func() { defer wg.Done(); evs[i], errs[i] = s.Snapshot(ctx, "binance", "BTCUSDT") }()
	}
	wg.Wait()
	for i := range evs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		ev := evs[i]
		if ev.Type != bridge.EventBookSnapshot || ev.Exchange != "binance" || ev.Symbol != "BTCUSDT" || ev.LastID <= 0 || ev.RecvTS <= 0 || len(ev.Bids) == 0 {
			t.Fatalf("snapshot %+v", ev)
		}
	}
	depth := 0
	for _, r := range log.all() {
		if r.path == "/api/v3/depth" {
			depth++
		}
	}
	if depth >= len(evs) {
		t.Fatalf("%d concurrent snapshot requests sent %d REST requests: not coalesced", len(evs), depth)
	}
	if !s.Serves("binance", "BTCUSDT") || s.Serves("binance", "ETHUSDT") || s.Serves("bybit", "BTCUSDT") {
		t.Fatal("Serves does not match the stream's exchange and symbols")
	}
	if _, err := s.Snapshot(ctx, "binance", "ETHUSDT"); !errors.Is(err, bridge.ErrUnknownSymbol) {
		t.Fatalf("unknown symbol: %v", err)
	}
	if _, err := s.Snapshot(ctx, "bybit", "BTCUSDT"); !errors.Is(err, bridge.ErrUnknownExchange) {
		t.Fatalf("unknown exchange: %v", err)
	}
}

// requesterFunc is a SnapshotRequester like the publisher's: it gets a
// snapshot from the stream, publishes it ahead of further deltas, and
// returns its last update id.
type requesterFunc func(ctx context.Context, exchange, symbol string) (int64, error)

func (f requesterFunc) RequestSnapshot(ctx context.Context, exchange, symbol string) (int64, error) {
	return f(ctx, exchange, symbol)
}

// TestSnapshotRequester routes book resyncs through a SnapshotRequester;
// the stream must not emit snapshots itself, and the book stays exact.
func TestSnapshotRequester(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 20, 200)}})
	col := newCollector()
	var s *bridge.Stream
	var requests atomic.Int64
	req := requesterFunc(func(ctx context.Context, ex, sym string) (int64, error) {
		requests.Add(1)
		ev, err := s.Snapshot(ctx, ex, sym)
		if err != nil {
			return 0, err
		}
		if err := col.Publish(ctx, []bridge.Event{ev}); err != nil {
			return 0, err
		}
		return ev.LastID, nil
	})
	var err error
	cfg := testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade|bridge.ChannelBook, "BTCUSDT")
	cfg.SnapshotRequester = req
	s, err = bridge.NewStream(cfg, col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	eventually(t, 5*time.Second, "book events", func() bool { return len(col.booksOf("binance", "BTCUSDT")) > 10 })
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultGap, Rate: 0.02}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	sim.ClearFaults()
	quiesce(t, sim, col, "binance", exsim.Binance, "BTCUSDT")
	assertFinalBook(t, sim, col, "binance", exsim.Binance, "BTCUSDT", 0)
	st := s.Stats()
	if st.Gaps == 0 || requests.Load() < int64(st.Gaps) {
		t.Fatalf("gaps %d, requests %d: every gap must go through the requester", st.Gaps, requests.Load())
	}
	if got := st.Snapshots; got != uint64(requests.Load()) {
		t.Fatalf("snapshots counted %d, requested %d", got, requests.Load())
	}
}

// TestSharding spreads symbols over several connections, connected in a
// staggered way, each within its topic cap.
func TestSharding(t *testing.T) {
	t.Parallel()
	var markets []exsim.MarketConfig
	var symbols []string
	for i := range 12 {
		sym := "SYM" + string(rune('A'+i)) + "USDT"
		symbols = append(symbols, sym)
		markets = append(markets, market(exsim.Binance, sym, 10, 0))
	}
	sim := startSim(t, exsim.Config{Markets: markets})
	cfg := testStreamConfig(newBinance(t, sim, nil), bridge.ChannelTrade, symbols...)
	cfg.MaxTopicsPerConn = 4
	cfg.ConnectSpacing = 100 * time.Millisecond
	col := newCollector()
	s, err := bridge.NewStream(cfg, col, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Connections() != 3 {
		t.Fatalf("%d connections planned, want 3", s.Connections())
	}
	start := time.Now()
	runStream(t, s)
	eventually(t, 10*time.Second, "trades on every symbol", func() bool {
		for _, sym := range symbols {
			if len(col.tradesOf("binance", sym)) == 0 {
				return false
			}
		}
		return true
	})
	conns := sim.Conns()
	if len(conns) != 3 {
		t.Fatalf("%d connections opened, want 3", len(conns))
	}
	// Staggered: the gate lets the k-th attempt start no earlier than
	// k*spacing after the first, and the simulator records a connection only
	// after its attempt started, so the k-th connection it saw opened at
	// least k*spacing after Run began. Load can only delay connections, so
	// this holds on any machine (the gate's exact spacing is checked in fake
	// time by TestConnectGateStaggers); comparing two opened times with each
	// other would not, as the earlier one may be the more delayed.
	slices.SortFunc(conns, func(a, b exsim.ConnInfo) int { return a.Opened.Compare(b.Opened) })
	for i, c := range conns {
		if len(c.Subscriptions) > 4 {
			t.Fatalf("connection %d carries %d streams, cap 4", i, len(c.Subscriptions))
		}
		if d, min := c.Opened.Sub(start), time.Duration(i)*cfg.ConnectSpacing; d < min {
			t.Fatalf("connection %d opened %s after start, want at least %s: not staggered", i, d, min)
		}
	}
	for _, cs := range s.Stats().Connections {
		if cs.State != "CONNECTED" || cs.Topics != 4 {
			t.Fatalf("connection %+v", cs)
		}
	}
}
