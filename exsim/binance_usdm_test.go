package exsim

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func usdmMarkets() []MarketConfig {
	return []MarketConfig{{Venue: BinanceUSDM, Symbol: "BTCUSDT"}, {Venue: Binance, Symbol: "BTCUSDT"}}
}

// TestUSDMRoutedStreams: aggTrade is served on /market only, depth on
// /public only; a stream of the other route is accepted, listed and never
// delivered. Frames have the futures shapes; depth ids skip and pu chains
// them.
func TestUSDMRoutedStreams(t *testing.T) {
	s := startServer(t, Config{Seed: 3, Markets: usdmMarkets()})
	mkt := dial(t, s.BinanceUSDMWSURL()+"/market/ws/btcusdt@aggTrade")
	wrong := dial(t, s.BinanceUSDMWSURL()+"/public/ws/btcusdt@aggTrade")
	book := dial(t, s.BinanceUSDMWSURL()+"/public/stream?streams=btcusdt@depth@100ms")
	waitFor(t, "three connections", func() bool { return len(connIDs(s, BinanceUSDM)) == 3 })
	if err := s.Generate(BinanceUSDM, "BTCUSDT", 6, 5); err != nil {
		t.Fatal(err)
	}
	trades, _ := s.Generated(BinanceUSDM, "BTCUSDT", SeriesTrade)
	for i := int64(0); i < trades.Len(); i++ {
		m := readObj(t, mkt)
		keys(t, m, "e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m", "st")
		if str(t, m["e"]) != "aggTrade" || num(t, m["a"]) != trades.First+i {
			t.Fatalf("frame %v, want aggregate id %d", m, trades.First+i)
		}
	}
	prev := int64(-1)
	for range 5 {
		w := readObj(t, book)
		if str(t, w["stream"]) != "btcusdt@depth@100ms" {
			t.Fatalf("wrapper %v", w)
		}
		m := w["data"].(map[string]any)
		keys(t, m, "e", "E", "T", "s", "U", "u", "pu", "b", "a", "st")
		if prev >= 0 && num(t, m["pu"]) != prev {
			t.Fatalf("pu %d, want the previous u %d", num(t, m["pu"]), prev)
		}
		if num(t, m["U"]) <= num(t, m["pu"]) || num(t, m["U"]) > num(t, m["u"]) {
			t.Fatalf("U %d u %d pu %d", num(t, m["U"]), num(t, m["u"]), num(t, m["pu"]))
		}
		prev = num(t, m["u"])
	}
	send(t, wrong, `{"method":"LIST_SUBSCRIPTIONS","id":4}`)
	if m := readObj(t, wrong); !strings.Contains(string(mustJSON(t, m["result"])), "btcusdt@aggTrade") {
		t.Fatalf("list %v", m)
	}
	for _, c := range s.Conns() {
		if strings.HasPrefix(c.Path, "/public/ws/") && c.Sent != 0 {
			t.Fatalf("the /public connection was sent %d aggTrade frames", c.Sent)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUSDMREST: /fapi/v1/depth at the stream's last u, aggTrades from an
// id, time and exchangeInfo with the 2400 weight limit; the weight is
// charged to USD-M's own budget.
func TestUSDMREST(t *testing.T) {
	s := startServer(t, Config{Seed: 3, Markets: usdmMarkets()})
	if err := s.Generate(BinanceUSDM, "BTCUSDT", 5, 3); err != nil {
		t.Fatal(err)
	}
	base := s.BinanceUSDMRESTURL()
	st, h, body := get(t, base+"/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
	if st != 200 || h.Get("X-MBX-USED-WEIGHT-1M") != "20" {
		t.Fatalf("depth %d weight %q: %s", st, h.Get("X-MBX-USED-WEIGHT-1M"), body)
	}
	m := decodeObj(t, body)
	keys(t, m, "lastUpdateId", "E", "T", "bids", "asks")
	b, _ := s.Book(BinanceUSDM, "BTCUSDT")
	if num(t, m["lastUpdateId"]) != b.LastUpdateID {
		t.Fatalf("lastUpdateId %v, want %d", m["lastUpdateId"], b.LastUpdateID)
	}
	trades, _ := s.Generated(BinanceUSDM, "BTCUSDT", SeriesTrade)
	st, _, body = get(t, base+"/fapi/v1/aggTrades?symbol=BTCUSDT&fromId="+strconv.FormatInt(trades.First+1, 10))
	var rows []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if st != 200 || dec.Decode(&rows) != nil || int64(len(rows)) != trades.Len()-1 || num(t, rows[0]["a"]) != trades.First+1 {
		t.Fatalf("aggTrades %d: %s", st, body)
	}
	keys(t, rows[0], "a", "p", "q", "nq", "f", "l", "T", "m")
	if st, _, body = get(t, base+"/fapi/v1/depth?symbol=BTCUSDT&limit=7"); st != 400 {
		t.Fatalf("limit 7: %d %s", st, body)
	}
	st, _, body = get(t, base+"/fapi/v1/exchangeInfo")
	if st != 200 || !strings.Contains(string(body), `"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400`) ||
		!strings.Contains(string(body), `"contractType":"PERPETUAL"`) {
		t.Fatalf("exchangeInfo %d: %s", st, body)
	}
	// Spot's budget is untouched by the futures requests.
	if _, h, _ := get(t, s.BinanceRESTURL()+"/api/v3/time"); h.Get("X-MBX-USED-WEIGHT-1M") != "1" {
		t.Fatalf("spot weight %q", h.Get("X-MBX-USED-WEIGHT-1M"))
	}
}

// TestUSDMChannelStreams: kline, markPrice and forceOrder are served on
// /market with the futures shapes, bookTicker on /public; on the other
// route they are accepted and deliver nothing. /fapi/v1/klines is charged
// by limit. Futures have no 1s klines; Spot has no markPrice or forceOrder.
func TestUSDMChannelStreams(t *testing.T) {
	s := startServer(t, Config{Seed: 3, Markets: []MarketConfig{{Venue: BinanceUSDM, Symbol: "BTCUSDT", TradeRate: 40, BookRate: 20}},
		KlineSpeed: 60, KlinePush: 100 * time.Millisecond, TickerPush: 20 * time.Millisecond, LiquidationRate: 5})
	mkt := dial(t, s.BinanceUSDMWSURL()+"/market/stream?streams=btcusdt@kline_1m/btcusdt@markPrice@1s/btcusdt@forceOrder")
	dial(t, s.BinanceUSDMWSURL()+"/public/ws/btcusdt@kline_1m/btcusdt@markPrice@1s/btcusdt@forceOrder")
	pub := dial(t, s.BinanceUSDMWSURL()+"/public/ws/btcusdt@bookTicker")
	want := map[string][]string{
		"btcusdt@kline_1m":     {"e", "E", "s", "k"},
		"btcusdt@markPrice@1s": {"e", "E", "s", "p", "P", "i", "r", "T", "ap", "st"},
		"btcusdt@forceOrder":   {"e", "E", "o"},
	}
	seen := map[string]bool{}
	for len(seen) < len(want) {
		w := readObj(t, mkt)
		name := str(t, w["stream"])
		m := w["data"].(map[string]any)
		keys(t, m, want[name]...)
		switch name {
		case "btcusdt@forceOrder":
			o := m["o"].(map[string]any)
			keys(t, o, "s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T")
			if side := str(t, o["S"]); side != "SELL" && side != "BUY" || str(t, o["p"]) == str(t, o["ap"]) {
				t.Fatalf("forceOrder %v", o)
			}
		case "btcusdt@kline_1m":
			keys(t, m["k"].(map[string]any), "t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B")
		}
		seen[name] = true
	}
	m := readObj(t, pub)
	keys(t, m, "e", "u", "E", "T", "s", "b", "B", "a", "A", "st")
	for _, c := range s.Conns() {
		if strings.HasPrefix(c.Path, "/public/ws/btcusdt@kline") && c.Sent != 0 {
			t.Fatalf("the /public connection was sent %d /market frames", c.Sent)
		}
	}
	ls, err := s.Liquidations(BinanceUSDM, "BTCUSDT")
	if err != nil || len(ls) == 0 {
		t.Fatalf("liquidation truth %v, %v", ls, err)
	}
	for i := 1; i < len(ls); i++ {
		if ls[i].TS < ls[i-1].TS {
			t.Fatalf("liquidation truth out of order: %+v %+v", ls[i-1], ls[i])
		}
	}
	if tt, err := s.Ticker(BinanceUSDM, "BTCUSDT"); err != nil || tt.MarkPrice == "" || tt.LastPrice != "" || tt.Seq != 0 {
		t.Fatalf("ticker truth %+v, %v", tt, err)
	}
	st, h, body := get(t, s.BinanceUSDMRESTURL()+"/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=50")
	if st != 200 || h.Get("X-MBX-USED-WEIGHT-1M") != "1" || !strings.HasPrefix(string(body), "[[") {
		t.Fatalf("klines %d weight %q: %s", st, h.Get("X-MBX-USED-WEIGHT-1M"), body)
	}
	st, h, body = get(t, s.BinanceUSDMRESTURL()+"/fapi/v1/openInterest?symbol=BTCUSDT")
	oi := decodeObj(t, body)
	keys(t, oi, "openInterest", "symbol", "time")
	hist, err := s.OpenInterest(BinanceUSDM, "BTCUSDT")
	if st != 200 || h.Get("X-MBX-USED-WEIGHT-1M") != "2" || err != nil {
		t.Fatalf("openInterest %d weight %q: %s (%v)", st, h.Get("X-MBX-USED-WEIGHT-1M"), body, err)
	}
	if !slices.Contains(hist, OpenInterestTruth{TimeMS: num(t, oi["time"]), OpenInterest: str(t, oi["openInterest"])}) {
		t.Fatalf("openInterest %s not in the truth %+v", body, hist)
	}
	if st, _, _ := get(t, s.BinanceUSDMRESTURL()+"/fapi/v1/klines?symbol=BTCUSDT&interval=1s"); st != 400 {
		t.Fatalf("1s klines: %d", st)
	}
	for _, c := range []struct {
		v    Venue
		name string
		ok   bool
	}{{BinanceUSDM, "btcusdt@kline_1s", false}, {BinanceUSDM, "btcusdt@kline_1M", true}, {BinanceUSDM, "btcusdt@markPrice", true},
		{Binance, "btcusdt@markPrice@1s", false}, {Binance, "btcusdt@forceOrder", false}, {Binance, "btcusdt@kline_1s", true}} {
		if validStream(c.v, c.name) != c.ok {
			t.Errorf("%s %s: valid %v", c.v, c.name, !c.ok)
		}
	}
}

// TestUSDMQuarterlyMarkPrice: a delivery contract's markPriceUpdate has no
// funding ("r" "", "T" 0) and its ticker truth agrees; the perpetual of
// the same pair keeps both.
func TestUSDMQuarterlyMarkPrice(t *testing.T) {
	s := startServer(t, Config{Seed: 5, TickerPush: 20 * time.Millisecond, Markets: []MarketConfig{
		{Venue: BinanceUSDM, Symbol: "BTCUSDT"}, {Venue: BinanceUSDM, Symbol: "BTCUSDT_261225"}}})
	c := dial(t, s.BinanceUSDMWSURL()+"/market/stream?streams=btcusdt@markPrice@1s/btcusdt_261225@markPrice@1s")
	seen := map[string]bool{}
	for len(seen) < 2 {
		w := readObj(t, c)
		m := w["data"].(map[string]any)
		sym := str(t, m["s"])
		r, next := str(t, m["r"]), num(t, m["T"])
		if quarterly := sym == "BTCUSDT_261225"; quarterly != (r == "" && next == 0) || !quarterly && (r == "" || next == 0) {
			t.Fatalf("%s: r %q T %d", sym, r, next)
		}
		seen[sym] = true
	}
	for sym, quarterly := range map[string]bool{"BTCUSDT": false, "BTCUSDT_261225": true} {
		tt, err := s.Ticker(BinanceUSDM, sym)
		if err != nil || quarterly != (tt.FundingRate == "" && tt.NextFundingTime == 0) || tt.MarkPrice == "" {
			t.Fatalf("%s ticker truth %+v, %v", sym, tt, err)
		}
	}
}
