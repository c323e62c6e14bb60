package chaos

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
)

// gatedPublisher holds every Publish back while it is closed (a publisher
// applying back-pressure: the bridge's reader waits in it).
type gatedPublisher struct {
	next bridge.Publisher
	held atomic.Int32 // Publish calls waiting at the gate

	mu   sync.Mutex
	gate chan struct{} // nil while open
}

func (g *gatedPublisher) Publish(ctx context.Context, evs []bridge.Event) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.held.Add(1)
		defer g.held.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.next.Publish(ctx, evs)
}

func (g *gatedPublisher) close() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedPublisher) open() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

// warnCounter is a slog handler that counts records at Warn and above.
type warnCounter struct{ n *atomic.Int64 }

func (h warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h warnCounter) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h warnCounter) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h warnCounter) WithGroup(string) slog.Handler                { return h }

// TestTradesReceivedBeforeACloseReachTheStream is issue 19's second
// failure, through the simulator and the per-connection trade accounting:
// one replica's reader waits on a slow publisher while the simulator keeps
// writing Bybit spot trades to its connection and then closes it abruptly.
// The trades were written to the bridge's socket; the bridge notices the
// dead connection (its next ping fails, or its heartbeat) and must read
// what the socket already received before replacing it. A bridge that
// closes the socket at once loses them, and Bybit's recent-trades backfill
// (60 trades) cannot bring back hundreds: the reconciliation finds trades
// written to a live connection and absent from the stream, uncounted.
func TestTradesReceivedBeforeACloseReachTheStream(t *testing.T) {
	const rate = 400 // trades per second
	log := testLogger(t)
	sim, err := exsim.New(exsim.Config{Markets: []exsim.MarketConfig{{Venue: exsim.BybitSpot, Symbol: "BTCUSDT"}},
		Seed: 7, ClosedConns: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ns, err := startNATS(0, t.TempDir(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.stop()
	var warns atomic.Int64
	gate := &gatedPublisher{}
	rec := newRecorder()
	r := newReplica(replicaConfig{
		index: 0, instance: "tradeloss", natsURL: ns.URL(), subs: []subscription{{exchange: "bybit", symbols: []string{"BTCUSDT"}}},
		wsURL: "ws://" + sim.Addr(), restURL: "http://" + sim.Addr(), rec: rec,
		logger: slog.New(warnCounter{&warns}),
		// Client pings every 500 ms: the write that finds the connection
		// closed comes soon.
		tune:    func(sc *bridge.StreamConfig) { sc.HeartbeatTimeout = 1500 * time.Millisecond },
		wrapPub: func(p bridge.Publisher) bridge.Publisher { gate.next = p; return gate },
	})
	ctx := context.Background()
	if err := r.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.kill()
	var conn exsim.ConnInfo
	waitFor(t, 60*time.Second, "the replica subscribed", func() bool {
		for _, c := range sim.Conns() {
			if c.Open && len(c.Subscriptions) > 0 {
				conn = c
				return true
			}
		}
		return false
	})
	if err := sim.SetRates(exsim.BybitSpot, "BTCUSDT", rate, 0); err != nil {
		t.Fatal(err)
	}
	generated := func() int64 {
		g, err := sim.Generated(exsim.BybitSpot, "BTCUSDT", exsim.SeriesTrade)
		if err != nil {
			t.Fatal(err)
		}
		return g.Last
	}
	from := generated()
	waitFor(t, 60*time.Second, "trades flowing", func() bool { return generated() >= from+50 })

	// Hold the publisher: the reader waits in it while the simulator keeps
	// writing trades into the socket; then the venue closes the
	// connection.
	gate.close()
	waitFor(t, 60*time.Second, "the bridge's reader waiting on the publisher", func() bool { return gate.held.Load() > 0 })
	from = generated()
	waitFor(t, 60*time.Second, "300 trades written while the reader waits", func() bool { return generated() >= from+300 })
	before := warns.Load()
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Conn: conn.ID}); err != nil {
		t.Fatal(err)
	}
	// A bridge with the fix logs the failed write at once (its next ping,
	// within 500 ms) and reads the socket to its end; one without it logs
	// nothing and closes the socket. Wait for the log, at most 10 s: for
	// a bridge that drains the outcome does not depend on when the gate
	// opens (if it opens first, the reader simply reads up to the close);
	// for one that does not, 20 ping intervals have passed by then.
	deadline := time.Now().Add(10 * time.Second)
	for warns.Load() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if warns.Load() == before {
		t.Logf("the bridge logged nothing about the closed connection in 10 s")
	}
	gate.open()

	// The bridge reconnects; let trades flow on the new connection, then
	// stop and wait until the stream holds what was written (or time out
	// and report what is missing).
	waitFor(t, 60*time.Second, "a new connection subscribed", func() bool {
		for _, c := range sim.Conns() {
			if c.Open && c.ID != conn.ID && len(c.Subscriptions) > 0 {
				return true
			}
		}
		return false
	})
	from = generated()
	waitFor(t, 60*time.Second, "trades on the new connection", func() bool { return generated() >= from+100 })
	if err := sim.SetRates(exsim.BybitSpot, "BTCUSDT", 0, 0); err != nil {
		t.Fatal(err)
	}
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{ns.URL()}, Name: "tradeloss-reader"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var tr TradeResult
	deadline = time.Now().Add(20 * time.Second)
	for {
		mt, err := marketTruth(sim, exsim.BybitSpot, "BTCUSDT", DefaultBybitDepth)
		if err != nil {
			t.Fatal(err)
		}
		conns := map[uint64]ConnFate{}
		for _, c := range sim.Conns() {
			conns[c.ID] = ConnFate{Gen: "live"}
		}
		in := ReconcileInput{Markets: []MarketTruth{mt}, Ordinal: sim.BybitTradeOrdinal, Conns: conns,
			Counted: func(ex, sym string) uint64 { return r.counted(ex, sym) }}
		rc := newReconciler(in.Markets, in.Ordinal)
		if _, err := readStream(ctx, nc, publisher.DefaultStream, func(m *StreamMsg, derr error) {
			if derr == nil {
				rc.add(m)
			}
		}); err != nil {
			t.Fatal(err)
		}
		res, _ := rc.finish(in)
		tr = res[0].Trades
		st, ok := r.pubStats()
		idle := ok && st.BufferedMsgs == 0 && st.InFlight == 0
		if (idle && tr.LostByBridge == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("conn %d closed; trades generated %d, written %d, in stream %d of them, missing %d (never written %d, lost counted %d, uncounted %d in %d episodes; bridge counted %d)",
		conn.ID, tr.Generated, tr.Written, tr.WrittenInStream, tr.Missing, tr.NeverDelivered, tr.LostCounted, tr.LostUncounted, tr.LostEpisodes, tr.BridgeCounted)
	if tr.LostByBridge > 0 {
		t.Errorf("%d trades written to the bridge's connection are missing from the stream (%d counted by the bridge, %d not): a frame the bridge received was discarded",
			tr.LostByBridge, tr.LostCounted, tr.LostUncounted)
	}
}
