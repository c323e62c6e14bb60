package resilience

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// fuzzReader hands out values from the fuzz input, zero when exhausted.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) more() bool { return len(r.b) > 0 }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) int64() int64 {
	var buf [8]byte
	n := copy(buf[:], r.b)
	r.b = r.b[n:]
	return int64(binary.LittleEndian.Uint64(buf[:]))
}

// seq draws a sequence number: mostly near Last (so in-order, small gaps,
// duplicates and late fills are common), sometimes any int64.
func (r *fuzzReader) seq(tr *SequenceTracker) int64 {
	c := r.byte()
	if c&0x80 != 0 {
		return r.int64()
	}
	return tr.Last() + int64(int8(c<<1)>>1) // -64..63 around Last
}

// subtract returns gaps minus [from, to], the reference for late fills.
func subtract(gaps []Gap, from, to int64) []Gap {
	var out []Gap
	for _, g := range gaps {
		if g.To < from || g.From > to {
			out = append(out, g)
			continue
		}
		if g.From < from {
			out = append(out, Gap{g.From, from - 1})
		}
		if to < g.To {
			out = append(out, Gap{to + 1, g.To})
		}
	}
	return out
}

func FuzzSequenceTracker(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 5, 0, 0x7e, 0, 0x7d})                         // in order, gap, late, duplicate
	f.Add([]byte{1, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1}) // near MaxInt64
	f.Add([]byte{3, 10, 1, 0x7c, 2, 1, 0, 40, 0, 0x50, 2, 0})                 // ranges, ResetTo, Reset
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		tr := NewSequenceTracker()
		for steps := 0; r.more() && steps < 10_000; steps++ {
			op := r.byte() % 6
			started, prev, before := tr.Started(), tr.Last(), tr.Gaps()
			var first, last int64
			var res SeqResult
			switch op {
			case 0, 1: // Observe / Check
				first = r.seq(tr)
				last = first
				if op == 0 {
					res = tr.Observe(first)
				} else {
					ok := tr.Check(first)
					res = tr.lastResult(ok, started, prev, first, first, before)
				}
			case 2, 3: // ObserveRange / CheckRange
				first = r.seq(tr)
				last = first + int64(r.byte()%16)
				if last < first { // overflow
					last = math.MaxInt64
				}
				if r.byte()&1 == 1 { // occasionally reversed
					first, last = last, first
				}
				if op == 2 {
					res = tr.ObserveRange(first, last)
				} else {
					ok := tr.CheckRange(first, last)
					res = tr.lastResult(ok, started, prev, first, last, before)
				}
				first = min(first, last)
			case 4:
				tr.Reset()
				if tr.Started() || tr.Gaps() != nil {
					t.Fatal("Reset")
				}
				continue
			case 5:
				v := r.seq(tr)
				tr.ResetTo(v)
				if !tr.Started() || tr.Last() != v || tr.Gaps() != nil {
					t.Fatal("ResetTo")
				}
				continue
			}
			checkSeqInvariants(t, tr)
			after := tr.Gaps()
			what := fmt.Sprintf("prev %d range %d..%d: %v", prev, first, last, res)
			switch {
			case !started:
				if res != SeqFirst || tr.Last() != last || after != nil {
					t.Fatalf("%s, want first", what)
				}
			case last <= prev:
				if tr.Last() != prev {
					t.Fatalf("%s moved Last to %d", what, tr.Last())
				}
				want := subtract(before, first, last)
				if res == SeqDuplicate && !slices.Equal(after, before) {
					t.Fatalf("%s changed gaps %v -> %v", what, before, after)
				}
				if res == SeqLate {
					if slices.Equal(want, before) {
						t.Fatalf("%s but nothing was missing in %v", what, before)
					}
					// Equal to the reference, unless a split overflowed the
					// history and the oldest range was forgotten.
					if !slices.Equal(after, want) && !(len(want) > MaxTrackedGaps && slices.Equal(after, want[len(want)-MaxTrackedGaps:])) {
						t.Fatalf("%s: gaps %v, want %v", what, after, want)
					}
				}
				if res != SeqDuplicate && res != SeqLate || (res == SeqDuplicate) != slices.Equal(want, before) {
					t.Fatalf("%s, gaps %v", what, before)
				}
			case first <= prev || first == prev+1:
				if res != SeqInOrder || tr.Last() != last || !slices.Equal(after, before) {
					t.Fatalf("%s, want in-order", what)
				}
			default:
				g := Gap{prev + 1, first - 1}
				want := append(slices.Clone(before), g)
				if len(want) > MaxTrackedGaps {
					want = want[1:]
				}
				if res != SeqGap || tr.Last() != last || !slices.Equal(after, want) {
					t.Fatalf("%s: gaps %v, want gap %v", what, after, g)
				}
			}
		}
	})
}

