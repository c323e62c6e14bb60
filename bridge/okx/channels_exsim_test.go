package okx

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// TestSimSwapChannelsSharded: two swaps on two connections, each with bbo,
// ticker and liquidation, while the venue-wide liquidation-orders stream
// also carries a swap nobody subscribed: every liquidation reaches its own
// symbol only and is the simulator's, each ticker carries all four parts,
// nothing counts as malformed; then an OKX seqId reset (maintenance) does
// not stop the bbo: lower update ids with newer times are published.
func TestSimSwapChannelsSharded(t *testing.T) {
	c := okxCase{MarketSwap, exsim.OKXSwap, []string{"BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"}}
	sim := startOKXSim(t, exsim.Config{TickerPush: 50 * time.Millisecond, LiquidationRate: 10}, c, 10, 30)
	a := simOKX(t, sim, MarketSwap)
	col := newCollector()
	subscribed := c.syms[:2]
	cfg := streamConfig(a, bridge.ChannelBBO|bridge.ChannelTicker|bridge.ChannelLiquidation, subscribed...)
	cfg.MaxTopicsPerConn = 3 // one symbol per connection
	s, err := bridge.NewStream(cfg, col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	stop := runStream(t, s)
	count := func(sym string, typ bridge.EventType) (n int) {
		for _, ev := range col.booksOf(sym) {
			if ev.Type == typ {
				n++
			}
		}
		return n
	}
	eventually(t, 20*time.Second, "liquidations, full tickers and bbo of both swaps", func() bool {
		for _, sym := range subscribed {
			full := false
			for _, ev := range col.booksOf(sym) {
				if tk := ev.Ticker(); ev.Type == bridge.EventTicker && tk.MarkPrice != "" && tk.IndexPrice != "" &&
					tk.FundingRate != "" && tk.OpenInterest != "" && tk.NextFundingTime > 0 {
					full = true
				}
			}
			if !full || count(sym, bridge.EventLiquidation) < 3 || count(sym, bridge.EventBBO) < 3 {
				return false
			}
		}
		return true
	})
	if st := s.Stats(); len(st.Connections) != 2 || st.Malformed != 0 {
		t.Fatalf("connections %d, malformed %d", len(st.Connections), st.Malformed)
	}
	if n := len(col.booksOf("SOL-USDT-SWAP")); n != 0 {
		t.Fatalf("%d events of an instrument not subscribed", n)
	}
	for _, sym := range subscribed {
		truth, err := sim.Liquidations(exsim.OKXSwap, sym)
		if err != nil {
			t.Fatal(err)
		}
		known := map[string]int{}
		for _, l := range truth {
			side := "buy"
			if l.Long {
				side = "sell"
			}
			known[fmt.Sprintf("%d %s %s %s", l.TS, side, l.Price, l.Qty)]++
		}
		ids := map[string]bool{}
		for _, ev := range col.booksOf(sym) {
			if ev.Type != bridge.EventLiquidation {
				continue
			}
			l := ev.Liquidation()
			if int(l.N) >= known[fmt.Sprintf("%d %s %s %s", ev.TS, l.Side, l.Price, l.Qty)] {
				t.Fatalf("%s: liquidation %+v at %d is not the simulator's", sym, l, ev.TS)
			}
			if ids[ev.MsgID()] {
				t.Fatalf("%s: %s twice", sym, ev.MsgID())
			}
			ids[ev.MsgID()] = true
		}
	}

	// Maintenance: the books seqId (and so bbo-tbt's) restarts lower.
	const sym = "BTC-USDT-SWAP"
	var before int64
	for _, ev := range col.booksOf(sym) {
		if ev.Type == bridge.EventBBO {
			before = max(before, ev.LastID)
		}
	}
	if err := sim.OKXSeqReset(exsim.OKXSwap, sym); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bbo after the seqId reset", func() bool {
		n := 0
		for _, ev := range col.booksOf(sym) {
			if ev.Type == bridge.EventBBO && ev.LastID < before {
				n++
			}
		}
		return n >= 3
	})
	stop()
}

// TestSimTradesWithKlines: trades and klines of one stream take two routes:
// trades alone on a /business connection (trades-all, consecutive ids),
// klines on their own /business connection; both arrive, the trades
// exactly once and in id order, the closed bars contiguous.
func TestSimTradesWithKlines(t *testing.T) {
	c := okxCase{MarketSpot, exsim.OKXSpot, []string{"BTC-USDT"}}
	sim := startOKXSim(t, exsim.Config{KlineSpeed: 60, KlinePush: 100 * time.Millisecond}, c, 40, 10)
	a := simOKX(t, sim, MarketSpot)
	col := newCollector()
	s, err := bridge.NewStream(streamConfig(a, bridge.ChannelTrade|bridge.KlineChannel(bridge.Interval1m), c.syms...), col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	stop := runStream(t, s)
	const sym = "BTC-USDT"
	closed := func() (bars []bridge.Bar) {
		for _, ev := range col.booksOf(sym) {
			if b := ev.Bar(); ev.Type == bridge.EventKline && b.Closed {
				bars = append(bars, b)
			}
		}
		return bars
	}
	eventually(t, 20*time.Second, "trades and three closed bars", func() bool {
		return len(col.tradesOf(sym)) >= 50 && len(closed()) >= 3
	})
	open := 0
	for _, cn := range sim.Conns() {
		if cn.Open {
			open++
			if !strings.HasSuffix(cn.Path, "/ws/v5/business") {
				t.Fatalf("connection on %s", cn.Path)
			}
		}
	}
	if open != 2 {
		t.Fatalf("%d open connections, want 2 (trades-all, candles)", open)
	}
	tr := col.tradesOf(sym)
	for i := 1; i < len(tr); i++ {
		if tr[i].Seq != tr[i-1].Seq+1 {
			t.Fatalf("trade %d: seq %d after %d", i, tr[i].Seq, tr[i-1].Seq)
		}
	}
	bars := closed()
	for i := 1; i < len(bars); i++ {
		if bars[i].OpenTime != bars[i-1].OpenTime+int64(time.Minute) {
			t.Fatalf("bar %d opens at %d after %d", i, bars[i].OpenTime, bars[i-1].OpenTime)
		}
	}
	for _, ev := range col.booksOf(sym) {
		if ev.Type == bridge.EventKline && !ev.Bar().Closed {
			t.Fatal("an open-bar update without +open")
		}
	}
	stop()
}
