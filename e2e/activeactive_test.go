//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// connected is the md_state name of resilience.Connected.
var connected = resilience.Connected.String()

// stateKeys are the md_state keys one instance writes for subscribe.
func stateKeys(instance string) []string {
	var out []string
	for _, m := range []string{"binance.BTCUSDT", "binance.ETHUSDT", "bybit.BTCUSDT", "bybit-linear.ETHUSDT"} {
		out = append(out, m+"."+instance)
	}
	return out
}

// readStates reads md_state as publisher.ReadStates reports it, by key.
func readStates(t *testing.T, js jetstream.JetStream) map[string]publisher.StateEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, publisher.DefaultKVBucket)
	if err != nil {
		t.Fatalf("KV bucket %s: %v", publisher.DefaultKVBucket, err)
	}
	entries, err := publisher.ReadStates(ctx, kv)
	if err != nil {
		t.Fatalf("read md_state: %v", err)
	}
	out := map[string]publisher.StateEntry{}
	for _, e := range entries {
		out[e.Key] = e
	}
	return out
}

// statusRow is the part of `mdbridge status -json` the test reads.
type statusRow struct {
	Key   string
	Stale bool
	State bridge.SymbolState
}

// statusJSON runs `mdbridge status -json` inside a bridge container (it
// has MDB_NATS_URL) and returns its rows by key.
func statusJSON(t *testing.T, n *node) map[string]statusRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code, rd, err := n.c.Exec(ctx, []string{"/usr/local/bin/mdbridge", "status", "-json", "-sample", "0"}, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("exec mdbridge status in %s: %v", n.role, err)
	}
	out, _ := io.ReadAll(rd)
	if code != 0 {
		t.Fatalf("mdbridge status exited %d: %s", code, out)
	}
	// Output is one JSON document; the multiplexed stream may also carry
	// stderr lines before it.
	s := string(out)
	if i := strings.Index(s, "["); i >= 0 {
		s = s[i:]
	}
	var rows []statusRow
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		t.Fatalf("mdbridge status -json: %v in %q", err, out)
	}
	m := map[string]statusRow{}
	for _, r := range rows {
		m[r.Key] = r
	}
	return m
}

// TestActiveActiveBridgeKill: two bridge replicas publish the same
// subscriptions into one stream (JetStream's duplicate window removes the
// copies); one is killed with SIGKILL mid-run. Every trade must be in the
// stream exactly once, and md_state must show the dead replica's entries
// stale while the survivor's stay fresh and CONNECTED.
func TestActiveActiveBridgeKill(t *testing.T) {
	l := newLab(t)
	nw := l.network()
	ns := l.natsNode("nats-0", nw, nil)
	_, js := l.connectNATS(ns)
	_, sim := l.simNode(nw, 11)
	opts := func(instance string) bridgeOpts {
		return bridgeOpts{instance: instance, natsURL: "nats://nats-0:4222", networks: []attach{{nw, nil}}}
	}
	a := l.bridgeNode(opts("bridge-a"))
	b := l.bridgeNode(opts("bridge-b"))
	runFor(t, js, 10*time.Second, "active-active warm-up")

	before := readStates(t, js)
	for _, inst := range []string{"bridge-a", "bridge-b"} {
		for _, k := range stateKeys(inst) {
			e, ok := before[k]
			if !ok {
				t.Fatalf("md_state has no key %s (keys: %v)", k, keysOf(before))
			}
			if e.Stale || e.State.State != connected {
				t.Fatalf("%s before the kill: state %s stale=%v (age %s); want CONNECTED, fresh", k, e.State.State, e.Stale, e.Age)
			}
		}
	}
	t.Logf("md_state before the kill: %d entries, all CONNECTED and fresh", len(before))

	faultAt := sim.generated(t, tradeMarkets)
	a.kill()
	// The dead replica's entries go stale after publisher.DefaultStaleAfter
	// without refresh; keep publishing a little longer than that.
	runFor(t, js, publisher.DefaultStaleAfter+6*time.Second, "bridge-a dead")

	after := readStates(t, js)
	status := statusJSON(t, b)
	for _, k := range stateKeys("bridge-a") {
		e := after[k]
		if !e.Stale {
			t.Errorf("%s: dead instance's entry not stale (age %s, state %s)", k, e.Age, e.State.State)
		}
		if r, ok := status[k]; !ok || !r.Stale {
			t.Errorf("mdbridge status -json: %s present=%v stale=%v; want stale", k, ok, r.Stale)
		}
	}
	for _, k := range stateKeys("bridge-b") {
		e := after[k]
		if e.Stale || e.State.State != connected {
			t.Errorf("%s: survivor's entry state %s stale=%v (age %s); want CONNECTED, fresh", k, e.State.State, e.Stale, e.Age)
		}
		if r, ok := status[k]; !ok || r.Stale || r.State.State != connected {
			t.Errorf("mdbridge status -json: %s present=%v stale=%v state %s; want CONNECTED, fresh", k, ok, r.Stale, r.State.State)
		}
	}
	t.Logf("md_state after the kill: %d entries of bridge-a stale (age %s), %d of bridge-b fresh; `mdbridge status -json` agrees (%d rows)",
		len(stateKeys("bridge-a")), after[stateKeys("bridge-a")[0]].Age.Round(time.Second), len(stateKeys("bridge-b")), len(status))

	sim.stop(t)
	gen := sim.generated(t, tradeMarkets)
	r := newStreamReader(t, js, sim)
	r.waitComplete(gen, 90*time.Second)
	r.checkExactlyOnce(gen, faultAt, simTradeRate*15)
	if !b.running() {
		t.Fatalf("the surviving bridge exited")
	}
	if m := b.checkPublisher(t); m["mdbridge_jetstream_duplicates_total"] == 0 {
		t.Errorf("the survivor saw no JetStream duplicates: the replicas were not publishing the same events")
	}
}

func keysOf[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return fmt.Sprint(ks)
}