// lastResult reconstructs the SeqResult behind a Check/CheckRange answer
// for the fuzz oracle: accepted answers are SeqFirst/SeqInOrder; a refusal
// is told apart by the tracker's state change.
func (t *SequenceTracker) lastResult(ok, started bool, prev, first, last int64, before []Gap) SeqResult {
	first = min(first, last)
	switch {
	case ok && !started:
		return SeqFirst
	case ok:
		return SeqInOrder
	case last > prev:
		return SeqGap
	case slices.Equal(t.Gaps(), before):
		return SeqDuplicate
	default:
		return SeqLate
	}
}

// dedupModel is the obvious reference: a list of (key, time) in record
// order, searched linearly.
type dedupModel struct {
	window  int
	ttl     int64
	newest  int64
	entries []dedupEntry[uint8]
}

func (m *dedupModel) expire(at int64) {
	for len(m.entries) > 0 && at-m.entries[0].at >= m.ttl {
		m.entries = m.entries[1:]
	}
}

func (m *dedupModel) has(k uint8, at int64) bool {
	for _, e := range m.entries {
		if e.key == k && at-e.at < m.ttl {
			return true
		}
	}
	return false
}

func (m *dedupModel) record(k uint8, at int64) bool {
	at = max(at, m.newest)
	m.newest = at
	m.expire(at)
	for _, e := range m.entries {
		if e.key == k {
			return false
		}
	}
	if len(m.entries) == m.window {
		m.entries = m.entries[1:]
	}
	m.entries = append(m.entries, dedupEntry[uint8]{key: k, at: at})
	return true
}

func FuzzDeduplicator(f *testing.F) {
	f.Add(byte(3), byte(10), []byte{1, 0, 2, 0, 1, 0, 3, 0, 4, 0, 1, 0})         // eviction
	f.Add(byte(8), byte(5), []byte{1, 0, 1, 4, 1, 1, 1, 0, 1, 5})                // TTL boundary
	f.Add(byte(4), byte(20), []byte{1, 10, 2, 0x80 | 5, 1, 0x40, 2, 0, 3, 0x7f}) // time backwards, IsDuplicate
	f.Fuzz(func(t *testing.T, window, ttl byte, ops []byte) {
		w := int(window%32) + 1
		d, err := NewMessageDeduplicator[uint8](DedupConfig{WindowSize: w, TTL: time.Duration(ttl) + 1})
		if err != nil {
			t.Fatal(err)
		}
		m := &dedupModel{window: w, ttl: int64(ttl) + 1}
		now := int64(0)
		newCount := map[uint8]int{}
		for i := 0; i+1 < len(ops) && i < 20_000; i += 2 {
			key, step := ops[i]%16, ops[i+1]
			switch {
			case step&0xc0 == 0xc0: // time goes back a little
				now -= int64(step & 0x3f)
			default:
				now += int64(step & 0x3f)
			}
			at := d.base.Add(time.Duration(now))
			if step&0x40 != 0 && step&0x80 == 0 {
				if got, want := d.IsDuplicateAt(key, at), m.has(key, now); got != want {
					t.Fatalf("op %d IsDuplicate(%d) at %d = %v, want %v", i/2, key, now, got, want)
				}
				continue
			}
			got, want := d.RecordAt(key, at), m.record(key, now)
			if got != want {
				t.Fatalf("op %d Record(%d) at %d = %v, want %v (model %v)", i/2, key, now, got, want, m.entries)
			}
			if got {
				newCount[key]++
			}
			if d.Len() != len(m.entries) || d.Len() > w {
				t.Fatalf("Len %d, model %d, window %d", d.Len(), len(m.entries), w)
			}
			checkDedupInvariants(t, d)
		}
		st := d.Stats()
		total := 0
		for _, n := range newCount {
			total += n
		}
		if st.Recorded != uint64(total) || st.Len != d.Len() || uint64(st.Len)+st.Evicted+st.Expired != st.Recorded {
			t.Fatalf("stats %+v, %d new", st, total)
		}
	})
}
