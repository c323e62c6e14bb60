package bridge

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bookStep is one input of a book table test: a delta U..u, a snapshot
// answer with last id L, or a stream snapshot.
type bookStep struct {
	kind  byte // 'd' delta, 's' snapshot answer (restBook) / stream snapshot (streamBook)
	first int64
	last  int64
	seq   int64
}

func d(first, last int64) bookStep { return bookStep{kind: 'd', first: first, last: last} }
func snap(last int64) bookStep     { return bookStep{kind: 's', last: last} }

// render writes emitted events as "S10" (snapshot) and "D11-12" (delta).
func render(evs []Event) string {
	var b strings.Builder
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch ev.Type {
		case EventBookSnapshot:
			fmt.Fprintf(&b, "S%d", ev.LastID)
		case EventBookDelta:
			fmt.Fprintf(&b, "D%d-%d", ev.FirstID, ev.LastID)
		case EventTrade:
			fmt.Fprintf(&b, "T%s", ev.ID)
		}
	}
	return b.String()
}

func TestRestBook(t *testing.T) {
	tests := []struct {
		name      string
		steps     []bookStep
		want      string // emitted events
		wantNeeds string // per step: 'n' needs a snapshot, 'a' again (snapshot too old / gap in buffer), '.' nothing
		gaps      uint64
		dups      uint64
	}{
		{
			name:      "documented procedure: buffer, snapshot, drop u<=L, first kept straddles L+1",
			steps:     []bookStep{d(100, 105), d(106, 110), d(111, 115), snap(108), d(116, 120)},
			want:      "S108 D106-110 D111-115 D116-120",
			wantNeeds: "n....",
		},
		{
			name:      "snapshot older than the first buffered U: fetch again",
			steps:     []bookStep{d(100, 105), snap(90), d(106, 110), snap(107), d(111, 112)},
			want:      "S107 D106-110 D111-112",
			wantNeeds: "na...",
		},
		{
			name:      "snapshot exactly at first U - 1 is usable",
			steps:     []bookStep{d(100, 105), snap(99)},
			want:      "S99 D100-105",
			wantNeeds: "n.",
		},
		{
			name:      "snapshot newer than everything buffered",
			steps:     []bookStep{d(100, 105), snap(200), d(190, 201), d(202, 203)},
			want:      "S200 D190-201 D202-203",
			wantNeeds: "n...",
		},
		{
			name:      "duplicates and stale deltas are dropped",
			steps:     []bookStep{d(1, 2), snap(2), d(3, 4), d(3, 4), d(1, 2), d(5, 6)},
			want:      "S2 D3-4 D5-6",
			wantNeeds: "n.....",
			dups:      2,
		},
		{
			name:      "gap: stop, resync with a fresh snapshot before further deltas",
			steps:     []bookStep{d(1, 2), snap(2), d(3, 4), d(7, 8), d(9, 10), snap(8), d(11, 12)},
			want:      "S2 D3-4 S8 D9-10 D11-12",
			wantNeeds: "n..n...",
			gaps:      1,
		},
		{
			name:      "gap inside the buffer: keep the rest and fetch again",
			steps:     []bookStep{d(10, 11), d(12, 13), d(20, 21), snap(11), snap(21), d(22, 23)},
			want:      "S11 D12-13 S21 D22-23",
			wantNeeds: "n..a..",
			gaps:      1,
		},
		{
			name:      "late snapshot answer for a live book is ignored",
			steps:     []bookStep{d(1, 2), snap(2), snap(50), d(3, 4)},
			want:      "S2 D3-4",
			wantNeeds: "n...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b restBook
			var c symbolCounters
			var out []Event
			var needs strings.Builder
			for _, st := range tt.steps {
				var flag bool
				switch st.kind {
				case 'd':
					ev := Event{Type: EventBookDelta, FirstID: st.first, LastID: st.last}
					out, flag = b.delta(&ev, out, &c)
					needs.WriteByte(".n"[b2i(flag)])
				case 's':
					ev := Event{Type: EventBookSnapshot, LastID: st.last}
					out, flag = b.snapshot(&ev, st.last, out, &c)
					needs.WriteByte(".a"[b2i(flag)])
				}
			}
			if got := render(out); got != tt.want {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
			if got := needs.String(); got != tt.wantNeeds {
				t.Errorf("needs %q, want %q", got, tt.wantNeeds)
			}
			if got := c.gaps.Load(); got != tt.gaps {
				t.Errorf("gaps %d, want %d", got, tt.gaps)
			}
			if got := c.duplicates.Load(); got != tt.dups {
				t.Errorf("duplicates %d, want %d", got, tt.dups)
			}
			if got := c.emitted.Load(); got != uint64(len(out)) {
				t.Errorf("emitted counter %d, want %d", got, len(out))
			}
			assertSnapshotBeforeDeltas(t, out)
		})
	}
}

