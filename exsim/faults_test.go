package exsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
)

// binTradeConn opens a raw @trade connection and returns it with its id.
func binTradeConn(t *testing.T, s *Server) (*websocket.Conn, uint64) {
	t.Helper()
	before := map[uint64]bool{}
	for _, id := range connIDs(s, Binance) {
		before[id] = true
	}
	ws := dial(t, s.BinanceWSURL()+"/ws/btcusdt@trade")
	var id uint64
	waitFor(t, "connection", func() bool {
		for _, c := range s.Conns() {
			if c.Open && !before[c.ID] && c.Venue == Binance && len(c.Subscriptions) == 1 {
				id = c.ID
				return true
			}
		}
		return false
	})
	return ws, id
}

func inject(t *testing.T, s *Server, f Fault) uint64 {
	t.Helper()
	id, err := s.InjectFault(f)
	if err != nil {
		t.Fatalf("inject %+v: %v", f, err)
	}
	return id
}

func isCloseError(err error, code int) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

func TestFaultCloseAbrupt(t *testing.T) {
	s := startServer(t, Config{Seed: 20})
	ws1, id1 := binTradeConn(t, s)
	ws2, _ := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultClose, Conn: id1})
	// 1006 is what a client reports when the TCP connection ends without
	// a close frame.
	if err := expectClosed(t, ws1, 2*time.Second); !isCloseError(err, websocket.CloseAbnormalClosure) {
		t.Fatalf("abrupt close: %v", err)
	}
	// The other connection is untouched.
	s.Generate(Binance, "BTCUSDT", 1, 0)
	readObj(t, ws2)
}

func TestFaultCloseAfter(t *testing.T) {
	s := startServer(t, Config{Seed: 21})
	ws, id := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultCloseAfter, Count: 3})
	s.Generate(Binance, "BTCUSDT", 10, 0)
	gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
	for i := range 3 {
		if got := num(t, readObj(t, ws)["t"]); got != gen.First+int64(i) {
			t.Fatalf("trade %d", got)
		}
	}
	expectClosed(t, ws, 2*time.Second)
	waitFor(t, "close", func() bool { return len(connIDs(s, Binance)) == 0 })
	d, _ := s.Delivered(id, Binance, "BTCUSDT", SeriesTrade)
	if len(d) != 1 || d[0] != (Range{gen.First, gen.First + 2}) {
		t.Fatalf("delivered %v", d)
	}
	tr, _ := s.Truth(Binance, "BTCUSDT")
	if u := tr.Get(SeriesTrade).Undelivered; len(u) != 1 || u[0] != (Range{gen.First + 3, gen.Last}) {
		t.Fatalf("undelivered %v, generated %v", u, gen)
	}
}

func TestFaultStall(t *testing.T) {
	s := startServer(t, Config{Seed: 22})
	ws, _ := binTradeConn(t, s)
	// Taken before the injection, so the stall ends at least 400ms after
	// it however the test is scheduled.
	start := time.Now()
	inject(t, s, Fault{Kind: FaultStall, Duration: Duration(400 * time.Millisecond)})
	s.Generate(Binance, "BTCUSDT", 1, 0)
	readObj(t, ws)
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("frame arrived after %v during a 400ms stall", el)
	}
	// Bybit: pings are not answered while stalled.
	wb := dial(t, s.BybitWSURL()+"/v5/public/spot")
	waitFor(t, "bybit conn", func() bool { return len(connIDs(s, BybitSpot)) == 1 })
	inject(t, s, Fault{Kind: FaultStall, Venue: BybitSpot})
	send(t, wb, `{"op":"ping"}`)
	expectNoFrame(t, wb, 200*time.Millisecond)
}

