package exsim

import (
	"io"
	"testing"
	"time"
)

// BenchmarkBinanceTradeFrames measures how many @trade frames per second
// the simulator delivers over loopback to one client (the generator runs
// flat out; Backpressure keeps the client connected).
func BenchmarkBinanceTradeFrames(b *testing.B) {
	s := startServer(b, Config{
		Seed:         1,
		Markets:      []MarketConfig{{Venue: Binance, Symbol: "BTCUSDT"}},
		Backpressure: true,
	})
	ws := dial(b, s.BinanceWSURL()+"/ws/btcusdt@trade")
	waitFor(b, "subscription", func() bool { return len(connIDs(s, Binance)) == 1 })
	if err := s.SetRates(Binance, "BTCUSDT", maxRate, 0); err != nil {
		b.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, r, err := ws.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
	_ = s.SetRates(Binance, "BTCUSDT", 0, 0)
}
