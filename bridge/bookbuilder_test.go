package bridge

import (
	"reflect"
	"testing"
)

func bbSnap(last int64, bids, asks []Level) Event {
	return Event{Type: EventBookSnapshot, LastID: last, Bids: bids, Asks: asks}
}

func bbDelta(first, last int64, bids, asks []Level) Event {
	return Event{Type: EventBookDelta, FirstID: first, LastID: last, Bids: bids, Asks: asks}
}

func TestBookBuilder(t *testing.T) {
	type step struct {
		ev   Event
		want BookResult
	}
	tests := []struct {
		name      string
		steps     []step
		wantValid bool
		wantID    int64
		wantBids  []Level
		wantAsks  []Level
	}{
		{
			name: "snapshot then contiguous deltas",
			steps: []step{
				{bbSnap(100, []Level{{"10", "1"}, {"9", "2"}}, []Level{{"11", "1"}}), BookReset},
				{bbDelta(101, 101, []Level{{"10", "3"}}, nil), BookApplied},
				{bbDelta(102, 103, []Level{{"9", "0"}}, []Level{{"12", "5"}}), BookApplied},
			},
			wantValid: true, wantID: 103,
			wantBids: []Level{{"10", "3"}}, wantAsks: []Level{{"11", "1"}, {"12", "5"}},
		},
		{
			// Active-active: replica B stored 101..104 before replica A's
			// snapshot at 102 landed; A's copies of 103..104 were removed
			// by the duplicate window. The retained deltas continue the book.
			name: "snapshot stored after newer deltas",
			steps: []step{
				{bbDelta(99, 100, nil, nil), BookWaiting},
				{bbDelta(101, 101, []Level{{"10", "1"}}, nil), BookWaiting},
				{bbDelta(102, 102, []Level{{"10", "2"}}, nil), BookWaiting},
				{bbDelta(103, 103, []Level{{"10", "3"}}, nil), BookWaiting},
				{bbDelta(104, 104, nil, []Level{{"11", "4"}}), BookWaiting},
				{bbSnap(102, []Level{{"10", "2"}}, []Level{{"11", "1"}}), BookReset},
				{bbDelta(105, 105, []Level{{"9", "1"}}, nil), BookApplied},
			},
			wantValid: true, wantID: 105,
			wantBids: []Level{{"10", "3"}, {"9", "1"}}, wantAsks: []Level{{"11", "4"}},
		},
		{
			name: "gap invalidates until the next snapshot",
			steps: []step{
				{bbSnap(10, []Level{{"1", "1"}}, nil), BookReset},
				{bbDelta(12, 12, []Level{{"2", "1"}}, nil), BookGap},
				{bbDelta(13, 13, nil, nil), BookWaiting},
				{bbSnap(13, []Level{{"5", "5"}}, nil), BookReset},
				{bbDelta(14, 14, nil, []Level{{"6", "1"}}), BookApplied},
			},
			wantValid: true, wantID: 14,
			wantBids: []Level{{"5", "5"}}, wantAsks: []Level{{"6", "1"}},
		},
		{
			// Replica A missed 12 and stored 13..14 first; replica B's copy
			// of 12 is stored after them.
			name: "a missing delta stored later fills the gap",
			steps: []step{
				{bbSnap(10, nil, nil), BookReset},
				{bbDelta(11, 11, []Level{{"1", "1"}}, nil), BookApplied},
				{bbDelta(13, 13, []Level{{"1", "3"}}, nil), BookGap},
				{bbDelta(14, 14, nil, []Level{{"2", "4"}}), BookWaiting},
				{bbDelta(12, 12, []Level{{"1", "2"}}, nil), BookApplied},
				{bbDelta(15, 15, nil, []Level{{"2", "5"}}), BookApplied},
			},
			wantValid: true, wantID: 15,
			wantBids: []Level{{"1", "3"}}, wantAsks: []Level{{"2", "5"}},
		},
		{
			// Found by the chaos soak: after a NATS outage replica B stored
			// ..7, a resync snapshot at 9 and 10; replica A, flushing its
			// buffer later, stored its own older snapshot at 4, then 8..9,
			// which B never had (its duplicates of the rest were dropped).
			name: "stale snapshot, then the other replica's late deltas",
			steps: []step{
				{bbSnap(4, nil, nil), BookReset},
				{bbDelta(5, 5, []Level{{"1", "5"}}, nil), BookApplied},
				{bbDelta(6, 6, []Level{{"1", "6"}}, nil), BookApplied},
				{bbDelta(7, 7, []Level{{"1", "7"}}, nil), BookApplied},
				{bbSnap(9, []Level{{"1", "9"}}, nil), BookReset},
				{bbDelta(10, 10, nil, []Level{{"2", "10"}}), BookApplied},
				{bbSnap(4, nil, nil), BookIgnored}, // older than the book: nothing new
				{bbDelta(8, 8, []Level{{"1", "8"}}, nil), BookIgnored},
				{bbDelta(9, 9, []Level{{"1", "9"}}, nil), BookIgnored},
			},
			wantValid: true, wantID: 10,
			wantBids: []Level{{"1", "9"}}, wantAsks: []Level{{"2", "10"}},
		},
		{
			name: "gap stays until a snapshot",
			steps: []step{
				{bbSnap(10, nil, nil), BookReset},
				{bbDelta(15, 16, nil, nil), BookGap},
			},
			wantValid: false, wantID: 10,
			wantBids: []Level{}, wantAsks: []Level{},
		},
		{
			name: "Binance first delta overlaps the snapshot; stale deltas ignored",
			steps: []step{
				{bbSnap(100, []Level{{"1", "1"}}, nil), BookReset},
				{bbDelta(90, 99, []Level{{"1", "9"}}, nil), BookIgnored},
				{bbDelta(95, 103, []Level{{"2", "2"}}, nil), BookApplied},
				{bbDelta(104, 104, []Level{{"1", "0.000"}}, nil), BookApplied},
				{Event{Type: EventTrade, ID: "7"}, BookIgnored},
			},
			wantValid: true, wantID: 104,
			wantBids: []Level{{"2", "2"}}, wantAsks: []Level{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBookBuilder(0)
			for i, s := range tt.steps {
				if got := b.Apply(s.ev); got != s.want {
					t.Fatalf("step %d (%+v): result %d, want %d", i, s.ev, got, s.want)
				}
			}
			if b.Valid() != tt.wantValid || b.LastID() != tt.wantID {
				t.Fatalf("valid %v id %d, want %v %d", b.Valid(), b.LastID(), tt.wantValid, tt.wantID)
			}
			if got := b.Bids(); !reflect.DeepEqual(got, tt.wantBids) {
				t.Errorf("bids %v, want %v", got, tt.wantBids)
			}
			if got := b.Asks(); !reflect.DeepEqual(got, tt.wantAsks) {
				t.Errorf("asks %v, want %v", got, tt.wantAsks)
			}
		})
	}
}