func TestBinancePingPong(t *testing.T) {
	cfg := Config{Seed: 23, PingInterval: 30 * time.Millisecond, PongTimeout: 150 * time.Millisecond}
	t.Run("answered", func(t *testing.T) {
		s := startServer(t, cfg)
		ws, _ := binTradeConn(t, s)
		pings := make(chan string, 100)
		ws.SetPingHandler(func(p string) error {
			pings <- p
			return ws.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(time.Second))
		})
		// Reading drives the ping handler; nothing else arrives.
		expectNoFrame(t, ws, 400*time.Millisecond)
		if len(pings) < 3 {
			t.Fatalf("%d pings in 400ms", len(pings))
		}
		if p := <-pings; p == "" {
			t.Fatal("ping without payload")
		}
		if n := len(connIDs(s, Binance)); n != 1 {
			t.Fatal("connection with pongs was cut")
		}
	})
	for _, tc := range []struct {
		name  string
		fault bool
	}{{"ignored", false}, {"dropped", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, cfg)
			ws, _ := binTradeConn(t, s)
			if tc.fault {
				inject(t, s, Fault{Kind: FaultDropPongs})
			} else {
				ws.SetPingHandler(func(string) error { return nil })
			}
			expectClosed(t, ws, 2*time.Second)
			if s.Stats().PongTimeouts != 1 {
				t.Fatalf("stats %+v", s.Stats())
			}
		})
	}
}

func TestFaultDuplicate(t *testing.T) {
	s := startServer(t, Config{Seed: 24})
	ws, _ := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultDuplicate, Rate: 1})
	s.Generate(Binance, "BTCUSDT", 3, 0)
	gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
	for i := int64(0); i < 2*gen.Len(); i++ {
		if got := num(t, readObj(t, ws)["t"]); got != gen.First+i/2 {
			t.Fatalf("frame %d: trade %d", i, got)
		}
	}
}

func TestFaultGap(t *testing.T) {
	s := startServer(t, Config{Seed: 25})
	ws := dial(t, s.BinanceWSURL()+"/stream?streams=btcusdt@depth@100ms/btcusdt@trade")
	waitFor(t, "conn", func() bool { return len(connIDs(s, Binance)) == 1 })
	inject(t, s, Fault{Kind: FaultGap, Rate: 0.5, Symbol: "BTCUSDT"})
	s.Generate(Binance, "BTCUSDT", 50, 50)
	trades, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
	var info ConnInfo
	waitFor(t, "frames written", func() bool {
		info = s.Conns()[0]
		return int64(info.Sent+info.Skipped) == trades.Len()+50
	})
	var prev int64
	gaps, nTrades := 0, int64(0)
	for range info.Sent {
		m := readObj(t, ws)
		d := m["data"].(map[string]any)
		if m["stream"] == "btcusdt@trade" {
			nTrades++
			continue
		}
		if u := num(t, d["U"]); prev != 0 && u != prev+1 {
			gaps++
		}
		prev = num(t, d["u"])
	}
	if gaps == 0 {
		t.Fatal("no gap with rate 0.5")
	}
	tr, _ := s.Truth(Binance, "BTCUSDT")
	if len(tr.Get(SeriesDepth).Undelivered) == 0 || len(tr.Get(SeriesTrade).Undelivered) != 0 {
		t.Fatalf("truth %+v", tr)
	}
}

func TestFaultMalformed(t *testing.T) {
	s := startServer(t, Config{Seed: 26})
	for _, mode := range []MalformedMode{MalformedInvalidJSON, MalformedWrongTypes, MalformedTruncated, MalformedOversized} {
		t.Run(string(mode), func(t *testing.T) {
			ws, id := binTradeConn(t, s)
			inject(t, s, Fault{Kind: FaultMalformed, Conn: id, Mode: mode, Count: 1, Size: 100_000})
			s.Generate(Binance, "BTCUSDT", 2, 0)
			bad := readFrame(t, ws)
			switch mode {
			case MalformedInvalidJSON, MalformedTruncated:
				if json.Valid(bad) {
					t.Fatalf("valid JSON: %s", bad)
				}
			case MalformedWrongTypes:
				m := decodeObj(t, bad)
				if _, ok := m["t"].(string); !ok {
					t.Fatalf("t not a string: %s", bad)
				}
				if _, ok := m["p"].(json.Number); !ok {
					t.Fatalf("p not a number: %s", bad)
				}
			case MalformedOversized:
				if len(bad) < 100_000 || !json.Valid(bad) {
					t.Fatalf("oversized frame of %d bytes", len(bad))
				}
			}
			// The malformed frame replaced the first trade; the next is fine.
			m := readObj(t, ws)
			keys(t, m, "e", "E", "s", "t", "p", "q", "T", "m", "M")
			if c := s.Conns()[id-1]; c.Malformed != 1 {
				t.Fatalf("conn info %+v", c)
			}
		})
	}
}

