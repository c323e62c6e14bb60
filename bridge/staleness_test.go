package bridge_test

import (
	"slices"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// TestStaleChannel: trades stop while the book keeps moving. The trade
// channel goes stale after its own (shorter) threshold, raising an alert,
// and md_state shows it per channel; the book stays fresh under the
// stream-wide threshold. When trades resume the channel is fresh again.
func TestStaleChannel(t *testing.T) {
	t.Parallel()
	for _, vc := range venueCases {
		t.Run(vc.name, func(t *testing.T) {
			t.Parallel()
			const tradeAfter = time.Second
			r := startFaultRun(t, vc, exsim.Config{Markets: []exsim.MarketConfig{market(vc.venue, "BTCUSDT", 50, 50)}},
				func(c *bridge.StreamConfig) {
					c.Stale = bridge.StaleConfig{After: time.Hour, Channels: map[bridge.Channel]time.Duration{bridge.ChannelTrade: tradeAfter}}
				}, "BTCUSDT")
			if err := r.sim.SetRates(vc.venue, "BTCUSDT", 0, 50); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "the trade channel stale", func() bool {
				return slices.Equal(r.s.StaleChannels(), []string{"BTCUSDT/trade"})
			})
			// Before the rate change a slow machine may have seen a second-long
			// gap already: at least one alert, the same count in md_state.
			alerts := r.s.Stats().StaleAlerts
			st := r.s.States()[0]
			tr, bk := st.Channels["trade"], st.Channels["book"]
			if alerts < 1 || !tr.Stale || tr.StaleAfterNS != int64(tradeAfter) || tr.StaleAlerts != alerts || tr.LastMessageTS == 0 || tr.AgeNS < int64(tradeAfter) {
				t.Errorf("trade channel %+v (stream alerts %d): want stale after %s, alerted, a last message older than the threshold", tr, alerts, tradeAfter)
			}
			if bk.Stale || bk.StaleAfterNS != int64(time.Hour) || bk.LastMessageTS == 0 {
				t.Errorf("book channel %+v: want fresh, threshold 1h", bk)
			}
			if err := r.sim.SetRates(vc.venue, "BTCUSDT", 50, 50); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "the trade channel fresh again", func() bool { return len(r.s.StaleChannels()) == 0 })
		})
	}
}
