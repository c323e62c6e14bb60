package chaos

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/qldata/mdbridge/internal/cluster"
)

// OwnerEvery is the period of the owner-count samples.
const OwnerEvery = time.Second

// ZeroOwnersBound is the longest a unit may go without a live replica
// running it (its coordinator's Running set) before the soak fails: with
// R >= 2 and one replica killed at a time, every unit keeps an owner
// throughout; the bound leaves room for a sample's jitter only.
const ZeroOwnersBound = 3 * time.Second

// OwnerSample is one owner-count sample: for each count n, how many units
// had n owners (index 3: 3 or more). Owners are the live replicas whose
// cluster coordinator runs the unit (node internals:
// cluster.Coordinator.Running); Connected those of them whose stream
// reports the unit's symbol CONNECTED (bridge.Stream.States, what md_state
// carries, read in process: no staleness lag).
type OwnerSample struct {
	At        time.Duration `json:"at"` // since the start of the soak
	Phase     string        `json:"phase"`
	Replicas  int           `json:"replicas_up"`
	Owners    [4]int        `json:"owners"`
	Connected [4]int        `json:"connected"`
}

// UnitOwners is one unit's owner counts over the sampled phases.
type UnitOwners struct {
	Unit         string `json:"unit"`
	MinOwners    int    `json:"min_owners"`
	MaxOwners    int    `json:"max_owners"`
	MinConnected int    `json:"min_connected"`
	// ZeroOwners is the total time with no owner, LongestZeroOwners the
	// longest such run; the same for connected owners.
	ZeroOwners           time.Duration `json:"zero_owners"`
	LongestZeroOwners    time.Duration `json:"longest_zero_owners"`
	ZeroConnected        time.Duration `json:"zero_connected"`
	LongestZeroConnected time.Duration `json:"longest_zero_connected"`
	// Changes counts the samples whose owner set differed from the
	// previous one's (gains, releases, kills, restarts).
	Changes int `json:"changes"`
}

// OwnerReport is the per-unit owner counts over time (warm-up, faults and
// settle; sampled every OwnerEvery).
type OwnerReport struct {
	Every      time.Duration `json:"every"`
	Redundancy int           `json:"redundancy"`
	Bound      time.Duration `json:"zero_owners_bound"`
	Samples    []OwnerSample `json:"samples"`
	Units      []UnitOwners  `json:"units"`
	// ZeroOwnersTotal sums the units' ZeroOwners; ZeroConnectedTotal
	// their ZeroConnected.
	ZeroOwnersTotal    time.Duration `json:"zero_owners_total"`
	ZeroConnectedTotal time.Duration `json:"zero_connected_total"`
	// Steady is the cluster's state after settling ("" when every
	// replica saw every member and every unit at R owners).
	Steady string `json:"steady_error,omitempty"`
}

// ownerTracker accumulates OwnerReport from ownership observations.
type ownerTracker struct {
	mu    sync.Mutex
	units []cluster.Unit
	rep   OwnerReport
	acc   map[cluster.Unit]*unitAcc
	last  time.Time
}

type unitAcc struct {
	UnitOwners
	zeroRun, zeroConnRun time.Duration
	prev                 []int
	seen                 bool
}

func newOwnerTracker(units []cluster.Unit) *ownerTracker {
	t := &ownerTracker{units: units, acc: map[cluster.Unit]*unitAcc{}, rep: OwnerReport{Every: OwnerEvery, Bound: ZeroOwnersBound}}
	for _, u := range units {
		t.acc[u] = &unitAcc{UnitOwners: UnitOwners{Unit: u.String()}}
	}
	return t
}

// add accounts one sample taken at now: own[i] is replica i's ownership
// (up[i] false: down).
func (t *ownerTracker) add(now time.Time, since time.Duration, phase string, own []ownership, up []bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dt := time.Duration(0)
	if !t.last.IsZero() {
		dt = now.Sub(t.last)
	}
	t.last = now
	s := OwnerSample{At: since.Round(time.Millisecond), Phase: phase}
	for _, u := range up {
		if u {
			s.Replicas++
		}
	}
	for _, u := range t.units {
		a := t.acc[u]
		var owners []int
		conn := 0
		for i, o := range own {
			if !up[i] || !o.running[u] {
				continue
			}
			owners = append(owners, i)
			if o.connected[u] {
				conn++
			}
		}
		n := len(owners)
		s.Owners[min(n, 3)]++
		s.Connected[min(conn, 3)]++
		if !a.seen {
			a.MinOwners, a.MaxOwners, a.MinConnected, a.seen = n, n, conn, true
		} else if !slices.Equal(a.prev, owners) {
			a.Changes++
		}
		a.MinOwners, a.MaxOwners, a.MinConnected = min(a.MinOwners, n), max(a.MaxOwners, n), min(a.MinConnected, conn)
		a.prev = owners
		if n == 0 {
			a.zeroRun += dt
			a.ZeroOwners += dt
			a.LongestZeroOwners = max(a.LongestZeroOwners, a.zeroRun)
		} else {
			a.zeroRun = 0
		}
		if conn == 0 {
			a.zeroConnRun += dt
			a.ZeroConnected += dt
			a.LongestZeroConnected = max(a.LongestZeroConnected, a.zeroConnRun)
		} else {
			a.zeroConnRun = 0
		}
	}
	t.rep.Samples = append(t.rep.Samples, s)
}

// report returns the accumulated OwnerReport.
func (t *ownerTracker) report(redundancy int) OwnerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rep
	r.Redundancy = redundancy
	r.Samples = slices.Clone(r.Samples)
	r.Units = nil
	for _, u := range t.units {
		a := t.acc[u]
		r.Units = append(r.Units, a.UnitOwners)
		r.ZeroOwnersTotal += a.ZeroOwners
		r.ZeroConnectedTotal += a.ZeroConnected
	}
	return r
}

// ownerLoop samples every replica's ownership every OwnerEvery until ctx
// ends.
func (h *harness) ownerLoop(ctx context.Context) {
	t := time.NewTicker(OwnerEvery)
	defer t.Stop()
	for {
		h.sampleOwners()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleOwners takes one owner-count sample.
func (h *harness) sampleOwners() {
	reps := h.reps()
	own := make([]ownership, len(reps))
	up := make([]bool, len(reps))
	for i, r := range reps {
		own[i], up[i] = r.observe()
	}
	h.mu.Lock()
	phase := h.phase
	h.mu.Unlock()
	now := time.Now()
	h.owners.add(now, now.Sub(h.start), phase, own, up)
}
