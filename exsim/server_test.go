package exsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{Addr: "0.0.0.0:0"},
		{Addr: "10.1.2.3:80"},
		{Addr: "nonsense"},
		{Markets: []MarketConfig{{Venue: "kraken", Symbol: "BTCUSD"}}},
		{Markets: []MarketConfig{{Venue: Binance, Symbol: "btcusdt"}}},
		{Markets: []MarketConfig{{Venue: Binance, Symbol: "BTCUSDT"}, {Venue: Binance, Symbol: "BTCUSDT"}}},
		{Markets: []MarketConfig{{Venue: Binance, Symbol: "BTCUSDT", TradeRate: -1}}},
		{PingInterval: -time.Second},
		{BookLevels: 5},
	} {
		if _, err := New(cfg, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if _, err := New(Config{}, nil); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	// Validated only: the test never listens on it.
	if _, err := New(Config{Addr: "0.0.0.0:9000", AllowNonLoopback: true}, nil); err != nil {
		t.Fatalf("AllowNonLoopback: %v", err)
	}
}

func TestServerLifecycle(t *testing.T) {
	s, err := New(Config{Markets: idleMarkets()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.BinanceWSURL() != "" {
		t.Fatal("URL before Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	for _, u := range []string{s.BinanceWSURL(), s.BybitWSURL()} {
		if !strings.HasPrefix(u, "ws://127.0.0.1:") {
			t.Fatalf("url %q", u)
		}
	}
	ws := dial(t, s.BinanceWSURL()+"/ws/btcusdt@trade")
	cancel() // ending the context closes the server and its connections
	expectClosed(t, ws, 3*time.Second)
	waitFor(t, "closed", func() bool {
		_, err := s.InjectFault(Fault{Kind: FaultClose})
		return errors.Is(err, ErrClosed)
	})
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// TestRatesDriveGeneration: a market with rates generates on its own.
func TestRatesDriveGeneration(t *testing.T) {
	s := startServer(t, Config{Seed: 60, Markets: []MarketConfig{{Venue: Binance, Symbol: "BTCUSDT", TradeRate: 500, BookRate: 500}}})
	ws := dial(t, s.BinanceWSURL()+"/stream?streams=btcusdt@trade/btcusdt@depth")
	n := 0
	for n < 50 {
		readObj(t, ws)
		n++
	}
	if err := s.SetRates(Binance, "BTCUSDT", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRates(Binance, "NOPE", 1, 1); !errors.Is(err, ErrUnknownMarket) {
		t.Fatalf("unknown market: %v", err)
	}
}

func TestAdminAPI(t *testing.T) {
	s := startServer(t, Config{Seed: 61})
	base := s.AdminURL() + "/admin/"
	ws, id := binTradeConn(t, s)
	st, b := post(t, base+"faults", `{"kind":"duplicate","rate":1,"conn":`+itoa(id)+`}`)
	var res struct {
		ID uint64 `json:"id"`
	}
	if st != 200 || json.Unmarshal(b, &res) != nil || res.ID == 0 {
		t.Fatalf("inject: %d %s", st, b)
	}
	if st, b := post(t, base+"faults", `{"kind":"nope"}`); st != 400 || !strings.Contains(string(b), "unknown kind") {
		t.Fatalf("bad fault: %d %s", st, b)
	}
	if st, b := post(t, base+"faults", `{"kind":"close","typo":1}`); st != 400 {
		t.Fatalf("unknown field: %d %s", st, b)
	}
	_, _, b = get(t, base+"faults")
	if !strings.Contains(string(b), `"kind":"duplicate"`) {
		t.Fatalf("faults %s", b)
	}
	if st, _ := post(t, base+"generate", `{"venue":"binance","symbol":"BTCUSDT","trades":1}`); st != 200 {
		t.Fatal("generate")
	}
	a, c := readObj(t, ws), readObj(t, ws)
	if num(t, a["t"]) != num(t, c["t"]) {
		t.Fatal("duplicate fault via admin not applied")
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"faults/"+itoa(res.ID), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete: %v %v", err, resp)
	}
	resp.Body.Close()
	if len(s.Faults()) != 0 {
		t.Fatal("fault not cleared")
	}
	_, _, b = get(t, base+"conns")
	var conns []ConnInfo
	if json.Unmarshal(b, &conns) != nil || len(conns) != 1 || conns[0].Subscriptions[0] != "btcusdt@trade" || conns[0].Duplicated == 0 {
		t.Fatalf("conns %s", b)
	}
	_, _, b = get(t, base+"truth?venue=binance&symbol=BTCUSDT&per_conn=1")
	var tr Truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	ts := tr.Get(SeriesTrade)
	if ts.Generated.Empty() || len(ts.Undelivered) != 0 || len(ts.PerConn[id]) != 1 {
		t.Fatalf("truth %s", b)
	}
	if st, _, _ := get(t, base+"truth?venue=binance&symbol=NOPE"); st != 404 {
		t.Fatalf("unknown market: %d", st)
	}
	_, _, b = get(t, base+"book?venue=bybit&symbol=BTCUSDT")
	var bk BookSnapshot
	if json.Unmarshal(b, &bk) != nil || len(bk.Bids) == 0 || bk.BybitU[50] == 0 {
		t.Fatalf("book %s", b)
	}
	if st, _ := post(t, base+"rates", `{"venue":"binance","symbol":"BTCUSDT","trade_rate":2,"book_rate":3}`); st != 200 {
		t.Fatal("rates")
	}
	_, _, b = get(t, base+"markets")
	if !strings.Contains(string(b), `"trade_rate":2,"book_rate":3`) {
		t.Fatalf("markets %s", b)
	}
	if st, _ := post(t, base+"skew", `{"duration":"-2s"}`); st != 200 {
		t.Fatal("skew")
	}
	_, _, b = get(t, s.BinanceRESTURL()+"/api/v3/time")
	if d := num(t, decodeObj(t, b)["serverTime"]) - time.Now().UnixMilli(); d > -1000 {
		t.Fatalf("skew -2s gave %dms", d)
	}
	_, _, b = get(t, base+"stats")
	if !strings.Contains(string(b), `"accepted":1`) {
		t.Fatalf("stats %s", b)
	}
	if st, _, _ := get(t, base+"nope"); st != 404 {
		t.Fatalf("unknown endpoint %d", st)
	}
}

// TestNeverCrashes throws garbage at every endpoint; the server must keep
// answering.
func TestNeverCrashes(t *testing.T) {
	s := startServer(t, Config{Seed: 62})
	for _, path := range []string{"/ws", "/v5/public/spot", "/v5/public/linear"} {
		ws := dial(t, s.BinanceWSURL()+path)
		for _, msg := range []string{"", "{", "[]", "null", `{"method":null}`, `{"op":5}`, `{"method":"SUBSCRIBE","params":"x","id":1}`,
			`{"method":"SUBSCRIBE","params":[1],"id":1}`, `{"op":"subscribe","args":"x"}`, `{"op":"subscribe","args":[1]}`, `{"op":"subscribe"}`,
			strings.Repeat("[", 10000)} {
			send(t, ws, msg)
			readFrame(t, ws)
		}
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2})
		readFrame(t, ws)
	}
	for _, p := range []string{"/api/v3/depth?symbol=BTCUSDT&limit=-1", "/api/v3/historicalTrades?symbol=BTCUSDT&fromId=x",
		"/api/v3/aggTrades?symbol=BTCUSDT&startTime=x", "/api/v3/nope", "/v5/market/nope",
		"/v5/public/inverse", "/admin/truth"} {
		if st, _, _ := get(t, s.BinanceRESTURL()+p); st == 200 || st >= 500 {
			t.Errorf("%s: %d", p, st)
		}
	}
	// Bybit answers parameter errors with HTTP 200 and a retCode.
	if st, _, b := get(t, s.BybitRESTURL()+"/v5/market/orderbook"); st != 200 || !strings.Contains(string(b), `"retCode":10001`) {
		t.Errorf("bybit without params: %d %s", st, b)
	}
	if st, _, _ := get(t, s.BinanceRESTURL()+"/api/v3/ping"); st != 200 {
		t.Fatal("server stopped answering")
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
