//go:build repro

// Minimal reproductions of defects the soak found in packages this one does
// not own. They fail until the defect is fixed; run them with
//
//	go test -tags repro -count=1 -run Repro -v ./internal/chaos/
//
// and move each into the normal suite (drop the build tag) once its fix
// lands.

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/exsim"
	"github.com/qldata/mdbridge/publisher"
)

// TestReproActiveActiveStaleSnapshot: two replicas publish the same book
// into the stream, each in a valid order. Replica A is ahead; replica B's
// snapshot (taken at u=12 after its own resubscribe, published late because
// its publisher was backlogged) lands after A's deltas up to 20. JetStream
// drops B's deltas 13..20 as duplicates (same Nats-Msg-Id), so a consumer
// following the documented rule (DESIGN.md "Messages": a snapshot resets
// the book) is reset to 12 and then sees delta 21: a gap, and no snapshot
// ever follows. The soak shows this with real replicas (Bybit stream
// snapshots and Binance control-subject snapshots alike).
func TestReproActiveActiveStaleSnapshot(t *testing.T) {
	cs := startControlService(t, publisher.Config{Storage: jetstream.MemoryStorage}, &fakeSource{symbols: map[string]bool{}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pubA, err := publisher.NewJetStream(ctx, cs.nc, cs.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubB, err := publisher.NewJetStream(ctx, cs.cli, cs.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	book := func(first, last int64) []bridge.Event {
		evs := []bridge.Event{{Type: bridge.EventBookSnapshot, Exchange: "bybit", Symbol: "BTCUSDT", LastID: first - 1,
			Bids: []bridge.Level{{"100", "1"}}}}
		for u := first; u <= last; u++ {
			evs = append(evs, bridge.Event{Type: bridge.EventBookDelta, Exchange: "bybit", Symbol: "BTCUSDT", FirstID: u, LastID: u,
				Bids: []bridge.Level{{fmt.Sprint(90 + u%5), fmt.Sprint(u)}}})
		}
		return evs
	}
	if err := pubA.Publish(ctx, book(11, 20)); err != nil { // S(10), d11..d20
		t.Fatal(err)
	}
	if err := pubA.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pubB.Publish(ctx, book(13, 21)); err != nil { // S(12), d13..d21
		t.Fatal(err)
	}
	if err := pubB.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var strict, tolerant BookReplay
	tolerant.IgnoreStale = true
	var seqs []string
	if _, err := readStream(ctx, cs.cli, publisher.DefaultStream, func(m *StreamMsg, _ error) {
		strict.Apply(m.Seq, &m.Event)
		tolerant.Apply(m.Seq, &m.Event)
		seqs = append(seqs, m.MsgID[strings.LastIndex(m.MsgID, "book"):])
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("stream: %v", seqs)
	t.Logf("documented consumer: live %v at %d, gaps %v; consumer ignoring older snapshots: live %v at %d", strict.Live, strict.LastID, strict.GapLog, tolerant.Live, tolerant.LastID)
	if !strict.Live || strict.LastID != 21 {
		t.Fatalf("a consumer following the documented rule is stuck at %d after a stale snapshot (gaps %v); the stream holds every update", strict.LastID, strict.GapLog)
	}
}

// TestReproConnConfigJSONLeaksURLPassword: publisher.ConnConfig redacts
// credentials in String, GoString and LogValue, and Secret fields redact
// themselves in JSON, but json.Marshal of a ConnConfig whose URL embeds
// user:password prints the password (URLs are plain strings).
func TestReproConnConfigJSONLeaksURLPassword(t *testing.T) {
	const password = "pw-SECRET-42"
	c := publisher.ConnConfig{URLs: []string{"nats://user:" + password + "@127.0.0.1:4222"}}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, password) {
		t.Fatalf("formatting leaks: %s", s)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), password) {
		t.Fatalf("json.Marshal(ConnConfig) leaks the URL password: %s", b)
	}
}

// TestReproBinanceTradesLostWithKilledReplica: replica A is down; replica
// B sees a trade gap and starts a REST backfill, which the exchange answers
// with 418 and Retry-After 30 s; B holds every later live trade of the
// symbol in memory (tradeSync.pending) for the whole Retry-After; B is then
// killed. When the replicas come back they start from the live trade flow
// and never fetch the ids between the stream's last trade and their first
// live one, so Binance trades are missing although the venue can still
// return them by id.
func TestReproBinanceTradesLostWithKilledReplica(t *testing.T) {
	sim, err := exsim.New(exsim.Config{Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ns, err := startNATS(0, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.stop()
	rec := newRecorder()
	var reps []*replica
	for i := 0; i < 2; i++ {
		reps = append(reps, newReplica(replicaConfig{
			index: i, instance: fmt.Sprintf("repro-%d", i), natsURL: ns.URL(),
			subs:  []subscription{{exchange: "binance", symbols: []string{"BTCUSDT"}}},
			wsURL: "ws://" + sim.Addr(), restURL: "http://" + sim.Addr(), logger: testLogger(t), rec: rec,
		}))
	}
	ctx := context.Background()
	for _, r := range reps {
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
		defer r.kill()
	}
	waitFor(t, 10*time.Second, "both replicas subscribed", func() bool {
		n := 0
		for _, c := range sim.Conns() {
			if c.Open && len(c.Subscriptions) > 0 {
				n++
			}
		}
		return n == 2
	})
	if err := sim.SetRates(exsim.Binance, "BTCUSDT", 20, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	reps[0].kill()
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultREST, Venue: exsim.Binance, Status: 418, Count: 1, Duration: exsim.Duration(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultMalformed, Venue: exsim.Binance, Count: 1, Mode: exsim.MalformedInvalidJSON}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	reps[1].kill()
	sim.ClearFaults()
	for _, r := range reps {
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
	_ = sim.SetRates(exsim.Binance, "BTCUSDT", 0, 0)
	time.Sleep(3 * time.Second)
	truth, err := sim.Truth(exsim.Binance, "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	if _, err := readStream(ctx, reps[1].nc, publisher.DefaultStream, func(m *StreamMsg, _ error) {
		if m.Event.Type == bridge.EventTrade {
			ids[m.Event.Seq] = true
		}
	}); err != nil {
		t.Fatal(err)
	}
	gen := truth.Get(exsim.SeriesTrade).Generated
	var missing []int64
	for id := gen.First; id <= gen.Last; id++ {
		if !ids[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d Binance trades missing from the stream (first %d, last %d); the venue still serves them by id",
			len(missing), gen.Len(), missing[0], missing[len(missing)-1])
	}
}
