package exsim

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
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
