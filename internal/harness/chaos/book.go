package chaos

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/qldata/mdbridge/bridge"
)

// BookReplay is the order book a downstream consumer builds from one
// subject of the stream by the wire contract (README "Building a book"):
// the consumer keeps the recent deltas; a book.snapshot of another update-id
// series than the deltas (its "depth" differs from theirs, or it has none
// while they have one) cannot chain to them and is skipped; a book.snapshot
// older than the book (last_id below the book id, other than 1, Bybit's
// restart marker) is skipped; any other book.snapshot with last_id L resets
// the book to it, and the kept deltas that continue it are applied by id
// (one with first_id <= L+1 <= last_id, then one that continues that, and
// so on, in whatever order they were stored); then a book.delta with
// last_id <= the book id is already covered and skipped, a delta whose
// first_id is beyond the book id + 1 is a gap (the book is unusable while
// updates are missing), and any other delta is applied (quantity "0"
// removes a level), followed by the kept deltas it lets the book reach. A
// gap closes when a later-stored delta fills it (Healed) or at the next
// snapshot.
//
// Series: "depth" (Bybit's orderbook stream depth, 1, 50, 200 or 1000) names
// the update-id series of an event; an event without it (Binance, or a
// bridge from before the field) chains with any series. The deltas' series
// is that of the latest delta carrying one. A delta of another series than
// the book's snapshot cannot continue the book: the book is unusable until a
// snapshot of the deltas' series. Without deltas (Bybit depth 1 sends only
// snapshots) ids of two series are not compared: a snapshot of another
// series than the book's resets it.
//
// With ResetOnly set, the replay is the naive consumer that only resets on
// a snapshot and applies later deltas (the rule before active-active
// replicas were taken into account; it skips snapshots of another series
// too); the reconciliation runs it as a diagnostic: its gaps show how often
// a replica's snapshot was stored after another replica's newer deltas.
//
// This is an implementation independent of bridge.BookBuilder, so the
// soak also cross-checks the library. It reads the series from the stored
// body itself (StreamMsg.Depth), not from bridge.DecodeJSON.
type BookReplay struct {
	ResetOnly bool
	// Retain is how many recent deltas are kept for replay after a
	// snapshot (default bridge.DefaultBookRetain).
	Retain int

	Bids, Asks map[string]string
	LastID     int64
	// Live is true while the book is usable: a snapshot was applied and no
	// gap was seen after it.
	Live    bool
	started bool
	// Series is the depth of the snapshot the book was reset to (0: none
	// given); DeltaSeries that of the latest delta that carried one.
	Series, DeltaSeries int
	recent              []keptDelta // kept deltas, a ring from head
	head                int
	// gapLogged is true when the open gap is the last entry of GapLog.
	gapLogged bool

	Snapshots      int // snapshots seen
	Foreign        int // snapshots skipped as of another id series than the deltas
	StaleSnapshots int // snapshots older than the live book they reset
	Replayed       int // kept deltas applied after a snapshot
	Deltas         int // deltas seen
	Applied        int // deltas applied on arrival
	Covered        int // deltas skipped as already covered (last_id <= book id)
	BeforeSnapshot int // deltas before the first snapshot
	Waiting        int // deltas kept while the book is unusable after a gap
	Gaps           int // consumer-visible gaps (delta beyond book id + 1)
	Healed         int // gaps closed by a delta stored later, without a snapshot
	// GapLog describes the first gaps (bounded).
	GapLog []string
	// StaleLog lists the first stale snapshots (bounded).
	StaleLog []StaleSnapshot
	// ForeignLog describes the first foreign-series snapshots (bounded).
	ForeignLog []string
}

// keptDelta is a kept delta with its series.
type keptDelta struct {
	ev    bridge.Event
	depth int
}

// StaleSnapshot is a snapshot older than the live book it met.
type StaleSnapshot struct {
	Seq    uint64 `json:"seq"`
	LastID int64  `json:"last_id"`
	BookID int64  `json:"book_id"`
	// Origin says which replica produced it, when known.
	Origin string `json:"origin,omitempty"`
}

const maxGapLog = 8

// Apply feeds the next event of the subject (stream sequence seq), an event
// without a series (as ApplyDepth with depth 0).
func (b *BookReplay) Apply(seq uint64, ev *bridge.Event) { b.ApplyDepth(seq, ev, 0) }

