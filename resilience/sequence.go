package resilience

import (
	"fmt"
	"math"
	"sync"
)

// MaxTrackedGaps is how many gap ranges a SequenceTracker retains; when a
// new gap would exceed it, the oldest (lowest) gap is forgotten.
const MaxTrackedGaps = 64

// SeqResult classifies an observed sequence number (or range).
type SeqResult uint8

// Sequence results.
const (
	// SeqFirst: the first observation since creation or Reset; it sets the
	// baseline and is accepted.
	SeqFirst SeqResult = iota
	// SeqInOrder: the next expected sequence (for ranges: the range covers
	// the next expected one); accepted.
	SeqInOrder
	// SeqGap: sequences were skipped; the missing range was recorded in
	// Gaps and the tracker moved on to the new sequence.
	SeqGap
	// SeqDuplicate: already seen (at or below Last and not inside a
	// recorded gap); drop it.
	SeqDuplicate
	// SeqLate: below Last but inside a recorded gap: a message arriving
	// out of order. The gap shrinks (or splits) to exclude it; Last does not
	// change. Whether late data can still be used is the caller's decision
	// (an order book cannot apply it; a trade log can).
	SeqLate
)

var seqResultNames = [...]string{"first", "in-order", "gap", "duplicate", "late"}

// String returns "first", "in-order", "gap", "duplicate" or "late".
func (r SeqResult) String() string {
	if int(r) < len(seqResultNames) {
		return seqResultNames[r]
	}
	return fmt.Sprintf("SeqResult(%d)", uint8(r))
}

// Accepted reports whether r is SeqFirst or SeqInOrder: the message
// continues the sequence and may be processed.
func (r SeqResult) Accepted() bool { return r == SeqFirst || r == SeqInOrder }

// Gap is an inclusive range of missing sequence numbers.
type Gap struct {
	From, To int64
}

// Len returns the number of missing sequences in the gap (saturating).
func (g Gap) Len() uint64 {
	if g.To < g.From {
		return 0
	}
	n := uint64(g.To) - uint64(g.From)
	if n == math.MaxUint64 {
		return n
	}
	return n + 1
}

// String formats the gap as "From-To" (or "From" for a single number).
func (g Gap) String() string {
	if g.From == g.To {
		return fmt.Sprint(g.From)
	}
	return fmt.Sprintf("%d-%d", g.From, g.To)
}

// SeqStats are a SequenceTracker's counters since creation or Reset.
type SeqStats struct {
	InOrder    uint64 // SeqFirst and SeqInOrder results
	Gaps       uint64 // SeqGap results
	Missing    uint64 // sequences skipped by gaps (saturating), before late fills
	Duplicates uint64 // SeqDuplicate results
	Late       uint64 // SeqLate results
	Forgotten  uint64 // gap ranges dropped from history (more than MaxTrackedGaps)
}

// SequenceTracker detects gaps, duplicates and late arrivals in a stream
// of int64 sequence numbers (trade ids, update ids).
//
// Gaps are kept as ranges, never as individual numbers, so a jump of 10^9
// stores one Gap; at most MaxTrackedGaps ranges are retained, in ascending
// order, the oldest forgotten first. A late sequence (below Last) inside a
// retained gap is reported as SeqLate and removed from the gap, shrinking
// or splitting it; below Last and outside every retained gap it is
// SeqDuplicate. Sequences are compared without overflow over the whole
// int64 range.
//
// Safe for concurrent use; Check, Observe and ObserveRange do not allocate
// on the in-order path.
type SequenceTracker struct {
	mu      sync.Mutex
	started bool
	last    int64
	gaps    [MaxTrackedGaps]Gap // gaps[:ngaps], ascending, disjoint
	ngaps   int
	stats   SeqStats
}

// NewSequenceTracker returns a tracker awaiting its first sequence.
func NewSequenceTracker() *SequenceTracker { return &SequenceTracker{} }

// Check observes seq and reports whether it may be processed (SeqFirst or
// SeqInOrder), the seed's form: false on a gap, a duplicate or a late
// arrival. After a false, Gaps lists what is missing.
func (t *SequenceTracker) Check(seq int64) bool { return t.Observe(seq).Accepted() }

// CheckRange is Check for a message covering first..last (Binance depth
// U..u). See ObserveRange.
func (t *SequenceTracker) CheckRange(first, last int64) bool {
	return t.ObserveRange(first, last).Accepted()
}

// Observe classifies seq against the last accepted sequence and updates
// the tracker: SeqFirst, SeqInOrder (seq == Last+1), SeqGap (seq > Last+1;
// the range Last+1..seq-1 is recorded and Last becomes seq), SeqDuplicate
// or SeqLate (seq <= Last; see SequenceTracker).
func (t *SequenceTracker) Observe(seq int64) SeqResult { return t.ObserveRange(seq, seq) }

