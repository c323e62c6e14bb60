package bridge_test

import (
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// TestBinancePings: the server pings often and expects pongs echoing the
// payload within its timeout; the stream answers from the read loop, paced
// under the inbound message limit, so the server neither times it out nor
// cuts it for flooding. When the server ignores the pongs, it cuts the
// connection and the stream reconnects without loss.
func TestBinancePings(t *testing.T) {
	t.Parallel()
	// Pongs are due within 3 s of 300 ms pings: ten times the cadence, so
	// a loaded machine answering late does not look like a dead client.
	r := startFaultRun(t, venueCases[0], exsim.Config{
		PingInterval: 300 * time.Millisecond,
		PongTimeout:  3 * time.Second,
		Markets:      []exsim.MarketConfig{market(exsim.Binance, "BTCUSDT", 30, 10)},
	}, nil, "BTCUSDT")
	time.Sleep(2 * time.Second) // observation window: several pings answered
	if st := r.sim.Stats(); st.PongTimeouts != 0 || st.RateDisconnects != 0 {
		t.Fatalf("server stats %+v: pongs late or too many client messages", st)
	}
	if n := r.s.Stats().Reconnects; n != 0 {
		t.Fatalf("%d reconnects with a healthy server", n)
	}
	if _, err := r.sim.InjectFault(exsim.Fault{Kind: exsim.FaultDropPongs}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the server's pong timeout and a reconnect", func() bool {
		return r.sim.Stats().PongTimeouts >= 1 && r.s.Stats().Reconnects >= 1
	})
	r.sim.ClearFaults()
	eventually(t, 5*time.Second, "CONNECTED again", func() bool { return r.s.Stats().Connections[0].State == "CONNECTED" })
	r.check(t, "BTCUSDT")
}

// TestBybitClientPings: Bybit cuts connections without pings or data; on an
// idle market the stream's application pings (at least three per heartbeat
// timeout) keep the connection open and alive. The server's idle cut and
// the stream's own timeout are three times the ping period, so a ping sent
// late on a loaded machine is still in time.
func TestBybitClientPings(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{
		BybitIdleTimeout: 3 * time.Second,
		Markets:          []exsim.MarketConfig{market(exsim.BybitLinear, "BTCUSDT", 0, 0)},
	})
	ex := newBybit("linear")(t, sim, nil)
	cfg := testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT")
	cfg.HeartbeatTimeout = 3 * time.Second // pings every second
	s, err := bridge.NewStream(cfg, newCollector(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	eventually(t, 5*time.Second, "connected", func() bool { return s.Stats().Connections[0].State == "CONNECTED" })
	time.Sleep(7 * time.Second) // observation window: two idle timeouts without a cut
	if st := s.Stats(); st.Reconnects != 0 {
		t.Fatalf("%d reconnects on an idle but healthy connection", st.Reconnects)
	}
	if n := sim.Stats().Accepted; n != 1 {
		t.Fatalf("%d connections accepted, want 1", n)
	}
}