// ApplyDepth feeds the next event of the subject (stream sequence seq) of
// update-id series depth (the body's "depth"; 0 when it has none).
func (b *BookReplay) ApplyDepth(seq uint64, ev *bridge.Event, depth int) {
	switch ev.Type {
	case bridge.EventBookSnapshot:
		b.Snapshots++
		if b.DeltaSeries != 0 && depth != b.DeltaSeries {
			b.Foreign++
			if len(b.ForeignLog) < maxGapLog {
				b.ForeignLog = append(b.ForeignLog, fmt.Sprintf("seq %d: snapshot %d of depth %d on deltas of depth %d (book id %d)",
					seq, ev.LastID, depth, b.DeltaSeries, b.LastID))
			}
			return // its ids cannot chain to the deltas
		}
		comparable := b.started && sameSeries(depth, b.Series)
		if comparable && ev.LastID < b.LastID && ev.LastID != 1 {
			b.StaleSnapshots++
			if len(b.StaleLog) < maxGapLog {
				b.StaleLog = append(b.StaleLog, StaleSnapshot{Seq: seq, LastID: ev.LastID, BookID: b.LastID})
			}
			if !b.ResetOnly {
				return // the documented consumer skips it: its book is newer
			}
		}
		if comparable && ev.LastID < b.LastID {
			b.recent, b.head = nil, 0 // ids restarted: the kept deltas are void
		}
		wasLive := b.Live || !b.started
		b.Bids = make(map[string]string, len(ev.Bids))
		b.Asks = make(map[string]string, len(ev.Asks))
		for _, l := range ev.Bids {
			setLevel(b.Bids, l)
		}
		for _, l := range ev.Asks {
			setLevel(b.Asks, l)
		}
		b.LastID, b.Live, b.started, b.Series = ev.LastID, true, true, depth
		if b.ResetOnly {
			return
		}
		b.Replayed += b.replay()
		if d := b.beyond(); d != nil {
			if wasLive {
				b.gap(seq, d, "replaying kept deltas after the snapshot")
			} else {
				b.Live = false // the open gap goes on
			}
		}
	case bridge.EventBookDelta:
		b.Deltas++
		if depth != 0 {
			b.DeltaSeries = depth
		}
		b.keep(ev, depth)
		switch {
		case !b.started:
			b.BeforeSnapshot++
		case !sameSeries(depth, b.Series):
			// The deltas are of another series than the book: it cannot
			// follow them until a snapshot of theirs.
			if b.Live {
				b.gap(seq, ev, fmt.Sprintf("depth %d on a book from a depth %d snapshot", depth, b.Series))
			} else {
				b.Waiting++
			}
		case ev.LastID <= b.LastID:
			b.Covered++
		case !bridge.Continues(ev, b.LastID):
			if b.Live {
				b.gap(seq, ev, "")
			} else {
				b.Waiting++
			}
		case b.Live:
			b.apply(ev)
			b.Applied++
		case b.ResetOnly:
			b.Waiting++ // the naive consumer waits for a snapshot
		default:
			// It continues a book that lacked updates: the other copies
			// may be among the kept deltas.
			b.apply(ev)
			b.Applied++
			b.Replayed += b.replay()
			if b.beyond() == nil {
				b.Live = true
				b.Healed++
				if b.gapLogged {
					b.GapLog[len(b.GapLog)-1] += fmt.Sprintf(" [filled at seq %d]", seq)
				}
			}
		}
	}
}

// sameSeries reports whether the ids of two series (depths) chain: equal,
// or either not given.
func sameSeries(a, b int) bool { return a == 0 || b == 0 || a == b }

// replay applies kept deltas that continue the book, by id, until none
// does, and returns how many it applied.
func (b *BookReplay) replay() int {
	n := 0
	for more := true; more; {
		more = false
		for i := range b.recent {
			if k := &b.recent[i]; bridge.Continues(&k.ev, b.LastID) && k.ev.LastID > b.LastID && sameSeries(k.depth, b.Series) {
				b.apply(&k.ev)
				n++
				more = true
			}
		}
	}
	return n
}

// beyond returns a kept delta past the book id (updates are missing
// before it), or nil.
func (b *BookReplay) beyond() *bridge.Event {
	for i := range b.recent {
		if k := &b.recent[i]; k.ev.LastID > b.LastID && sameSeries(k.depth, b.Series) {
			return &k.ev
		}
	}
	return nil
}

