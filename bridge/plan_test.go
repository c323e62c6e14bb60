package bridge

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func syms(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("S%04d", i)
	}
	return out
}

func TestPlanShards(t *testing.T) {
	tests := []struct {
		name     string
		symbols  int
		ch       Channel
		lim      planLimits
		wantConn int
		wantOver bool
		maxTopic int
	}{
		{name: "one connection", symbols: 3, ch: ChannelTrade | ChannelBook, lim: planLimits{perConn: 1024}, wantConn: 1, maxTopic: 6},
		{name: "1000 symbols x 2 channels on Binance", symbols: 1000, ch: ChannelTrade | ChannelBook, lim: planLimits{perConn: 1024, maxConns: 5, venueMax: 1024}, wantConn: 2, maxTopic: 1000},
		{name: "odd topic cap rounds to whole symbols", symbols: 3, ch: ChannelTrade | ChannelBook, lim: planLimits{perConn: 5}, wantConn: 2, maxTopic: 4},
		{name: "configured cap below the venue's", symbols: 100, ch: ChannelTrade, lim: planLimits{perConn: 10, venueMax: 1024}, wantConn: 10, maxTopic: 10},
		{name: "connection cap raises topics per connection", symbols: 100, ch: ChannelTrade, lim: planLimits{perConn: 10, maxConns: 4, venueMax: 1024}, wantConn: 4, maxTopic: 25},
		{name: "cap impossible within the venue limit: more connections, warn", symbols: 3000, ch: ChannelTrade | ChannelBook, lim: planLimits{perConn: 1024, maxConns: 5, venueMax: 1024}, wantConn: 6, wantOver: true, maxTopic: 1024},
		{name: "argument characters bound a connection", symbols: 10, ch: ChannelTrade, lim: planLimits{perConn: 250, maxChars: 100, cost: func(string) int { return 30 }}, wantConn: 4, maxTopic: 3},
		{name: "topic cap smaller than a symbol's topics", symbols: 2, ch: ChannelTrade | ChannelBook, lim: planLimits{perConn: 1}, wantConn: 2, maxTopic: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := syms(tt.symbols)
			plans, over := planShards(in, tt.ch, tt.lim)
			if len(plans) != tt.wantConn {
				t.Fatalf("%d connections, want %d", len(plans), tt.wantConn)
			}
			if over != tt.wantOver {
				t.Errorf("over %v, want %v", over, tt.wantOver)
			}
			var all []string
			seenSym := map[string]int{}
			for i, p := range plans {
				if len(p.topics) > tt.maxTopic {
					t.Errorf("connection %d carries %d topics, want <= %d", i, len(p.topics), tt.maxTopic)
				}
				if len(p.topics) != len(p.symbols)*len(topicsOf("x", tt.ch)) {
					t.Errorf("connection %d: %d topics for %d symbols", i, len(p.topics), len(p.symbols))
				}
				for _, tp := range p.topics {
					if j, ok := seenSym[tp.Symbol]; ok && j != i {
						t.Errorf("symbol %s split over connections %d and %d", tp.Symbol, j, i)
					}
					seenSym[tp.Symbol] = i
				}
				all = append(all, p.symbols...)
			}
			if len(all) != len(in) {
				t.Fatalf("%d symbols planned, want %d", len(all), len(in))
			}
			for i := range in {
				if all[i] != in[i] {
					t.Fatalf("symbol %d is %s, want %s (order kept)", i, all[i], in[i])
				}
			}
		})
	}
}

func TestPacer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(5)
		ctx := context.Background()
		start := time.Now()
		var sent []time.Duration
		for range 12 {
			if err := p.wait(ctx); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, time.Since(start))
		}
		// No more than 5 messages in any window of one second.
		for i := 5; i < len(sent); i++ {
			if d := sent[i] - sent[i-5]; d < time.Second {
				t.Fatalf("messages %d and %d only %s apart: more than 5 per second", i-5, i, d)
			}
		}
		if sent[4] != 0 {
			t.Fatalf("first 5 messages delayed (%s): the limit allows a burst of 5", sent[4])
		}
	})
}

func TestPacerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1)
		ctx, cancel := context.WithCancel(context.Background())
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := p.wait(ctx); err == nil {
			t.Fatal("wait after cancel returned nil")
		}
	})
	if newPacer(0) != nil {
		t.Fatal("pacer for no limit is not nil")
	}
	var p *pacer
	if err := p.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConnectGateStaggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 connects per 10 s, burst 1, 100 ms spacing.
		g, err := newConnectGate(Limits{ConnectsPerWindow: 10, ConnectWindow: 10 * time.Second}, 100*time.Millisecond, true)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var at []time.Duration
		for range 4 {
			if err := g.wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			at = append(at, time.Since(start))
		}
		for i := 1; i < len(at); i++ {
			if d := at[i] - at[i-1]; d < 900*time.Millisecond {
				t.Fatalf("connects %d and %d %s apart; the bucket allows one per second", i-1, i, d)
			}
		}
	})
	synctest.Test(t, func(t *testing.T) {
		g, err := newConnectGate(Limits{}, 250*time.Millisecond, false)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for range 5 {
			if err := g.wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("5 connects with 250ms spacing took %s, want 1s", d)
		}
	})
}

func TestPingPlan(t *testing.T) {
	bybitPing := func(int64) []byte { return []byte("ping") }
	tests := []struct {
		name      string
		hb        Heartbeat
		timeout   time.Duration
		wantEvery time.Duration
		wantApp   bool
	}{
		{"bybit default", Heartbeat{ClientPing: bybitPing, Interval: 20 * time.Second}, 90 * time.Second, 20 * time.Second, true},
		{"bybit short timeout pings faster", Heartbeat{ClientPing: bybitPing, Interval: 20 * time.Second}, 3 * time.Second, time.Second, true},
		{"binance server pings suffice", Heartbeat{Interval: 20 * time.Second}, 90 * time.Second, 0, false},
		{"binance default timeout: websocket pings", Heartbeat{Interval: 20 * time.Second}, 30 * time.Second, 10 * time.Second, false},
		{"no stale detection", Heartbeat{ClientPing: bybitPing, Interval: 20 * time.Second}, 0, 20 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ping, every := pingPlan(tt.hb, tt.timeout)
			if every != tt.wantEvery || (ping != nil) != tt.wantApp {
				t.Fatalf("pingPlan = (app %v, %s), want (app %v, %s)", ping != nil, every, tt.wantApp, tt.wantEvery)
			}
		})
	}
}
