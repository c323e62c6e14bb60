package exsim

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestGeneratorRates runs a market's generator on synctest's fake clock
// and checks that the long-run counts of trades and book updates match the
// configured rates, including at low rates where one taker order fills
// several trades.
func TestGeneratorRates(t *testing.T) {
	for _, tc := range []struct {
		venue       Venue
		trade, book float64
		dur         time.Duration
	}{
		{Binance, 1, 1, 300 * time.Second},
		{Binance, 5, 5, 60 * time.Second},
		{Binance, 50, 50, 20 * time.Second},
		{Binance, 500, 500, 10 * time.Second},
		{Binance, 1, 500, 100 * time.Second},
		{Binance, 500, 1, 100 * time.Second},
		{BybitSpot, 5, 50, 60 * time.Second},
		{BybitLinear, 0.5, 0, 200 * time.Second},
		{Binance, 0.3, 2, 1000 * time.Second},
	} {
		t.Run(fmt.Sprintf("%s/%g-%g", tc.venue, tc.trade, tc.book), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				trades, books := runGenerator(t, MarketConfig{Venue: tc.venue, Symbol: "BTCUSDT", TradeRate: tc.trade, BookRate: tc.book}, tc.dur)
				check := func(what string, got int64, rate float64) {
					want := rate * tc.dur.Seconds()
					t.Logf("%s: %d in %v (%.3f/s, configured %g/s)", what, got, tc.dur, float64(got)/tc.dur.Seconds(), rate)
					// A taker order may end up to two trades past the
					// schedule; the rest must be exact up to rounding.
					if d := float64(got) - want; d > 3 || d < -3 {
						t.Errorf("%s: %d in %v, want %.0f (%.2f/s, configured %g/s)", what, got, tc.dur, want, float64(got)/tc.dur.Seconds(), rate)
					}
				}
				check("trades", trades, tc.trade)
				check("book updates", books, tc.book)
			})
		})
	}
}

// runGenerator runs one market's generator for d of (fake) time and
// returns the trades and book updates it generated.
func runGenerator(t *testing.T, mc MarketConfig, d time.Duration) (trades, books int64) {
	t.Helper()
	s, err := New(Config{Markets: []MarketConfig{mc}, Seed: 1, TradeHistory: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := s.mlist[0]
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.run(ctx)
	}()
	time.Sleep(d)
	synctest.Wait()
	m.mu.Lock()
	trades, books = m.trades.generated().Len(), m.books
	m.mu.Unlock()
	cancel()
	<-done
	return trades, books
}