func TestBookBuilderRetainRingKeepsStreamOrder(t *testing.T) {
	b := NewBookBuilder(3)
	for id := int64(1); id <= 5; id++ {
		b.Apply(bbDelta(id, id, []Level{{"1", string(rune('0' + id))}}, nil))
	}
	// Retained: 3, 4, 5. A snapshot at 2 replays them in order.
	if got := b.Apply(bbSnap(2, nil, nil)); got != BookReset {
		t.Fatalf("result %d", got)
	}
	if b.LastID() != 5 || !reflect.DeepEqual(b.Bids(), []Level{{"1", "5"}}) {
		t.Fatalf("id %d bids %v, want 5 [[1 5]]", b.LastID(), b.Bids())
	}
	// A snapshot older than the book holds nothing new.
	if got := b.Apply(bbSnap(0, nil, nil)); got != BookIgnored || !b.Valid() || b.LastID() != 5 {
		t.Fatalf("older snapshot: result %d, valid %v, id %d", got, b.Valid(), b.LastID())
	}
	// Bybit's u = 1 (service restart) resets at any id and forgets the
	// retained deltas of the old ids.
	if got := b.Apply(bbSnap(1, []Level{{"7", "7"}}, nil)); got != BookReset || !b.Valid() || b.LastID() != 1 {
		t.Fatalf("restart snapshot: result %d, valid %v, id %d", got, b.Valid(), b.LastID())
	}
	if got := b.Apply(bbDelta(2, 2, []Level{{"7", "8"}}, nil)); got != BookApplied || !reflect.DeepEqual(b.Bids(), []Level{{"7", "8"}}) {
		t.Fatalf("after the restart: result %d bids %v", got, b.Bids())
	}
}

