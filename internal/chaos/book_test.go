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