// TestFaultOversizedDefault: without a Size the oversized frame is over
// every read limit mdbridge uses by default; under the limit it would be a
// valid frame with a padding field, decoded and accepted as a normal one.
func TestFaultOversizedDefault(t *testing.T) {
	f := Fault{Kind: FaultMalformed, Mode: MalformedOversized}.withDefaults(&Config{})
	for _, lim := range []struct {
		name  string
		bytes int64
	}{
		{"binance.DefaultMaxFrameBytes", binance.DefaultMaxFrameBytes},
		{"bybit.DefaultMaxFrameBytes", bybit.DefaultMaxFrameBytes},
		{"bridge.DefaultMaxFrameBytes", bridge.DefaultMaxFrameBytes},
	} {
		if int64(f.Size) <= lim.bytes {
			t.Errorf("default oversized frame %d bytes, not over %s (%d)", f.Size, lim.name, lim.bytes)
		}
	}
	if got := len(malformed(nil, []byte(`{"e":"trade"}`), MalformedOversized, f.Size)); got < f.Size {
		t.Errorf("oversized frame of %d bytes, want %d", got, f.Size)
	}
}

func TestFaultREST(t *testing.T) {
	s := startServer(t, Config{Seed: 27})
	for _, tc := range []struct {
		venue  Venue
		status int
		url    string
	}{
		{Binance, 429, s.BinanceRESTURL() + "/api/v3/time"},
		{Binance, 418, s.BinanceRESTURL() + "/api/v3/time"},
		{Binance, 503, s.BinanceRESTURL() + "/api/v3/time"},
		{BybitSpot, 403, s.BybitRESTURL() + "/v5/market/time"},
		{BybitSpot, 500, s.BybitRESTURL() + "/v5/market/time"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.venue, tc.status), func(t *testing.T) {
			inject(t, s, Fault{Kind: FaultREST, Venue: tc.venue, Status: tc.status, Count: 2, Duration: Duration(7 * time.Second)})
			for range 2 {
				st, h, _ := get(t, tc.url)
				if st != tc.status {
					t.Fatalf("status %d", st)
				}
				if (st == 429 || st == 418) && h.Get("Retry-After") != "7" {
					t.Fatalf("Retry-After %q", h.Get("Retry-After"))
				}
			}
			if st, _, _ := get(t, tc.url); st != 200 {
				t.Fatalf("after the burst: %d", st)
			}
		})
	}
}

func TestFaultSkew(t *testing.T) {
	s := startServer(t, Config{Seed: 28})
	ws, _ := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultSkew, Venue: Binance, Duration: Duration(time.Hour)})
	_, _, b := get(t, s.BinanceRESTURL()+"/api/v3/time")
	st := num(t, decodeObj(t, b)["serverTime"])
	if d := time.Duration(st-time.Now().UnixMilli()) * time.Millisecond; d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("serverTime off by %v", d)
	}
	s.Generate(Binance, "BTCUSDT", 1, 0)
	if d := time.Duration(num(t, readObj(t, ws)["E"])-time.Now().UnixMilli()) * time.Millisecond; d < 59*time.Minute {
		t.Fatalf("event time off by %v", d)
	}
	_, _, b = get(t, s.BybitRESTURL()+"/v5/market/time")
	res := decodeObj(t, b)["result"].(map[string]any)
	sec, _ := strconv.ParseInt(str(t, res["timeSecond"]), 10, 64)
	if d := sec - time.Now().Unix(); d < -2 || d > 2 {
		t.Fatalf("bybit skewed by %ds with a binance-only fault", d)
	}
	s.ClearFaults()
	_, _, b = get(t, s.BinanceRESTURL()+"/api/v3/time")
	if d := num(t, decodeObj(t, b)["serverTime"]) - time.Now().UnixMilli(); d > 2000 {
		t.Fatalf("skew not cleared: %dms", d)
	}
}

