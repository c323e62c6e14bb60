package bridge_test

import (
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// TestBybitUnrecoverableTradesAreCounted is issue 19's third failure: an
// outage longer than Bybit's recent-trade window (60 trades on spot) loses
// trades that no backfill can return. They used to be a WARN line only;
// they must be counted as missing (at least 1: Bybit's ids are not
// consecutive, so the number is unknown) in Stats and in the reported
// state, like every other loss. What is delivered stays exactly once, in
// order.
func TestBybitUnrecoverableTradesAreCounted(t *testing.T) {
	t.Parallel()
	r := startFaultRun(t, venueCases[1], exsim.Config{
		Markets: []exsim.MarketConfig{market(exsim.BybitSpot, "BTCUSDT", 200, 0)},
	}, func(c *bridge.StreamConfig) { c.Channels = bridge.ChannelTrade }, "BTCUSDT")
	before := len(r.col.tradesOf("bybit", "BTCUSDT"))
	id, err := r.sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Scope: exsim.ScopeAll})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the venue to generate far more than the window while the
	// bridge cannot connect (on the simulator's own count, not the clock).
	gen0, err := r.sim.Generated(exsim.BybitSpot, "BTCUSDT", exsim.SeriesTrade)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "300 trades generated during the outage", func() bool {
		g, err := r.sim.Generated(exsim.BybitSpot, "BTCUSDT", exsim.SeriesTrade)
		return err == nil && g.Last-gen0.Last >= 300
	})
	if err := r.sim.ClearFault(id); err != nil {
		t.Fatal(err)
	}
	gen := quiesce(t, r.sim, r.col, "bybit", exsim.BybitSpot, "BTCUSDT")
	ords := tradeOrdinals(t, r.sim, exsim.BybitSpot, "BTCUSDT", r.col.tradesOf("bybit", "BTCUSDT"))
	for i := 1; i < len(ords); i++ {
		if ords[i] <= ords[i-1] {
			t.Fatalf("trade %d (%d) after %d: duplicate or out of order", i, ords[i], ords[i-1])
		}
	}
	lost := (gen.Last - ords[0] + 1) - int64(len(ords))
	st := r.s.Stats()
	t.Logf("delivered %d (%d before the outage), lost %d, counted missing %d, backfilled %d", len(ords), before, lost, st.Missing, st.Backfilled)
	if lost <= 0 {
		t.Fatalf("nothing lost: the outage did not outlast the recent-trade window (test setup)")
	}
	if st.Missing == 0 {
		t.Fatalf("%d trades lost beyond the recent-trade window and none counted missing", lost)
	}
	eventually(t, 5*time.Second, "the missing count in the reported state", func() bool {
		s, _ := r.states.last("BTCUSDT")
		return s.Missing == st.Missing
	})
}
