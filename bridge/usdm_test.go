package bridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

func usdmCase() venueCase { return venueCases[len(venueCases)-1] }

// TestUSDMRoutes: a binance-usdm stream opens its depth streams on /public
// and its aggTrade streams on /market (a connection of the wrong route gets
// nothing), and md_state keeps one entry per symbol that merges both.
func TestUSDMRoutes(t *testing.T) {
	t.Parallel()
	syms := []string{"BTCUSDT", "ETHUSDT"}
	r := startFaultRun(t, usdmCase(), exsim.Config{Markets: []exsim.MarketConfig{
		market(exsim.BinanceUSDM, syms[0], 30, 20), market(exsim.BinanceUSDM, syms[1], 30, 20),
	}}, nil, syms...)
	if n := r.s.Connections(); n != 2 {
		t.Fatalf("%d connections, want 2 (one per route)", n)
	}
	var paths []string
	for _, c := range r.sim.Conns() {
		if c.Open {
			paths = append(paths, c.Path)
		}
	}
	var public, mkt int
	for _, p := range paths {
		switch {
		case strings.HasPrefix(p, "/public/stream?streams=") && strings.Contains(p, "@depth@100ms") && !strings.Contains(p, "aggTrade"):
			public++
		case strings.HasPrefix(p, "/market/stream?streams=") && strings.Contains(p, "@aggTrade") && !strings.Contains(p, "depth"):
			mkt++
		}
	}
	if public != 1 || mkt != 1 {
		t.Fatalf("connection paths %q: want one /public depth and one /market aggTrade connection", paths)
	}
	eventually(t, 10*time.Second, "merged states", func() bool {
		states := r.s.States()
		if len(states) != len(syms) {
			return false
		}
		for _, st := range states {
			if st.State != "CONNECTED" || strings.Count(st.Connection, ",") != 1 || st.Messages == 0 {
				return false
			}
		}
		return true
	})
	r.check(t, syms...)
}

// TestUSDMFaults: on binance-usdm, gaps in the pu chain, duplicated and
// malformed frames, a stall, abrupt closes, server shutdowns and a
// shortened 24 h age cut (rotation) together: every aggregate trade
// exactly once in order, the book equal to the simulator's.
func TestUSDMFaults(t *testing.T) {
	t.Parallel()
	syms := []string{"BTCUSDT", "ETHUSDT"}
	r := startFaultRun(t, usdmCase(), exsim.Config{
		MaxConnAge: 2 * time.Second,
		Markets:    []exsim.MarketConfig{market(exsim.BinanceUSDM, syms[0], 150, 80), market(exsim.BinanceUSDM, syms[1], 60, 40)},
	}, func(c *bridge.StreamConfig) { c.RotationAge = 1200 * time.Millisecond }, syms...)
	for _, f := range []exsim.Fault{
		{Kind: exsim.FaultDuplicate, Rate: 0.05},
		{Kind: exsim.FaultGap, Rate: 0.02},
		{Kind: exsim.FaultMalformed, Mode: exsim.MalformedInvalidJSON, Rate: 0.01},
	} {
		if _, err := r.sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		time.Sleep(700 * time.Millisecond)
		f := exsim.Fault{Kind: exsim.FaultClose}
		switch i % 3 {
		case 1:
			f = exsim.Fault{Kind: exsim.FaultShutdown, Duration: exsim.Duration(500 * time.Millisecond)}
		case 2:
			f = exsim.Fault{Kind: exsim.FaultStall, Duration: exsim.Duration(400 * time.Millisecond)}
		}
		if _, err := r.sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	r.sim.ClearFaults()
	time.Sleep(500 * time.Millisecond)
	st := r.check(t, syms...)
	if st.Rotations == 0 || st.Reconnects == 0 || st.Duplicates == 0 || st.Gaps == 0 || st.Malformed == 0 {
		t.Fatalf("not every fault took effect: %+v", st)
	}
}

// TestUSDMChannelRoutes: with every channel, binance-usdm's bookTicker
// streams join the depth streams on /public, and klines, markPrice and
// forceOrder join aggTrade on /market; each channel's data age is watched
// by the connection that receives it, and md_state merges all of them.
func TestUSDMChannelRoutes(t *testing.T) {
	t.Parallel()
	const sym = "BTCUSDT"
	r := startFaultRun(t, usdmCase(), exsim.Config{KlineSpeed: 60, KlinePush: 100 * time.Millisecond, TickerPush: 20 * time.Millisecond,
		LiquidationRate: 5, Markets: []exsim.MarketConfig{market(exsim.BinanceUSDM, sym, 30, 20)}}, func(c *bridge.StreamConfig) {
		c.Channels |= bridge.ChannelBBO | bridge.ChannelTicker | bridge.ChannelLiquidation | bridge.KlineChannel(bridge.Interval1m)
	}, sym)
	if n := r.s.Connections(); n != 2 {
		t.Fatalf("%d connections, want 2 (one per route)", n)
	}
	var paths []string
	for _, c := range r.sim.Conns() {
		if c.Open {
			paths = append(paths, c.Path)
		}
	}
	want := map[string][]string{
		"/public/stream?streams=": {"btcusdt@depth@100ms", "btcusdt@bookTicker"},
		"/market/stream?streams=": {"btcusdt@aggTrade", "btcusdt@kline_1m", "btcusdt@markPrice@1s", "btcusdt@forceOrder"},
	}
	for _, p := range paths {
		for prefix, streams := range want {
			if rest, ok := strings.CutPrefix(p, prefix); ok {
				got := strings.Split(rest, "/")
				slices.Sort(got)
				exp := slices.Sorted(slices.Values(streams))
				if !slices.Equal(got, exp) {
					t.Fatalf("%s carries %q, want %q", prefix, got, exp)
				}
				delete(want, prefix)
			}
		}
	}
	if len(want) != 0 {
		t.Fatalf("connection paths %q: no connection for %v", paths, want)
	}
	eventually(t, 20*time.Second, "every channel received, in one merged md_state entry", func() bool {
		states := r.s.States()
		if len(states) != 1 || strings.Count(states[0].Connection, ",") != 1 {
			return false
		}
		for _, name := range []string{"trade", "book", "bbo", "ticker", "liquidation", "kline.1m"} {
			if c, ok := states[0].Channels[name]; !ok || c.LastMessageTS == 0 || c.Stale {
				return false
			}
		}
		return true
	})
	r.check(t, sym)
}
