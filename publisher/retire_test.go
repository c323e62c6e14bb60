package publisher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/exsim"
)

// A stream shut down with a deadline while its publisher is blocked (NATS
// down, buffer full) cancels its pending Publish (issue 15: a retired
// stream in cluster mode). Every event it emitted is then either buffered
// or counted as abandoned, per symbol too (md_state publish_dropped).
func TestStreamShutdownCountsAbandoned(t *testing.T) {
	o := newOutage(t, nil)
	nc := connect(t, o.srv.ClientURL())
	p := newPublisher(t, nc, Config{BufferMessages: 5, MaxInFlight: 5})
	o.stop()
	waitDisconnected(t, nc)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := exsim.New(exsim.Config{Seed: 7, Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ex, err := binance.New(binance.Config{WSURL: sim.BinanceWSURL(), RESTURL: sim.BinanceRESTURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}, Channels: bridge.ChannelTrade}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitCond(t, "subscribed", func() bool { c := sim.Conns(); return len(c) > 0 && len(c[0].Subscriptions) > 0 })
	if err := sim.Generate(exsim.Binance, "BTCUSDT", 40, 0); err != nil {
		t.Fatal(err)
	}
	// The buffer holds 5; the stream has emitted more and waits in Publish.
	waitCond(t, "publisher blocked", func() bool { return p.Stats().Published == 5 && s.Stats().Emitted > 5 })

	sctx, scancel := context.WithCancel(ctx)
	scancel() // the retire deadline has passed
	if err := s.Shutdown(sctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	emitted, st := s.Stats().Emitted, p.Stats()
	if st.Abandoned == 0 || st.Published+st.Abandoned != emitted {
		t.Fatalf("stream emitted %d; publisher buffered %d, abandoned %d: want every emitted event buffered or abandoned, some abandoned",
			emitted, st.Published, st.Abandoned)
	}
	if d := p.SymbolDropped("binance", "BTCUSDT"); d != st.Abandoned {
		t.Fatalf("BTCUSDT drops %d, want %d", d, st.Abandoned)
	}
}

// waitCond waits for cond, failing after a bound generous for a loaded
// machine.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
