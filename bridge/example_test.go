package bridge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/exsim"
)

// Example is the Go form of the seed's
// qd.stream(["BTCUSDT"], source="binance").resolution("tick").on_data(h).get(start=True),
// without NATS: the handler receives normalized trades in batches. It runs
// against the exchange simulator on loopback; against the real exchange,
// leave the adapter's URLs empty.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := exsim.New(exsim.Config{Seed: 7, Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}}, nil)
	if err != nil {
		panic(err)
	}
	if err := sim.Start(ctx); err != nil {
		panic(err)
	}
	defer sim.Close()

	ex, err := binance.New(binance.Config{WSURL: sim.BinanceWSURL(), RESTURL: sim.BinanceRESTURL()}, nil)
	if err != nil {
		panic(err)
	}
	trades := make(chan bridge.Event, 64)
	stream, err := bridge.NewStream(bridge.StreamConfig{
		Exchange: ex,
		Symbols:  []string{"BTCUSDT"},
		Channels: bridge.ChannelTrade,
	}, bridge.HandlerFunc(func(ctx context.Context, events []bridge.Event) error {
		for _, ev := range events {
			trades <- ev
		}
		return nil
	}), nil)

	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }() // get(start=True)

	// Let the simulated market trade once the subscription is in place.
	for len(sim.Conns()) == 0 || len(sim.Conns()[0].Subscriptions) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := sim.Generate(exsim.Binance, "BTCUSDT", 3, 0); err != nil {
		panic(err)
	}
	for range 3 {
		ev := <-trades
		fmt.Println(ev.Type, ev.Symbol, ev.ID, ev.Price, ev.Qty, ev.Side)
	}

	if err := stream.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println("run:", <-done)
	// Output:
	// trade BTCUSDT 2230996892 64999.99000000 0.02084000 sell
	// trade BTCUSDT 2230996893 65000.00000000 0.08933000 buy
	// trade BTCUSDT 2230996894 65000.00000000 0.14854000 buy
	// run: <nil>
}

// Example_bars is the seed's .resolution("1m") in Go: the stream asks for
// the kline.1m channel and the handler receives closed one-minute bars,
// each exactly once and none missing (a bar that closes while the bridge
// is disconnected is filled from REST). It runs against the simulator with
// kline time 600 times faster than the wall clock and an idle market, so
// every bar is the flat 65000 bar with no volume.
func Example_bars() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := exsim.New(exsim.Config{Seed: 7, KlineSpeed: 600,
		Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}}, nil)
	if err != nil {
		panic(err)
	}
	if err := sim.Start(ctx); err != nil {
		panic(err)
	}
	defer sim.Close()

	ex, err := binance.New(binance.Config{WSURL: sim.BinanceWSURL(), RESTURL: sim.BinanceRESTURL()}, nil)
	if err != nil {
		panic(err)
	}
	bars := make(chan bridge.Bar, 64)
	stream, err := bridge.NewStream(bridge.StreamConfig{
		Exchange: ex,
		Symbols:  []string{"BTCUSDT"},
		Channels: bridge.KlineChannel(bridge.Interval1m), // resolution "1m": closed bars only
	}, bridge.HandlerFunc(func(ctx context.Context, events []bridge.Event) error {
		for _, ev := range events {
			bars <- ev.Bar()
		}
		return nil
	}), nil)
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()

	var prev int64
	for range 3 {
		b := <-bars
		next := prev == 0 || b.OpenTime == prev+int64(time.Minute)
		prev = b.OpenTime
		fmt.Println(b.Interval, "closed:", b.Closed, "O", b.Open, "C", b.Close, "V", b.Volume, "trades", b.Trades, "follows the previous:", next)
	}
	if err := stream.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println("run:", <-done)
	// Output:
	// 1m closed: true O 65000.00000000 C 65000.00000000 V 0.00000000 trades 0 follows the previous: true
	// 1m closed: true O 65000.00000000 C 65000.00000000 V 0.00000000 trades 0 follows the previous: true
	// 1m closed: true O 65000.00000000 C 65000.00000000 V 0.00000000 trades 0 follows the previous: true
	// run: <nil>
}
