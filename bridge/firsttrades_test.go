package bridge_test

import (
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/exsim"
)

// TestBybitTradesLostBeforeTheFirstAreBackfilled is issue 15's product
// side: a stream's first connection is lost before the stream emitted any
// trade, and the trades the venue sent on it never arrived (a reset
// discards what the kernel had not delivered; here the simulator mutes
// them). Bybit ids are not consecutive: no later trade reveals them, and
// the recent-trades backfill after the reconnect is the only way back. It
// used to run only once a trade had been emitted (it had nothing to start
// from), so a restarted replica's first trades could vanish without a
// count; it now starts from when the first connection opened.
func TestBybitTradesLostBeforeTheFirstAreBackfilled(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.BybitSpot, "BTCUSDT", 0, 0)}})
	ex := newBybit(bybit.MarketSpot)(t, sim, nil)
	col := newCollector()
	s, err := bridge.NewStream(testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT"), col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	var conn uint64
	eventually(t, 10*time.Second, "the first connection subscribed", func() bool {
		for _, c := range sim.Conns() {
			if c.Open && len(c.Subscriptions) > 0 {
				conn = c.ID
				return true
			}
		}
		return false
	})
	mute, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultMute, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	before, err := sim.Generated(exsim.BybitSpot, "BTCUSDT", exsim.SeriesTrade)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Generate(exsim.BybitSpot, "BTCUSDT", 5, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Conn: conn}); err != nil {
		t.Fatal(err)
	}
	if err := sim.ClearFault(mute); err != nil {
		t.Fatal(err)
	}
	if n := len(col.tradesOf("bybit", "BTCUSDT")); n != 0 {
		t.Fatalf("%d trades emitted before the close (test setup: none must arrive)", n)
	}
	gen := quiesce(t, sim, col, "bybit", exsim.BybitSpot, "BTCUSDT")
	ords := tradeOrdinals(t, sim, exsim.BybitSpot, "BTCUSDT", col.tradesOf("bybit", "BTCUSDT"))
	// Trades older than the subscription may come too (the margin of the
	// clock offset); the five lost ones must, each once, in order.
	var lost []int64
	for _, o := range ords {
		if o > before.Last {
			lost = append(lost, o)
		}
	}
	if before.Last+5 != gen.Last {
		t.Fatalf("generated up to %d, want %d", gen.Last, before.Last+5)
	}
	assertTradesExactlyOnce(t, lost, gen.Last)
	if lost[0] != before.Last+1 {
		t.Fatalf("first trade after the subscription %d, want %d", lost[0], before.Last+1)
	}
	if st := s.Stats(); st.Backfilled < 5 {
		t.Fatalf("backfilled %d, want at least 5", st.Backfilled)
	}
}
