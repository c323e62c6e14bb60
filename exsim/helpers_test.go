package exsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// idleMarkets are markets that only move when a test calls Generate.
func idleMarkets() []MarketConfig {
	return []MarketConfig{
		{Venue: Binance, Symbol: "BTCUSDT"},
		{Venue: Binance, Symbol: "ETHUSDT"},
		{Venue: BybitSpot, Symbol: "BTCUSDT"},
		{Venue: BybitLinear, Symbol: "BTCUSDT"},
	}
}

// startServer starts a simulator for a test; cfg.Markets defaults to
// idleMarkets and the inbound limit is lifted unless set.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer with a hook that runs before Start (to
// set test seams such as the clock).
func startServerWith(t testing.TB, cfg Config, before func(*Server)) *Server {
	t.Helper()
	if cfg.Markets == nil {
		cfg.Markets = idleMarkets()
	}
	if cfg.InboundLimit == 0 {
		cfg.InboundLimit = -1
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if before != nil {
		before(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// readFrame reads one text frame within 5 s.
func readFrame(t testing.TB, ws *websocket.Conn) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		t.Fatalf("message type %d, want text", mt)
	}
	return b
}

// decodeObj decodes a JSON object keeping numbers exact.
func decodeObj(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func readObj(t testing.TB, ws *websocket.Conn) map[string]any {
	t.Helper()
	return decodeObj(t, readFrame(t, ws))
}

// expectNoFrame asserts that nothing arrives for d.
func expectNoFrame(t testing.TB, ws *websocket.Conn, d time.Duration) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(d))
	if _, b, err := ws.ReadMessage(); err == nil {
		t.Fatalf("unexpected frame %s", b)
	}
}

// expectClosed asserts the connection ends within d.
func expectClosed(t testing.TB, ws *websocket.Conn, d time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_ = ws.SetReadDeadline(deadline)
		_, _, err := ws.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v", d)
			}
			return err
		}
	}
}

func num(t testing.TB, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer", v)
	}
	return i
}

func str(t testing.TB, v any) string {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v (%T) is not a string", v, v)
	}
	return s
}

// keys asserts that m has exactly the given keys (case-sensitive).
func keys(t testing.TB, m map[string]any, want ...string) {
	t.Helper()
	if len(m) != len(want) {
		t.Fatalf("keys %v, want %v", mapKeys(m), want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Fatalf("missing key %q in %v", k, mapKeys(m))
		}
	}
}

func mapKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// get performs a GET and returns status, headers and body.
func get(t testing.TB, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func post(t testing.TB, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func send(t testing.TB, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// connID returns the id of the only open connection on venue v.
func connIDs(s *Server, v Venue) []uint64 {
	var ids []uint64
	for _, c := range s.Conns() {
		if c.Open && c.Venue == v {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
