package bridge_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/okx"
	"github.com/qldata/mdbridge/exsim"
)

// chanCollector keeps every event of the channels beyond trade and book, in
// the order published.
type chanCollector struct {
	mu  sync.Mutex
	evs map[bridge.EventType][]bridge.Event
}

func newChanCollector() *chanCollector {
	return &chanCollector{evs: map[bridge.EventType][]bridge.Event{}}
}

func (c *chanCollector) Publish(_ context.Context, evs []bridge.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		c.evs[ev.Type] = append(c.evs[ev.Type], ev)
	}
	return nil
}

func (c *chanCollector) of(t bridge.EventType) []bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bridge.Event(nil), c.evs[t]...)
}

// closedBars returns the closed klines of iv.
func (c *chanCollector) closedBars(iv bridge.Interval) []bridge.Bar {
	var out []bridge.Bar
	for _, ev := range c.of(bridge.EventKline) {
		if b := ev.Bar(); b.Closed && b.Interval == iv {
			out = append(out, b)
		}
	}
	return out
}

// channelsOf is what the conformance test subscribes per market.
func channelsOf(v exsim.Venue) bridge.Channel {
	c := bridge.ChannelBBO | bridge.KlineOpenChannel(bridge.Interval1m)
	if v == exsim.BybitLinear || v == exsim.BinanceUSDM || v == exsim.OKXSwap {
		c |= bridge.ChannelTicker | bridge.ChannelLiquidation
	}
	return c
}

// okxChanCases are the OKX markets of the channel conformance test.
var okxChanCases = []venueCase{
	{"okx", exsim.OKXSpot, newOKX(okx.MarketSpot)},
	{"okx-swap", exsim.OKXSwap, newOKX(okx.MarketSwap)},
}

