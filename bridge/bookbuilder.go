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
	BookGap                       // a delta skipped updates: the book is invalid until they arrive or a snapshot does
	BookWaiting                   // no valid book: the delta was retained for later
	BookRefused                   // a snapshot of another id series than the deltas (see Event.Depth): it cannot be chained, the book is unchanged
)

// restartID is the update id of a snapshot after a venue's service restart
// (Bybit's u = 1): it resets a book at any id.
const restartID = 1

// DefaultBookRetain is the number of recent deltas a BookBuilder keeps to
// replay after a snapshot.
const DefaultBookRetain = 4096

// BookBuilder maintains one symbol's order book from mdbridge's book events,
// in stream order. It implements the consumer rule of the wire contract in
// the form that stays correct with several bridge replicas publishing into
// one stream (active-active), where the stream holds every update but not
// always in id order: a snapshot may be stored after deltas newer than it,
// and a delta one replica missed may be stored, by the other, after later
// ones. So the builder retains recent deltas and chains them by id, as
// Binance documents for building a book from its stream. A snapshot older
// than the book (last_id below the book id) holds nothing new and is
// ignored, except last_id 1 (Bybit's service restart), which resets the book
// and forgets the retained deltas. Any other snapshot with last_id L resets
// the book and applies the retained deltas that continue it (first_id <=
// L+1 <= last_id, then the one that continues that, and so on, whatever
// their order in the stream). Then, for every delta: last_id <=
// book id is ignored; first_id > book id + 1 is a gap (the book is invalid
// while updates are missing); anything else is applied, followed by the
// retained deltas it lets the book reach. The book is valid when it started
// from a snapshot and no retained delta goes beyond it; after a gap that
// no later delta fills, that takes the next snapshot (ask for one on the
// control subject).
//
// Ids only chain within one series (Event.Depth: a Bybit book's stream
// depth). A snapshot whose Depth differs from that of the deltas seen (one
// without a Depth included, where the deltas carry one) is refused
// (BookRefused): resetting to it would make the book ignore, or misapply,
// every later delta while looking valid. A delta of another series than
// the book's snapshot makes the book invalid until a snapshot of its series
// arrives. Without deltas (Bybit depth 1 sends only snapshots) ids of two
// series are not compared: a snapshot of another series resets the book.
// Events without a Depth (Binance, or bridges before it existed) chain
// with any series, as before.
//
// Deltas with a prev_id (Binance USD-M, whose update ids are not
// contiguous) chain by it instead of first_id: such a delta continues the
// book when prev_id <= book id (see Continues); prev_id > book id is a gap.
//
// A BookBuilder is not safe for concurrent use.
type BookBuilder struct {
	bids, asks map[string]string // price -> quantity
	id         int64             // last applied update id
	started    bool              // a snapshot was applied
	valid      bool
	series     int // Depth of the snapshot the book started from
	deltaDepth int // Depth of the latest delta that had one
	retain     int
	recent     []Event // the last retain deltas (a ring: next is the oldest once full)
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
// no update is missing before the newest delta seen.
func (b *BookBuilder) Valid() bool { return b.valid }

// LastID is the update id the book is at.
func (b *BookBuilder) LastID() int64 { return b.id }

// Apply feeds one event (other types are ignored) and returns what it did.
func (b *BookBuilder) Apply(ev Event) BookResult {
	switch ev.Type {
	case EventBookSnapshot:
		if b.deltaDepth != 0 && ev.Depth != b.deltaDepth {
			return BookRefused // another id series: it cannot chain to the deltas
		}
		if b.started && sameSeries(ev.Depth, b.series) && ev.LastID < b.id && ev.LastID != restartID {
			return BookIgnored // older than the book: it holds nothing new
		}
		if ev.LastID < b.id {
			b.recent, b.next = b.recent[:0], 0 // the venue restarted its ids
		}
		b.reset(ev)
		b.catchUp()
		return BookReset
	case EventBookDelta:
		if ev.Depth != 0 {
			b.deltaDepth = ev.Depth
		}
		b.keep(ev)
		switch {
		case !b.started:
			return BookWaiting
		case !sameSeries(ev.Depth, b.series):
			// The deltas moved to another series (the bridges' depth was
			// changed): the book cannot follow them until a snapshot of it.
			if !b.valid {
				return BookWaiting
			}
			b.valid = false
			return BookGap
		case ev.LastID <= b.id:
			return BookIgnored
		case !continues(&ev, b.id):
			if !b.valid {
				return BookWaiting
			}
			b.valid = false
			return BookGap
		}
		b.apply(ev)
		if !b.valid {
			b.catchUp() // it may fill a gap: continue from the retained deltas
		}
		return BookApplied
	}
	return BookIgnored
}

// catchUp applies the retained deltas that continue the book, in id order
// whatever their order in the stream, then decides whether the book is
// valid: it is unless a retained delta goes beyond it.
func (b *BookBuilder) catchUp() {
	for progress := true; progress; {
		progress = false
		for i := range b.recent {
			if d := &b.recent[i]; d.LastID > b.id && continues(d, b.id) && sameSeries(d.Depth, b.series) {
				b.apply(*d)
				progress = true
			}
		}
	}
	b.valid = true
	for i := range b.recent {
		if b.recent[i].LastID > b.id && sameSeries(b.recent[i].Depth, b.series) {
			b.valid = false
			return
		}
	}
}

func (b *BookBuilder) apply(d Event) {
	applyLevels(b.bids, d.Bids)
	applyLevels(b.asks, d.Asks)
	b.id = d.LastID
}

func (b *BookBuilder) reset(s Event) {
	clear(b.bids)
	clear(b.asks)
	applyLevels(b.bids, s.Bids)
	applyLevels(b.asks, s.Asks)
	b.id = s.LastID
	b.series = s.Depth
	b.started = true
}

// sameSeries reports whether update ids of two book events' series (their
// Depth) can chain: equal, or either unknown (0).
func sameSeries(a, b int) bool { return a == 0 || b == 0 || a == b }

func (b *BookBuilder) keep(d Event) {
	if len(b.recent) < b.retain {
		b.recent = append(b.recent, d)
		return
	}
	b.recent[b.next] = d
	b.next = (b.next + 1) % b.retain
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