func TestFaultMaxAge(t *testing.T) {
	s := startServer(t, Config{Seed: 29})
	ws, _ := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultMaxAge, Duration: Duration(200 * time.Millisecond)})
	if err := expectClosed(t, ws, 3*time.Second); !isCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("got %v, want close 1000", err)
	}
	if s.Stats().AgeCuts != 1 {
		t.Fatalf("stats %+v", s.Stats())
	}
	// The stored fault holds for connections opened after it, each cut in
	// turn, not only for the ones open when it was injected.
	for i := 2; i <= 3; i++ {
		ws := dial(t, s.BinanceWSURL()+"/ws/btcusdt@trade")
		if err := expectClosed(t, ws, 3*time.Second); !isCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("connection %d: got %v, want close 1000", i, err)
		}
		if n := s.Stats().AgeCuts; n != uint64(i) {
			t.Fatalf("connection %d: %d age cuts, want %d", i, n, i)
		}
	}
}

func TestFaultShutdown(t *testing.T) {
	s := startServer(t, Config{Seed: 30})
	raw, _ := binTradeConn(t, s)
	comb := dial(t, s.BinanceWSURL()+"/stream?streams=btcusdt@trade")
	waitFor(t, "conns", func() bool { return len(connIDs(s, Binance)) == 2 })
	inject(t, s, Fault{Kind: FaultShutdown, Venue: Binance, Duration: Duration(100 * time.Millisecond)})
	m := readObj(t, raw)
	keys(t, m, "e", "E")
	if m["e"] != "serverShutdown" {
		t.Fatalf("event %v", m)
	}
	m = readObj(t, comb)
	if m["stream"] != "!serverShutdown" || m["data"].(map[string]any)["e"] != "serverShutdown" {
		t.Fatalf("combined event %v", m)
	}
	for _, ws := range []*websocket.Conn{raw, comb} {
		if err := expectClosed(t, ws, 3*time.Second); !isCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("got %v, want close 1001", err)
		}
	}
}

func TestFaultResnapshot(t *testing.T) {
	s := startServer(t, Config{Seed: 31})
	ws := dial(t, s.BybitWSURL()+"/v5/public/linear")
	send(t, ws, `{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}`)
	readObj(t, ws)
	first := readObj(t, ws)
	inject(t, s, Fault{Kind: FaultResnapshot, Venue: BybitLinear, Symbol: "BTCUSDT"})
	again := readObj(t, ws)
	if again["type"] != "snapshot" || num(t, again["data"].(map[string]any)["u"]) != num(t, first["data"].(map[string]any)["u"]) {
		t.Fatalf("resnapshot %v", again)
	}
}

func TestFaultScopeNew(t *testing.T) {
	s := startServer(t, Config{Seed: 32})
	old, _ := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultCloseAfter, Count: 1, Scope: ScopeNew})
	fresh, _ := binTradeConn(t, s)
	s.Generate(Binance, "BTCUSDT", 3, 0)
	readObj(t, fresh)
	expectClosed(t, fresh, 2*time.Second)
	gen, _ := s.Generated(Binance, "BTCUSDT", SeriesTrade)
	for i := int64(0); i < gen.Len(); i++ {
		readObj(t, old)
	}
}

func TestFaultValidation(t *testing.T) {
	s := startServer(t, Config{Seed: 33})
	for _, f := range []Fault{
		{Kind: "nope"},
		{Kind: FaultCloseAfter},
		{Kind: FaultDuplicate, Rate: 2},
		{Kind: FaultGap},
		{Kind: FaultREST, Status: 200},
		{Kind: FaultMalformed, Mode: "weird"},
		{Kind: FaultClose, Venue: "kraken"},
		{Kind: FaultMaxAge},
		{Kind: FaultClose, Scope: "later"},
	} {
		if _, err := s.InjectFault(f); !errors.Is(err, ErrBadFault) {
			t.Errorf("%+v: %v", f, err)
		}
	}
	if _, err := New(Config{Faults: []Fault{{Kind: "nope"}}}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("config fault: %v", err)
	}
}

