package bridge

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// RecentTrader is an optional capability of an Exchange whose trade ids are
// not consecutive (Bybit): the most recent trades of a symbol, for a
// best-effort backfill after a reconnect. The runner checks for it with a
// type assertion.
type RecentTrader interface {
	// RecentTrades returns up to limit of the symbol's most recent trades
	// (any order; the runner sorts them by time).
	RecentTrades(ctx context.Context, symbol string, limit int) ([]Event, error)
}

// tradeGap is a range of consecutive trade ids to backfill, inclusive.
type tradeGap struct{ from, to int64 }

// tradeSync keeps one symbol's trades complete, in order and free of
// duplicates. It is guarded by the owning shard's lock.
//
// Venues with consecutive ids (Event.Seq != 0, Binance): a SequenceTracker
// holds the last emitted id; an id <= last is a duplicate; a jump starts a
// repair: the trade that revealed the gap and every later live trade are
// buffered (bounded) while a single repair worker fills the holes from REST
// (one page covers every hole up to the newest buffered id), emitting the
// fetched and the buffered trades merged in id order until the buffer is
// drained. Ids the venue cannot return are counted as missing. Buffer
// overflow drops live trades, which the next live trade then shows as
// another gap: nothing is lost for it.
//
// Venues without consecutive ids (Bybit): a deduplicator keyed by trade id
// removes copies; after a reconnect a best-effort repair fetches recent
// trades (RecentTrader) and emits those newer than the last one emitted.
type tradeSync struct {
	track    bool // gap detection and backfill enabled (ResilienceConfig.SequenceTracking)
	seq      *resilience.SequenceTracker
	dedupSeq *resilience.MessageDeduplicator[int64] // consecutive ids when !track (with track the tracker alone decides)
	dedupID  *resilience.MessageDeduplicator[string]

	repairing bool
	pending   []Event // live trades received while repairing, from index head on
	head      int
	pendMax   int64 // highest consecutive id in pending
	limit     int   // bound of pending

	hw     int64  // highest consecutive id received from the primary connection
	lastID string // last emitted id
	lastTS int64  // exchange time of the last emitted trade
	byID   bool   // the last emitted trade had no consecutive id (Bybit)
	// since is the exchange time (Unix ns) from which a connection could
	// deliver the symbol's trades, set when the first one was registered
	// (0: none yet). A recent-trades repair before any trade was emitted
	// starts from it: the trades the venue sent to a lost connection that
	// never arrived (a reset discards what the kernel had not delivered)
	// are not revealed by any later trade.
	since int64

	resumed bool // the sequence was seeded at start by a TradeResumer

	// A recent-trades repair (non-consecutive ids) is under way: live
	// trades are buffered (repairing) until an answer taken after the
	// newest connection's subscription is applied. A connection that opens
	// during the repair does not start another one: the running repair
	// must fetch again, since its answer may predate the new connection's
	// feed and miss the trades sent in between.
	recent      bool
	recentWork  bool // the repair's worker runs (a REST request is under way)
	recentWait  bool // a new connection is subscribing: the next fetch starts when it is subscribed
	recentAgain bool // a connection subscribed while the worker's request was under way: fetch again
}

// recentNext is what a recent-trades worker does after an answer or a
// failure (tradeSync.finishRecent, abortRecent).
type recentNext int

const (
	recentDone     recentNext = iota // the repair ended: the buffered trades were replayed
	recentRefetch                    // a connection subscribed meanwhile: fetch again
	recentHandOver                   // a connection is subscribing: its subscription starts the next fetch; the worker ends
)

// live handles one live trade received at now. It returns the extended out
// and, for consecutive ids, a gap the caller must start a repair for (nil
// if none).
func (t *tradeSync) live(ev *Event, now time.Time, out []Event, c *symbolCounters) ([]Event, *tradeGap) {
	if ev.Seq != 0 && ev.Seq > t.hw {
		t.hw = ev.Seq
	}
	if t.repairing {
		t.buffer(ev, c)
		return out, nil
	}
	if ev.Seq == 0 {
		return t.emitByID(ev, now, out, c), nil
	}
	if !t.track {
		if !t.dedupSeq.RecordAt(ev.Seq, now) {
			c.duplicates.Add(1)
			return out, nil
		}
		return t.emitTrade(ev, out, c), nil
	}
	// One tracker call on the in-order path, and no deduplicator: every
	// emitted id is <= the tracker's Last, which never moves back, so an
	// accepted id is new. A gap must not advance the tracker (the repair
	// emits the missing ids first): undo it.
	r, last := t.seq.ObserveLast(ev.Seq) // one lock for Last and Observe
	switch r {
	case resilience.SeqFirst, resilience.SeqInOrder:
		return t.emitTrade(ev, out, c), nil
	case resilience.SeqGap:
		t.seq.ResetTo(last)
		c.gaps.Add(1)
		t.repairing = true
		t.pending, t.head, t.pendMax = t.pending[:0], 0, 0
		t.buffer(ev, c)
		return out, &tradeGap{from: last + 1, to: ev.Seq - 1}
	default: // SeqDuplicate, SeqLate
		c.duplicates.Add(1)
		return out, nil
	}
}

