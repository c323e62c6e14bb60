package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
)

// snapshotRequestSeed makes the simulator number Bybit's 1000-level
// orderbook stream above the 1-, 50- and 200-level ones on both Bybit
// markets (each depth has its own update-id series with its own start):
// a snapshot in the 1000-level series (Bybit's REST order book) then looks
// newer than the bridge's book, the harmful case of issue 19.
const snapshotRequestSeed = 41

// TestSnapshotRequestsKeepBooks is issue 19's first failure, at every
// Bybit depth the bridge supports: a consumer asks for snapshots on the
// control subject (`nats req mdctl.snapshot.<exchange>.<symbol>`, empty body)
// while the markets run and faults overlap the requests (withheld book
// diffs, Bybit re-snapshots, a closed connection); two replicas serve
// them. The stream, replayed by the README rule (BookReplay) and by
// bridge.BookBuilder, must end at the simulator's book and update id, and
// every trade the simulator wrote to a bridge connection must be in the
// stream.
//
// A bridge that serves a Bybit request with the REST order book publishes
// a snapshot whose last_id is the 1000-level stream's update id: at depth
// 1, 50 and 200 the consumer's book takes it and then skips every later
// delta as already covered (it freezes), so those subtests fail there;
// at depth 1000 the REST id is the stream's own series.
func TestSnapshotRequestsKeepBooks(t *testing.T) {
	for _, depth := range []int{1, 50, 200, 1000} {
		t.Run(fmt.Sprintf("bybit_depth_%d", depth), func(t *testing.T) {
			t.Parallel() // mostly waiting on the markets' rates
			snapshotRequestCase(t, depth)
		})
	}
}

