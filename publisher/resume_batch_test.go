package publisher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// batchFixture stores a mix of symbols on one stream: trades then books,
// trades last (one out of order), books only, another exchange, and n
// generated symbols (trades, then every third one book deltas after them).
// It returns the symbols to ask and, per symbol, its stored trade ids.
func batchFixture(t *testing.T, js jetstream.JetStream, cfg Config, n int) ([]string, map[string]map[int64]bool) {
	t.Helper()
	var evs []bridge.Event
	stored := map[string]map[int64]bool{}
	add := func(ev bridge.Event) {
		evs = append(evs, ev)
		if ev.Type == bridge.EventTrade && ev.Exchange == "binance" {
			if stored[ev.Symbol] == nil {
				stored[ev.Symbol] = map[int64]bool{}
			}
			stored[ev.Symbol][ev.Seq] = true
		}
	}
	for i := 1; i <= 50; i++ { // BTCUSDT: trades 1..50, then book deltas only
		add(trade("binance", "BTCUSDT", i))
	}
	for u := 1; u <= 30; u++ {
		add(delta("binance", "BTCUSDT", u))
	}
	for _, i := range []int{7, 9, 8} { // ETHUSDT: out of order, last one a trade
		add(trade("binance", "ETHUSDT", i))
	}
	add(trade("binance", "BNBUSDT", 1000))
	add(delta("binance", "SOLUSDT", 5)) // books only
	add(bybitTrade("BTCUSDT", 3))
	add(delta("bybit", "BTCUSDT", 4))
	add(trade("bybit", "XRPUSDT", 77)) // another exchange's subject of a symbol asked
	syms := []string{"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"}
	for k := range n {
		s := fmt.Sprintf("S%04dUSDT", k)
		syms = append(syms, s)
		for i := 1; i <= 3+k%5; i++ {
			add(trade("binance", s, 100*k+i))
		}
		if k%3 == 0 {
			add(delta("binance", s, k))
			add(delta("binance", s, k+1))
		}
	}
	for i := 0; i < len(evs); i += 20000 {
		publishAcked(t, js.Conn(), cfg, evs[i:min(i+20000, len(evs))]...)
	}
	return syms, stored
}

// TestTradeResumerBatch: LastTradeIDs over mixed subjects (trades last,
// books last, books only, no message, another exchange, many symbols)
// answers what LastTradeID answers (but for trades stored out of order),
// leaves out only the symbols it cannot tell (books only: LastTradeID
// searches a wider window), and leaves no consumer behind.
func TestTradeResumerBatch(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	cfg := Config{Storage: jetstream.MemoryStorage}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	syms, _ := batchFixture(t, js, cfg, 300)
	r := NewTradeResumer(js, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := r.LastTradeIDs(ctx, "binance", syms)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		want, ok, err := r.LastTradeID(ctx, "binance", s)
		if err != nil {
			t.Fatal(err)
		}
		got, answered := ids[s]
		switch {
		case s == "SOLUSDT":
			if answered {
				t.Errorf("%s (books only) answered %d; want it left out for LastTradeID's wider search", s, got)
			}
		case !answered:
			t.Errorf("%s left out; LastTradeID answers %d, %t", s, want, ok)
		case s == "ETHUSDT":
			// Stored out of order (7, 9, 8): the batch answers the last
			// stored trade, lower than LastTradeID's highest; the bridge
			// then re-publishes 9, which the duplicate window absorbs.
			if got != 8 || want != 9 {
				t.Errorf("%s = %d, LastTradeID %d; want 8 and 9", s, got, want)
			}
		case ok && got != want:
			t.Errorf("%s = %d, LastTradeID %d", s, got, want)
		case !ok && got != 0:
			t.Errorf("%s = %d, LastTradeID: no trade", s, got)
		}
	}
	for s, want := range map[string]int64{"BTCUSDT": 50, "ETHUSDT": 8, "BNBUSDT": 1000, "XRPUSDT": 0, "S0000USDT": 3, "S0299USDT": 29907} {
		if got, ok := ids[s]; !ok || got != want {
			t.Errorf("%s = %d (answered %t), want %d", s, got, ok, want)
		}
	}
	if len(ids) != len(syms)-1 {
		t.Errorf("%d symbols answered, want %d", len(ids), len(syms)-1)
	}
	// Trades without consecutive ids (bybit) are no answer either way.
	if ids, err := r.LastTradeIDs(ctx, "bybit", []string{"BTCUSDT", "ETHUSDT"}); err != nil || len(ids) != 1 || ids["ETHUSDT"] != 0 {
		t.Errorf("bybit: %v, %v; want only ETHUSDT answered (no message)", ids, err)
	}
	if _, err := r.LastTradeIDs(ctx, "binance", []string{"BTC.*"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad symbol: %v, want ErrConfig", err)
	}
	st, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on the stream", info.State.Consumers)
	}
}