// TestFaultAtStart: faults in Config apply to every connection.
func TestFaultAtStart(t *testing.T) {
	s := startServer(t, Config{Seed: 34, Faults: []Fault{{Kind: FaultDuplicate, Rate: 1, Venue: Binance}}})
	ws, _ := binTradeConn(t, s)
	s.Generate(Binance, "BTCUSDT", 1, 0)
	a, b := readObj(t, ws), readObj(t, ws)
	if num(t, a["t"]) != num(t, b["t"]) {
		t.Fatalf("not duplicated: %v %v", a, b)
	}
	if !strings.Contains(fmt.Sprint(s.Faults()), "duplicate") {
		t.Fatalf("faults %v", s.Faults())
	}
}

// TestFaultOversizedFrameArrives: a frame larger than the write buffer is
// written in pieces, each under its own write deadline, so a client that
// reads receives it whole however long ago the connection last wrote (a
// single write ran under the deadline of the last flush, long expired on
// a quiet connection, and the frame never arrived).
func TestFaultOversizedFrameArrives(t *testing.T) {
	s := startServer(t, Config{Seed: 50, WriteTimeout: 200 * time.Millisecond})
	ws, id := binTradeConn(t, s)
	s.Generate(Binance, "BTCUSDT", 1, 0)
	ws.SetReadLimit(64 << 20)
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // the last flush's deadline passes (not a synchronization)
	const size = 8 << 20
	inject(t, s, Fault{Kind: FaultMalformed, Conn: id, Mode: MalformedOversized, Size: size, Rate: 1, Count: 1})
	s.Generate(Binance, "BTCUSDT", 1, 0)
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading the oversized frame: %v", err)
	}
	if len(b) < size {
		t.Fatalf("oversized frame of %d bytes, want at least %d", len(b), size)
	}
}

// TestFaultOversizedNotBuilt: the oversized frame is written from a
// shared padding chunk, not built in memory first (building 16 MiB kept the
// connection silent past a client's heartbeat timeout on a loaded machine),
// and its bytes are what malformed makes.
func TestFaultOversizedNotBuilt(t *testing.T) {
	s := startServer(t, Config{Seed: 52})
	ws, id := binTradeConn(t, s)
	ws.SetReadLimit(64 << 20)
	s.Generate(Binance, "BTCUSDT", 1, 0)
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	const size = 24 << 20
	inject(t, s, Fault{Kind: FaultMalformed, Conn: id, Mode: MalformedOversized, Size: size, Rate: 1, Count: 1})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.Generate(Binance, "BTCUSDT", 1, 0)
	_, r, err := ws.NextReader()
	if err != nil {
		t.Fatal(err)
	}
	// The header has arrived: the simulator has allocated what it
	// allocates for the frame (the old code: all of it).
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > size/4 {
		t.Errorf("%d bytes allocated while sending an oversized frame of %d bytes: built in memory", n, size)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the oversized frame: %v", err)
	}
	var o struct {
		ID int64 `json:"t"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.ID == 0 {
		t.Fatalf("oversized frame is not a trade: %v", err)
	}
	if len(b) != size+2 || !bytes.HasSuffix(b, []byte(`xx"}`)) || !bytes.Contains(b, []byte(`,"pad":"xx`)) {
		t.Fatalf("oversized frame of %d bytes (want %d), ending %q", len(b), size+2, b[max(len(b)-8, 0):])
	}
}

// TestFaultOversizedStopsOnClose: a client that hangs up in the middle of
// an oversized frame ends the simulator's connection.
func TestFaultOversizedStopsOnClose(t *testing.T) {
	s := startServer(t, Config{Seed: 51})
	ws, id := binTradeConn(t, s)
	inject(t, s, Fault{Kind: FaultMalformed, Conn: id, Mode: MalformedOversized, Rate: 1})
	s.Generate(Binance, "BTCUSDT", 5, 0)
	ws.SetReadLimit(1 << 10)
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("read an oversized frame under a 1 KiB limit")
	}
	_ = ws.Close()
	waitFor(t, "the connection to end", func() bool { return len(connIDs(s, Binance)) == 0 })
}