// ObserveRange classifies a message that covers the sequences first..last
// (inclusive), like a Binance depth update with U=first and u=last, where
// Last is the previous message's last (or a snapshot's lastUpdateId, see
// ResetTo):
//
//   - last <= Last: SeqLate if first..last intersects a retained gap (the
//     intersection is removed from the gaps), else SeqDuplicate;
//   - first <= Last+1 <= last: SeqInOrder; overlap with already seen
//     sequences is allowed, as Binance's book procedure requires for the
//     first event after a snapshot; Last becomes last;
//   - first > Last+1: SeqGap; Last+1..first-1 is recorded; Last becomes
//     last.
//
// first > last is treated as the single sequence last.
func (t *SequenceTracker) ObserveRange(first, last int64) SeqResult {
	if first > last {
		first = last
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.observeRange(first, last)
}

// ObserveLast is Observe that also returns Last as it was before seq was
// observed (what Last would have returned just before), under one lock:
// for callers that undo a gap with ResetTo(prev).
func (t *SequenceTracker) ObserveLast(seq int64) (r SeqResult, prev int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev = t.last
	return t.observeRange(seq, seq), prev
}

// observeRange is ObserveRange with t.mu held (first <= last).
func (t *SequenceTracker) observeRange(first, last int64) SeqResult {
	switch {
	case !t.started:
		t.started, t.last = true, last
		t.stats.InOrder++
		return SeqFirst
	case last <= t.last:
		if t.fill(first, last) {
			t.stats.Late++
			return SeqLate
		}
		t.stats.Duplicates++
		return SeqDuplicate
	case first <= t.last || first == t.last+1: // t.last < last, so t.last+1 does not overflow
		t.last = last
		t.stats.InOrder++
		return SeqInOrder
	default: // first > t.last+1
		g := Gap{From: t.last + 1, To: first - 1}
		t.addGap(g)
		t.last = last
		t.stats.Gaps++
		t.stats.Missing = satAdd(t.stats.Missing, g.Len())
		return SeqGap
	}
}

func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}

// addGap appends g, which lies above every retained gap. t.mu held.
func (t *SequenceTracker) addGap(g Gap) {
	if t.ngaps == MaxTrackedGaps {
		copy(t.gaps[:], t.gaps[1:])
		t.ngaps--
		t.stats.Forgotten++
	}
	t.gaps[t.ngaps] = g
	t.ngaps++
}

// fill removes from, to from the retained gaps and reports whether any
// part of it was missing. t.mu held.
func (t *SequenceTracker) fill(from, to int64) bool {
	filled := false
	for i := 0; i < t.ngaps; i++ {
		g := t.gaps[i]
		if g.To < from || g.From > to {
			continue
		}
		filled = true
		left := Gap{From: g.From, To: from - 1} // valid iff g.From < from
		right := Gap{From: to + 1, To: g.To}    // valid iff to < g.To
		hasLeft, hasRight := g.From < from, to < g.To
		switch {
		case hasLeft && hasRight:
			// Split: one more range. Drop the oldest if full; the split
			// pieces shift down by one with it.
			if t.ngaps == MaxTrackedGaps {
				copy(t.gaps[:], t.gaps[1:])
				t.ngaps--
				t.stats.Forgotten++
				i--
				if i < 0 { // the split gap itself was the oldest: keep only its upper part
					t.insertGap(0, right)
					return true
				}
			}
			t.gaps[i] = left
			t.insertGap(i+1, right)
			return true
		case hasLeft:
			t.gaps[i] = left
		case hasRight:
			t.gaps[i] = right
		default:
			copy(t.gaps[i:], t.gaps[i+1:t.ngaps])
			t.ngaps--
			i--
		}
	}
	return filled
}

// insertGap inserts g at index i. t.mu held; t.ngaps < MaxTrackedGaps.
func (t *SequenceTracker) insertGap(i int, g Gap) {
	copy(t.gaps[i+1:t.ngaps+1], t.gaps[i:t.ngaps])
	t.gaps[i] = g
	t.ngaps++
}

// Gaps returns the retained missing ranges in ascending order (a copy).
func (t *SequenceTracker) Gaps() []Gap {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ngaps == 0 {
		return nil
	}
	return append([]Gap(nil), t.gaps[:t.ngaps]...)
}

// Last returns the highest sequence accepted so far (0 before the first).
func (t *SequenceTracker) Last() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Started reports whether a first sequence (or ResetTo) has been seen.
func (t *SequenceTracker) Started() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started
}

// Stats returns the counters.
func (t *SequenceTracker) Stats() SeqStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Reset forgets the baseline and all gaps (counters are kept): the next
// sequence is SeqFirst. Use it after recovering from a gap by other means.
func (t *SequenceTracker) Reset() {
	t.mu.Lock()
	t.started, t.last, t.ngaps = false, 0, 0
	t.mu.Unlock()
}

// ResetTo sets the baseline to last and forgets all gaps, e.g. to a book
// snapshot's lastUpdateId: then ObserveRange drops updates with u <= last
// as SeqDuplicate and accepts the first with U <= last+1 <= u.
func (t *SequenceTracker) ResetTo(last int64) {
	t.mu.Lock()
	t.started, t.last, t.ngaps = true, last, 0
	t.mu.Unlock()
}
