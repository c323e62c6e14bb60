package binance

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero value", Config{}, false},
		{"depth 5000", Config{BookDepth: 5000}, false},
		{"depth 5001", Config{BookDepth: 5001}, true},
		{"depth negative", Config{BookDepth: -1}, true},
		{"depth speed 1000ms", Config{DepthSpeed: "1000ms"}, false},
		{"depth speed bad", Config{DepthSpeed: "10ms"}, true},
		{"https WS URL", Config{WSURL: "https://stream.binance.com"}, true},
		{"wss REST URL", Config{RESTURL: "wss://api.binance.com"}, true},
		{"REST URL without host", Config{RESTURL: "http://"}, true},
		{"tiny URL budget", Config{MaxURLBytes: 100}, true},
		{"tiny body limit", Config{MaxBodyBytes: 100}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg, nil)
			if tt.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Name() != "binance" || a.Limiter() == nil {
				t.Errorf("Name %q, Limiter %v", a.Name(), a.Limiter())
			}
		})
	}
}

func TestURL(t *testing.T) {
	topics := []bridge.Topic{
		{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade},
		{Symbol: "btcusdt", Channel: bridge.ChannelBook},
		{Symbol: "bad.sym", Channel: bridge.ChannelTrade},
		{Symbol: "ETHUSDT", Channel: bridge.ChannelTrade | bridge.ChannelBook},
		{Symbol: "ETHUSDT", Channel: bridge.ChannelTrade},
		{Symbol: "ethusdt", Channel: bridge.ChannelTrade}, // duplicate: carried once
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", Config{WSURL: "ws://127.0.0.1:9"}, "ws://127.0.0.1:9/stream?streams=btcusdt@trade/btcusdt@depth@100ms/ethusdt@trade"},
		{"trailing slash", Config{WSURL: "ws://127.0.0.1:9/"}, "ws://127.0.0.1:9/stream?streams=btcusdt@trade/btcusdt@depth@100ms/ethusdt@trade"},
		{"1000ms and microseconds", Config{WSURL: "wss://x.test", DepthSpeed: "1000ms", MicrosecondTimestamps: true},
			"wss://x.test/stream?timeUnit=MICROSECOND&streams=btcusdt@trade/btcusdt@depth/ethusdt@trade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTest(t, tt.cfg)
			if got := a.URL(topics); got != tt.want {
				t.Errorf("URL = %q\nwant  %q", got, tt.want)
			}
			if f := a.SubscribeFrames(topics, func() int64 { return 1 }); f != nil {
				t.Errorf("SubscribeFrames = %q, want nil", f)
			}
		})
	}
	a := newTest(t, Config{WSURL: "ws://127.0.0.1:9"})
	if got := a.URL(nil); got != "ws://127.0.0.1:9/stream" {
		t.Errorf("URL(nil) = %q", got)
	}
}

// TestURLOverflowToSubscribe: topics that do not fit in MaxURLBytes are
// subscribed with SUBSCRIBE frames; every topic is in exactly one place.
func TestURLOverflowToSubscribe(t *testing.T) {
	a := newTest(t, Config{WSURL: "ws://127.0.0.1:9", MaxURLBytes: 1000})
	var topics []bridge.Topic
	for i := range 1024 {
		topics = append(topics, bridge.Topic{Symbol: fmt.Sprintf("SYM%04dUSDT", i), Channel: bridge.ChannelTrade})
	}
	u := a.URL(topics)
	if len(u) > 1000 {
		t.Fatalf("URL has %d bytes, limit 1000", len(u))
	}
	seen := map[string]int{}
	for _, s := range strings.Split(strings.TrimPrefix(u, "ws://127.0.0.1:9/stream?streams="), "/") {
		seen[s]++
	}
	id := int64(0)
	frames := a.SubscribeFrames(topics, func() int64 { id++; return id })
	for i, f := range frames {
		var req struct {
			Method string   `json:"method"`
			Params []string `json:"params"`
			ID     int64    `json:"id"`
		}
		if err := json.Unmarshal(f, &req); err != nil {
			t.Fatalf("frame %s: %v", f, err)
		}
		if req.Method != "SUBSCRIBE" || req.ID != int64(i+1) || len(req.Params) > subscribeChunk {
			t.Errorf("frame %d: method %q id %d, %d params", i, req.Method, req.ID, len(req.Params))
		}
		for _, p := range req.Params {
			seen[p]++
		}
	}
	if len(seen) != 1024 {
		t.Fatalf("%d distinct streams, want 1024", len(seen))
	}
	for s, n := range seen {
		if n != 1 {
			t.Errorf("stream %s subscribed %d times", s, n)
		}
	}
	un := a.UnsubscribeFrames(topics[:3], func() int64 { return 9 })
	if len(un) != 1 || string(un[0]) != `{"method":"UNSUBSCRIBE","params":["sym0000usdt@trade","sym0001usdt@trade","sym0002usdt@trade"],"id":9}` {
		t.Errorf("UnsubscribeFrames = %q", un)
	}
}

func TestHeartbeatLimitsMode(t *testing.T) {
	a := newTest(t, Config{})
	if hb := a.Heartbeat(); hb.ClientPing != nil || hb.Interval != 20*time.Second {
		t.Errorf("Heartbeat = %+v", hb)
	}
	want := bridge.Limits{MaxTopicsPerConn: 1024, MaxInboundPerSecond: 5, MaxConnectionAge: 24 * time.Hour,
		ConnectsPerWindow: 300, ConnectWindow: 5 * time.Minute, MaxConnectionsPerIP: 5,
		MaxFrameBytes: DefaultMaxFrameBytes, RecommendedBookDepth: 1000}
	if got := a.Limits(); got != want {
		t.Errorf("Limits = %+v\nwant %+v", got, want)
	}
	if a.BookMode() != bridge.BookRESTSnapshot {
		t.Errorf("BookMode = %v", a.BookMode())
	}
}

func TestDepthWeight(t *testing.T) {
	for _, c := range []struct{ limit, w int }{{1, 5}, {100, 5}, {101, 25}, {500, 25}, {501, 50}, {1000, 50}, {1001, 250}, {5000, 250}} {
		if got := depthWeight(c.limit); got != c.w {
			t.Errorf("depthWeight(%d) = %d, want %d", c.limit, got, c.w)
		}
	}
}
