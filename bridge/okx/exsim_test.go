package okx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/resilience"
)

// Conformance of the OKX adapter with the runner against the simulator:
// trades exactly once and books equal to the simulator's, for SPOT and
// SWAP, through faults.

type okxCase struct {
	market string
	venue  exsim.Venue
	syms   []string
}

var okxCases = []okxCase{
	{MarketSpot, exsim.OKXSpot, []string{"BTC-USDT", "ETH-USDT"}},
	{MarketSwap, exsim.OKXSwap, []string{"BTC-USDT-SWAP", "ETH-USDT-SWAP"}},
}

func testLogger() *slog.Logger {
	if os.Getenv("MDB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startOKXSim(t *testing.T, cfg exsim.Config, c okxCase, trades, books float64) *exsim.Server {
	t.Helper()
	for _, s := range c.syms {
		cfg.Markets = append(cfg.Markets, exsim.MarketConfig{Venue: c.venue, Symbol: s, TradeRate: trades, BookRate: books})
	}
	if cfg.Seed == 0 {
		cfg.Seed = 17
	}
	return adaptertest.StartSim(t, cfg)
}

func simOKX(t *testing.T, s *exsim.Server, market string) *Adapter {
	t.Helper()
	lim, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: 60000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Market: market, WSURL: s.OKXWSURL(), RESTURL: s.OKXRESTURL(), Limiter: lim,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// collector keeps every published event per symbol, in order.
type collector struct {
	mu     sync.Mutex
	trades map[string][]bridge.Event
	books  map[string][]bridge.Event
}

func newCollector() *collector {
	return &collector{trades: map[string][]bridge.Event{}, books: map[string][]bridge.Event{}}
}

func (c *collector) Publish(_ context.Context, evs []bridge.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == bridge.EventTrade {
			c.trades[ev.Symbol] = append(c.trades[ev.Symbol], ev)
		} else {
			c.books[ev.Symbol] = append(c.books[ev.Symbol], ev)
		}
	}
	return nil
}

func (c *collector) tradesOf(sym string) []bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.trades[sym])
}

func (c *collector) booksOf(sym string) []bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.books[sym])
}

// stateLog keeps the last state of each symbol.
type stateLog struct {
	mu   sync.Mutex
	last map[string]bridge.SymbolState
}

func (l *stateLog) PutState(st bridge.SymbolState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]bridge.SymbolState{}
	}
	l.last[st.Symbol] = st
}

func (l *stateLog) get(sym string) bridge.SymbolState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[sym]
}

func streamConfig(ex bridge.Exchange, ch bridge.Channel, symbols ...string) bridge.StreamConfig {
	r := resilience.DefaultResilienceConfig()
	r.ReconnectDelay = 20 * time.Millisecond
	r.ReconnectDelayMax = 300 * time.Millisecond
	r.HeartbeatInterval = 3 * time.Second
	return bridge.StreamConfig{
		Exchange: ex, Symbols: symbols, Channels: ch, Resilience: &r, Instance: "test",
		ConnectSpacing: 5 * time.Millisecond, OverlapTimeout: 3 * time.Second, StateInterval: 200 * time.Millisecond,
		ResyncTimeout: 2 * time.Second, QuietCheck: 300 * time.Millisecond,
	}
}