// TestTradeResumerBatchCutShort: under deadlines too short to finish,
// every answer is still true: a stored trade id of the symbol, or 0 only
// for a symbol without any message; a call that left out symbols it could
// tell says so with an error.
func TestTradeResumerBatchCutShort(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	cfg := Config{Storage: jetstream.MemoryStorage}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	syms, stored := batchFixture(t, js, cfg, 2000)
	r := NewTradeResumer(js, cfg)
	cutShort := 0
	for _, d := range []time.Duration{time.Microsecond, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 100 * time.Millisecond, time.Minute} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		ids, err := r.LastTradeIDs(ctx, "binance", syms)
		cancel()
		if err != nil {
			cutShort++
			if !errors.Is(err, ErrNoStream) {
				t.Errorf("timeout %s: error %v, want ErrNoStream", d, err)
			}
		}
		for s, id := range ids {
			switch {
			case id == 0 && (s != "XRPUSDT"):
				t.Errorf("timeout %s: %s answered \"no trade\" but has messages", d, s)
			case id != 0 && !stored[s][id]:
				t.Errorf("timeout %s: %s answered %d, not a stored trade id", d, s, id)
			}
		}
		if err == nil && len(ids) != len(syms)-1 {
			t.Errorf("timeout %s: %d of %d answered without an error", d, len(ids), len(syms))
		}
	}
	if cutShort == 0 {
		t.Log("no call was cut short on this machine")
	}
}

// TestTradeResumerScale (MDB_RESUME_SCALE=1) times LastTradeIDs against
// LastTradeID per symbol with the bridge's 4 workers and its 10 s bound,
// for 1000 and 3000 symbols whose last message is a book update.
func TestTradeResumerScale(t *testing.T) {
	if os.Getenv("MDB_RESUME_SCALE") == "" {
		t.Skip("set MDB_RESUME_SCALE=1 to time the trade resume of 1000 and 3000 symbols")
	}
	for _, n := range []int{1000, 3000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			srv := startServer(t, nil)
			nc := connect(t, srv.ClientURL())
			cfg := Config{Storage: jetstream.FileStorage}
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			var evs []bridge.Event
			var syms []string
			for k := range n {
				s := fmt.Sprintf("S%04dUSDT", k)
				syms = append(syms, s)
				for i := 1; i <= 5; i++ {
					evs = append(evs, trade("binance", s, i))
				}
				for u := 1; u <= 25; u++ { // the last message is a book update
					evs = append(evs, delta("binance", s, u))
				}
			}
			for i := 0; i < len(evs); i += 20000 {
				publishAcked(t, nc, cfg, evs[i:min(i+20000, len(evs))]...)
			}
			r := NewTradeResumer(js, cfg)
			for round := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), bridge.ResumeTimeout)
				start := time.Now()
				ids, err := r.LastTradeIDs(ctx, "binance", syms)
				batch := time.Since(start)
				cancel()
				if err != nil || len(ids) != n {
					t.Fatalf("batch: %d of %d answered, %v", len(ids), n, err)
				}
				ctx, cancel = context.WithTimeout(context.Background(), bridge.ResumeTimeout)
				start = time.Now()
				var answered atomic.Int64
				names := make(chan string)
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for s := range names {
							if _, ok, err := r.LastTradeID(ctx, "binance", s); err == nil && ok {
								answered.Add(1)
							}
						}
					})
				}
			feed:
				for _, s := range syms {
					select {
					case names <- s:
					case <-ctx.Done():
						break feed
					}
				}
				close(names)
				wg.Wait()
				per := time.Since(start)
				cancel()
				t.Logf("%d symbols, %d messages, round %d: batch %s (%d answered); per symbol, 4 workers, 10 s bound: %s (%d answered, %.0f symbols/s)",
					n, len(evs), round, batch.Round(time.Millisecond), len(ids), per.Round(time.Millisecond), answered.Load(), float64(answered.Load())/per.Seconds())
			}
		})
	}
}

// TestTradeResumerBatchLive: replicas keep publishing while a gaining one
// asks. The last-per-subject consumer goes on delivering the new messages
// after the last ones; the pass must end at the stream's end as of its
// start, not read the live flow until the deadline.
func TestTradeResumerBatchLive(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	cfg := Config{Storage: jetstream.MemoryStorage}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	syms, _ := batchFixture(t, js, cfg, 200)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // live book deltas on every generated symbol, 1 per ms
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for u := 0; ; u++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			m := nats.NewMsg(fmt.Sprintf("md.binance.S%04dUSDT", u%200))
			m.Header.Set(HeaderType, bridge.EventBookDelta.String())
			m.Header.Set(HeaderMsgID, fmt.Sprintf("binance:S%04dUSDT:book.delta:%d", u%200, 1_000_000+u))
			m.Data = []byte("{}")
			if err := nc.PublishMsg(m); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	r := NewTradeResumer(js, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := r.LastTradeIDs(ctx, "binance", syms)
	if err != nil {
		t.Fatalf("with live publishing: %v (%d of %d answered)", err, len(ids), len(syms))
	}
	if got := ids["S0199USDT"]; got != 19907 {
		t.Fatalf("S0199USDT = %d, want 19907", got)
	}
}