// TestRestBookRequester covers the SnapshotRequester path: the snapshot is
// published elsewhere, only its last id comes back.
func TestRestBookRequester(t *testing.T) {
	var b restBook
	var c symbolCounters
	var out []Event
	ev := Event{Type: EventBookDelta, FirstID: 5, LastID: 6}
	out, need := b.delta(&ev, out, &c)
	if !need {
		t.Fatal("first delta did not ask for a snapshot")
	}
	out, again := b.snapshot(nil, 5, out, &c)
	if again {
		t.Fatal("usable snapshot id refused")
	}
	if got := render(out); got != "D5-6" {
		t.Fatalf("emitted %q, want only the delta", got)
	}
	if c.snapshots.Load() != 1 {
		t.Fatalf("snapshots %d, want 1", c.snapshots.Load())
	}
}

func TestRestBookBufferBound(t *testing.T) {
	b := restBook{limit: 4}
	var c symbolCounters
	var out []Event
	for i := int64(0); i < 10; i++ {
		ev := Event{Type: EventBookDelta, FirstID: 10*i + 1, LastID: 10 * (i + 1)}
		out, _ = b.delta(&ev, out, &c)
	}
	if len(b.buf) > 4 {
		t.Fatalf("buffer holds %d deltas, bound 4", len(b.buf))
	}
	// The oldest were dropped: a snapshot older than what is left is refused.
	if _, again := b.snapshot(&Event{Type: EventBookSnapshot, LastID: 30}, 30, out, &c); !again {
		t.Fatal("snapshot older than the remaining buffer accepted")
	}
	out, again := b.snapshot(&Event{Type: EventBookSnapshot, LastID: 85}, 85, out, &c)
	if again {
		t.Fatal("usable snapshot refused")
	}
	if got := render(out); got != "S85 D81-90 D91-100" {
		t.Fatalf("emitted %q", got)
	}
}

func TestStreamBook(t *testing.T) {
	sd := func(u, seq int64) bookStep { return bookStep{kind: 'd', first: u, last: u, seq: seq} }
	ss := func(u, seq int64) bookStep { return bookStep{kind: 's', last: u, seq: seq} }
	tests := []struct {
		name   string
		policy BookGapPolicy
		steps  []bookStep
		want   string
		resubs string
		gaps   uint64
		dups   uint64
	}{
		{
			name:   "snapshot then consecutive deltas",
			steps:  []bookStep{sd(4, 0), ss(5, 50), sd(6, 51), sd(7, 52)},
			want:   "S5 D6-6 D7-7",
			resubs: "....",
		},
		{
			name:   "a later snapshot resets the book",
			steps:  []bookStep{ss(5, 0), sd(6, 0), ss(9, 0), sd(10, 0)},
			want:   "S5 D6-6 S9 D10-10",
			resubs: "....",
		},
		{
			name:   "u=1 snapshot: service restart resets",
			steps:  []bookStep{ss(500, 0), sd(501, 0), ss(1, 0), sd(2, 0)},
			want:   "S500 D501-501 S1 D2-2",
			resubs: "....",
		},
		{
			name:   "a re-sent snapshot with the same u is a reset and emitted",
			steps:  []bookStep{ss(5, 0), ss(5, 0), sd(6, 0)},
			want:   "S5 S5 D6-6",
			resubs: "...",
		},
		{
			name:   "an older snapshot (rotation overlap) is dropped",
			steps:  []bookStep{ss(5, 0), sd(6, 0), sd(7, 0), ss(6, 0), sd(8, 0)},
			want:   "S5 D6-6 D7-7 D8-8",
			resubs: ".....",
			dups:   1,
		},
		{
			name:   "u jump: resubscribe, drop deltas until the fresh snapshot",
			steps:  []bookStep{ss(5, 0), sd(6, 0), sd(9, 0), sd(10, 0), ss(12, 0), sd(13, 0)},
			want:   "S5 D6-6 S12 D13-13",
			resubs: "..r...",
			gaps:   1,
		},
		{
			name:   "u=1 delta is a restart without snapshot: gap",
			steps:  []bookStep{ss(5, 0), sd(1, 0)},
			want:   "S5",
			resubs: ".r",
			gaps:   1,
		},
		{
			name:   "seq regression is a gap",
			steps:  []bookStep{ss(5, 100), sd(6, 101), sd(7, 99)},
			want:   "S5 D6-6",
			resubs: "..r",
			gaps:   1,
		},
		{
			name:   "duplicate delta dropped",
			steps:  []bookStep{ss(5, 0), sd(6, 0), sd(6, 0), sd(7, 0)},
			want:   "S5 D6-6 D7-7",
			resubs: "....",
			dups:   1,
		},
		{
			name:   "drop-packet policy keeps the book id",
			policy: GapDropPacket,
			steps:  []bookStep{ss(5, 0), sd(8, 0), sd(6, 0)},
			want:   "S5 D6-6",
			resubs: "...",
			gaps:   1,
		},
		{
			name:   "accept policy continues from the jump",
			policy: GapAccept,
			steps:  []bookStep{ss(5, 0), sd(8, 0), sd(9, 0)},
			want:   "S5 D8-8 D9-9",
			resubs: "...",
			gaps:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := streamBook{policy: tt.policy}
			var c symbolCounters
			var out []Event
			var resubs strings.Builder
			for _, st := range tt.steps {
				ev := Event{Type: EventBookDelta, FirstID: st.first, LastID: st.last, Seq: st.seq}
				if st.kind == 's' {
					ev.Type, ev.FirstID = EventBookSnapshot, 0
				}
				var r bool
				out, r = b.event(&ev, out, &c)
				resubs.WriteByte(".r"[b2i(r)])
			}
			if got := render(out); got != tt.want {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
			if got := resubs.String(); got != tt.resubs {
				t.Errorf("resubscribes %q, want %q", got, tt.resubs)
			}
			if got := c.gaps.Load(); got != tt.gaps {
				t.Errorf("gaps %d, want %d", got, tt.gaps)
			}
			if got := c.duplicates.Load(); got != tt.dups {
				t.Errorf("duplicates %d, want %d", got, tt.dups)
			}
			if tt.policy != GapAccept { // accepting jumps is the documented exception
				assertSnapshotBeforeDeltas(t, out)
			}
		})
	}
}

