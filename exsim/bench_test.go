package exsim

import (
	"bytes"
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

// BenchmarkBybitTrades measures Bybit publicTrade throughput to one client
// in trades per second (Bybit batches trades, so frames carry several).
func BenchmarkBybitTrades(b *testing.B) {
	s := startServer(b, Config{
		Seed:         1,
		Markets:      []MarketConfig{{Venue: BybitLinear, Symbol: "BTCUSDT"}},
		Backpressure: true,
	})
	ws := dial(b, s.BybitWSURL()+"/v5/public/linear")
	send(b, ws, `{"op":"subscribe","args":["publicTrade.BTCUSDT"]}`)
	readFrame(b, ws)
	if err := s.SetRates(BybitLinear, "BTCUSDT", maxRate, 0); err != nil {
		b.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	frames := 0
	for trades := 0; trades < b.N; {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		frames++
		trades += bytes.Count(msg, []byte(`"T":`))
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "trades/s")
	b.ReportMetric(float64(frames)/el.Seconds(), "frames/s")
	_ = s.SetRates(BybitLinear, "BTCUSDT", 0, 0)
}
