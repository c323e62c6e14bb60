package exsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBybitControlReplies(t *testing.T) {
	s := startServer(t, Config{Seed: 7})
	for _, tc := range []struct {
		venue  Venue
		path   string
		subMsg string
	}{
		{BybitSpot, "/v5/public/spot", "subscribe"},
		{BybitLinear, "/v5/public/linear", ""},
	} {
		t.Run(string(tc.venue), func(t *testing.T) {
			ws := dial(t, s.BybitWSURL()+tc.path)
			send(t, ws, `{"req_id":"a1","op":"subscribe","args":["publicTrade.BTCUSDT"]}`)
			m := readObj(t, ws)
			keys(t, m, "success", "ret_msg", "conn_id", "req_id", "op")
			if m["success"] != true || m["ret_msg"] != tc.subMsg || m["req_id"] != "a1" || m["op"] != "subscribe" {
				t.Fatalf("ack %v", m)
			}
			connID := str(t, m["conn_id"])
			send(t, ws, `{"req_id":"p1","op":"ping"}`)
			m = readObj(t, ws)
			if m["success"] != true || m["ret_msg"] != "pong" || m["op"] != "ping" || m["conn_id"] != connID || m["req_id"] != "p1" {
				t.Fatalf("pong %v", m)
			}
			send(t, ws, `{"op":"ping"}`)
			m = readObj(t, ws)
			keys(t, m, "success", "ret_msg", "conn_id", "op")
			failures := []struct{ req, msg string }{
				{`{"req_id":"b","op":"subscribe","args":["kline.7.BTCUSDT"]}`, "error:handler not found,topic:kline.7.BTCUSDT"},
				{`{"req_id":"b","op":"subscribe","args":["orderbook.7.BTCUSDT"]}`, "error:handler not found,topic:orderbook.7.BTCUSDT"},
				{`{"req_id":"b","op":"subscribe","args":["orderbook.50.NOPE"]}`, "error:Invalid symbol :[orderbook.50.NOPE]"},
				{`{"req_id":"b","op":"subscribe","args":["publicTrade.BTCUSDT"]}`, "error:already subscribed,topic:publicTrade.BTCUSDT"},
				{`{"req_id":"b","op":"unsubscribe","args":["orderbook.1.BTCUSDT"]}`, "error:not subscribed,topic:orderbook.1.BTCUSDT"},
				{`{"req_id":"b","op":"bogus"}`, "error:unsupported op: bogus"},
				{`not json`, "error:request must be a JSON object"},
			}
			for _, f := range failures {
				send(t, ws, f.req)
				m := readObj(t, ws)
				if m["success"] != false || m["ret_msg"] != f.msg {
					t.Errorf("%s: %v", f.req, m)
				}
			}
			send(t, ws, `{"req_id":"u","op":"unsubscribe","args":["publicTrade.BTCUSDT"]}`)
			m = readObj(t, ws)
			want := "unsubscribe"
			if tc.venue == BybitLinear {
				want = ""
			}
			if m["success"] != true || m["ret_msg"] != want {
				t.Fatalf("unsubscribe ack %v", m)
			}
		})
	}
}

func TestBybitSpotArgsLimit(t *testing.T) {
	s := startServer(t, Config{Seed: 8})
	args := make([]string, 11)
	for i := range args {
		args[i] = fmt.Sprintf("%q", "publicTrade.BTCUSDT")
	}
	req := `{"op":"subscribe","args":[` + strings.Join(args, ",") + `]}`
	ws := dial(t, s.BybitWSURL()+"/v5/public/spot")
	send(t, ws, req)
	if m := readObj(t, ws); m["success"] != false || m["ret_msg"] != "error:args size >10" {
		t.Fatalf("spot: %v", m)
	}
	// Linear has no per-request limit: the same request fails only on the
	// duplicate topic.
	wl := dial(t, s.BybitWSURL()+"/v5/public/linear")
	send(t, wl, req)
	if m := readObj(t, wl); m["ret_msg"] != "error:already subscribed,topic:publicTrade.BTCUSDT" {
		t.Fatalf("linear: %v", m)
	}
}

