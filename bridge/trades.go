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
// follows the last emitted id; an id <= last is a duplicate; a jump starts a
// repair: the trade that revealed the gap and every later live trade are
// buffered (bounded) while the missing range is fetched over REST, emitted
// in order, then the buffer is replayed. Trades that cannot be fetched are
// counted as missing. Buffer overflow drops live trades, which the replay
// then sees as another gap and backfills: nothing is lost for it.
//
// Venues without consecutive ids (Bybit): a deduplicator keyed by trade id
// removes copies; after a reconnect a best-effort repair fetches recent
// trades (RecentTrader) and emits those newer than the last one emitted.
type tradeSync struct {
	track    bool // gap detection and backfill enabled (ResilienceConfig.SequenceTracking)
	seq      *resilience.SequenceTracker
	dedupSeq *resilience.MessageDeduplicator[int64]
	dedupID  *resilience.MessageDeduplicator[string]

	repairing bool
	trigger   Event   // the live trade that revealed the gap (consecutive ids)
	pending   []Event // live trades received while repairing
	limit     int     // bound of pending

	hw     int64  // highest consecutive id received from the primary connection
	lastID string // last emitted id (non-consecutive venues)
	lastTS int64  // exchange time of the last emitted trade
	byID   bool   // the last emitted trade had no consecutive id (Bybit)
}

// live handles one live trade received at now. It returns the extended out
// and, for consecutive ids, a gap the caller must backfill (nil if none).
func (t *tradeSync) live(ev *Event, now time.Time, out []Event, c *symbolCounters) ([]Event, *tradeGap) {
	if ev.Seq != 0 && ev.Seq > t.hw {
		t.hw = ev.Seq
	}
	if t.repairing {
		if t.limit > 0 && len(t.pending) >= t.limit {
			if ev.Seq == 0 || !t.track {
				// Not recoverable by id: count the loss.
				c.dropped.Add(1)
			}
			// Consecutive ids: the replay sees the hole and backfills it.
			return out, nil
		}
		t.pending = append(t.pending, *ev)
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
	prev := t.seq.Last()
	switch t.seq.Observe(ev.Seq) {
	case resilience.SeqFirst, resilience.SeqInOrder:
		if !t.dedupSeq.RecordAt(ev.Seq, now) {
			c.duplicates.Add(1)
			return out, nil
		}
		return t.emitTrade(ev, out, c), nil
	case resilience.SeqGap:
		c.gaps.Add(1)
		t.repairing = true
		t.trigger = *ev
		t.pending = t.pending[:0]
		return out, &tradeGap{from: prev + 1, to: ev.Seq - 1}
	default: // SeqDuplicate, SeqLate: already emitted (or declared missing)
		c.duplicates.Add(1)
		return out, nil
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

// backfilled emits trades fetched over REST for the running repair (ids in
// the gap, ascending; already filtered by the caller).
func (t *tradeSync) backfilled(evs []Event, now time.Time, out []Event, c *symbolCounters) []Event {
	for i := range evs {
		ev := &evs[i]
		if ev.Seq != 0 {
			if !t.dedupSeq.RecordAt(ev.Seq, now) {
				c.duplicates.Add(1)
				continue
			}
		} else if !t.dedupID.RecordAt(ev.ID, now) {
			c.duplicates.Add(1)
			continue
		}
		c.backfilled.Add(1)
		out = t.emitTrade(ev, out, c)
	}
	return out
}

// finishRepair ends a consecutive-id repair: it emits the trade that
// revealed the gap, then replays the trades buffered meanwhile. The replay
// may reveal another gap, returned for the caller to backfill.
func (t *tradeSync) finishRepair(now time.Time, out []Event, c *symbolCounters) ([]Event, *tradeGap) {
	if t.trigger.Seq != 0 && t.dedupSeq.RecordAt(t.trigger.Seq, now) {
		out = t.emitTrade(&t.trigger, out, c)
	}
	t.trigger = Event{}
	return t.replay(now, out, c)
}

// replay ends the repair state and runs the buffered live trades through
// live. If one of them reveals a new gap, the rest stay buffered behind it.
func (t *tradeSync) replay(now time.Time, out []Event, c *symbolCounters) ([]Event, *tradeGap) {
	t.repairing = false
	pending := t.pending
	t.pending = nil
	for i := range pending {
		var gap *tradeGap
		out, gap = t.live(&pending[i], now, out, c)
		if gap != nil {
			// t.live set repairing and reset t.pending: keep the rest.
			t.pending = append(t.pending, pending[i+1:]...)
			return out, gap
		}
	}
	clear(pending)
	if cap(pending) <= 4096 {
		t.pending = pending[:0]
	}
	return out, nil
}

// startRecent puts a non-consecutive-id symbol into repair mode ahead of a
// recent-trades backfill: live trades are buffered until finishRecent. It
// reports false when there is nothing to repair against (no trade emitted
// yet) or a repair already runs.
func (t *tradeSync) startRecent() bool {
	if t.repairing || t.lastID == "" {
		return false
	}
	t.repairing = true
	t.pending = t.pending[:0]
	return true
}

// finishRecent applies a recent-trades answer: trades after the last one
// emitted (found by id; if it is not in the answer, those not older than its
// exchange time) are emitted in time order unless already emitted, then the
// live trades buffered meanwhile are replayed. It reports whether the answer
// did not reach back to the last emitted trade (trades may be missing; the
// caller counts a gap and logs it).
func (t *tradeSync) finishRecent(recent []Event, now time.Time, out []Event, c *symbolCounters) ([]Event, bool) {
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
		start = len(recent)
		for i := range recent {
			if recent[i].TS >= t.lastTS {
				start = i
				break
			}
		}
		short = t.lastID != "" && (len(recent) == 0 || recent[0].TS > t.lastTS)
	}
	out = t.backfilled(recent[start:], now, out, c)
	out, _ = t.replay(now, out, c)
	return out, short
}

// abortRecent ends a failed recent-trades repair: the buffered live trades
// are replayed.
func (t *tradeSync) abortRecent(now time.Time, out []Event, c *symbolCounters) []Event {
	out, _ = t.replay(now, out, c)
	return out
}
