package exsim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBinanceInboundLimit(t *testing.T) {
	s := startServer(t, Config{Seed: 40, InboundLimit: 5})
	ws := dial(t, s.BinanceWSURL()+"/ws")
	for i := range 5 {
		send(t, ws, fmt.Sprintf(`{"method":"LIST_SUBSCRIPTIONS","id":%d}`, i))
		readObj(t, ws)
	}
	send(t, ws, `{"method":"LIST_SUBSCRIPTIONS","id":6}`)
	if err := expectClosed(t, ws, 2*time.Second); !isCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("got %v, want close 1008", err)
	}
	if s.Stats().RateDisconnects != 1 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestBinanceStreamLimit(t *testing.T) {
	s := startServer(t, Config{Seed: 41, MaxStreams: 3})
	url := s.BinanceWSURL() + "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@depth/btcusdt@bookTicker"
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("4 streams over a limit of 3: %v %v", err, resp)
	}
	resp.Body.Close()
	ws := dial(t, s.BinanceWSURL()+"/ws/btcusdt@trade/btcusdt@aggTrade")
	send(t, ws, `{"method":"SUBSCRIBE","params":["ethusdt@trade","ethusdt@depth"],"id":1}`)
	if m := readObj(t, ws); m["error"] == nil {
		t.Fatalf("over the limit: %v", m)
	}
	send(t, ws, `{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":2}`)
	if got := string(readFrame(t, ws)); got != `{"result":null,"id":2}` {
		t.Fatal(got)
	}
	// Unknown but well-formed symbols are accepted (and silent), like the
	// exchange; malformed URLs are refused.
	send(t, ws, `{"method":"LIST_SUBSCRIPTIONS","id":3}`)
	if got := string(readFrame(t, ws)); got != `{"result":["btcusdt@trade","btcusdt@aggTrade","ethusdt@trade"],"id":3}` {
		t.Fatal(got)
	}
	for _, bad := range []string{"/ws/BTCUSDT@trade", "/ws/btcusdt@kline_7m", "/ws/btcusdt@trade?timeUnit=SECOND"} {
		_, resp, err := websocket.DefaultDialer.Dial(s.BinanceWSURL()+bad, nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Errorf("%s: %v", bad, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

func TestBinanceWeightLimit(t *testing.T) {
	fixed := time.Unix(1_700_000_010, 0) // 30 s before a minute boundary
	s := startServerWith(t, Config{Seed: 42, BinanceWeightLimit: 100, BinanceBanAfter: 2, BinanceBan: 3 * time.Minute}, func(s *Server) {
		s.clock = func() time.Time { return fixed }
	})
	url := s.BinanceRESTURL() + "/api/v3/exchangeInfo"
	var statuses []int
	var last map[string][]string
	for range 9 {
		st, h, b := get(t, url)
		statuses = append(statuses, st)
		last = h
		if st == 429 || st == 418 {
			var e struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			}
			if json.Unmarshal(b, &e) != nil || e.Code != -1003 {
				t.Fatalf("%d body %s", st, b)
			}
			if st == 429 && h.Get("Retry-After") != "30" {
				t.Fatalf("429 Retry-After %q, want 30", h.Get("Retry-After"))
			}
			if st == 418 && h.Get("Retry-After") != "180" {
				t.Fatalf("418 Retry-After %q", h.Get("Retry-After"))
			}
		}
	}
	want := []int{200, 200, 200, 200, 200, 429, 429, 418, 418}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	if last["X-Mbx-Used-Weight-1m"][0] != "100" {
		t.Fatalf("used weight %v", last)
	}
}

func TestBinanceExchangeInfo(t *testing.T) {
	s := startServer(t, Config{Seed: 43, BinanceWeightLimit: 1200})
	_, h, b := get(t, s.BinanceRESTURL()+"/api/v3/exchangeInfo")
	if h.Get("X-MBX-USED-WEIGHT-1M") != "20" {
		t.Fatalf("weight %s", h.Get("X-MBX-USED-WEIGHT-1M"))
	}
	var info struct {
		RateLimits []struct {
			RateLimitType, Interval string
			IntervalNum, Limit      int
		} `json:"rateLimits"`
		Symbols []struct {
			Symbol, Status, BaseAsset, QuoteAsset string
			Filters                               []map[string]any
		} `json:"symbols"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	rl := info.RateLimits[0]
	if rl.RateLimitType != "REQUEST_WEIGHT" || rl.Interval != "MINUTE" || rl.IntervalNum != 1 || rl.Limit != 1200 {
		t.Fatalf("rate limit %+v", rl)
	}
	if len(info.Symbols) != 2 || info.Symbols[0].Symbol != "BTCUSDT" || info.Symbols[0].BaseAsset != "BTC" ||
		info.Symbols[0].QuoteAsset != "USDT" || info.Symbols[0].Filters[0]["tickSize"] != "0.01000000" {
		t.Fatalf("symbols %+v", info.Symbols)
	}
	if st, _, b := get(t, s.BinanceRESTURL()+"/api/v3/exchangeInfo?symbol=NOPE"); st != 400 || !strings.Contains(string(b), "-1121") {
		t.Fatalf("bad symbol: %d %s", st, b)
	}
	_, _, b = get(t, s.BinanceRESTURL()+`/api/v3/exchangeInfo?symbols=["ETHUSDT"]`)
	if !strings.Contains(string(b), `"symbol":"ETHUSDT"`) || strings.Contains(string(b), `"symbol":"BTCUSDT"`) {
		t.Fatalf("symbols filter: %s", b)
	}
}

// TestBinanceTradeBackfill checks that REST trades and aggTrades agree with
// what the streams sent.
func TestBinanceTradeBackfill(t *testing.T) {
	s := startServer(t, Config{Seed: 44})
	ws := dial(t, s.BinanceWSURL()+"/stream?streams=btcusdt@trade/btcusdt@aggTrade")
	waitFor(t, "conn", func() bool { return len(connIDs(s, Binance)) == 1 })
	s.Generate(Binance, "BTCUSDT", 40, 0)
	gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
	streamTrades := map[int64]map[string]any{}
	var aggs []map[string]any
	for int64(len(streamTrades)) < gen.Len() || len(aggs) == 0 || num(t, aggs[len(aggs)-1]["l"]) < gen.Last {
		m := readObj(t, ws)
		d := m["data"].(map[string]any)
		if m["stream"] == "btcusdt@trade" {
			streamTrades[num(t, d["t"])] = d
		} else {
			aggs = append(aggs, d)
		}
	}
	_, _, b := get(t, s.BinanceRESTURL()+"/api/v3/historicalTrades?symbol=BTCUSDT&limit=1000&fromId="+strconv.FormatInt(gen.First+5, 10))
	var rest []struct {
		ID           int64  `json:"id"`
		Price        string `json:"price"`
		Qty          string `json:"qty"`
		QuoteQty     string `json:"quoteQty"`
		Time         int64  `json:"time"`
		IsBuyerMaker bool   `json:"isBuyerMaker"`
		IsBestMatch  bool   `json:"isBestMatch"`
	}
	if err := json.Unmarshal(b, &rest); err != nil {
		t.Fatal(err)
	}
	if int64(len(rest)) != gen.Len()-5 || rest[0].ID != gen.First+5 {
		t.Fatalf("%d trades from %d", len(rest), rest[0].ID)
	}
	for _, r := range rest {
		w := streamTrades[r.ID]
		if w["p"] != r.Price || w["q"] != r.Qty || w["m"] != r.IsBuyerMaker || num(t, w["T"]) != r.Time || r.QuoteQty == "" {
			t.Fatalf("REST %+v vs stream %v", r, w)
		}
	}
	_, _, b = get(t, s.BinanceRESTURL()+"/api/v3/aggTrades?symbol=BTCUSDT&fromId="+string(aggs[1]["a"].(json.Number)))
	var ra []map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&ra); err != nil {
		t.Fatal(err)
	}
	if len(ra) != len(aggs)-1 {
		t.Fatalf("%d aggTrades, want %d", len(ra), len(aggs)-1)
	}
	for i, a := range ra {
		keys(t, a, "a", "p", "q", "f", "l", "T", "m", "M")
		w := aggs[i+1]
		for _, k := range []string{"a", "p", "q", "f", "l", "T", "m"} {
			if fmt.Sprint(a[k]) != fmt.Sprint(w[k]) {
				t.Fatalf("aggTrade %s: REST %v stream %v", k, a[k], w[k])
			}
		}
	}
}

func TestBinancePartialDepthAndBookTicker(t *testing.T) {
	s := startServer(t, Config{Seed: 45})
	ws := dial(t, s.BinanceWSURL()+"/stream?streams=btcusdt@depth5@100ms/btcusdt@bookTicker")
	waitFor(t, "conn", func() bool { return len(connIDs(s, Binance)) == 1 })
	s.Generate(Binance, "BTCUSDT", 0, 200)
	seen := map[string]bool{}
	for !seen["btcusdt@depth5@100ms"] || !seen["btcusdt@bookTicker"] {
		m := readObj(t, ws)
		d := m["data"].(map[string]any)
		name := str(t, m["stream"])
		seen[name] = true
		switch name {
		case "btcusdt@depth5@100ms":
			keys(t, d, "lastUpdateId", "bids", "asks")
			if len(d["bids"].([]any)) != 5 {
				t.Fatalf("depth5: %v", d)
			}
		case "btcusdt@bookTicker":
			keys(t, d, "u", "s", "b", "B", "a", "A")
		}
	}
}

// TestFanOutSameIDs: two connections and two servers with the same seed
// see the same trades.
func TestFanOutSameIDs(t *testing.T) {
	collect := func(s *Server, ws ...*websocket.Conn) [][]string {
		s.Generate(Binance, "BTCUSDT", 30, 0)
		gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
		out := make([][]string, len(ws))
		for i, w := range ws {
			for range gen.Len() {
				m := readObj(t, w)
				out[i] = append(out[i], fmt.Sprint(m["t"], m["p"], m["q"], m["m"]))
			}
		}
		return out
	}
	s1 := startServer(t, Config{Seed: 46})
	a, _ := binTradeConn(t, s1)
	b, _ := binTradeConn(t, s1)
	r1 := collect(s1, a, b)
	if fmt.Sprint(r1[0]) != fmt.Sprint(r1[1]) {
		t.Fatal("two connections saw different trades")
	}
	s2 := startServer(t, Config{Seed: 46})
	c, _ := binTradeConn(t, s2)
	if r2 := collect(s2, c); fmt.Sprint(r2[0]) != fmt.Sprint(r1[0]) {
		t.Fatalf("same seed, different trades:\n%v\n%v", r2[0][:3], r1[0][:3])
	}
	s3 := startServer(t, Config{Seed: 47})
	d, _ := binTradeConn(t, s3)
	if r3 := collect(s3, d); fmt.Sprint(r3[0]) == fmt.Sprint(r1[0]) {
		t.Fatal("different seeds, same trades")
	}
}

func TestSlowConsumerDisconnected(t *testing.T) {
	s := startServer(t, Config{Seed: 48, SendQueue: 16})
	ws, id := binTradeConn(t, s)
	_ = ws
	// Fill the queue faster than the writer can drain a non-reading client:
	// big frames exhaust the socket buffers first.
	inject(t, s, Fault{Kind: FaultMalformed, Conn: id, Mode: MalformedOversized, Size: 4 << 20, Rate: 1, Extra: true})
	for range 200 {
		s.Generate(Binance, "BTCUSDT", 10, 0)
		if s.Stats().SlowDisconnects > 0 {
			break
		}
	}
	waitFor(t, "slow-consumer cut", func() bool { return s.Stats().SlowDisconnects == 1 })
}

func TestBybitIdleCut(t *testing.T) {
	// Pings every 100ms against a 1s idle timeout: ten times the cadence,
	// so a loaded machine does not get the pinging connection cut.
	s := startServer(t, Config{Seed: 49, BybitIdleTimeout: time.Second})
	quiet := dial(t, s.BybitWSURL()+"/v5/public/spot")
	pinger := dial(t, s.BybitWSURL()+"/v5/public/spot")
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if pinger.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)) != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	expectClosed(t, quiet, 5*time.Second)
	// The pinger is still pinging while the open connections are counted
	// (the quiet one's record may close just after its socket).
	waitFor(t, "only the pinging connection open", func() bool { return len(connIDs(s, BybitSpot)) == 1 })
	close(stop)
	<-done
}
