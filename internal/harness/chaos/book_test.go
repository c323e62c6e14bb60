package chaos

import (
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

func snap(id int64, bids, asks []bridge.Level) bridge.Event {
	return bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "binance", Symbol: "BTCUSDT", LastID: id, Bids: bids, Asks: asks}
}

func delta(first, last int64, bids, asks []bridge.Level) bridge.Event {
	return bridge.Event{Type: bridge.EventBookDelta, Exchange: "binance", Symbol: "BTCUSDT", FirstID: first, LastID: last, Bids: bids, Asks: asks}
}

func lv(p, q string) []bridge.Level { return []bridge.Level{{p, q}} }

func TestBookReplay(t *testing.T) {
	tests := []struct {
		name       string
		resetOnly  bool
		events     []bridge.Event
		wantID     int64
		wantLive   bool
		wantGaps   int
		wantStale  int
		wantHealed int
		wantBids   map[string]string
	}{
		{
			name:   "snapshot then continuous deltas",
			events: []bridge.Event{snap(10, lv("100", "1"), lv("101", "1")), delta(11, 12, lv("99", "2"), nil), delta(13, 13, lv("100", "0"), nil)},
			wantID: 13, wantLive: true, wantBids: map[string]string{"99": "2"},
		},
		{
			name:   "deltas before the first snapshot replay when they continue it; covered ones are skipped",
			events: []bridge.Event{delta(5, 6, lv("1", "1"), nil), delta(10, 11, lv("98", "1"), nil), snap(10, lv("100", "1"), nil), delta(8, 10, lv("5", "5"), nil), delta(12, 12, lv("99", "1"), nil)},
			wantID: 12, wantLive: true, wantBids: map[string]string{"100": "1", "98": "1", "99": "1"},
		},
		{
			name:   "a gap stops the book until the next snapshot",
			events: []bridge.Event{snap(10, lv("100", "1"), nil), delta(12, 12, lv("99", "1"), nil), delta(13, 13, lv("98", "1"), nil), snap(13, lv("97", "1"), nil), delta(14, 14, lv("96", "1"), nil)},
			wantID: 14, wantLive: true, wantGaps: 1, wantBids: map[string]string{"97": "1", "96": "1"},
		},
		{
			name:      "a reset-only consumer meeting a stale snapshot sees a gap",
			resetOnly: true,
			events:    []bridge.Event{snap(10, lv("100", "1"), nil), delta(11, 12, lv("99", "1"), nil), snap(11, lv("100", "1"), nil), delta(13, 13, lv("98", "1"), nil)},
			wantID:    11, wantLive: false, wantGaps: 1, wantStale: 1, wantBids: map[string]string{"100": "1"},
		},
		{
			name:   "the documented consumer replays the kept deltas after a stale snapshot",
			events: []bridge.Event{snap(10, lv("100", "1"), nil), delta(11, 12, lv("99", "1"), nil), snap(11, lv("100", "1"), nil), delta(13, 13, lv("98", "1"), nil)},
			wantID: 13, wantLive: true, wantStale: 1, wantBids: map[string]string{"100": "1", "99": "1", "98": "1"},
		},
		{
			name:   "a kept delta beyond the snapshot makes the replay a gap",
			events: []bridge.Event{snap(10, lv("100", "1"), nil), delta(15, 16, lv("99", "1"), nil), snap(12, lv("100", "2"), nil), delta(13, 13, lv("98", "1"), nil)},
			wantID: 13, wantLive: false, wantGaps: 1, wantBids: map[string]string{"100": "2", "98": "1"},
		},
		{
			name:   "a delta stored after later ones fills the gap",
			events: []bridge.Event{snap(10, lv("100", "1"), nil), delta(11, 11, lv("99", "1"), nil), delta(13, 13, lv("97", "1"), nil), delta(14, 14, lv("96", "1"), nil), delta(12, 12, lv("98", "1"), nil)},
			wantID: 14, wantLive: true, wantGaps: 1, wantHealed: 1,
			wantBids: map[string]string{"100": "1", "99": "1", "98": "1", "97": "1", "96": "1"},
		},
		{
			// The chaos soak's case: replica B stored up to 13 with a resync
			// snapshot at 12 (it missed 11..12); replica A, flushing its
			// buffer after a NATS outage, stored an older snapshot and then
			// 11..12, which B never had. The older snapshot is skipped.
			name: "stale snapshot, then the other replica's late deltas",
			events: []bridge.Event{snap(8, lv("100", "1"), nil), delta(9, 10, lv("99", "1"), nil), snap(12, lv("100", "1"), nil), delta(13, 13, lv("97", "1"), nil),
				snap(8, lv("100", "1"), nil), delta(11, 11, lv("98", "1"), nil), delta(12, 12, lv("98", "2"), nil)},
			wantID: 13, wantLive: true, wantStale: 1,
			wantBids: map[string]string{"100": "1", "97": "1"},
		},
		{
			name:   "a restart snapshot (last_id 1) resets a book at any id",
			events: []bridge.Event{snap(8, lv("100", "1"), nil), delta(9, 9, lv("99", "1"), nil), snap(1, lv("50", "1"), nil), delta(2, 2, lv("49", "1"), nil)},
			wantID: 2, wantLive: true,
			wantBids: map[string]string{"50": "1", "49": "1"},
		},
		{
			name:   "quantity zero in any spelling removes a level",
			events: []bridge.Event{snap(1, []bridge.Level{{"1", "1"}, {"2", "1"}}, nil), delta(2, 2, []bridge.Level{{"1", "0.000"}, {"2", "00"}}, nil)},
			wantID: 2, wantLive: true, wantBids: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := BookReplay{ResetOnly: tt.resetOnly}
			for i := range tt.events {
				b.Apply(uint64(i+1), &tt.events[i])
			}
			if b.LastID != tt.wantID || b.Live != tt.wantLive || b.Gaps != tt.wantGaps || b.StaleSnapshots != tt.wantStale || b.Healed != tt.wantHealed {
				t.Fatalf("id %d live %v gaps %d stale %d healed %d, want %d %v %d %d %d (log %v)", b.LastID, b.Live, b.Gaps, b.StaleSnapshots, b.Healed,
					tt.wantID, tt.wantLive, tt.wantGaps, tt.wantStale, tt.wantHealed, b.GapLog)
			}
			if len(b.Bids) != len(tt.wantBids) {
				t.Fatalf("bids %v, want %v", b.Bids, tt.wantBids)
			}
			for p, q := range tt.wantBids {
				if b.Bids[p] != q {
					t.Fatalf("bids %v, want %v", b.Bids, tt.wantBids)
				}
			}
			// The library implements the same rule: same verdict, same id.
			lib := bridge.NewBookBuilder(0)
			if !tt.resetOnly {
				for _, ev := range tt.events {
					lib.Apply(ev)
				}
				if lib.Valid() != b.Live || (b.Live && lib.LastID() != b.LastID) {
					t.Fatalf("bridge.BookBuilder: valid %v at %d; replay live %v at %d", lib.Valid(), lib.LastID(), b.Live, b.LastID)
				}
			}
		})
	}
}