// emitNext emits ev if it is the first trade or continues the sequence,
// and counts it as a duplicate otherwise (ev.Seq <= last).
func (t *tradeSync) emitNext(ev *Event, out []Event, c *symbolCounters) []Event {
	if !t.seq.Observe(ev.Seq).Accepted() {
		c.duplicates.Add(1)
		return out
	}
	return t.emitTrade(ev, out, c)
}

// buffer keeps a live trade during a repair.
func (t *tradeSync) buffer(ev *Event, c *symbolCounters) {
	if t.limit > 0 && len(t.pending)-t.head >= t.limit {
		if ev.Seq == 0 || !t.track {
			c.dropped.Add(1) // not recoverable by id: a loss
		}
		// Consecutive ids: the next live trade after the repair shows the
		// hole and it is backfilled.
		return
	}
	if t.head > 0 && t.head >= len(t.pending)/2 {
		n := copy(t.pending, t.pending[t.head:])
		clear(t.pending[n:])
		t.pending, t.head = t.pending[:n], 0
	}
	t.pending = append(t.pending, *ev)
	if ev.Seq > t.pendMax {
		t.pendMax = ev.Seq
	}
}

// emitByID emits ev unless its id was emitted before.
func (t *tradeSync) emitByID(ev *Event, now time.Time, out []Event, c *symbolCounters) []Event {
	if !t.dedupID.RecordAt(ev.ID, now) {
		c.duplicates.Add(1)
		return out
	}
	return t.emitTrade(ev, out, c)
}

func (t *tradeSync) emitTrade(ev *Event, out []Event, c *symbolCounters) []Event {
	t.lastID = ev.ID
	t.lastTS = ev.TS
	t.byID = ev.Seq == 0
	return emit(out, ev, c)
}

// advance emits the buffered live trades that continue the sequence and
// drops those already emitted. It reports whether the buffer is drained,
// which ends the repair.
func (t *tradeSync) advance(out []Event, c *symbolCounters) ([]Event, bool) {
	for t.head < len(t.pending) {
		h := &t.pending[t.head]
		if h.Seq > t.seq.Last()+1 {
			return out, false
		}
		out = t.emitNext(h, out, c)
		*h = Event{}
		t.head++
	}
	t.pending, t.head, t.pendMax = t.pending[:0], 0, 0
	if cap(t.pending) > 4096 {
		t.pending = nil
	}
	t.repairing = false
	return out, true
}

// nextFetch returns the ids a repair fetches next: from the first missing
// id, limit ids (at most page), reaching past the first hole to the newest
// buffered trade so that one request fills every hole in between. A hole
// longer than maxGap keeps only its newest maxGap ids; the older ones are
// declared missing (returned as skipped). Call after advance reported
// false.
func (t *tradeSync) nextFetch(page, maxGap int) (from, holeEnd int64, limit int, skipped int64) {
	from = t.seq.Last() + 1
	holeEnd = t.pending[t.head].Seq - 1
	if n := holeEnd - from + 1; maxGap > 0 && n > int64(maxGap) {
		skipped = n - int64(maxGap)
		t.seq.ResetTo(from + skipped - 1)
		from += skipped
	}
	upTo := max(holeEnd, t.pendMax-1)
	limit = int(min(upTo-from+1, int64(page)))
	return from, holeEnd, max(limit, 1), skipped
}

// merge applies a REST page (ascending ids) to the running repair: fetched
// and buffered trades are emitted in id order. Ids the page skips that are
// not buffered either are missing at the venue: they are skipped and
// returned as missing. It returns the extended out, the missing count and
// whether the repair is complete.
func (t *tradeSync) merge(page []Event, out []Event, c *symbolCounters) ([]Event, int64, bool) {
	var missing int64
	for i := 0; i < len(page); {
		out, _ = t.advance(out, c)
		t.repairing = true // advance may have drained the buffer; the page is not done
		p := &page[i]
		last := t.seq.Last()
		switch {
		case p.Seq <= last:
			i++
		case p.Seq == last+1:
			t.seq.Observe(p.Seq)
			c.backfilled.Add(1)
			out = t.emitTrade(p, out, c)
			i++
		default:
			next := p.Seq
			if t.head < len(t.pending) && t.pending[t.head].Seq < next {
				next = t.pending[t.head].Seq
			}
			missing += next - 1 - last
			t.seq.ResetTo(next - 1)
		}
	}
	out, done := t.advance(out, c)
	return out, missing, done
}

// declareMissing gives up on the ids up to to: they are skipped and
// returned as missing; the buffered trades after them continue.
func (t *tradeSync) declareMissing(to int64) int64 {
	last := t.seq.Last()
	if to <= last {
		return 0
	}
	t.seq.ResetTo(to)
	return to - last
}

