package bridge_test

import (
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// bookDepthOf is the number of levels per side the venue's stream book
// carries in these tests (0 = the whole book).
func bookDepthOf(v exsim.Venue) int {
	if v == exsim.Binance || v == exsim.BinanceUSDM {
		return 0
	}
	return 50 // bybit orderbook.50 (the adapter's default)
}

// TestConformance is the adapter conformance suite, run for every venue
// with the real adapter against the simulator: subscribe, receive, decode,
// and reconnect without losing or duplicating anything.
func TestConformance(t *testing.T) {
	for _, vc := range venueCases {
		t.Run(vc.name, func(t *testing.T) {
			t.Parallel()
			symbols := []string{"BTCUSDT", "ETHUSDT"}
			var markets []exsim.MarketConfig
			for _, s := range symbols {
				markets = append(markets, exsim.MarketConfig{Venue: vc.venue, Symbol: s, TradeRate: 40, BookRate: 20})
			}
			sim := startSim(t, exsim.Config{Markets: markets})
			ex := vc.make(t, sim, nil)
			col := newCollector()
			states := &stateLog{}
			cfg := testStreamConfig(ex, bridge.ChannelTrade|bridge.ChannelBook, symbols...)
			cfg.StateSink = states
			s, err := bridge.NewStream(cfg, col, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			stop := runStream(t, s)

			// Subscribe and receive.
			eventually(t, 10*time.Second, "trades and book events for every symbol", func() bool {
				for _, sym := range symbols {
					if len(col.tradesOf(ex.Name(), sym)) < 10 || len(col.booksOf(ex.Name(), sym)) < 5 {
						return false
					}
				}
				return true
			})
			if st, ok := states.last("BTCUSDT"); !ok || st.State != "CONNECTED" {
				t.Fatalf("state %+v, want CONNECTED", st)
			}

			// Decode: every field of the wire contract is filled.
			for _, sym := range symbols {
				for i, ev := range col.tradesOf(ex.Name(), sym) {
					if ev.Exchange != ex.Name() || ev.Symbol != sym || ev.ID == "" || ev.Price == "" || ev.Qty == "" ||
						ev.Side == bridge.SideUnknown || ev.TS <= 0 || ev.RecvTS <= 0 {
						t.Fatalf("%s trade %d incomplete: %+v", sym, i, ev)
					}
					if _, err := bridge.DecodeJSON(ev.AppendJSON(nil)); err != nil {
						t.Fatalf("%s trade %d does not round-trip: %v", sym, i, err)
					}
				}
				books := col.booksOf(ex.Name(), sym)
				if books[0].Type != bridge.EventBookSnapshot {
					t.Fatalf("%s: first book event is %s, want a snapshot", sym, books[0].Type)
				}
				for i, ev := range books {
					if ev.Exchange != ex.Name() || ev.Symbol != sym || ev.LastID <= 0 || ev.TS <= 0 {
						t.Fatalf("%s book event %d incomplete: %+v", sym, i, ev)
					}
				}
			}

			// Reconnect loss-free: cut every connection abruptly.
			if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Venue: vc.venue}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "a reconnect", func() bool {
				st := s.Stats()
				return st.Reconnects >= 1 && st.Connections[0].State == "CONNECTED"
			})
			time.Sleep(300 * time.Millisecond)

			for _, sym := range symbols {
				gen := quiesce(t, sim, col, ex.Name(), vc.venue, sym)
				assertTradesExactlyOnce(t, tradeOrdinals(t, sim, vc.venue, sym, col.tradesOf(ex.Name(), sym)), gen.Last)
				assertFinalBook(t, sim, col, ex.Name(), vc.venue, sym, bookDepthOf(vc.venue))
			}
			st := s.Stats()
			if st.Missing != 0 || st.Malformed != 0 {
				t.Fatalf("stats %+v: nothing may be missing or malformed", st)
			}
			t.Logf("%s stats: received %d emitted %d duplicates %d gaps %d snapshots %d backfilled %d reconnects %d",
				vc.name, st.Received, st.Emitted, st.Duplicates, st.Gaps, st.Snapshots, st.Backfilled, st.Reconnects)

			stop()
			for _, sym := range symbols {
				if st, _ := states.last(sym); st.State != "DISCONNECTED" {
					t.Fatalf("%s: final state %q, want DISCONNECTED", sym, st.State)
				}
			}
		})
	}
}
