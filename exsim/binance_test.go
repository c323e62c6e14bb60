package exsim

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

func TestBinanceTradeFrame(t *testing.T) {
	s := startServer(t, Config{Seed: 1})
	ws := dial(t, s.BinanceWSURL()+"/ws/btcusdt@trade")
	waitFor(t, "subscription", func() bool { return len(connIDs(s, Binance)) == 1 })
	if err := s.Generate(Binance, "BTCUSDT", 5, 0); err != nil {
		t.Fatal(err)
	}
	gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
	if gen.Len() < 5 {
		t.Fatalf("generated %v", gen)
	}
	for i := int64(0); i < gen.Len(); i++ {
		m := readObj(t, ws)
		keys(t, m, "e", "E", "s", "t", "p", "q", "T", "m", "M")
		if str(t, m["e"]) != "trade" || str(t, m["s"]) != "BTCUSDT" {
			t.Fatalf("frame %v", m)
		}
		if id := num(t, m["t"]); id != gen.First+i {
			t.Fatalf("trade id %d, want %d", id, gen.First+i)
		}
		if _, ok := m["m"].(bool); !ok {
			t.Fatalf("m is %T", m["m"])
		}
		if p := str(t, m["p"]); len(p) < 10 || p[len(p)-9] != '.' {
			t.Fatalf("price %q is not an 8-decimal string", p)
		}
		if e := num(t, m["E"]); e < 1_600_000_000_000 || e > 4_000_000_000_000 {
			t.Fatalf("E %d is not ms", e)
		}
	}
}

func TestBinanceCombinedAndMicro(t *testing.T) {
	s := startServer(t, Config{Seed: 2})
	ws := dial(t, s.BinanceWSURL()+"/stream?streams=btcusdt@trade/btcusdt@aggTrade&timeUnit=MICROSECOND")
	waitFor(t, "subscription", func() bool { return len(connIDs(s, Binance)) == 1 })
	s.Generate(Binance, "BTCUSDT", 1, 0)
	seen := map[string]bool{}
	for !seen["btcusdt@trade"] || !seen["btcusdt@aggTrade"] {
		m := readObj(t, ws)
		keys(t, m, "stream", "data")
		name := str(t, m["stream"])
		seen[name] = true
		data := m["data"].(map[string]any)
		if e := num(t, data["E"]); e < 1_600_000_000_000_000 {
			t.Fatalf("E %d is not µs", e)
		}
		if name == "btcusdt@aggTrade" {
			keys(t, data, "e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M")
			if num(t, data["f"]) > num(t, data["l"]) {
				t.Fatalf("f > l: %v", data)
			}
		}
	}
}

func TestBinanceControlFrames(t *testing.T) {
	s := startServer(t, Config{Seed: 3})
	ws := dial(t, s.BinanceWSURL()+"/ws")
	cases := []struct {
		req  string
		want string
	}{
		{`{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@depth@100ms"],"id":1}`, `{"result":null,"id":1}`},
		{`{"method":"LIST_SUBSCRIPTIONS","id":2}`, `{"result":["btcusdt@trade","btcusdt@depth@100ms"],"id":2}`},
		{`{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":3}`, `{"result":null,"id":3}`},
		{`{"method":"LIST_SUBSCRIPTIONS","id":"abc"}`, `{"result":["btcusdt@depth@100ms"],"id":"abc"}`},
		{`{"method":"GET_PROPERTY","params":["combined"],"id":4}`, `{"result":false,"id":4}`},
		{`{"method":"SET_PROPERTY","params":["combined",true],"id":5}`, `{"result":null,"id":5}`},
		{`{"method":"GET_PROPERTY","params":["combined"],"id":6}`, `{"result":true,"id":6}`},
		{`{"method":"SET_PROPERTY","params":["combined","yes"],"id":7}`, `{"error":{"code":1,"msg":"Invalid value type: expected Boolean"},"id":7}`},
		{`{"method":"SET_PROPERTY","params":["bogus",true],"id":8}`, `{"error":{"code":0,"msg":"Unknown property"},"id":8}`},
		{`{"method":"SET_PROPERTY","params":[1,true],"id":9}`, `{"error":{"code":2,"msg":"Invalid request: property name must be a string"},"id":9}`},
		{`{"method":"XSUBSCRIBE","params":[],"id":10}`, `{"error":{"code":2,"msg":"Invalid request: unknown variant ` + "`XSUBSCRIBE`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`" + `"},"id":10}`},
		{`{"params":[],"id":11}`, `{"error":{"code":2,"msg":"Invalid request: missing field ` + "`method`" + `"},"id":11}`},
		{`{"method":"SUBSCRIBE","params":["btcusdt@nope"],"id":12}`, `{"error":{"code":2,"msg":"Invalid request: invalid stream name ` + "`btcusdt@nope`" + `"},"id":12}`},
		{`{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":-1}`, `{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},"id":null}`},
		{`{"method":"SUBSCRIBE",`, `{"error":{"code":3,"msg":"Invalid JSON: expected value at line 1 column 23"},"id":null}`},
	}
	for _, tc := range cases {
		send(t, ws, tc.req)
		if got := string(readFrame(t, ws)); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.req, got, tc.want)
		}
	}
}

