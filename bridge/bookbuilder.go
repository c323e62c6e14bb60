package bridge

import (
	"sort"
	"strings"
)

// BookResult says what BookBuilder.Apply did with an event.
type BookResult uint8

// Results of BookBuilder.Apply.
const (
	BookIgnored BookResult = iota // not a book event of this book, or a delta the book already covers
	BookApplied                   // a delta was applied
	BookReset                     // a snapshot reset the book (retained deltas that continue it were applied too)
	BookGap                       // a delta skipped updates: the book is invalid until the next snapshot
	BookWaiting                   // no valid book yet: the delta was retained for the next snapshot
)

// DefaultBookRetain is the number of recent deltas a BookBuilder keeps to
// replay after a snapshot.
const DefaultBookRetain = 4096

// BookBuilder maintains one symbol's order book from mdbridge's book events,
// in stream order. It implements the consumer rule of the wire contract in
// the form that stays correct with several bridge replicas publishing into
// one stream (active-active): a snapshot may be stored after deltas newer
// than it, so the builder retains recent deltas and, on a snapshot with
// last_id L, resets to it and replays the retained deltas that continue it
// (the first with first_id <= L+1 <= last_id, then each following on),
// exactly as Binance documents for building a book from its own stream.
// Then, for every delta: last_id <= book id is ignored; first_id > book id
// + 1 is a gap (the book is invalid until the next snapshot; ask for one
// on the control subject); anything else is applied.
//
// A BookBuilder is not safe for concurrent use.
type BookBuilder struct {
	bids, asks map[string]string // price -> quantity
	id         int64             // last applied update id
	valid      bool
	retain     int
	recent     []Event // ring of the last retain deltas, oldest first after unroll
	next       int
}

// NewBookBuilder returns an empty, invalid book that retains the last
// retain deltas (DefaultBookRetain when retain <= 0).
func NewBookBuilder(retain int) *BookBuilder {
	if retain <= 0 {
		retain = DefaultBookRetain
	}
	return &BookBuilder{bids: map[string]string{}, asks: map[string]string{}, retain: retain}
}

// Valid reports whether the book is usable: it started from a snapshot and
// has seen no gap since.
func (b *BookBuilder) Valid() bool { return b.valid }

// LastID is the update id the book is at.
func (b *BookBuilder) LastID() int64 { return b.id }

// Apply feeds one event (other types are ignored) and returns what it did.
func (b *BookBuilder) Apply(ev Event) BookResult {
	switch ev.Type {
	case EventBookSnapshot:
		b.reset(ev)
		for _, d := range b.retained() {
			if b.step(d) == BookGap {
				break
			}
		}
		return BookReset
	case EventBookDelta:
		b.keep(ev)
		if !b.valid {
			return BookWaiting
		}
		return b.step(ev)
	}
	return BookIgnored
}

func (b *BookBuilder) step(d Event) BookResult {
	if !b.valid || d.LastID <= b.id {
		return BookIgnored
	}
	if d.FirstID > b.id+1 {
		b.valid = false
		return BookGap
	}
	applyLevels(b.bids, d.Bids)
	applyLevels(b.asks, d.Asks)
	b.id = d.LastID
	return BookApplied
}

func (b *BookBuilder) reset(s Event) {
	clear(b.bids)
	clear(b.asks)
	applyLevels(b.bids, s.Bids)
	applyLevels(b.asks, s.Asks)
	b.id = s.LastID
	b.valid = true
}

func (b *BookBuilder) keep(d Event) {
	if len(b.recent) < b.retain {
		b.recent = append(b.recent, d)
		return
	}
	b.recent[b.next] = d
	b.next = (b.next + 1) % b.retain
}

// retained returns the kept deltas in stream order.
func (b *BookBuilder) retained() []Event {
	if len(b.recent) < b.retain || b.next == 0 {
		return b.recent
	}
	out := make([]Event, 0, len(b.recent))
	out = append(out, b.recent[b.next:]...)
	return append(out, b.recent[:b.next]...)
}

func applyLevels(side map[string]string, levels []Level) {
	for _, l := range levels {
		if isZeroDecimal(l[1]) {
			delete(side, l[0])
		} else {
			side[l[0]] = l[1]
		}
	}
}

// Bids returns the bid levels, best (highest) first.
func (b *BookBuilder) Bids() []Level { return sortedLevels(b.bids, true) }

// Asks returns the ask levels, best (lowest) first.
func (b *BookBuilder) Asks() []Level { return sortedLevels(b.asks, false) }

func sortedLevels(side map[string]string, desc bool) []Level {
	out := make([]Level, 0, len(side))
	for p, q := range side {
		out = append(out, Level{p, q})
	}
	sort.Slice(out, func(i, j int) bool {
		c := CompareDecimal(out[i][0], out[j][0])
		if desc {
			return c > 0
		}
		return c < 0
	})
	return out
}

// isZeroDecimal reports whether a decimal string is zero ("0", "0.000").
func isZeroDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '0' && s[i] != '.' {
			return false
		}
	}
	return true
}

// CompareDecimal compares two non-negative decimal strings numerically
// (-1, 0, +1) without converting them to floats: "65000.1" < "65000.10001",
// "9.5" < "10".
func CompareDecimal(a, b string) int {
	ai, af, _ := strings.Cut(a, ".")
	bi, bf, _ := strings.Cut(b, ".")
	ai, bi = strings.TrimLeft(ai, "0"), strings.TrimLeft(bi, "0")
	if len(ai) != len(bi) {
		if len(ai) < len(bi) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(ai, bi); c != 0 {
		return c
	}
	af, bf = strings.TrimRight(af, "0"), strings.TrimRight(bf, "0")
	return strings.Compare(af, bf)
}