func (b *BookReplay) apply(d *bridge.Event) {
	for _, l := range d.Bids {
		setLevel(b.Bids, l)
	}
	for _, l := range d.Asks {
		setLevel(b.Asks, l)
	}
	b.LastID = d.LastID
}

func (b *BookReplay) gap(seq uint64, d *bridge.Event, where string) {
	b.Gaps++
	b.gapLogged = len(b.GapLog) < maxGapLog
	if b.gapLogged {
		s := fmt.Sprintf("seq %d: delta %d-%d after book id %d", seq, d.FirstID, d.LastID, b.LastID)
		if where != "" {
			s += " (" + where + ")"
		}
		b.GapLog = append(b.GapLog, s)
	}
	b.Live = false
}

// keep retains a delta for replay after a later snapshot.
func (b *BookReplay) keep(ev *bridge.Event, depth int) {
	if b.ResetOnly {
		return
	}
	limit := b.Retain
	if limit <= 0 {
		limit = bridge.DefaultBookRetain
	}
	if len(b.recent) < limit {
		b.recent = append(b.recent, keptDelta{*ev, depth})
		return
	}
	b.recent[b.head] = keptDelta{*ev, depth}
	b.head = (b.head + 1) % limit
}

func setLevel(m map[string]string, l bridge.Level) {
	if isZeroQty(l[1]) {
		delete(m, l[0])
		return
	}
	m[l[0]] = l[1]
}

// isZeroQty reports whether a decimal string is zero ("0", "0.000").
func isZeroQty(q string) bool {
	if q == "" {
		return false
	}
	for i := 0; i < len(q); i++ {
		if q[i] != '0' && q[i] != '.' {
			return false
		}
	}
	return true
}

// Diff compares the replayed book with the simulator's (best first, as
// exsim.BookSnapshot lists them), the top depth levels per side (0 = all),
// and the book id with wantID (0 = not compared). It describes the first
// difference, or returns "" when they are equal.
func (b *BookReplay) Diff(bids, asks [][2]string, depth int, wantID int64) string {
	if !b.started {
		return "no snapshot in the stream"
	}
	if !b.Live {
		return fmt.Sprintf("the consumer is still waiting for a snapshot after a gap (book id %d)", b.LastID)
	}
	return diffBook(b.LastID, sortedLevels(b.Bids, true), sortedLevels(b.Asks, false), bids, asks, depth, wantID)
}

// diffBook compares a book at id with levels best first (gotBids,
// gotAsks) with the simulator's, as Diff does.
func diffBook(id int64, gotBids, gotAsks []bridge.Level, bids, asks [][2]string, depth int, wantID int64) string {
	if wantID != 0 && id != wantID {
		return fmt.Sprintf("book id %d, simulator's %d", id, wantID)
	}
	for _, side := range []struct {
		name      string
		got, want []string
	}{
		{"bids", levelStrings(gotBids, depth), levelStrings(bids, depth)},
		{"asks", levelStrings(gotAsks, depth), levelStrings(asks, depth)},
	} {
		if !slices.Equal(side.got, side.want) {
			n := 0
			for n < len(side.got) && n < len(side.want) && side.got[n] == side.want[n] {
				n++
			}
			return fmt.Sprintf("%s differ at level %d (got %d levels, want %d): got %v, want %v", side.name, n,
				len(side.got), len(side.want), side.got[n:min(n+3, len(side.got))], side.want[n:min(n+3, len(side.want))])
		}
	}
	return ""
}

// sortedLevels returns the levels of a side best first (bids descending,
// asks ascending by decimal value).
func sortedLevels(m map[string]string, desc bool) []bridge.Level {
	out := make([]bridge.Level, 0, len(m))
	for p, q := range m {
		out = append(out, bridge.Level{p, q})
	}
	slices.SortFunc(out, func(a, b bridge.Level) int {
		c := bridge.CompareDecimal(a[0], b[0])
		if desc {
			return -c
		}
		return c
	})
	return out
}

// levelStrings returns the first n levels (0 = all) as "price=qty".
func levelStrings[L ~[2]string](ls []L, n int) []string {
	if n > 0 && len(ls) > n {
		ls = ls[:n]
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l[0] + "=" + l[1]
	}
	return out
}

// parseID parses a decimal trade id.
func parseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