func TestBinanceRESTBasics(t *testing.T) {
	// A fixed clock: the used weight is per minute, and a run crossing a
	// minute boundary would see it reset halfway.
	fixed := time.Unix(1_700_000_010, 0)
	s := startServerWith(t, Config{Seed: 4}, func(s *Server) { s.clock = func() time.Time { return fixed } })
	base := s.BinanceRESTURL()
	st, h, b := get(t, base+"/api/v3/ping")
	if st != 200 || string(b) != "{}" || h.Get("X-MBX-USED-WEIGHT-1M") != "1" {
		t.Fatalf("ping: %d %s %v", st, b, h)
	}
	st, h, b = get(t, base+"/api/v3/time")
	if st != 200 || h.Get("X-MBX-USED-WEIGHT-1M") != "2" {
		t.Fatalf("time: %d %s", st, b)
	}
	keys(t, decodeObj(t, b), "serverTime")
	tests := []struct {
		path   string
		status int
		body   string
		weight int
	}{
		{"/api/v3/depth?symbol=NOPE", 400, `{"code":-1121,"msg":"Invalid symbol."}`, 5},
		{"/api/v3/depth", 400, `{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}`, 5},
		{"/api/v3/depth?symbol=BTCUSDT&limit=abc", 400, `{"code":-1100,"msg":"Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}`, 5},
		{"/api/v3/depth?symbol=BTCUSDT&limit=1000", 200, "", 50},
		{"/api/v3/depth?symbol=BTCUSDT&limit=5000", 200, "", 250},
		{"/api/v3/trades?symbol=BTCUSDT", 200, "[]", 25},
	}
	used := 2
	for _, tc := range tests {
		st, h, b := get(t, base+tc.path)
		used += tc.weight
		if st != tc.status || tc.body != "" && string(b) != tc.body {
			t.Errorf("%s: %d %s", tc.path, st, b)
		}
		if got := h.Get("X-MBX-USED-WEIGHT-1M"); got != strconv.Itoa(used) {
			t.Errorf("%s: used weight %s, want %d", tc.path, got, used)
		}
	}
	s.Generate(Binance, "BTCUSDT", 30, 0)
	_, _, b = get(t, base+"/api/v3/historicalTrades?symbol=BTCUSDT&limit=10")
	var trades []map[string]any
	if err := json.Unmarshal(b, &trades); err != nil || len(trades) != 10 {
		t.Fatalf("historicalTrades: %s", b)
	}
}

// TestBinanceBookReconstruction follows the documented procedure: open
// @depth, buffer events, fetch the REST snapshot, drop events with u <=
// lastUpdateId, check the first kept event straddles lastUpdateId+1, then
// apply; the result must equal the simulator's book.
func TestBinanceBookReconstruction(t *testing.T) {
	s := startServer(t, Config{Seed: 5, BookLevels: 60})
	ws := dial(t, s.BinanceWSURL()+"/ws/btcusdt@depth")
	waitFor(t, "subscription", func() bool { return len(connIDs(s, Binance)) == 1 })
	s.Generate(Binance, "BTCUSDT", 0, 50)
	_, _, body := get(t, s.BinanceRESTURL()+"/api/v3/depth?symbol=BTCUSDT&limit=5000")
	var snap struct {
		LastUpdateID int64       `json:"lastUpdateId"`
		Bids         [][2]string `json:"bids"`
		Asks         [][2]string `json:"asks"`
	}
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatal(err)
	}
	s.Generate(Binance, "BTCUSDT", 0, 500)
	book := [2]map[string]string{{}, {}}
	for _, l := range snap.Bids {
		book[0][l[0]] = l[1]
	}
	for _, l := range snap.Asks {
		book[1][l[0]] = l[1]
	}
	id := snap.LastUpdateID
	final, _ := s.Generated(Binance, "BTCUSDT", SeriesDepth)
	first := true
	var prevU int64
	for id < final.Last {
		var ev struct {
			E  string      `json:"e"`
			U  int64       `json:"U"`
			Lu int64       `json:"u"`
			B  [][2]string `json:"b"`
			A  [][2]string `json:"a"`
		}
		raw := readFrame(t, ws)
		m := decodeObj(t, raw)
		keys(t, m, "e", "E", "s", "U", "u", "b", "a")
		ev.U, ev.Lu = num(t, m["U"]), num(t, m["u"])
		if prevU != 0 && ev.U != prevU+1 {
			t.Fatalf("U %d after u %d", ev.U, prevU)
		}
		prevU = ev.Lu
		if ev.Lu <= id {
			continue
		}
		if first {
			if !(ev.U <= id+1 && id+1 <= ev.Lu) {
				t.Fatalf("first event U=%d u=%d does not straddle %d", ev.U, ev.Lu, id+1)
			}
			first = false
		} else if ev.U != id+1 {
			t.Fatalf("gap: U=%d, book id %d", ev.U, id)
		}
		var full struct {
			B [][2]string `json:"b"`
			A [][2]string `json:"a"`
		}
		json.Unmarshal(raw, &full)
		for side, lv := range [][][2]string{full.B, full.A} {
			for _, l := range lv {
				if l[1] == "0.00000000" {
					delete(book[side], l[0])
				} else {
					book[side][l[0]] = l[1]
				}
			}
		}
		id = ev.Lu
	}
	want, _ := s.Book(Binance, "BTCUSDT")
	if want.LastUpdateID != id {
		t.Fatalf("book id %d, simulator %d", id, want.LastUpdateID)
	}
	for side, lv := range [][][2]string{want.Bids, want.Asks} {
		if len(lv) != len(book[side]) {
			t.Fatalf("side %d: %d levels, simulator %d", side, len(book[side]), len(lv))
		}
		for _, l := range lv {
			if book[side][l[0]] != l[1] {
				t.Fatalf("side %d level %s: %q, simulator %q", side, l[0], book[side][l[0]], l[1])
			}
		}
	}
}