// A snapshot flagged reset (FlagIDReset: the venue reset its ids lower,
// OKX maintenance) resets the book whatever its id and forgets the retained
// deltas of the old range; an ordinary older snapshot is still ignored.
func TestBookBuilderIDReset(t *testing.T) {
	b := NewBookBuilder(0)
	b.Apply(bbSnap(1000, []Level{{"5", "1"}}, nil))
	for id := int64(1001); id <= 1005; id++ {
		if got := b.Apply(bbDelta(id, id, []Level{{"5", "2"}}, nil)); got != BookApplied {
			t.Fatalf("delta %d: %d", id, got)
		}
	}
	b.Apply(bbDelta(1010, 1012, nil, nil)) // a gap, retained beyond the book
	if b.Valid() {
		t.Fatal("valid across a gap")
	}
	if got := b.Apply(bbSnap(500, []Level{{"9", "9"}}, nil)); got != BookIgnored || b.LastID() != 1005 {
		t.Fatalf("ordinary older snapshot: result %d, id %d", got, b.LastID())
	}
	reset := bbSnap(500, []Level{{"6", "1"}}, nil)
	reset.Flags = FlagIDReset
	if got := b.Apply(reset); got != BookReset || !b.Valid() || b.LastID() != 500 ||
		!reflect.DeepEqual(b.Bids(), []Level{{"6", "1"}}) {
		t.Fatalf("reset snapshot: result %d, valid %v, id %d, bids %v", got, b.Valid(), b.LastID(), b.Bids())
	}
	if got := b.Apply(bbDelta(501, 503, []Level{{"6", "2"}}, nil)); got != BookApplied || !b.Valid() ||
		!reflect.DeepEqual(b.Bids(), []Level{{"6", "2"}}) {
		t.Fatalf("after the reset: result %d, valid %v, bids %v", got, b.Valid(), b.Bids())
	}
}

