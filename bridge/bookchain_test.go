package bridge

import (
	"strings"
	"testing"
)

// pd is a futures delta U..u with pu.
func pd(prev, first, last int64) bookStep {
	return bookStep{kind: 'd', first: first, last: last, seq: prev}
}

// TestRestBookPrevChain: the futures procedure (EXCHANGES-MORE.md 2.4): ids
// are not contiguous, deltas chain by pu == previous u; the first applied
// delta after a snapshot L has pu <= L < u.
func TestRestBookPrevChain(t *testing.T) {
	tests := []struct {
		name, want, wantNeeds string
		steps                 []bookStep
		gaps, dups            uint64
	}{
		{
			name:      "ids skip: pu chains them, no gap",
			steps:     []bookStep{pd(97, 100, 105), pd(105, 108, 110), snap(105), pd(110, 113, 120), pd(120, 122, 122)},
			want:      "S105 D108-110 D113-120 D122-122",
			wantNeeds: "n....",
		},
		{
			name:      "snapshot between events: the next event's pu <= L < u applies",
			steps:     []bookStep{pd(97, 100, 105), pd(105, 108, 110), snap(107), pd(110, 113, 120)},
			want:      "S107 D108-110 D113-120",
			wantNeeds: "n...",
		},
		{
			name:      "snapshot older than the first buffered pu: fetch again",
			steps:     []bookStep{pd(97, 100, 105), snap(96), snap(105), pd(105, 107, 109)},
			want:      "S105 D107-109",
			wantNeeds: "na..",
		},
		{
			name:      "pu above the book id: gap, resync (U alone would not show it)",
			steps:     []bookStep{pd(1, 3, 4), snap(4), pd(4, 6, 8), pd(9, 10, 12), snap(12), pd(12, 14, 15)},
			want:      "S4 D6-8 S12 D14-15",
			wantNeeds: "n..n..",
			gaps:      1,
		},
		{
			name:      "duplicates dropped",
			steps:     []bookStep{pd(1, 3, 4), snap(4), pd(4, 6, 8), pd(4, 6, 8), pd(8, 9, 9)},
			want:      "S4 D6-8 D9-9",
			wantNeeds: "n....",
			dups:      1,
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
					ev := Event{Type: EventBookDelta, FirstID: st.first, LastID: st.last, PrevID: st.seq}
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
			if c.gaps.Load() != tt.gaps || c.duplicates.Load() != tt.dups {
				t.Errorf("gaps %d dups %d, want %d %d", c.gaps.Load(), c.duplicates.Load(), tt.gaps, tt.dups)
			}
		})
	}
}

// TestBookBuilderPrevChain: the consumer helper chains prev_id deltas the
// same way, across out-of-order storage.
func TestBookBuilderPrevChain(t *testing.T) {
	b := NewBookBuilder(0)
	delta := func(prev, first, last int64, px string) Event {
		return Event{Type: EventBookDelta, FirstID: first, LastID: last, PrevID: prev, Bids: []Level{{px, "1"}}}
	}
	if r := b.Apply(Event{Type: EventBookSnapshot, LastID: 10}); r != BookReset {
		t.Fatalf("snapshot: %v", r)
	}
	if r := b.Apply(delta(10, 14, 16, "1")); r != BookApplied || !b.Valid() {
		t.Fatalf("chained delta with U far above 11: %v valid %v", r, b.Valid())
	}
	if r := b.Apply(delta(20, 23, 24, "3")); r != BookGap || b.Valid() {
		t.Fatalf("pu 20 after 16: %v, want a gap", r)
	}
	// The missing delta arrives late (another replica stored it later).
	if r := b.Apply(delta(16, 18, 20, "2")); r != BookApplied || !b.Valid() || b.LastID() != 24 {
		t.Fatalf("late delta: %v valid %v id %d", r, b.Valid(), b.LastID())
	}
	if got := len(b.Bids()); got != 3 {
		t.Fatalf("%d bids, want 3", got)
	}
	if !Continues(&Event{FirstID: 5, LastID: 6}, 4) || Continues(&Event{FirstID: 6, LastID: 7}, 4) ||
		!Continues(&Event{FirstID: 9, LastID: 10, PrevID: 4}, 4) || Continues(&Event{FirstID: 9, LastID: 10, PrevID: 5}, 4) {
		t.Fatal("Continues")
	}
}

func TestPrevIDWire(t *testing.T) {
	ev := Event{Type: EventBookDelta, Exchange: "binance-usdm", Symbol: "BTCUSDT", FirstID: 14, LastID: 16, PrevID: 10}
	body := string(ev.AppendJSON(nil))
	if !strings.Contains(body, `"first_id":14,"prev_id":10,"last_id":16`) {
		t.Fatalf("body %s", body)
	}
	got, err := DecodeJSON([]byte(body))
	if err != nil || got.PrevID != 10 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	ev.PrevID = 0
	if strings.Contains(string(ev.AppendJSON(nil)), "prev_id") {
		t.Fatal("prev_id written without a PrevID")
	}
}

// TestRouteGroups: a Router splits the channels by route; md_state merges.
func TestRouteGroups(t *testing.T) {
	both := ChannelTrade | ChannelBook
	if g := routeGroups(routed{}, both); len(g) != 2 || g[0] != ChannelTrade || g[1] != ChannelBook {
		t.Fatalf("routed groups %v", g)
	}
	if g := routeGroups(routed{}, ChannelBook); len(g) != 1 || g[0] != ChannelBook {
		t.Fatalf("book only %v", g)
	}
	a := SymbolState{State: "CONNECTED", Connection: "x-0.1", LastMessageTS: 5, Counters: Counters{Messages: 3, Gaps: 1}}
	b := SymbolState{State: "RECONNECTING", Connection: "x-1.2", LastError: "eof", Attempt: 2, LastMessageTS: 9, Counters: Counters{Messages: 4}}
	m := mergeState(a, b)
	if m.State != "RECONNECTING" || m.LastError != "eof" || m.Attempt != 2 || m.Connection != "x-0.1,x-1.2" ||
		m.LastMessageTS != 9 || m.Messages != 7 || m.Gaps != 1 {
		t.Fatalf("merged %+v", m)
	}
}

// routed is a Router: trades on "market", books on "public".
type routed struct{ Exchange }

func (routed) Route(t Topic) string {
	if t.Channel == ChannelBook {
		return "public"
	}
	return "market"
}
