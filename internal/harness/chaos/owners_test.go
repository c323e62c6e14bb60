package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/internal/cluster"
)

// own builds one replica's ownership: running units, and of them the
// connected ones.
func own(running []cluster.Unit, connected ...cluster.Unit) ownership {
	o := ownership{running: map[cluster.Unit]bool{}, connected: map[cluster.Unit]bool{}}
	for _, u := range running {
		o.running[u] = true
	}
	for _, u := range connected {
		o.connected[u] = true
	}
	return o
}

// TestOwnerTracker: histograms per sample, per-unit minimums, zero-owner
// time and runs, owner changes; and the verdict: a unit without an owner
// past ZeroOwnersBound fails the soak, a shorter run does not.
func TestOwnerTracker(t *testing.T) {
	a, b := cluster.Unit{Market: "binance", Symbol: "BTCUSDT"}, cluster.Unit{Market: "bybit", Symbol: "ETHUSDT"}
	tr := newOwnerTracker([]cluster.Unit{a, b})
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	both := []cluster.Unit{a, b}
	// s0: replicas 0 and 1 run both, 0's b not connected.
	tr.add(at(0), 0, "chaos", []ownership{own(both, a, b), own(both, a)}, []bool{true, true})
	// s1: replica 1 killed (down); replica 0 runs a only: b has no owner.
	tr.add(at(1), time.Second, "chaos", []ownership{own([]cluster.Unit{a}, a), {}}, []bool{true, false})
	// s2..s5: b still without an owner (4 s in all), then back on 0.
	for s := 2; s <= 4; s++ {
		tr.add(at(s), time.Duration(s)*time.Second, "chaos", []ownership{own([]cluster.Unit{a}, a), {}}, []bool{true, false})
	}
	tr.add(at(5), 5*time.Second, "chaos", []ownership{own(both, a, b), {}}, []bool{true, false})
	rep := tr.report(2)
	if len(rep.Samples) != 6 {
		t.Fatalf("%d samples", len(rep.Samples))
	}
	if got := rep.Samples[0]; got.Owners != [4]int{0, 0, 2, 0} || got.Connected != [4]int{0, 1, 1, 0} || got.Replicas != 2 {
		t.Fatalf("sample 0: %+v", got)
	}
	if got := rep.Samples[1]; got.Owners != [4]int{1, 1, 0, 0} || got.Replicas != 1 {
		t.Fatalf("sample 1: %+v", got)
	}
	ua, ub := rep.Units[0], rep.Units[1]
	if ua.MinOwners != 1 || ua.MaxOwners != 2 || ua.ZeroOwners != 0 || ua.Changes != 1 {
		t.Fatalf("unit a: %+v", ua)
	}
	if ub.MinOwners != 0 || ub.LongestZeroOwners != 4*time.Second || ub.ZeroOwners != 4*time.Second || ub.Changes != 2 {
		t.Fatalf("unit b: %+v", ub)
	}
	if rep.ZeroOwnersTotal != 4*time.Second || rep.ZeroConnectedTotal != 4*time.Second {
		t.Fatalf("totals %s %s", rep.ZeroOwnersTotal, rep.ZeroConnectedTotal)
	}
	okRes := ResourceCheck{GoroutinesOK: true, HeapOK: true, RSSOK: true}
	r := &Report{Owners: rep, Resources: okRes}
	r.decide()
	if r.Pass || len(r.Failures) != 1 || !strings.Contains(r.Failures[0], "unit bybit:ETHUSDT: no live replica ran it for 4s") {
		t.Fatalf("4 s without an owner: pass=%v failures %v", r.Pass, r.Failures)
	}
	var b2 strings.Builder
	rep.writeText(&b2)
	if !strings.Contains(b2.String(), "owners 1/1/0/0") || !strings.Contains(b2.String(), "bybit:ETHUSDT") {
		t.Fatalf("text:\n%s", b2.String())
	}

	// A run within the bound passes (the connected-owner gap is a note).
	tr = newOwnerTracker([]cluster.Unit{a})
	tr.add(at(0), 0, "chaos", []ownership{own([]cluster.Unit{a}, a)}, []bool{true})
	tr.add(at(1), time.Second, "chaos", []ownership{{}}, []bool{false})
	tr.add(at(2), 2*time.Second, "chaos", []ownership{own([]cluster.Unit{a})}, []bool{true})
	r = &Report{Owners: tr.report(2), Resources: okRes}
	r.decide()
	if !r.Pass {
		t.Fatalf("1 s without an owner failed: %v", r.Failures)
	}
	// The cluster not settling fails.
	r = &Report{Owners: OwnerReport{Steady: "replica B: cluster not steady"}, Resources: okRes}
	r.decide()
	if r.Pass {
		t.Fatal("an unsettled cluster passed")
	}
}
