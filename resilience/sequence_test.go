package resilience

import (
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
)

type obs struct {
	first, last int64
	want        SeqResult
}

func single(seq int64, want SeqResult) obs { return obs{seq, seq, want} }

func TestSequenceTracker(t *testing.T) {
	const maxI, minI = math.MaxInt64, math.MinInt64
	tests := []struct {
		name     string
		resetTo  *int64
		steps    []obs
		wantLast int64
		wantGaps []Gap
	}{
		{name: "in order", steps: []obs{single(5, SeqFirst), single(6, SeqInOrder), single(7, SeqInOrder)}, wantLast: 7},
		{name: "first can be anything", steps: []obs{single(-3, SeqFirst), single(-2, SeqInOrder)}, wantLast: -2},
		{name: "duplicates", steps: []obs{single(1, SeqFirst), single(1, SeqDuplicate), single(2, SeqInOrder), single(1, SeqDuplicate), single(2, SeqDuplicate)}, wantLast: 2},
		{name: "gap", steps: []obs{single(1, SeqFirst), single(5, SeqGap), single(6, SeqInOrder)}, wantLast: 6, wantGaps: []Gap{{2, 4}}},
		{name: "huge jump is one range", steps: []obs{single(1, SeqFirst), single(1_000_000_002, SeqGap)}, wantLast: 1_000_000_002, wantGaps: []Gap{{2, 1_000_000_001}}},
		{name: "late fills the low end", steps: []obs{single(1, SeqFirst), single(5, SeqGap), single(2, SeqLate)}, wantLast: 5, wantGaps: []Gap{{3, 4}}},
		{name: "late fills the high end", steps: []obs{single(1, SeqFirst), single(5, SeqGap), single(4, SeqLate)}, wantLast: 5, wantGaps: []Gap{{2, 3}}},
		{name: "late splits", steps: []obs{single(1, SeqFirst), single(10, SeqGap), single(5, SeqLate)}, wantLast: 10, wantGaps: []Gap{{2, 4}, {6, 9}}},
		{name: "late closes the gap", steps: []obs{single(1, SeqFirst), single(3, SeqGap), single(2, SeqLate), single(2, SeqDuplicate)}, wantLast: 3},
		{name: "late twice is a duplicate", steps: []obs{single(1, SeqFirst), single(10, SeqGap), single(5, SeqLate), single(5, SeqDuplicate)}, wantLast: 10, wantGaps: []Gap{{2, 4}, {6, 9}}},
		{name: "below every gap", steps: []obs{single(10, SeqFirst), single(20, SeqGap), single(3, SeqDuplicate)}, wantLast: 20, wantGaps: []Gap{{11, 19}}},
		{name: "range in order exact", steps: []obs{{100, 105, SeqFirst}, {106, 110, SeqInOrder}}, wantLast: 110},
		{name: "range overlap allowed", steps: []obs{{100, 105, SeqFirst}, {103, 110, SeqInOrder}, {100, 111, SeqInOrder}}, wantLast: 111},
		{name: "range stale", steps: []obs{{100, 105, SeqFirst}, {101, 105, SeqDuplicate}, {90, 99, SeqDuplicate}}, wantLast: 105},
		{name: "range gap", steps: []obs{{100, 105, SeqFirst}, {108, 110, SeqGap}}, wantLast: 110, wantGaps: []Gap{{106, 107}}},
		{name: "late range spans two gaps", steps: []obs{single(1, SeqFirst), single(5, SeqGap), single(10, SeqGap), {3, 7, SeqLate}}, wantLast: 10, wantGaps: []Gap{{2, 2}, {8, 9}}},
		{name: "first > last is the single last", steps: []obs{single(1, SeqFirst), {9, 2, SeqInOrder}}, wantLast: 2},
		{name: "snapshot then Binance procedure", resetTo: ptr(int64(160)),
			steps: []obs{{150, 158, SeqDuplicate}, {155, 160, SeqDuplicate}, {157, 163, SeqInOrder}, {164, 170, SeqInOrder}}, wantLast: 170},
		{name: "snapshot then gap", resetTo: ptr(int64(160)), steps: []obs{{165, 170, SeqGap}}, wantLast: 170, wantGaps: []Gap{{161, 164}}},
		{name: "near MaxInt64", steps: []obs{single(maxI-2, SeqFirst), single(maxI-1, SeqInOrder), single(maxI, SeqInOrder), single(maxI, SeqDuplicate), single(0, SeqDuplicate), single(minI, SeqDuplicate)}, wantLast: maxI},
		{name: "gap to MaxInt64", steps: []obs{single(minI, SeqFirst), single(maxI, SeqGap), single(0, SeqLate)}, wantLast: maxI, wantGaps: []Gap{{minI + 1, -1}, {1, maxI - 1}}},
		{name: "range to MaxInt64", steps: []obs{single(maxI-5, SeqFirst), {maxI - 4, maxI, SeqInOrder}, {minI, maxI, SeqDuplicate}}, wantLast: maxI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewSequenceTracker()
			if tt.resetTo != nil {
				tr.ResetTo(*tt.resetTo)
			}
			for i, o := range tt.steps {
				if got := tr.ObserveRange(o.first, o.last); got != o.want {
					t.Fatalf("step %d ObserveRange(%d, %d) = %v, want %v", i, o.first, o.last, got, o.want)
				}
				checkSeqInvariants(t, tr)
			}
			if tr.Last() != tt.wantLast {
				t.Errorf("Last = %d, want %d", tr.Last(), tt.wantLast)
			}
			if got := tr.Gaps(); !reflect.DeepEqual(got, tt.wantGaps) {
				t.Errorf("Gaps = %v, want %v", got, tt.wantGaps)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// checkSeqInvariants: gaps bounded, ascending, disjoint, non-empty, all
// below Last.
func checkSeqInvariants(t testing.TB, tr *SequenceTracker) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.ngaps < 0 || tr.ngaps > MaxTrackedGaps {
		t.Fatalf("ngaps = %d", tr.ngaps)
	}
	for i, g := range tr.gaps[:tr.ngaps] {
		if g.From > g.To {
			t.Fatalf("empty gap %v", g)
		}
		if g.To >= tr.last {
			t.Fatalf("gap %v not below Last %d", g, tr.last)
		}
		if i > 0 && tr.gaps[i-1].To >= g.From {
			t.Fatalf("gaps %v and %v overlap or are out of order", tr.gaps[i-1], g)
		}
	}
}

func TestSequenceCheck(t *testing.T) {
	tr := NewSequenceTracker()
	want := []struct {
		seq int64
		ok  bool
	}{{1, true}, {2, true}, {4, false}, {5, true}, {3, false}, {3, false}, {6, true}}
	for _, w := range want {
		if got := tr.Check(w.seq); got != w.ok {
			t.Fatalf("Check(%d) = %v, want %v", w.seq, got, w.ok)
		}
	}
	if !tr.CheckRange(7, 9) || tr.CheckRange(11, 12) {
		t.Fatal("CheckRange")
	}
	wantStats := SeqStats{InOrder: 5, Gaps: 2, Missing: 2, Duplicates: 1, Late: 1}
	if got := tr.Stats(); got != wantStats {
		t.Fatalf("Stats = %+v, want %+v", got, wantStats)
	}
	tr.Reset()
	if tr.Started() || tr.Gaps() != nil || tr.Observe(100) != SeqFirst {
		t.Fatal("Reset did not restart the tracker")
	}
}

func TestSequenceGapsBounded(t *testing.T) {
	tr := NewSequenceTracker()
	tr.Observe(0)
	for i := int64(1); i <= 2*MaxTrackedGaps; i++ {
		if got := tr.Observe(i * 10); got != SeqGap {
			t.Fatalf("Observe(%d) = %v", i*10, got)
		}
	}
	gaps := tr.Gaps()
	if len(gaps) != MaxTrackedGaps {
		t.Fatalf("%d gaps retained, want %d", len(gaps), MaxTrackedGaps)
	}
	if first := gaps[0]; first != (Gap{MaxTrackedGaps*10 + 1, MaxTrackedGaps*10 + 9}) {
		t.Fatalf("oldest retained gap %v: the oldest must be forgotten first", first)
	}
	if st := tr.Stats(); st.Forgotten != MaxTrackedGaps || st.Missing != 2*MaxTrackedGaps*9 {
		t.Fatalf("Stats = %+v", st)
	}
	// A late sequence from a forgotten gap is indistinguishable from a
	// duplicate.
	if got := tr.Observe(5); got != SeqDuplicate {
		t.Fatalf("Observe(5) = %v, want duplicate", got)
	}
	// Splitting a gap when the history is full forgets the oldest gap.
	if got := tr.Observe(MaxTrackedGaps*10 + 5); got != SeqLate {
		t.Fatalf("late split = %v", got)
	}
	gaps = tr.Gaps()
	if len(gaps) != MaxTrackedGaps || gaps[0] != (Gap{MaxTrackedGaps*10 + 6, MaxTrackedGaps*10 + 9}) {
		t.Fatalf("after split of the oldest: len %d, first %v", len(gaps), gaps[0])
	}
	checkSeqInvariants(t, tr)
	// Split in the middle with a full history.
	for len(tr.Gaps()) < MaxTrackedGaps {
		tr.Observe(tr.Last() + 3)
	}
	mid := tr.Gaps()[MaxTrackedGaps/2]
	if got := tr.Observe(mid.From + 4); got != SeqLate {
		t.Fatalf("late split = %v", got)
	}
	checkSeqInvariants(t, tr)
	if len(tr.Gaps()) != MaxTrackedGaps {
		t.Fatalf("%d gaps", len(tr.Gaps()))
	}
}

func TestSequenceResultString(t *testing.T) {
	for r, want := range map[SeqResult]string{SeqFirst: "first", SeqInOrder: "in-order", SeqGap: "gap", SeqDuplicate: "duplicate", SeqLate: "late", 9: "SeqResult(9)"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
	for g, want := range map[Gap]string{{3, 3}: "3", {3, 9}: "3-9"} {
		if g.String() != want {
			t.Errorf("%v.String() = %q", g, g.String())
		}
	}
	if n := (Gap{math.MinInt64, math.MaxInt64}).Len(); n != math.MaxUint64 {
		t.Errorf("full range Len = %d", n)
	}
}

func TestSequenceCheckNoAlloc(t *testing.T) {
	tr := NewSequenceTracker()
	seq := int64(0)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		tr.Check(seq)
		tr.ObserveRange(seq, seq)
	}); n != 0 {
		t.Fatalf("Check allocates %v per call", n)
	}
}

func TestSequenceConcurrent(t *testing.T) {
	tr := NewSequenceTracker()
	tr.Observe(0)
	var wg sync.WaitGroup
	for w := range int64(4) {
		wg.Go(func() {
			for i := int64(1); i <= 1000; i++ {
				tr.Observe(i*4 + w)
				_ = tr.Gaps()
				_ = tr.Last()
			}
		})
	}
	wg.Wait()
	checkSeqInvariants(t, tr)
	st := tr.Stats()
	if total := st.InOrder + st.Gaps + st.Duplicates + st.Late; total != 4001 {
		t.Fatalf("results %d, want 4001", total)
	}
}

// TestSequenceObserveLast: ObserveLast gives what Last then Observe give,
// and leaves the tracker in the same state, over sequences with repeats,
// gaps, late fills and resets.
func TestSequenceObserveLast(t *testing.T) {
	a, b := NewSequenceTracker(), NewSequenceTracker()
	seqs := []int64{5, 5, 6, 9, 7, 8, 8, 10, 4, 20, 15, 21, 1 << 40, 1<<40 + 1, 3}
	for i, s := range seqs {
		if i == 12 {
			a.ResetTo(100)
			b.ResetTo(100)
		}
		wantPrev := a.Last()
		want := a.Observe(s)
		got, prev := b.ObserveLast(s)
		if got != want || prev != wantPrev {
			t.Fatalf("seq %d (#%d): ObserveLast = %v, %d; Last, Observe = %d, %v", s, i, got, prev, wantPrev, want)
		}
		if a.Last() != b.Last() || a.Stats() != b.Stats() || !slices.Equal(a.Gaps(), b.Gaps()) {
			t.Fatalf("seq %d (#%d): state differs: %d %+v %v, want %d %+v %v", s, i, b.Last(), b.Stats(), b.Gaps(), a.Last(), a.Stats(), a.Gaps())
		}
	}
}