func TestBybitTradeFrames(t *testing.T) {
	s := startServer(t, Config{Seed: 9})
	for _, v := range []Venue{BybitSpot, BybitLinear} {
		t.Run(string(v), func(t *testing.T) {
			path := "/v5/public/spot"
			if v == BybitLinear {
				path = "/v5/public/linear"
			}
			ws := dial(t, s.BybitWSURL()+path)
			send(t, ws, `{"op":"subscribe","args":["publicTrade.BTCUSDT"]}`)
			readObj(t, ws)
			s.Generate(v, "BTCUSDT", 20, 0)
			gen, _ := s.Generated(v, "BTCUSDT", SeriesTrade)
			var got int64
			prevSeq := int64(0)
			seenIDs := map[string]bool{}
			for got < gen.Len() {
				m := readObj(t, ws)
				keys(t, m, "topic", "type", "ts", "data")
				if m["topic"] != "publicTrade.BTCUSDT" || m["type"] != "snapshot" {
					t.Fatalf("frame %v", m)
				}
				items := m["data"].([]any)
				for _, it := range items {
					tr := it.(map[string]any)
					if v == BybitLinear {
						keys(t, tr, "T", "s", "S", "v", "p", "L", "i", "BT", "RPI", "seq")
					} else {
						keys(t, tr, "T", "s", "S", "v", "p", "i", "BT", "RPI", "seq")
					}
					if side := str(t, tr["S"]); side != "Buy" && side != "Sell" {
						t.Fatalf("side %q", side)
					}
					id := str(t, tr["i"])
					ord, ok := s.BybitTradeOrdinal(v, "BTCUSDT", id)
					if !ok || ord != gen.First+got {
						t.Fatalf("id %q -> ordinal %d %v, want %d", id, ord, ok, gen.First+got)
					}
					if seenIDs[id] {
						t.Fatalf("id %q repeated", id)
					}
					seenIDs[id] = true
					seq := num(t, tr["seq"])
					if seq < prevSeq {
						t.Fatalf("seq went back: %d after %d", seq, prevSeq)
					}
					prevSeq = seq
					got++
				}
			}
		})
	}
}

// bybitBook applies Bybit snapshots and deltas.
type bybitBook struct {
	sides [2]map[string]string
	u     int64
	seq   int64
}