func runStream(t *testing.T, s *bridge.Stream) func() {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReconnected waits until the stream reconnected after a loss and its
// new connection is subscribed.
func waitReconnected(t *testing.T, s *bridge.Stream) {
	t.Helper()
	eventually(t, 10*time.Second, "a reconnect", func() bool {
		st := s.Stats()
		return st.Reconnects >= 1 && len(st.Connections) > 0 && st.Connections[0].State == "CONNECTED"
	})
}

func inject(t *testing.T, s *exsim.Server, f exsim.Fault) uint64 {
	t.Helper()
	id, err := s.InjectFault(f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSimTradesExactlyOnce: a trade-only stream (trades-all on /business)
// delivers every generated trade exactly once, in id order, through abrupt
// closes, duplicated frames, malformed frames and a 64008 notice followed by
// the close (a rotation).
func TestSimTradesExactlyOnce(t *testing.T) {
	for _, c := range okxCases {
		t.Run(c.market, func(t *testing.T) {
			t.Parallel()
			sim := startOKXSim(t, exsim.Config{ShutdownGrace: 2 * time.Second}, c, 60, 0)
			a := simOKX(t, sim, c.market)
			col := newCollector()
			s, err := bridge.NewStream(streamConfig(a, bridge.ChannelTrade, c.syms...), col, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			stop := runStream(t, s)
			eventually(t, 10*time.Second, "trades", func() bool {
				for _, sym := range c.syms {
					if len(col.tradesOf(sym)) < 20 {
						return false
					}
				}
				return true
			})
			for _, cn := range sim.Conns() {
				if cn.Open && !strings.HasSuffix(cn.Path, "/ws/v5/business") {
					t.Fatalf("trade-only connection on %s", cn.Path)
				}
			}
			dup := inject(t, sim, exsim.Fault{Kind: exsim.FaultDuplicate, Rate: 0.2})
			mal := inject(t, sim, exsim.Fault{Kind: exsim.FaultMalformed, Mode: exsim.MalformedTruncated, Rate: 0.02})
			time.Sleep(300 * time.Millisecond)
			inject(t, sim, exsim.Fault{Kind: exsim.FaultClose})
			waitReconnected(t, s)
			time.Sleep(300 * time.Millisecond)
			inject(t, sim, exsim.Fault{Kind: exsim.FaultShutdown})
			eventually(t, 15*time.Second, "a rotation after the 64008 notice", func() bool { return s.Stats().Rotations >= 1 })
			for _, id := range []uint64{dup, mal} {
				if err := sim.ClearFault(id); err != nil {
					t.Fatal(err)
				}
			}
			for _, sym := range c.syms {
				if err := sim.SetRates(c.venue, sym, 0, 0); err != nil {
					t.Fatal(err)
				}
				gen, err := sim.Generated(c.venue, sym, exsim.SeriesTrade)
				if err != nil {
					t.Fatal(err)
				}
				eventually(t, 15*time.Second, sym+" trades up to the last generated", func() bool {
					tr := col.tradesOf(sym)
					return len(tr) > 0 && tr[len(tr)-1].Seq >= gen.Last
				})
				tr := col.tradesOf(sym)
				first := tr[0].Seq
				for i, ev := range tr {
					if ev.Seq != first+int64(i) || ev.ID != strconv.FormatInt(ev.Seq, 10) {
						t.Fatalf("%s trade #%d is %q (seq %d), want %d", sym, i, ev.ID, ev.Seq, first+int64(i))
					}
					if ev.Exchange != a.Name() || ev.Price == "" || ev.Qty == "" || ev.Side == bridge.SideUnknown || ev.TS <= 0 {
						t.Fatalf("%s trade #%d incomplete: %+v", sym, i, ev)
					}
				}
			}
			st := s.Stats()
			t.Logf("%s: %+v", c.market, st)
			if st.Missing != 0 || st.Duplicates == 0 || st.Malformed == 0 {
				t.Fatalf("stats: missing %d (want 0), duplicates %d and malformed %d (want > 0)", st.Missing, st.Duplicates, st.Malformed)
			}
			stop()
		})
	}
}

// consumerBook replays book events by the wire contract.
type consumerBook struct {
	bids, asks map[string]string
	lastID     int64
}

func buildBook(t *testing.T, evs []bridge.Event) *consumerBook {
	t.Helper()
	var b consumerBook
	for i, ev := range evs {
		switch ev.Type {
		case bridge.EventBookSnapshot:
			b.bids, b.asks = map[string]string{}, map[string]string{}
			for _, l := range ev.Bids {
				b.bids[l[0]] = l[1]
			}
			for _, l := range ev.Asks {
				b.asks[l[0]] = l[1]
			}
		case bridge.EventBookDelta:
			if b.bids == nil {
				t.Fatalf("book event %d: delta before a snapshot", i)
			}
			if ev.PrevID != b.lastID || ev.FirstID != ev.PrevID+1 {
				t.Fatalf("book event %d: delta (prev %d, first %d, last %d) does not continue %d", i, ev.PrevID, ev.FirstID, ev.LastID, b.lastID)
			}
			for _, l := range ev.Bids {
				set(b.bids, l)
			}
			for _, l := range ev.Asks {
				set(b.asks, l)
			}
		}
		b.lastID = ev.LastID
	}
	return &b
}

func set(m map[string]string, l bridge.Level) {
	if strings.Trim(l[1], "0.") == "" {
		delete(m, l[0])
		return
	}
	m[l[0]] = l[1]
}

// bookDiff compares the consumer book with the simulator's ("" if equal).
func bookDiff(t *testing.T, sim *exsim.Server, v exsim.Venue, sym string, b *consumerBook) string {
	t.Helper()
	sb, err := sim.Book(v, sym)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name string
		got  map[string]string
		want [][2]string
	}{{"bids", b.bids, sb.Bids}, {"asks", b.asks, sb.Asks}} {
		want := side.want[:min(len(side.want), SnapshotDepth)]
		if len(side.got) != len(want) {
			return fmt.Sprintf("%s: %d levels, want %d", side.name, len(side.got), len(want))
		}
		for _, l := range want {
			if side.got[l[0]] != l[1] {
				return fmt.Sprintf("%s: level %s is %q, want %q", side.name, l[0], side.got[l[0]], l[1])
			}
		}
	}
	return ""
}

func assertBook(t *testing.T, sim *exsim.Server, col *collector, v exsim.Venue, sym string) {
	t.Helper()
	diff := "no book events"
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if evs := col.booksOf(sym); len(evs) > 0 {
			if diff = bookDiff(t, sim, v, sym, buildBook(t, evs)); diff == "" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s", sym, diff)
}

// TestSimBooksEqual: a book stream's events, replayed by a consumer, equal
// the simulator's book through seqId breaks (skipped updates), duplicated
// frames, keep-alives, a maintenance reset (seqId goes down), an abrupt
// close and a 64008 notice.
func TestSimBooksEqual(t *testing.T) {
	for _, c := range okxCases {
		t.Run(c.market, func(t *testing.T) {
			t.Parallel()
			sim := startOKXSim(t, exsim.Config{ShutdownGrace: 2 * time.Second, OKXKeepAlive: 200 * time.Millisecond}, c, 0, 30)
			a := simOKX(t, sim, c.market)
			col := newCollector()
			s, err := bridge.NewStream(streamConfig(a, bridge.ChannelBook, c.syms...), col, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			stop := runStream(t, s)
			eventually(t, 10*time.Second, "book events", func() bool {
				for _, sym := range c.syms {
					if len(col.booksOf(sym)) < 10 {
						return false
					}
				}
				return true
			})
			// Keep-alives: a quiet book for a while is neither a gap nor a change.
			for _, sym := range c.syms {
				if err := sim.SetRates(c.venue, sym, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(700 * time.Millisecond)
			if st := s.Stats(); st.Gaps != 0 {
				t.Fatalf("keep-alives counted as gaps: %+v", st)
			}
			for _, sym := range c.syms {
				if err := sim.SetRates(c.venue, sym, 0, 30); err != nil {
					t.Fatal(err)
				}
			}
			gap := inject(t, sim, exsim.Fault{Kind: exsim.FaultGap, Rate: 0.05})
			dup := inject(t, sim, exsim.Fault{Kind: exsim.FaultDuplicate, Rate: 0.2})
			eventually(t, 10*time.Second, "a seqId break", func() bool { return s.Stats().Gaps >= 2 })
			if err := sim.ClearFault(gap); err != nil {
				t.Fatal(err)
			}
			before := s.Stats().Snapshots
			if err := sim.OKXSeqReset(c.venue, c.syms[0]); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "a resync after the reset", func() bool { return s.Stats().Snapshots > before+0 })
			inject(t, sim, exsim.Fault{Kind: exsim.FaultClose})
			waitReconnected(t, s)
			inject(t, sim, exsim.Fault{Kind: exsim.FaultShutdown})
			eventually(t, 15*time.Second, "a rotation after the 64008 notice", func() bool { return s.Stats().Rotations >= 1 })
			if err := sim.ClearFault(dup); err != nil {
				t.Fatal(err)
			}
			for _, sym := range c.syms {
				if err := sim.SetRates(c.venue, sym, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			for _, sym := range c.syms {
				assertBook(t, sim, col, c.venue, sym)
			}
			st := s.Stats()
			t.Logf("%s: %+v", c.market, st)
			stop()
		})
	}
}

// TestSimBookRESTBootstrap: a feed that sends no initial snapshot: the
// book bootstraps from REST market/books and stays equal.
func TestSimBookRESTBootstrap(t *testing.T) {
	c := okxCases[0]
	sim := startOKXSim(t, exsim.Config{OKXNoSnapshot: true}, c, 0, 20)
	a := simOKX(t, sim, c.market)
	col := newCollector()
	s, err := bridge.NewStream(streamConfig(a, bridge.ChannelBook, c.syms...), col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	eventually(t, 15*time.Second, "books bootstrapped", func() bool {
		for _, sym := range c.syms {
			if len(col.booksOf(sym)) < 10 {
				return false
			}
		}
		return true
	})
	for _, sym := range c.syms {
		if err := sim.SetRates(c.venue, sym, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, sym := range c.syms {
		if evs := col.booksOf(sym); evs[0].Type != bridge.EventBookSnapshot {
			t.Fatalf("%s: first event %v", sym, evs[0].Type)
		}
		assertBook(t, sim, col, c.venue, sym)
	}
}

// TestSimUnknownInstrument: OKX refuses an instrument that does not exist;
// the refusal shows in that symbol's state, the others keep running.
func TestSimUnknownInstrument(t *testing.T) {
	c := okxCases[0]
	sim := startOKXSim(t, exsim.Config{}, c, 20, 20)
	a := simOKX(t, sim, c.market)
	col := newCollector()
	states := &stateLog{}
	cfg := streamConfig(a, bridge.ChannelTrade|bridge.ChannelBook, "BTC-USDT", "NOPE-USDT")
	cfg.StateSink = states
	s, err := bridge.NewStream(cfg, col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	eventually(t, 10*time.Second, "BTC-USDT data and the NOPE-USDT refusal in its state", func() bool {
		return len(col.tradesOf("BTC-USDT")) > 5 && len(col.booksOf("BTC-USDT")) > 5 &&
			strings.Contains(states.get("NOPE-USDT").LastError, "60018")
	})
	if st := states.get("BTC-USDT"); st.State != "CONNECTED" || st.LastError != "" {
		t.Fatalf("BTC-USDT state %+v", st)
	}
	// Aggregated trades on /public (a stream with books): ids, no Seq.
	if tr := col.tradesOf("BTC-USDT"); tr[0].Seq != 0 || tr[0].ID == "" {
		t.Fatalf("aggregated trade %+v", tr[0])
	}
}

// TestSimIdleCut: the simulator cuts an OKX connection that neither pings
// nor receives data for OKXIdleTimeout; a "ping" keeps it.
func TestSimIdleCut(t *testing.T) {
	c := okxCases[0]
	sim := startOKXSim(t, exsim.Config{OKXIdleTimeout: 300 * time.Millisecond}, c, 0, 0)
	a := simOKX(t, sim, c.market)
	topics := []bridge.Topic{{Symbol: "BTC-USDT", Channel: bridge.ChannelTrade}}
	ws := adaptertest.DialSim(t, a.URL(topics))
	if err := ws.WriteMessage(websocket.TextMessage, a.SubscribeFrames(topics, func() int64 { return 1 })[0]); err != nil {
		t.Fatal(err)
	}
	if _, fr, err := a.Decode(adaptertest.ReadFrame(t, ws), 0, nil); err != nil || fr.Kind != bridge.FrameAck {
		t.Fatalf("ack: %v %+v", err, fr)
	}
	for range 3 { // pings keep it alive past the idle timeout
		time.Sleep(150 * time.Millisecond)
		if err := ws.WriteMessage(websocket.TextMessage, a.Heartbeat().ClientPing(0)); err != nil {
			t.Fatal(err)
		}
		if _, fr, err := a.Decode(adaptertest.ReadFrame(t, ws), 0, nil); err != nil || fr.Kind != bridge.FramePong {
			t.Fatalf("pong: %v %+v", err, fr)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("connection not cut without pings")
	}
}

// TestSimREST: market/books carries the books channel's seqId, and
// history-trades pages by id.
func TestSimREST(t *testing.T) {
	for _, c := range okxCases {
		t.Run(c.market, func(t *testing.T) {
			sim := startOKXSim(t, exsim.Config{}, c, 0, 0)
			a := simOKX(t, sim, c.market)
			sym := c.syms[0]
			if err := sim.Generate(c.venue, sym, 500, 50); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			ev, err := a.Snapshot(ctx, sym)
			if err != nil {
				t.Fatal(err)
			}
			seq, _ := sim.OKXSeqID(c.venue, sym)
			if ev.LastID != seq || len(ev.Bids) == 0 || len(ev.Asks) == 0 || ev.Exchange != a.Name() {
				t.Fatalf("snapshot LastID %d (want %d), %d bids, %d asks", ev.LastID, seq, len(ev.Bids), len(ev.Asks))
			}
			gen, _ := sim.Generated(c.venue, sym, exsim.SeriesTrade)
			from := gen.Last - 150
			got, err := a.Trades(ctx, sym, from, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 100 || got[0].Seq != from || got[99].Seq != from+99 {
				t.Fatalf("%d trades from %d: first %d", len(got), from, got[0].Seq)
			}
			if _, err := a.ServerTime(ctx); err != nil {
				t.Fatal(err)
			}
			var ae *APIError
			if _, err := a.Snapshot(ctx, "NOPE-USDT"); !errors.As(err, &ae) || ae.Code != "51001" {
				t.Fatalf("unknown instrument: %v", err)
			}
			inject(t, sim, exsim.Fault{Kind: exsim.FaultREST, Status: 429, Count: 1, Duration: exsim.Duration(time.Second)})
			var rl *bridge.RateLimitError
			if _, err := a.Snapshot(ctx, sym); !errors.As(err, &rl) || rl.Status != 429 {
				t.Fatalf("429: %v", err)
			}
		})
	}
}

// TestRateLimitCode50011: 50011 with HTTP 200 is a rate limit too.
func TestRateLimitCode50011(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"code":"50011","msg":"Too Many Requests","data":[]}`))
	}))
	defer srv.Close()
	a, err := New(Config{RESTURL: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rl *bridge.RateLimitError
	if _, err := a.ServerTime(context.Background()); !errors.As(err, &rl) || rl.Status != 200 || rl.RetryAfter != defaultRetry {
		t.Fatalf("err = %v", err)
	}
}