// assertSnapshotBeforeDeltas checks the consumer contract on one symbol's
// book events: the first is a snapshot, every delta continues the previous
// event without a gap, a snapshot may reset at any time.
func assertSnapshotBeforeDeltas(t *testing.T, evs []Event) {
	t.Helper()
	last := int64(-1)
	for i, ev := range evs {
		switch ev.Type {
		case EventBookSnapshot:
			last = ev.LastID
		case EventBookDelta:
			if last < 0 {
				t.Fatalf("event %d: delta %d-%d before any snapshot", i, ev.FirstID, ev.LastID)
			}
			if ev.FirstID > last+1 || ev.LastID <= last {
				t.Fatalf("event %d: delta %d-%d does not continue %d", i, ev.FirstID, ev.LastID, last)
			}
			last = ev.LastID
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzBookSync drives both book synchronizers with arbitrary sequences of
// deltas, snapshots and snapshot answers: whatever arrives, the emitted
// events must satisfy the consumer contract (a snapshot first, no delta
// across a gap, no delta twice).
func FuzzBookSync(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 200, 6, 7, 9, 100, 10})
	f.Add([]byte{5, 5, 5, 250, 1, 2, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		rb := restBook{limit: 2 * preArmLimit}
		sb := streamBook{}
		var c symbolCounters
		var restOut, streamOut []Event
		next := int64(1) // the venue's next update id
		for i, op := range ops {
			switch {
			case op == 199: // the REST book's snapshot request is sent
				rb.arm()
			case op == 198: // the REST book's snapshot is requested from a requester
				rb.await()
			case op < 200: // a delta, possibly skipping (gap) or repeating ids
				skip := int64(op % 7)
				if skip > 3 {
					skip = 0
				}
				first := next + skip - int64(op%11/10)
				if first < 1 {
					first = 1
				}
				last := first + int64(op%3)
				ev := Event{Type: EventBookDelta, FirstID: first, LastID: last, Seq: int64(op), RecvTS: int64(i) * int64(time.Second)}
				restOut, _ = rb.delta(&ev, restOut, &c)
				sev := Event{Type: EventBookDelta, FirstID: last, LastID: last}
				streamOut, _ = sb.event(&sev, streamOut, &c)
				if last+1 > next {
					next = last + 1
				}
			case op < 230: // a snapshot answer for the REST book, at some past or current id
				l := next - 1 - int64(op-200)
				if l < 0 {
					l = 0
				}
				ev := Event{Type: EventBookSnapshot, LastID: l}
				restOut, _ = rb.snapshot(&ev, l, restOut, &c)
			default: // a stream snapshot (Bybit), current or restart
				l := next - 1
				if op == 255 {
					l, next = 1, 2
				}
				ev := Event{Type: EventBookSnapshot, LastID: l}
				streamOut, _ = sb.event(&ev, streamOut, &c)
			}
		}
		assertSnapshotBeforeDeltas(t, restOut)
		assertSnapshotBeforeDeltas(t, streamOut)
	})
}