func TestBookReplayDiff(t *testing.T) {
	b := BookReplay{}
	if d := b.Diff(nil, nil, 0, 0); !strings.Contains(d, "no snapshot") {
		t.Fatalf("empty book: %q", d)
	}
	ev := snap(7, []bridge.Level{{"9.5", "1"}, {"10", "2"}, {"8", "1"}}, []bridge.Level{{"11", "1"}, {"10.5", "3"}})
	b.Apply(1, &ev)
	bids := [][2]string{{"10", "2"}, {"9.5", "1"}, {"8", "1"}}
	asks := [][2]string{{"10.5", "3"}, {"11", "1"}}
	if d := b.Diff(bids, asks, 0, 7); d != "" {
		t.Fatalf("equal books differ: %s", d)
	}
	if d := b.Diff(bids[:2], asks[:1], 2, 7); !strings.Contains(d, "asks") {
		t.Fatalf("depth 2 must compare two ask levels: %q", d)
	}
	if d := b.Diff(bids[:1], asks[:1], 1, 7); d != "" {
		t.Fatalf("depth 1: %s", d)
	}
	if d := b.Diff(bids, asks, 0, 8); !strings.Contains(d, "book id 7") {
		t.Fatalf("id mismatch: %q", d)
	}
	if d := b.Diff([][2]string{{"10", "2"}, {"9.5", "9"}, {"8", "1"}}, asks, 0, 0); !strings.Contains(d, "bids differ at level 1") {
		t.Fatalf("quantity mismatch: %q", d)
	}
	gap := delta(9, 9, nil, nil)
	b.Apply(2, &gap)
	if d := b.Diff(bids, asks, 0, 0); !strings.Contains(d, "waiting") {
		t.Fatalf("book after a gap: %q", d)
	}
}

func TestCompareDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"10", "9.99", 1}, {"9.99", "10", -1}, {"1.5", "1.50", 0}, {"0.05", "0.5", -1},
		{"100.1", "100.09", 1}, {"007", "7", 0}, {"65000.10", "65000.1", 0}, {"2", "10", -1},
	}
	for _, tt := range tests {
		if got := bridge.CompareDecimal(tt.a, tt.b); got != tt.want {
			t.Errorf("bridge.CompareDecimal(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestBookReplaySeries: the README rule's series check. Bybit numbers
// each orderbook depth's updates separately ("depth" on the event); a
// snapshot of another series than the deltas cannot chain to them and is
// skipped, whether its id is above or below the book's; one without a
// depth on deltas that carry one is skipped too; a delta of another series
// than the book's snapshot leaves the book unusable until a snapshot of
// its series; without deltas (depth 1) a snapshot of another series
// resets the book.
func TestBookReplaySeries(t *testing.T) {
	type step struct {
		ev    bridge.Event
		depth int
	}
	tests := []struct {
		name        string
		steps       []step
		wantID      int64
		wantLive    bool
		wantForeign int
		wantGaps    int
		wantBids    map[string]string
	}{
		{
			name: "foreign snapshots above and below the book are skipped",
			steps: []step{{snap(100, lv("10", "1"), nil), 50}, {delta(101, 101, lv("10", "2"), nil), 50},
				{snap(30739102, lv("99", "9"), nil), 1000}, {snap(7, lv("99", "9"), nil), 1000}, {snap(30739102, lv("99", "9"), nil), 0},
				{delta(102, 102, lv("11", "1"), nil), 50}},
			wantID: 102, wantLive: true, wantForeign: 3, wantBids: map[string]string{"10": "2", "11": "1"},
		},
		{
			name: "a snapshot of the deltas' series resets",
			steps: []step{{snap(100, lv("10", "1"), nil), 200}, {delta(101, 101, lv("10", "2"), nil), 200},
				{snap(103, lv("12", "1"), nil), 200}, {delta(104, 104, lv("13", "1"), nil), 200}},
			wantID: 104, wantLive: true, wantBids: map[string]string{"12": "1", "13": "1"},
		},
		{
			// A REST snapshot (1000-level series) published before the
			// first delta: the book starts from it, and the first delta
			// of the stream's series shows it cannot continue.
			name: "a book from a foreign snapshot waits for one of the deltas' series",
			steps: []step{{snap(900000, lv("99", "9"), nil), 1000}, {delta(101, 101, lv("10", "2"), nil), 50},
				{delta(102, 102, lv("10", "3"), nil), 50}, {snap(101, lv("10", "2"), nil), 50}},
			wantID: 102, wantLive: true, wantGaps: 1, wantBids: map[string]string{"10": "3"},
		},
		{
			name: "deltas moving to another series invalidate the book until its snapshot",
			steps: []step{{snap(100, lv("10", "1"), nil), 50}, {delta(101, 101, lv("10", "2"), nil), 50},
				{delta(9000, 9000, lv("10", "6"), nil), 200}, {delta(9001, 9001, lv("10", "7"), nil), 200},
				{snap(104, nil, nil), 50}, {snap(9000, lv("10", "6"), nil), 200}},
			wantID: 9001, wantLive: true, wantGaps: 1, wantForeign: 1, wantBids: map[string]string{"10": "7"},
		},
		{
			name: "depth 1: snapshots only, a foreign one does not freeze the book",
			steps: []step{{snap(500, lv("10", "1"), nil), 1}, {snap(90000, lv("99", "9"), nil), 1000},
				{snap(501, lv("10", "2"), nil), 1}, {snap(501, lv("10", "2"), nil), 1}, {snap(499, lv("10", "0.5"), nil), 1}},
			wantID: 501, wantLive: true, wantBids: map[string]string{"10": "2"},
		},
		{
			// What an old bridge published: no depth anywhere, a REST
			// snapshot (u of the 1000-level stream) far above the deltas'
			// ids. Nothing tells the consumer: its book takes the foreign
			// snapshot and then skips every delta as covered (issue 19).
			name: "without depth a foreign snapshot freezes the book",
			steps: []step{{snap(100, lv("10", "1"), nil), 0}, {delta(101, 101, lv("10", "2"), nil), 0},
				{snap(30739102, lv("99", "9"), nil), 0}, {delta(102, 102, lv("11", "1"), nil), 0}},
			wantID: 30739102, wantLive: true, wantBids: map[string]string{"99": "9"},
		},
		{
			// An OKX maintenance reset: the snapshot flagged reset is below
			// the book and still resets it; the deltas after it apply.
			name: "a reset snapshot below the book resets it",
			steps: []step{{snap(1000, lv("10", "1"), nil), 0}, {delta(1001, 1005, lv("10", "2"), nil), 0},
				{resetSnap(500, lv("20", "1"), nil), 0}, {delta(501, 502, lv("20", "3"), nil), 0}},
			wantID: 502, wantLive: true, wantBids: map[string]string{"20": "3"},
		},
		{
			// The same snapshot without the flag is older than the book.
			name: "an older snapshot without reset is skipped",
			steps: []step{{snap(1000, lv("10", "1"), nil), 0}, {delta(1001, 1005, lv("10", "2"), nil), 0},
				{snap(500, lv("20", "1"), nil), 0}},
			wantID: 1005, wantLive: true, wantBids: map[string]string{"10": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b BookReplay
			for i, s := range tt.steps {
				b.ApplyDepth(uint64(i+1), &s.ev, s.depth)
			}
			if b.LastID != tt.wantID || b.Live != tt.wantLive || b.Foreign != tt.wantForeign || b.Gaps != tt.wantGaps {
				t.Fatalf("id %d live %v foreign %d gaps %d, want %d %v %d %d (gaps %v, foreign %v)", b.LastID, b.Live, b.Foreign, b.Gaps,
					tt.wantID, tt.wantLive, tt.wantForeign, tt.wantGaps, b.GapLog, b.ForeignLog)
			}
			if len(b.Bids) != len(tt.wantBids) {
				t.Fatalf("bids %v, want %v", b.Bids, tt.wantBids)
			}
			for p, q := range tt.wantBids {
				if b.Bids[p] != q {
					t.Fatalf("bids %v, want %v", b.Bids, tt.wantBids)
				}
			}
		})
	}
}

func resetSnap(last int64, bids, asks []bridge.Level) bridge.Event {
	ev := snap(last, bids, asks)
	ev.Flags |= bridge.FlagIDReset
	return ev
}

func TestBodyDepth(t *testing.T) {
	tests := []struct {
		body    string
		ev      bridge.Event
		want    int
		wantErr string
	}{
		{`{"type":"book.delta","last_id":5,"depth":50}`, bridge.Event{Type: bridge.EventBookDelta, Exchange: "bybit"}, 50, ""},
		{`{"type":"book.snapshot","last_id":5,"depth":1000}`, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "bybit-linear"}, 1000, ""},
		{`{"type":"book.snapshot","last_id":5}`, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "bybit"}, 0, ""},
		{`{"type":"book.snapshot","last_id":5,"depth":25}`, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "bybit"}, 0, "want 1, 50"},
		{`{"type":"book.snapshot","last_id":5,"depth":"50"}`, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "bybit"}, 0, "not an integer"},
		{`{"type":"book.snapshot","last_id":5,"depth":50.5}`, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "bybit"}, 0, "not an integer"},
		{`{"type":"book.delta","last_id":5,"depth":50}`, bridge.Event{Type: bridge.EventBookDelta, Exchange: "binance"}, 0, "Bybit book events only"},
		{`{"type":"trade","id":"1","depth":50}`, bridge.Event{Type: bridge.EventTrade, Exchange: "bybit"}, 0, "Bybit book events only"},
	}
	for _, tt := range tests {
		got, err := bodyDepth([]byte(tt.body), &tt.ev)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("bodyDepth(%s) = %d, %v; want %d, %q", tt.body, got, err, tt.want, tt.wantErr)
		}
	}
}