func newOKX(market string) func(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
	return func(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
		t.Helper()
		a, err := okx.New(okx.Config{Market: market, WSURL: sim.OKXWSURL(), RESTURL: sim.OKXRESTURL(), HTTPClient: hc}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

// chanSymbol is the symbol the channel conformance test uses on v, and
// chanFaultVenue the venue its faults name (OKX serves both of its markets
// on one endpoint, whose connections the simulator files under okx).
func chanSymbol(v exsim.Venue) string {
	switch v {
	case exsim.OKXSpot:
		return "BTC-USDT"
	case exsim.OKXSwap:
		return "BTC-USDT-SWAP"
	}
	return "BTCUSDT"
}

func chanFaultVenue(v exsim.Venue) exsim.Venue {
	if v == exsim.OKXSwap {
		return exsim.OKXSpot
	}
	return v
}

// TestChannelConformance runs every (market, channel) pair against the
// simulator with faults: duplicated frames throughout, then a mute during
// which 1m bars close (at kline speed 60) and an abrupt disconnect. Closed
// bars must arrive exactly once, contiguous across the outage (filled from
// REST) and equal to the simulator's; bbo update ids strictly increase;
// the ticker state after deltas equals the simulator's; liquidations are
// the simulator's, each once.
func TestChannelConformance(t *testing.T) {
	for _, vc := range append(slices.Clone(venueCases), okxChanCases...) {
		t.Run(vc.name, func(t *testing.T) {
			t.Parallel()
			sym, fv := chanSymbol(vc.venue), chanFaultVenue(vc.venue)
			sim := startSim(t, exsim.Config{
				Markets:    []exsim.MarketConfig{{Venue: vc.venue, Symbol: sym, TradeRate: 30, BookRate: 20}},
				KlineSpeed: 60, KlinePush: 150 * time.Millisecond, TickerPush: 50 * time.Millisecond, LiquidationRate: 4,
				Faults: []exsim.Fault{{Kind: exsim.FaultDuplicate, Venue: fv, Rate: 0.2}},
			})
			ex := vc.make(t, sim, nil)
			col := newChanCollector()
			ch := channelsOf(vc.venue)
			s, err := bridge.NewStream(testStreamConfig(ex, ch, sym), col, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			stop := runStream(t, s)
			usdm := vc.venue == exsim.BinanceUSDM
			linear := vc.venue == exsim.BybitLinear || usdm || vc.venue == exsim.OKXSwap // ticker and liquidation
			isOKX := vc.venue == exsim.OKXSpot || vc.venue == exsim.OKXSwap
			defer func() {
				if t.Failed() {
					t.Logf("collected: %d kline (%d closed) %d bbo %d ticker %d liquidation; stats %+v", len(col.of(bridge.EventKline)),
						len(col.closedBars(bridge.Interval1m)), len(col.of(bridge.EventBBO)), len(col.of(bridge.EventTicker)),
						len(col.of(bridge.EventLiquidation)), s.Stats())
				}
			}()
			eventually(t, 20*time.Second, "closed bars, open-bar updates, bbo (and ticker, liquidations)", func() bool {
				ok := len(col.closedBars(bridge.Interval1m)) >= 2 && len(col.of(bridge.EventBBO)) >= 5 &&
					len(col.of(bridge.EventKline)) > len(col.closedBars(bridge.Interval1m))
				if linear {
					ok = ok && len(col.of(bridge.EventTicker)) >= 5 && len(col.of(bridge.EventLiquidation)) >= 1
				}
				return ok
			})

			// Outage: mute the feed until two bars closed at the venue, then
			// cut the connection.
			truth, err := sim.Klines(vc.venue, sym, "1m")
			if err != nil {
				t.Fatal(err)
			}
			mute, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultMute, Venue: fv})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "two bars closing during the mute", func() bool {
				k, _ := sim.Klines(vc.venue, sym, "1m")
				return len(k) >= len(truth)+2
			})
			if err := sim.ClearFault(mute); err != nil {
				t.Fatal(err)
			}
			if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Venue: fv}); err != nil {
				t.Fatal(err)
			}
			truth, _ = sim.Klines(vc.venue, sym, "1m")
			lastTruth := truth[len(truth)-1].OpenTime
			eventually(t, 20*time.Second, "closed bars up to the venue's last one after the outage", func() bool {
				bars := col.closedBars(bridge.Interval1m)
				return len(bars) > 0 && bars[len(bars)-1].OpenTime >= lastTruth
			})

			// Klines: exactly once, contiguous, equal to the truth.
			truth, _ = sim.Klines(vc.venue, sym, "1m")
			byOpen := map[int64]exsim.KlineTruth{}
			for _, k := range truth {
				byOpen[k.OpenTime] = k
			}
			bars := col.closedBars(bridge.Interval1m)
			for i, b := range bars {
				if i > 0 && b.OpenTime != bars[i-1].OpenTime+int64(time.Minute) {
					t.Fatalf("closed bar %d opens at %d after %d: not exactly once and contiguous", i, b.OpenTime, bars[i-1].OpenTime)
				}
				k, ok := byOpen[b.OpenTime]
				if !ok {
					t.Fatalf("closed bar %d (open %d) unknown to the simulator", i, b.OpenTime)
				}
				got := fmt.Sprint(b.Open, b.High, b.Low, b.Close, b.Volume, b.QuoteVolume, b.CloseTime)
				want := fmt.Sprint(k.Open, k.High, k.Low, k.Close, k.Volume, k.QuoteVolume, k.CloseTime)
				if got != want || (vc.venue == exsim.Binance || vc.venue == exsim.BinanceUSDM) && b.Trades != k.Trades {
					t.Fatalf("closed bar %d: %s (trades %d), simulator %s (trades %d)", i, got, b.Trades, want, k.Trades)
				}
			}
			ids := map[string]bool{}
			for _, ev := range col.of(bridge.EventKline) {
				if id := ev.MsgID(); ids[id] {
					t.Fatalf("kline msg id %s twice", id)
				} else {
					ids[id] = true
				}
			}

			// BBO: strictly increasing update ids.
			bbos := col.of(bridge.EventBBO)
			for i := 1; i < len(bbos); i++ {
				if bbos[i].LastID <= bbos[i-1].LastID {
					t.Fatalf("bbo %d: update id %d after %d", i, bbos[i].LastID, bbos[i-1].LastID)
				}
			}

			if linear {
				// Ticker: the state the bridge emitted for the venue's last
				// push equals the simulator's. The truth is read afresh
				// each time: a push made while the bridge reconnected is
				// lost (binance-usdm's markPrice is not replayed), a later
				// one is not.
				var tt exsim.TickerTruth
				var got bridge.Ticker
				want := bridge.Ticker{LastPrice: tt.LastPrice, MarkPrice: tt.MarkPrice, IndexPrice: tt.IndexPrice,
					FundingRate: tt.FundingRate, OpenInterest: tt.OpenInterest, NextFundingTime: tt.NextFundingTime, Seq: tt.Seq}
				eventually(t, 10*time.Second, "the ticker of the simulator's last push", func() bool {
					var err error
					if tt, err = sim.Ticker(vc.venue, sym); err != nil {
						t.Fatal(err)
					}
					if isOKX {
						// Each part's last push survives a reconnect under
						// its own ts: the truth is read while the feed is live.
						want = bridge.Ticker{MarkPrice: tt.MarkPrice, IndexPrice: tt.IndexPrice, FundingRate: tt.FundingRate,
							OpenInterest: tt.OpenInterest, NextFundingTime: tt.NextFundingTime}
					}
					for _, ev := range col.of(bridge.EventTicker) {
						if isOKX && ev.TS == tt.TS {
							// OKX pushes the parts on four channels, several
							// at one ts: the merged state after the last of
							// them; the bridge numbers the parts itself.
							got = ev.Ticker()
							got.Seq = 0
							if got == want {
								return true
							}
						} else if !isOKX && ev.TS == tt.TS && (ev.LastID == tt.Seq || usdm) {
							// binance-usdm: the seq is the polled open
							// interest's time (checked below), not the push's.
							got = ev.Ticker()
							return true
						}
					}
					return false
				})
				if !isOKX {
					want = bridge.Ticker{LastPrice: tt.LastPrice, MarkPrice: tt.MarkPrice, IndexPrice: tt.IndexPrice,
						FundingRate: tt.FundingRate, OpenInterest: tt.OpenInterest, NextFundingTime: tt.NextFundingTime, Seq: tt.Seq}
				}
				if usdm {
					want.OpenInterest, want.Seq = got.OpenInterest, got.Seq
				}
				if got != want {
					t.Fatalf("ticker %+v, simulator %+v", got, want)
				}
				if usdm {
					// Open interest (polled over REST): each ticker's is
					// the venue's value at the time its seq names.
					ois, err := sim.OpenInterest(vc.venue, sym)
					if err != nil {
						t.Fatal(err)
					}
					withOI := 0
					for _, ev := range col.of(bridge.EventTicker) {
						tk := ev.Ticker()
						if tk.Seq == 0 && tk.OpenInterest == "" {
							continue // before the first poll's answer
						}
						if !slices.Contains(ois, exsim.OpenInterestTruth{TimeMS: tk.Seq, OpenInterest: tk.OpenInterest}) {
							t.Fatalf("ticker at %d: open interest %q at %d unknown to the simulator", ev.TS, tk.OpenInterest, tk.Seq)
						}
						withOI++
					}
					if withOI == 0 {
						t.Fatal("no ticker with open interest")
					}
				}
				tids := map[string]bool{}
				for _, ev := range col.of(bridge.EventTicker) {
					if id := ev.MsgID(); tids[id] {
						t.Fatalf("ticker msg id %s twice", id)
					} else {
						tids[id] = true
					}
				}

				// Liquidations: each once, each the simulator's.
				ls, _ := sim.Liquidations(vc.venue, sym)
				known := map[string]int{}
				for _, l := range ls {
					side := "sell"
					if !l.Long {
						side = "buy"
					}
					known[fmt.Sprintf("%d %s %s %s", l.TS, side, l.Price, l.Qty)]++
				}
				lids := map[string]bool{}
				for _, ev := range col.of(bridge.EventLiquidation) {
					l := ev.Liquidation()
					if id := ev.MsgID(); lids[id] {
						t.Fatalf("liquidation msg id %s twice", id)
					} else {
						lids[id] = true
					}
					if int(l.N) >= known[fmt.Sprintf("%d %s %s %s", ev.TS, l.Side, l.Price, l.Qty)] {
						t.Fatalf("liquidation %+v at %d unknown to the simulator", l, ev.TS)
					}
				}
			}
			st := s.Stats()
			t.Logf("%s: %d closed bars, %d kline events, %d bbo, %d tickers, %d liquidations; stats duplicates %d gaps %d backfilled %d reconnects %d missing %d",
				vc.name, len(bars), len(col.of(bridge.EventKline)), len(bbos), len(col.of(bridge.EventTicker)),
				len(col.of(bridge.EventLiquidation)), st.Duplicates, st.Gaps, st.Backfilled, st.Reconnects, st.Missing)
			if st.Missing != 0 {
				t.Fatalf("missing %d", st.Missing)
			}
			stop()
		})
	}
}

// TestChannelNotOnMarket: a channel the market lacks is a configuration
// error naming the market and the allowed channels.
func TestChannelNotOnMarket(t *testing.T) {
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}})
	ex := newBinance(t, sim, nil)
	_, err := bridge.NewStream(testStreamConfig(ex, bridge.ChannelTrade|bridge.ChannelLiquidation, "BTCUSDT"), newChanCollector(), nil)
	if err == nil {
		t.Fatal("liquidation on binance spot accepted")
	}
	want := "bridge: invalid configuration: market binance does not have channel liquidation (allowed: trade, book, bbo, kline.<1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M>[+open])"
	if err.Error() != want {
		t.Fatalf("err = %q\nwant  %q", err, want)
	}
}