// backfilled emits trades of a recent-trades repair (no consecutive ids)
// unless already emitted.
func (t *tradeSync) backfilled(evs []Event, now time.Time, out []Event, c *symbolCounters) []Event {
	for i := range evs {
		ev := &evs[i]
		if !t.dedupID.RecordAt(ev.ID, now) {
			c.duplicates.Add(1)
			continue
		}
		c.backfilled.Add(1)
		out = t.emitTrade(ev, out, c)
	}
	return out
}

// replay ends a recent-trades repair and runs the buffered live trades
// through live.
func (t *tradeSync) replay(now time.Time, out []Event, c *symbolCounters) []Event {
	t.repairing = false
	t.recent, t.recentWork, t.recentWait, t.recentAgain = false, false, false, false
	pending := t.pending[t.head:]
	t.pending, t.head, t.pendMax = nil, 0, 0
	for i := range pending {
		out, _ = t.live(&pending[i], now, out, c)
	}
	return out
}

// startRecent prepares a non-consecutive-id symbol for a recent-trades
// backfill after a new connection opened: live trades are buffered until
// the repair ends. It reports false when there is nothing to repair
// against (no trade emitted and no connection registered before) or
// another kind of repair runs. When it reports true, the caller calls
// recentSubscribed once the connection is subscribed (or recentCanceled if
// that failed). A recent-trades repair already under way continues: it
// fetches again after the subscription, since its answer may predate the
// new connection's feed.
func (t *tradeSync) startRecent() bool {
	if t.recent {
		t.recentWait = true
		return true
	}
	if t.repairing || (t.lastID == "" && t.since == 0) {
		return false
	}
	t.repairing, t.recent, t.recentWait = true, true, true
	t.pending, t.head, t.pendMax = t.pending[:0], 0, 0
	return true
}

// recentSubscribed is called when the connection that started (or joined)
// the repair is subscribed: an answer taken from now on covers everything
// its feed does not. It reports whether the caller must start the worker;
// a running worker fetches again instead.
func (t *tradeSync) recentSubscribed() bool {
	if !t.recent {
		return false
	}
	t.recentWait = false
	if t.recentWork {
		t.recentAgain = true
		return false
	}
	t.recentWork = true
	return true
}

// recentCanceled is called when the connection that started (or joined)
// the repair failed to subscribe. Without a worker the repair ends (the
// buffered live trades are replayed; the next connection repairs again);
// a running worker finishes it.
func (t *tradeSync) recentCanceled(now time.Time, out []Event, c *symbolCounters) []Event {
	if !t.recent {
		return out
	}
	t.recentWait = false
	if t.recentWork {
		return out
	}
	return t.replay(now, out, c)
}

// finishRecent applies a recent-trades answer: trades after the last one
// emitted (found by id; if it is not in the answer, those not older than its
// exchange time; with none emitted yet, those not older than since) are
// emitted in time order unless already emitted. Then, unless a connection
// opened since the request was sent (see recentNext), the live trades
// buffered meanwhile are replayed and the repair ends. It reports whether
// the answer did not reach back to the last emitted trade (trades may be
// missing; the caller counts a gap and logs it) and what the worker does
// next.
func (t *tradeSync) finishRecent(recent []Event, now time.Time, out []Event, c *symbolCounters) ([]Event, bool, recentNext) {
	slices.SortStableFunc(recent, func(a, b Event) int { return cmp.Compare(a.TS, b.TS) })
	start := -1
	for i := range recent {
		if recent[i].ID == t.lastID {
			start = i + 1
			break
		}
	}
	short := false
	if start < 0 {
		from := t.lastTS
		if t.lastID == "" {
			from = t.since
		}
		start = len(recent)
		for i := range recent {
			if recent[i].TS >= from {
				start = i
				break
			}
		}
		short = t.lastID != "" && (len(recent) == 0 || recent[0].TS > t.lastTS)
	}
	out = t.backfilled(recent[start:], now, out, c)
	next := t.recentContinue()
	if next == recentDone {
		out = t.replay(now, out, c)
	}
	return out, short, next
}

// abortRecent ends a failed recent-trades request: the repair ends (the
// buffered live trades are replayed) unless a connection opened since the
// request was sent, whose later request may still succeed.
func (t *tradeSync) abortRecent(now time.Time, out []Event, c *symbolCounters) ([]Event, recentNext) {
	next := t.recentContinue()
	if next == recentDone {
		out = t.replay(now, out, c)
	}
	return out, next
}

// recentContinue decides what the worker does after a request.
func (t *tradeSync) recentContinue() recentNext {
	switch {
	case t.recentAgain:
		t.recentAgain = false
		return recentRefetch
	case t.recentWait:
		t.recentWork = false
		return recentHandOver
	default:
		return recentDone
	}
}