func (b *bybitBook) apply(t *testing.T, raw []byte) {
	t.Helper()
	var f struct {
		Type string `json:"type"`
		Data struct {
			B   [][2]string `json:"b"`
			A   [][2]string `json:"a"`
			U   int64       `json:"u"`
			Seq int64       `json:"seq"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	switch f.Type {
	case "snapshot":
		b.sides = [2]map[string]string{{}, {}}
	case "delta":
		if b.sides[0] == nil {
			t.Fatal("delta before snapshot")
		}
		if f.Data.U != b.u+1 {
			t.Fatalf("delta u %d after %d", f.Data.U, b.u)
		}
		if f.Data.Seq <= b.seq {
			t.Fatalf("seq %d not above %d", f.Data.Seq, b.seq)
		}
	default:
		t.Fatalf("type %q", f.Type)
	}
	b.u, b.seq = f.Data.U, f.Data.Seq
	for side, lv := range [][][2]string{f.Data.B, f.Data.A} {
		for _, l := range lv {
			if isZero(l[1]) {
				delete(b.sides[side], l[0])
			} else {
				b.sides[side][l[0]] = l[1]
			}
		}
	}
}

func isZero(q string) bool { return strings.Trim(q, "0.") == "" }

// TestBybitBookReconstruction applies snapshot + deltas of orderbook.50 and
// orderbook.1 (snapshots only) and compares with the top of the simulator's
// book.
func TestBybitBookReconstruction(t *testing.T) {
	s := startServer(t, Config{Seed: 10, BookLevels: 80})
	for _, v := range []Venue{BybitSpot, BybitLinear} {
		path := map[Venue]string{BybitSpot: "/v5/public/spot", BybitLinear: "/v5/public/linear"}[v]
		for _, depth := range []int{1, 50, 200} {
			t.Run(fmt.Sprintf("%s/%d", v, depth), func(t *testing.T) {
				ws := dial(t, s.BybitWSURL()+path)
				s.Generate(v, "BTCUSDT", 0, 100)
				send(t, ws, fmt.Sprintf(`{"op":"subscribe","args":["orderbook.%d.BTCUSDT"]}`, depth))
				readObj(t, ws) // ack
				s.Generate(v, "BTCUSDT", 0, 400)
				final, _ := s.Generated(v, "BTCUSDT", SeriesOrderbook(depth))
				var b bybitBook
				for b.u < final.Last || b.sides[0] == nil {
					raw := readFrame(t, ws)
					m := decodeObj(t, raw)
					keys(t, m, "topic", "type", "ts", "data", "cts")
					if depth == 1 && m["type"] != "snapshot" {
						t.Fatalf("depth 1 sent %v", m["type"])
					}
					keys(t, m["data"].(map[string]any), "s", "b", "a", "u", "seq")
					b.apply(t, raw)
				}
				want, _ := s.Book(v, "BTCUSDT")
				if want.BybitU[depth] != b.u {
					t.Fatalf("u %d, simulator %d", b.u, want.BybitU[depth])
				}
				for side, lv := range [][][2]string{want.Bids, want.Asks} {
					lv = lv[:min(depth, len(lv))]
					if len(lv) != len(b.sides[side]) {
						t.Fatalf("side %d: %d levels, want %d", side, len(b.sides[side]), len(lv))
					}
					for _, l := range lv {
						if b.sides[side][l[0]] != l[1] {
							t.Fatalf("side %d %s: %q want %q", side, l[0], b.sides[side][l[0]], l[1])
						}
					}
				}
			})
		}
	}
}

func TestBybitREST(t *testing.T) {
	s := startServer(t, Config{Seed: 11})
	base := s.BybitRESTURL()
	s.Generate(BybitSpot, "BTCUSDT", 100, 10)
	st, h, b := get(t, base+"/v5/market/time")
	m := decodeObj(t, b)
	keys(t, m, "retCode", "retMsg", "result", "retExtInfo", "time")
	res := m["result"].(map[string]any)
	keys(t, res, "timeSecond", "timeNano")
	if st != 200 || num(t, m["retCode"]) != 0 || m["retMsg"] != "OK" || h.Get("X-Bapi-Limit") != "600" {
		t.Fatalf("time: %d %s %v", st, b, h)
	}
	str(t, res["timeSecond"])
	_, _, b = get(t, base+"/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=50")
	res = decodeObj(t, b)["result"].(map[string]any)
	keys(t, res, "s", "b", "a", "ts", "u", "seq", "cts")
	if n := len(res["b"].([]any)); n != 50 {
		t.Fatalf("%d bids", n)
	}
	bk, _ := s.Book(BybitSpot, "BTCUSDT")
	if num(t, res["u"]) != bk.BybitU[1000] {
		t.Fatalf("u %v, want %d", res["u"], bk.BybitU[1000])
	}
	_, _, b = get(t, base+"/v5/market/recent-trade?category=spot&symbol=BTCUSDT")
	res = decodeObj(t, b)["result"].(map[string]any)
	list := res["list"].([]any)
	if res["category"] != "spot" || len(list) != 60 {
		t.Fatalf("recent-trade: %d trades", len(list))
	}
	first := list[0].(map[string]any)
	keys(t, first, "execId", "symbol", "price", "size", "side", "time", "isBlockTrade", "isRPITrade", "seq")
	gen, _ := s.Generated(BybitSpot, "BTCUSDT", SeriesTrade)
	if id, _ := s.BybitTradeID(BybitSpot, "BTCUSDT", gen.Last); first["execId"] != id {
		t.Fatalf("newest trade %v, want %s", first["execId"], id)
	}
	for _, tc := range []struct{ q, msg string }{
		{"category=spot&symbol=NOPE", "params error: symbol invalid"},
		{"category=option&symbol=BTCUSDT", "Illegal category"},
		{"category=spot&symbol=BTCUSDT&limit=x", "params error: limit invalid"},
	} {
		_, _, b := get(t, base+"/v5/market/orderbook?"+tc.q)
		m := decodeObj(t, b)
		if num(t, m["retCode"]) != 10001 || m["retMsg"] != tc.msg {
			t.Errorf("%s: %s", tc.q, b)
		}
	}
}

func TestBybitIPLimit(t *testing.T) {
	// A fixed clock keeps all requests in one 5-second window.
	fixed := time.Unix(1_700_000_002, 0)
	s := startServerWith(t, Config{Seed: 12, BybitRequestLimit: 20}, func(s *Server) {
		s.clock = func() time.Time { return fixed }
	})
	codes := map[int]int{}
	for range 25 {
		st, _, b := get(t, s.BybitRESTURL()+"/v5/market/time")
		codes[st]++
		if st == 403 && string(b) != "access too frequent" {
			t.Fatalf("403 body %q", b)
		}
	}
	if codes[403] != 5 || codes[200] != 20 {
		t.Fatalf("statuses %v", codes)
	}
	st, _, _ := get(t, s.BybitRESTURL()+"/v5/market/time")
	if st != 403 {
		t.Fatalf("banned IP got %d", st)
	}
}

// TestBybitDepth1Resend: an unchanged depth-1 book is re-sent with the
// same u after 3 s.
func TestBybitDepth1Resend(t *testing.T) {
	s, err := New(Config{Markets: idleMarkets()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := s.markets[BybitSpot]["BTCUSDT"]
	c := fakeConn(s, BybitSpot)
	m.mu.Lock()
	m.bybitAddSubLocked(c, 1)
	m.mu.Unlock()
	first := drain(c)
	if len(first) != 1 {
		t.Fatalf("%d frames on subscribe", len(first))
	}
	m.resendTop(time.Now().Add(time.Second))
	if n := len(drain(c)); n != 0 {
		t.Fatalf("re-sent after 1 s: %d frames", n)
	}
	m.resendTop(time.Now().Add(3 * time.Second))
	again := drain(c)
	if len(again) != 1 {
		t.Fatalf("%d frames after 3 s", len(again))
	}
	a, b := decodeObj(t, first[0]), decodeObj(t, again[0])
	if b["type"] != "snapshot" || num(t, a["data"].(map[string]any)["u"]) != num(t, b["data"].(map[string]any)["u"]) {
		t.Fatalf("resend %s after %s", again[0], first[0])
	}
}