func TestCompareDecimal(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"9.5", "10", -1}, {"10", "9.5", 1}, {"65000.1", "65000.10001", -1}, {"65000.10", "65000.1", 0},
		{"0.0001", "0.001", -1}, {"007", "7.000", 0}, {"1", "1", 0}, {"100.5", "100.49", 1},
	} {
		if got := CompareDecimal(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareDecimal(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// depthOf sets the id series (Event.Depth) of a book event.
func depthOf(ev Event, depth int) Event {
	ev.Depth = depth
	return ev
}

// TestBookBuilderSeries covers the issue-19 failure: a Bybit REST snapshot
// (u of the 1000-level stream) published for a book whose deltas come from
// orderbook.50. Before, a higher foreign id reset the book, which then
// stayed "valid" while it ignored every later delta; a lower one was
// skipped by chance.
func TestBookBuilderSeries(t *testing.T) {
	b := NewBookBuilder(0)
	steps := []struct {
		ev   Event
		want BookResult
	}{
		{depthOf(bbSnap(100, []Level{{"10", "1"}}, nil), 50), BookReset},
		{depthOf(bbDelta(101, 101, []Level{{"10", "2"}}, nil), 50), BookApplied},
		// The foreign snapshot, far ahead and far behind: refused either way.
		{depthOf(bbSnap(30739102, []Level{{"99", "9"}}, nil), 1000), BookRefused},
		{depthOf(bbSnap(7, []Level{{"99", "9"}}, nil), 1000), BookRefused},
		// A snapshot without a series on a book whose deltas have one (a
		// bridge from before Depth existed may have published it from REST).
		{bbSnap(30739102, []Level{{"99", "9"}}, nil), BookRefused},
		// Later deltas still apply.
		{depthOf(bbDelta(102, 102, []Level{{"10", "3"}}, nil), 50), BookApplied},
		// A snapshot of the deltas' own series is taken.
		{depthOf(bbSnap(103, []Level{{"10", "4"}}, nil), 50), BookReset},
		{depthOf(bbDelta(104, 104, []Level{{"10", "5"}}, nil), 50), BookApplied},
		// The deltas move to another series (the bridges' depth changed):
		// the book is invalid until a snapshot of that series.
		{depthOf(bbDelta(9000, 9000, []Level{{"10", "6"}}, nil), 200), BookGap},
		{depthOf(bbDelta(9001, 9001, []Level{{"10", "7"}}, nil), 200), BookWaiting},
		{depthOf(bbSnap(104, nil, nil), 50), BookRefused},
		{depthOf(bbSnap(9000, []Level{{"10", "6"}}, nil), 200), BookReset},
	}
	for i, s := range steps {
		if got := b.Apply(s.ev); got != s.want {
			t.Fatalf("step %d (depth %d, last_id %d): result %d, want %d", i, s.ev.Depth, s.ev.LastID, got, s.want)
		}
		if i == 5 && (b.LastID() != 102 || !b.Valid() || !reflect.DeepEqual(b.Bids(), []Level{{"10", "3"}})) {
			t.Fatalf("after the refused snapshots: id %d valid %v bids %v, want 102 true [[10 3]]", b.LastID(), b.Valid(), b.Bids())
		}
	}
	// The retained 9001 of the new series continued the new snapshot.
	if !b.Valid() || b.LastID() != 9001 || !reflect.DeepEqual(b.Bids(), []Level{{"10", "7"}}) {
		t.Fatalf("end: id %d valid %v bids %v, want 9001 true [[10 7]]", b.LastID(), b.Valid(), b.Bids())
	}
}

// TestBookBuilderSeriesSnapshotsOnly: a Bybit depth-1 book has no deltas;
// ids of two series are not compared, so a foreign snapshot cannot freeze
// it: the next snapshot of the stream's own series resets it again.
func TestBookBuilderSeriesSnapshotsOnly(t *testing.T) {
	b := NewBookBuilder(0)
	for i, s := range []struct {
		ev   Event
		want BookResult
	}{
		{depthOf(bbSnap(500, []Level{{"10", "1"}}, nil), 1), BookReset},
		{depthOf(bbSnap(90000, []Level{{"99", "9"}}, nil), 1000), BookReset},
		{depthOf(bbSnap(501, []Level{{"10", "2"}}, nil), 1), BookReset},
		{depthOf(bbSnap(501, []Level{{"10", "2"}}, nil), 1), BookReset}, // re-sent after 3 s without change
		{depthOf(bbSnap(499, []Level{{"10", "0.5"}}, nil), 1), BookIgnored},
	} {
		if got := b.Apply(s.ev); got != s.want {
			t.Fatalf("step %d: result %d, want %d", i, got, s.want)
		}
	}
	if !reflect.DeepEqual(b.Bids(), []Level{{"10", "2"}}) || b.LastID() != 501 {
		t.Fatalf("bids %v id %d", b.Bids(), b.LastID())
	}
}