func snapshotRequestCase(t *testing.T, depth int) {
	markets := []exsim.MarketConfig{
		{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 20, BookRate: 50},
		{Venue: exsim.BybitSpot, Symbol: "BTCUSDT", TradeRate: 20, BookRate: 50},
		{Venue: exsim.BybitLinear, Symbol: "BTCUSDT", TradeRate: 20, BookRate: 50},
	}
	idle := make([]exsim.MarketConfig, len(markets))
	for i, m := range markets {
		idle[i] = exsim.MarketConfig{Venue: m.Venue, Symbol: m.Symbol}
	}
	log := testLogger(t)
	sim, err := exsim.New(exsim.Config{Markets: idle, Seed: snapshotRequestSeed, ClosedConns: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for _, m := range markets[1:] {
		b, err := sim.Book(m.Venue, m.Symbol)
		if err != nil {
			t.Fatal(err)
		}
		if depth != 1000 && b.BybitU[1000] <= b.BybitU[depth] {
			t.Fatalf("setup: seed %d no longer numbers %s's 1000-level series (%d) above the %d-level one (%d); pick another seed",
				snapshotRequestSeed, m.Venue, b.BybitU[1000], depth, b.BybitU[depth])
		}
	}
	ns, err := startNATS(0, t.TempDir(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.stop()

	subs := []subscription{{exchange: "binance", symbols: []string{"BTCUSDT"}}, {exchange: "bybit", symbols: []string{"BTCUSDT"}}, {exchange: "bybit-linear", symbols: []string{"BTCUSDT"}}}
	rec := newRecorder()
	var reps []*replica
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		r := newReplica(replicaConfig{
			index: i, instance: fmt.Sprintf("snapreq-%c", 'a'+i), natsURL: ns.URL(), subs: subs,
			wsURL: "ws://" + sim.Addr(), restURL: "http://" + sim.Addr(), bybitDepth: depth, logger: log, rec: rec,
		})
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
		defer r.kill()
		reps = append(reps, r)
	}
	waitFor(t, 60*time.Second, "every replica subscribed on every venue", func() bool {
		n := 0
		for _, c := range sim.Conns() {
			if c.Open && len(c.Subscriptions) > 0 {
				n++
			}
		}
		return n >= len(reps)*len(subs)
	})
	for _, m := range markets {
		if err := sim.SetRates(m.Venue, m.Symbol, m.TradeRate, m.BookRate); err != nil {
			t.Fatal(err)
		}
	}
	// updates waits until every market generated n more book updates
	// (its update id or cross sequence; a depth-limited Bybit view moves
	// only when its levels change) than when it was called.
	updates := func(n int64, what string) {
		t.Helper()
		seq := func(m exsim.MarketConfig) int64 {
			b, err := sim.Book(m.Venue, m.Symbol)
			if err != nil {
				t.Fatal(err)
			}
			return b.LastUpdateID
		}
		from := map[int]int64{}
		for i, m := range markets {
			from[i] = seq(m)
		}
		waitFor(t, 60*time.Second, what, func() bool {
			for i, m := range markets {
				if seq(m) < from[i]+n {
					return false
				}
			}
			return true
		})
	}

	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{ns.URL()}, Name: "snapreq-consumer"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req, err := newSnapshotRequester(nc, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var keys []marketKey
	for _, m := range markets {
		keys = append(keys, marketKey{string(m.Venue), m.Symbol})
	}
	inject := func(f exsim.Fault) uint64 {
		t.Helper()
		id, err := sim.InjectFault(f)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Round 1: plain. Round 2: while book diffs are withheld (the
	// replicas resynchronize on their own) and Bybit re-sends snapshots.
	// Round 3: right after one Bybit spot connection was closed.
	for round := 1; round <= 3; round++ {
		updates(30, fmt.Sprintf("book updates before request round %d", round))
		var clear []uint64
		switch round {
		case 2:
			clear = append(clear, inject(exsim.Fault{Kind: exsim.FaultGap, Rate: 0.2, Scope: exsim.ScopeAll}))
			inject(exsim.Fault{Kind: exsim.FaultResnapshot, Venue: exsim.BybitSpot})
		case 3:
			for _, c := range sim.Conns() {
				if c.Open && c.Venue == exsim.BybitSpot {
					inject(exsim.Fault{Kind: exsim.FaultClose, Conn: c.ID})
					break
				}
			}
		}
		req.round(ctx, keys)
		for _, id := range clear {
			if err := sim.ClearFault(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range req.results() {
		t.Logf("snapshot requests %s %s: sent %d, served %d (duplicate %d), busy %d, failed %d, last_ids %v %v",
			r.Exchange, r.Symbol, r.Sent, r.Served, r.Duplicate, r.Busy, r.Failed, r.LastIDs, r.Errors)
		if r.Served == 0 {
			t.Fatalf("setup: no snapshot request for %s %s was served: %v", r.Exchange, r.Symbol, r.Errors)
		}
	}
	// Updates after the last snapshot: a consumer whose book froze at a
	// requested snapshot ends behind the simulator.
	updates(30, "book updates after the requests")
	for _, m := range markets {
		if err := sim.SetRates(m.Venue, m.Symbol, 0, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Wait until every replica published up to the simulator's final book
	// and its publisher is idle, then until the stream reconciles (or, if
	// it never does, report what differs).
	var truths []MarketTruth
	waitFor(t, 60*time.Second, "the replicas at the final books, publishers idle", func() bool {
		truths = truths[:0]
		for _, m := range markets {
			mt, err := marketTruth(sim, m.Venue, m.Symbol, depth)
			if err != nil {
				t.Fatal(err)
			}
			truths = append(truths, mt)
		}
		for i, r := range reps {
			st, ok := r.pubStats()
			if !ok || st.BufferedMsgs > 0 || st.InFlight > 0 {
				return false
			}
			for _, mt := range truths {
				trade, book := rec.progress(pairKey{i, string(mt.Venue), mt.Symbol})
				if book < mt.BookID || (mt.Venue == exsim.Binance && trade < mt.Trades.Generated.Last) {
					return false
				}
			}
		}
		return true
	})
	conns := map[uint64]ConnFate{}
	for _, c := range sim.Conns() {
		conns[c.ID] = ConnFate{Gen: "live"}
	}
	in := ReconcileInput{Markets: truths, Ordinal: sim.BybitTradeOrdinal, Conns: conns,
		Counted: func(exchange, symbol string) uint64 {
			var n uint64
			for _, r := range reps {
				n += r.counted(exchange, symbol)
			}
			return n
		}}
	reconcile := func() ([]MarketResult, []string) {
		r := newReconciler(truths, in.Ordinal)
		if _, err := readStream(ctx, nc, publisher.DefaultStream, func(m *StreamMsg, decodeErr error) {
			if decodeErr != nil {
				r.stream.DecodeErrors++
				r.example(fmt.Sprintf("seq %d: %v", m.Seq, decodeErr))
				return
			}
			r.add(m)
		}); err != nil {
			t.Fatal(err)
		}
		res, st := r.finish(in)
		failures, _ := verdicts(res, st, nil)
		return res, failures
	}
	// The last trades may still be on their way after the books: poll the
	// stream until every trade the simulator wrote is there, for a bounded
	// time (the books are final once the replicas are).
	var res []MarketResult
	var failures []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, failures = reconcile()
		settled := true
		for _, m := range res {
			settled = settled && m.Trades.LostByBridge == 0 && m.Trades.Missing == 0
		}
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, m := range res {
		tr, bk := m.Trades, m.Book
		t.Logf("%s %s: trades written %d, in stream %d of them, lost counted %d, uncounted %d, never written %d; book: %d snapshots (%d foreign, %d stale), deltas of depth %d, final id %d (simulator %d), README rule %s, BookBuilder %s",
			m.Exchange, m.Symbol, tr.Written, tr.WrittenInStream, tr.LostCounted, tr.LostUncounted, tr.NeverDelivered,
			bk.Snapshots, bk.ForeignSnapshots, bk.StaleSnapshots, bk.Series, bk.FinalID, bk.SimID, verdict(bk.Diff), verdict(bk.LibraryDiff))
	}
	if len(failures) > 0 {
		t.Errorf("Bybit depth %d, seed %d: %d violations:\n%s", depth, snapshotRequestSeed, len(failures), strings.Join(failures, "\n"))
	}
}

func verdict(diff string) string {
	if diff == "" {
		return "equal"
	}
	return "DIVERGED (" + diff + ")"
}
