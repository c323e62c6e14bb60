package bridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// TestSilentFeedIsReplaced: the venue stops sending data on the connection
// but keeps answering pings (exsim's mute fault), so the heartbeat sees a
// healthy connection. After SilenceCheck the bridge asks the venue, finds
// data the connection did not deliver, and replaces the connection; once
// the fault is cleared, every trade is delivered exactly once and the book
// is exact. Before silence detection the connection was never replaced.
func TestSilentFeedIsReplaced(t *testing.T) {
	t.Parallel()
	for _, vc := range venueCases {
		t.Run(vc.name, func(t *testing.T) {
			t.Parallel()
			// 10 trades/s: the few seconds of silence stay within Bybit's
			// recent-trade window (60 on spot), so nothing is lost for good.
			r := startFaultRun(t, vc, exsim.Config{Markets: []exsim.MarketConfig{market(vc.venue, "BTCUSDT", 10, 20)}},
				func(c *bridge.StreamConfig) { c.SilenceCheck = 500 * time.Millisecond }, "BTCUSDT")
			id, err := r.sim.InjectFault(exsim.Fault{Kind: exsim.FaultMute, Scope: exsim.ScopeNow})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "the silent connection replaced", func() bool { return r.s.Stats().SilentFeeds >= 1 })
			if err := r.sim.ClearFault(id); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "CONNECTED again", func() bool {
				st := r.s.Stats()
				return st.Reconnects >= 1 && st.Connections[0].State == "CONNECTED"
			})
			if st, _ := r.states.last("BTCUSDT"); !strings.Contains(st.LastError, "silent") {
				t.Errorf("last error %q does not name the silent feed", st.LastError)
			}
			r.check(t, "BTCUSDT")
		})
	}
}

// TestQuietFeedIsNotSilent: a symbol with no trades and no book changes is
// quiet, not silent: the probes find nothing newer at the venue and the
// connection stays.
func TestQuietFeedIsNotSilent(t *testing.T) {
	t.Parallel()
	for _, vc := range venueCases {
		t.Run(vc.name, func(t *testing.T) {
			t.Parallel()
			r := startFaultRun(t, vc, exsim.Config{Markets: []exsim.MarketConfig{market(vc.venue, "BTCUSDT", 50, 20)}},
				func(c *bridge.StreamConfig) { c.SilenceCheck = 300 * time.Millisecond }, "BTCUSDT")
			if err := r.sim.SetRates(vc.venue, "BTCUSDT", 0, 0); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "three silence probes", func() bool { return r.s.Stats().SilenceProbes >= 3 })
			if st := r.s.Stats(); st.SilentFeeds != 0 || st.Reconnects != 0 {
				t.Fatalf("a quiet feed was taken for a silent one: %d silent, %d reconnects", st.SilentFeeds, st.Reconnects)
			}
		})
	}
}
