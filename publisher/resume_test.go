package publisher

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// delta builds a book delta of a symbol with update id u.
func delta(exchange, symbol string, u int) bridge.Event {
	return bridge.Event{Type: bridge.EventBookDelta, Exchange: exchange, Symbol: symbol, FirstID: int64(u), LastID: int64(u),
		TS: 1_700_000_000_000_000_000, RecvTS: 1_700_000_000_000_000_001, Bids: []bridge.Level{{"100", strconv.Itoa(u)}}}
}

// bybitTrade is a trade without a consecutive id.
func bybitTrade(symbol string, i int) bridge.Event {
	ev := trade("bybit", symbol, i)
	ev.ID, ev.Seq = "b7c3e0f2-"+strconv.Itoa(i), 0
	return ev
}

// publishAcked publishes evs and waits until all are acknowledged.
func publishAcked(t *testing.T, nc *nats.Conn, cfg Config, evs ...bridge.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPublisher(t, nc, cfg)
	if err := p.Publish(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTradeResumer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	cfg := Config{Storage: jetstream.MemoryStorage}
	var evs []bridge.Event
	for i := 1; i <= 50; i++ { // BTCUSDT: trades 1..50, then book deltas only
		evs = append(evs, trade("binance", "BTCUSDT", i))
	}
	for u := 1; u <= 30; u++ {
		evs = append(evs, delta("binance", "BTCUSDT", u))
	}
	for _, i := range []int{7, 9, 8} { // ETHUSDT: out of order, last one a trade
		evs = append(evs, trade("binance", "ETHUSDT", i))
	}
	evs = append(evs, trade("binance", "BNBUSDT", 1000)) // another symbol's higher ids do not leak
	evs = append(evs, delta("binance", "SOLUSDT", 5))    // books only
	evs = append(evs, bybitTrade("BTCUSDT", 3), delta("bybit", "BTCUSDT", 4))
	publishAcked(t, nc, cfg, evs...)

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := NewTradeResumer(js, cfg)
	tests := []struct {
		exchange, symbol string
		id               int64
		ok               bool
		err              error
	}{
		{"binance", "BTCUSDT", 50, true, nil},
		{"binance", "ETHUSDT", 9, true, nil},
		{"binance", "BNBUSDT", 1000, true, nil},
		{"binance", "SOLUSDT", 0, false, nil},
		{"binance", "XRPUSDT", 0, false, nil}, // no message at all
		{"bybit", "BTCUSDT", 0, false, nil},   // ids not consecutive
		{"binance", "BTC.*", 0, false, ErrConfig},
		{"bin>", "BTCUSDT", 0, false, ErrConfig},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range tests {
		t.Run(tt.exchange+"/"+tt.symbol, func(t *testing.T) {
			id, ok, err := r.LastTradeID(ctx, tt.exchange, tt.symbol)
			if id != tt.id || ok != tt.ok || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("LastTradeID = %d, %t, %v; want %d, %t, %v", id, ok, err, tt.id, tt.ok, tt.err)
			}
		})
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

// TestTradeResumerWindow: trades older than the window before the last
// message are found by the one wider search, and not beyond it.
func TestTradeResumerWindow(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	cfg := Config{Storage: jetstream.MemoryStorage}
	publishAcked(t, nc, cfg, trade("binance", "BTCUSDT", 41), trade("binance", "BTCUSDT", 42))
	time.Sleep(400 * time.Millisecond) // stored times must differ by more than the narrow window
	publishAcked(t, nc, cfg, delta("binance", "BTCUSDT", 1), delta("binance", "BTCUSDT", 2))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		window, wide time.Duration
		id           int64
		ok           bool
	}{
		{"found in the wide window", 100 * time.Millisecond, time.Minute, 42, true},
		{"older than both windows", 100 * time.Millisecond, 200 * time.Millisecond, 0, false},
		{"found in the narrow window", time.Minute, time.Minute, 42, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewTradeResumer(js, cfg)
			r.window, r.wide = tt.window, tt.wide
			id, ok, err := r.LastTradeID(context.Background(), "binance", "BTCUSDT")
			if err != nil || id != tt.id || ok != tt.ok {
				t.Fatalf("LastTradeID = %d, %t, %v; want %d, %t", id, ok, err, tt.id, tt.ok)
			}
		})
	}
}

func TestTradeResumerNoStream(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, ok, err := NewTradeResumer(js, Config{}).LastTradeID(context.Background(), "binance", "BTCUSDT")
	if ok || !errors.Is(err, ErrNoStream) {
		t.Fatalf("LastTradeID = %t, %v; want ErrNoStream", ok, err)
	}
}

func TestTradeIDOf(t *testing.T) {
	tests := []struct {
		typ, msgID string
		id         int64
		ok         bool
	}{
		{"trade", "binance:BTCUSDT:trade:123", 123, true},
		{"book.delta", "binance:BTCUSDT:book.delta:123", 0, false},
		{"trade", "bybit:BTCUSDT:trade:b7c3e0f2-1", 0, false},
		{"trade", "", 0, false},
		{"trade", "binance:BTCUSDT:trade:-4", 0, false},
	}
	for _, tt := range tests {
		h := nats.Header{}
		h.Set(HeaderType, tt.typ)
		h.Set(HeaderMsgID, tt.msgID)
		if id, ok := tradeIDOf(h); id != tt.id || ok != tt.ok {
			t.Errorf("tradeIDOf(%s, %s) = %d, %t; want %d, %t", tt.typ, tt.msgID, id, ok, tt.id, tt.ok)
		}
	}
}
