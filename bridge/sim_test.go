package bridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/resilience"
)

// testLogger logs to stderr with MDB_TEST_LOG=1 (debugging), else discards.
func testLogger() *slog.Logger {
	if os.Getenv("MDB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startSim starts a simulator on loopback, closed at the end of the test.
func startSim(t testing.TB, cfg exsim.Config) *exsim.Server {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	s, err := exsim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = s.Close()
	})
	return s
}

// venueCase is one adapter under test.
type venueCase struct {
	name  string
	venue exsim.Venue
	make  func(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange
}

// newBinance builds the adapter for the simulator with today's Binance REST
// weight limit (6000 per minute, as the simulator enforces) instead of the
// seed's 1200, so that repairs in fault tests are not throttled for seconds.
func newBinance(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
	t.Helper()
	lim, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: 6000, Burst: 500})
	if err != nil {
		t.Fatal(err)
	}
	a, err := binance.New(binance.Config{WSURL: sim.BinanceWSURL(), RESTURL: sim.BinanceRESTURL(), HTTPClient: hc, Limiter: lim}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newBinanceUSDM(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
	t.Helper()
	a, err := binance.New(binance.Config{Market: binance.MarketUSDM, WSURL: sim.BinanceUSDMWSURL(), RESTURL: sim.BinanceUSDMRESTURL(),
		HTTPClient: hc, WeightPerMinute: 6000}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newBybit(market string) func(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
	return func(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
		t.Helper()
		a, err := bybit.New(bybit.Config{WSURL: sim.BybitWSURL(), RESTURL: sim.BybitRESTURL(), Market: market, HTTPClient: hc}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

var venueCases = []venueCase{
	{"binance", exsim.Binance, newBinance},
	{"bybit-spot", exsim.BybitSpot, newBybit(bybit.MarketSpot)},
	{"bybit-linear", exsim.BybitLinear, newBybit(bybit.MarketLinear)},
	{"binance-usdm", exsim.BinanceUSDM, newBinanceUSDM},
}

// fastResilience is the default resilience with test-sized delays.
func fastResilience() *resilience.ResilienceConfig {
	r := resilience.DefaultResilienceConfig()
	r.ReconnectDelay = 20 * time.Millisecond
	r.ReconnectDelayMax = 300 * time.Millisecond
	r.HeartbeatInterval = 3 * time.Second
	return &r
}

// testStreamConfig is a StreamConfig for tests: fast reconnects, tight
// spacing.
func testStreamConfig(ex bridge.Exchange, ch bridge.Channel, symbols ...string) bridge.StreamConfig {
	return bridge.StreamConfig{
		Exchange:       ex,
		Symbols:        symbols,
		Channels:       ch,
		Resilience:     fastResilience(),
		Instance:       "test",
		ConnectSpacing: 5 * time.Millisecond,
		OverlapTimeout: 3 * time.Second,
		StateInterval:  200 * time.Millisecond,
		ResyncTimeout:  2 * time.Second,
		QuietCheck:     300 * time.Millisecond,
	}
}

// collector is a Publisher that keeps every event, per symbol, in order.
type collector struct {
	mu      sync.Mutex
	trades  map[string][]bridge.Event
	books   map[string][]bridge.Event
	batches int
	byConc  int // concurrent calls seen for one symbol (must stay 0)
	active  map[string]bool
}

func newCollector() *collector {
	return &collector{trades: map[string][]bridge.Event{}, books: map[string][]bridge.Event{}, active: map[string]bool{}}
}

func (c *collector) Publish(_ context.Context, evs []bridge.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	for _, ev := range evs {
		k := ev.Exchange + "/" + ev.Symbol
		switch ev.Type {
		case bridge.EventTrade:
			c.trades[k] = append(c.trades[k], ev)
		default:
			c.books[k] = append(c.books[k], ev)
		}
	}
	return nil
}

func (c *collector) tradesOf(ex, sym string) []bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.trades[ex+"/"+sym])
}

func (c *collector) booksOf(ex, sym string) []bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.books[ex+"/"+sym])
}

// runStream starts s.Run on a goroutine. The returned stop shuts it down
// and checks Run's result; it also runs at the end of the test.
func runStream(t testing.TB, s *bridge.Stream) (stop func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
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

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tradeOrdinals maps delivered trades to the simulator's ordinals (Binance:
// the id; Bybit: the ordinal behind the wire id).
func tradeOrdinals(t testing.TB, sim *exsim.Server, v exsim.Venue, sym string, evs []bridge.Event) []int64 {
	t.Helper()
	out := make([]int64, len(evs))
	for i, ev := range evs {
		if v == exsim.Binance || v == exsim.BinanceUSDM {
			n, err := strconv.ParseInt(ev.ID, 10, 64)
			if err != nil || n != ev.Seq {
				t.Fatalf("trade %d: id %q / seq %d", i, ev.ID, ev.Seq)
			}
			out[i] = n
			continue
		}
		ord, ok := sim.BybitTradeOrdinal(v, sym, ev.ID)
		if !ok {
			t.Fatalf("trade %d: id %q is not one the simulator made", i, ev.ID)
		}
		out[i] = ord
	}
	return out
}

// quiesce stops a market, then waits until the stream has delivered every
// trade the simulator generated.
func quiesce(t testing.TB, sim *exsim.Server, col *collector, ex string, v exsim.Venue, sym string) exsim.Range {
	t.Helper()
	if err := sim.SetRates(v, sym, 0, 0); err != nil {
		t.Fatal(err)
	}
	gen, err := sim.Generated(v, sym, exsim.SeriesTrade)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, fmt.Sprintf("%s %s trades up to %d", ex, sym, gen.Last), func() bool {
		tr := col.tradesOf(ex, sym)
		if len(tr) == 0 {
			return false
		}
		ords := tradeOrdinals(t, sim, v, sym, tr[len(tr)-1:])
		return ords[0] >= gen.Last
	})
	return gen
}

// assertTradesExactlyOnce checks that the delivered trades are exactly the
// ordinals first..last, each once, in order.
func assertTradesExactlyOnce(t testing.TB, ords []int64, last int64) {
	t.Helper()
	if len(ords) == 0 {
		t.Fatal("no trades delivered")
	}
	first := ords[0]
	for i, o := range ords {
		if want := first + int64(i); o != want {
			// Find the first anomaly for a helpful message.
			kind := "missing"
			if o < want {
				kind = "duplicate or out of order"
			}
			t.Fatalf("trade #%d is %d, want %d (%s; first %d)", i, o, want, kind, first)
		}
	}
	if got := ords[len(ords)-1]; got != last {
		t.Fatalf("last trade %d, want %d", got, last)
	}
}

// consumerBook is what a downstream consumer builds from the book events.
type consumerBook struct {
	bids, asks map[string]string
	lastID     int64
	started    bool
}

// apply applies one event by the wire contract; it fails on a delta that
// does not continue the book.
func (b *consumerBook) apply(t testing.TB, i int, ev bridge.Event, strict bool) {
	t.Helper()
	switch ev.Type {
	case bridge.EventBookSnapshot:
		b.bids, b.asks = map[string]string{}, map[string]string{}
		for _, l := range ev.Bids {
			b.bids[l[0]] = l[1]
		}
		for _, l := range ev.Asks {
			b.asks[l[0]] = l[1]
		}
		b.lastID, b.started = ev.LastID, true
	case bridge.EventBookDelta:
		if !b.started {
			t.Fatalf("book event %d: delta before any snapshot", i)
		}
		if ev.LastID <= b.lastID {
			t.Fatalf("book event %d: delta %d-%d already applied (book at %d): duplicate", i, ev.FirstID, ev.LastID, b.lastID)
		}
		if strict && !bridge.Continues(&ev, b.lastID) {
			t.Fatalf("book event %d: delta %d-%d after %d: applied across a gap", i, ev.FirstID, ev.LastID, b.lastID)
		}
		for _, l := range ev.Bids {
			setLevel(b.bids, l)
		}
		for _, l := range ev.Asks {
			setLevel(b.asks, l)
		}
		b.lastID = ev.LastID
	}
}

func setLevel(m map[string]string, l bridge.Level) {
	if isZero(l[1]) {
		delete(m, l[0])
		return
	}
	m[l[0]] = l[1]
}

func isZero(q string) bool {
	for i := 0; i < len(q); i++ {
		if q[i] != '0' && q[i] != '.' {
			return false
		}
	}
	return true
}

// buildBook replays a symbol's book events and returns the consumer book.
func buildBook(t testing.TB, evs []bridge.Event) *consumerBook {
	t.Helper()
	var b consumerBook
	for i, ev := range evs {
		b.apply(t, i, ev, true)
	}
	return &b
}

// topLevels returns the best n levels of a book side (bids descending,
// asks ascending) as "price=qty" strings.
func topLevels(m map[string]string, n int, desc bool) []string {
	type lv struct {
		px  float64
		key string
	}
	var ls []lv
	for p := range m {
		f, _ := strconv.ParseFloat(p, 64)
		ls = append(ls, lv{f, p})
	}
	sort.Slice(ls, func(i, j int) bool {
		if desc {
			return ls[i].px > ls[j].px
		}
		return ls[i].px < ls[j].px
	})
	if n > 0 && len(ls) > n {
		ls = ls[:n]
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.key + "=" + m[l.key]
	}
	return out
}

func simLevels(ls [][2]string, n int) []string {
	if n > 0 && len(ls) > n {
		ls = ls[:n]
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l[0] + "=" + l[1]
	}
	return out
}

// bookDiff compares the consumer book with the simulator's book (the top
// depth levels per side; 0 = all) and describes the first difference ("" if
// equal).
func bookDiff(t testing.TB, sim *exsim.Server, v exsim.Venue, sym string, b *consumerBook, depth int) string {
	t.Helper()
	sb, err := sim.Book(v, sym)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name string
		got  []string
		want []string
	}{
		{"bids", topLevels(b.bids, depth, true), simLevels(sb.Bids, depth)},
		{"asks", topLevels(b.asks, depth, false), simLevels(sb.Asks, depth)},
	} {
		if !slices.Equal(side.got, side.want) {
			n := 0
			for n < len(side.got) && n < len(side.want) && side.got[n] == side.want[n] {
				n++
			}
			return fmt.Sprintf("%s differ from the simulator's book at level %d (got %d levels, want %d): got %v, want %v",
				side.name, n, len(side.got), len(side.want), side.got[n:min(n+3, len(side.got))], side.want[n:min(n+3, len(side.want))])
		}
	}
	return ""
}

// assertFinalBook waits until the stream's book events, replayed by a
// consumer, equal the simulator's (idle) book.
func assertFinalBook(t testing.TB, sim *exsim.Server, col *collector, ex string, v exsim.Venue, sym string, depth int) {
	t.Helper()
	diff := "no book events"
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		evs := col.booksOf(ex, sym)
		if len(evs) > 0 {
			if diff = bookDiff(t, sim, v, sym, buildBook(t, evs), depth); diff == "" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s: %s", ex, sym, diff)
}

// stateLog is a StateSink that keeps every reported state.
type stateLog struct {
	mu     sync.Mutex
	states []bridge.SymbolState
}

func (l *stateLog) PutState(st bridge.SymbolState) {
	l.mu.Lock()
	l.states = append(l.states, st)
	l.mu.Unlock()
}

func (l *stateLog) all() []bridge.SymbolState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

// last returns the last state reported for a symbol.
func (l *stateLog) last(sym string) (bridge.SymbolState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.states) - 1; i >= 0; i-- {
		if l.states[i].Symbol == sym {
			return l.states[i], true
		}
	}
	return bridge.SymbolState{}, false
}

// requestLog is an http.RoundTripper that records REST request times and
// answers.
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	at         time.Time // sent
	done       time.Time // answer received
	path       string
	status     int
	retryAfter string
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	at := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(r)
	lr := loggedRequest{at: at, done: time.Now(), path: r.URL.Path}
	if err == nil {
		lr.status = resp.StatusCode
		lr.retryAfter = resp.Header.Get("Retry-After")
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, lr)
	l.mu.Unlock()
	return resp, err
}

func (l *requestLog) all() []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

var _ io.Closer = (*bridge.Stream)(nil)
