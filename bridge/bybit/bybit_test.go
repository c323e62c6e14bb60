package bybit

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
		want    string // Name()
	}{
		{"zero value is spot", Config{}, false, "bybit"},
		{"linear", Config{Market: "linear"}, false, "bybit-linear"},
		{"inverse unsupported", Config{Market: "inverse"}, true, ""},
		{"bad depth", Config{BookDepth: 25}, true, ""},
		{"depth 1000", Config{BookDepth: 1000}, false, "bybit"},
		{"http WS URL", Config{WSURL: "http://127.0.0.1:1"}, true, ""},
		{"ws REST URL", Config{RESTURL: "ws://127.0.0.1:1"}, true, ""},
		{"WS URL with query", Config{WSURL: "ws://127.0.0.1:1?x=1"}, true, ""},
		{"tiny frame limit", Config{MaxFrameBytes: 10}, true, ""},
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
			if a.Name() != tt.want {
				t.Errorf("Name = %q, want %q", a.Name(), tt.want)
			}
		})
	}
}

func TestURLAndFrames(t *testing.T) {
	a := newTest(t, Config{WSURL: "ws://127.0.0.1:9/", Market: MarketLinear, BookDepth: 200})
	var topics []bridge.Topic
	for i := range 12 {
		topics = append(topics, bridge.Topic{Symbol: fmt.Sprintf("sym%dusdt", i), Channel: bridge.ChannelTrade})
	}
	topics = append(topics, bridge.Topic{Symbol: "BTCUSDT", Channel: bridge.ChannelBook},
		bridge.Topic{Symbol: "bad.symbol", Channel: bridge.ChannelTrade},
		bridge.Topic{Symbol: "ETHUSDT", Channel: bridge.ChannelTrade | bridge.ChannelBook},
		bridge.Topic{Symbol: "btcusdt", Channel: bridge.ChannelBook}) // duplicate: sent once
	if got, want := a.URL(topics), "ws://127.0.0.1:9/v5/public/linear"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	id := int64(100)
	next := func() int64 { id++; return id }
	for _, op := range []string{"subscribe", "unsubscribe"} {
		var frames [][]byte
		if op == "subscribe" {
			frames = a.SubscribeFrames(topics, next)
		} else {
			frames = a.UnsubscribeFrames(topics, next)
		}
		var all []string
		for _, f := range frames {
			var req struct {
				ReqID string   `json:"req_id"`
				Op    string   `json:"op"`
				Args  []string `json:"args"`
			}
			if err := json.Unmarshal(f, &req); err != nil {
				t.Fatalf("frame %s: %v", f, err)
			}
			if req.Op != op || req.ReqID == "" {
				t.Errorf("frame %s", f)
			}
			if len(req.Args) > MaxArgsPerRequest || len(req.Args) == 0 {
				t.Errorf("frame with %d args", len(req.Args))
			}
			all = append(all, req.Args...)
		}
		if len(frames) != 2 || len(all) != 13 {
			t.Fatalf("%s: %d frames, %d args; want 2 frames, 13 args: %q", op, len(frames), len(all), all)
		}
		if all[0] != "publicTrade.SYM0USDT" || all[12] != "orderbook.200.BTCUSDT" {
			t.Errorf("args %q", all)
		}
	}
	var first struct {
		ReqID string `json:"req_id"`
	}
	_ = json.Unmarshal(a.SubscribeFrames(topics[:1], func() int64 { return 42 })[0], &first)
	if first.ReqID != "42" {
		t.Errorf("req_id = %q, want \"42\"", first.ReqID)
	}
}

func TestOpFramesCharLimit(t *testing.T) {
	args := make([]string, 25)
	for i := range args {
		args[i] = fmt.Sprintf("%05d", i) + strings.Repeat("x", 5000-5)
	}
	frames := opFrames("subscribe", args, func() int64 { return 1 })
	n := 0
	for _, f := range frames {
		var req struct{ Args []string }
		if err := json.Unmarshal(f, &req); err != nil {
			t.Fatal(err)
		}
		chars := 0
		for _, a := range req.Args {
			chars += len(a)
		}
		if chars > MaxArgsChars || len(req.Args) > MaxArgsPerRequest {
			t.Errorf("frame with %d args, %d chars", len(req.Args), chars)
		}
		n += len(req.Args)
	}
	if n != len(args) || len(frames) != 7 {
		t.Errorf("%d args in %d frames, want 25 in 7 (4 per frame)", n, len(frames))
	}
}

func TestHeartbeatLimitsMode(t *testing.T) {
	a := newTest(t, Config{})
	hb := a.Heartbeat()
	if hb.Interval != 20*time.Second || hb.ClientPing == nil {
		t.Fatalf("Heartbeat = %+v", hb)
	}
	if got := string(hb.ClientPing(17)); got != `{"req_id":"17","op":"ping"}` {
		t.Errorf("ping = %s", got)
	}
	lim := a.Limits()
	if lim.MaxArgsPerRequest != 10 || lim.MaxRequestArgsChars != 21000 || lim.ConnectsPerWindow != 500 ||
		lim.ConnectWindow != 5*time.Minute || lim.MaxConnectionsPerIP != 20 || lim.MaxTopicsPerConn != 250 ||
		lim.MaxFrameBytes != DefaultMaxFrameBytes || lim.RecommendedBookDepth != 50 || lim.MaxConnectionAge != 0 {
		t.Errorf("Limits = %+v", lim)
	}
	if a.BookMode() != bridge.BookStreamSnapshot {
		t.Errorf("BookMode = %v", a.BookMode())
	}
	// 250 topics of the longest arg stay under the per-connection budget.
	if longest := len("orderbook.1000.") + bridge.MaxIdentLen; MaxTopicsPerConn*longest > MaxArgsChars {
		t.Errorf("MaxTopicsPerConn %d * %d > %d", MaxTopicsPerConn, longest, MaxArgsChars)
	}
}
