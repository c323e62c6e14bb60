package bridge

import "time"

// bookState is the synchronization state of one symbol's order book.
type bookState uint8

const (
	bookIdle      bookState = iota // nothing received yet (or waiting for the stream's snapshot)
	bookSyncing                    // buffering deltas until a snapshot arrives
	bookLive                       // emitting deltas with continuity checks
	bookResyncing                  // stream-snapshot book: resubscribed, waiting for the fresh snapshot
)

// restBook synchronizes a BookRESTSnapshot order book (Binance Spot) by the
// documented procedure (EXCHANGES.md, "Local order book"):
//
//  1. buffer deltas, noting the first U;
//  2. obtain a snapshot with last update id L; if L+1 < first buffered U the
//     snapshot is too old: obtain another;
//  3. drop buffered deltas with u <= L; the first kept one has
//     U <= L+1 <= u;
//  4. emit the snapshot, then every delta whose U <= book id + 1 (steady
//     state: U == previous u + 1); u <= book id is a duplicate; U > book
//     id + 1 is a gap: stop emitting, buffer, and start again at 2.
//
// Until the snapshot request is sent (arm) the buffer is bounded by
// preArmLimit rather than limit: with many books queued behind the venue's
// REST weight, deltas received long before the request are covered by the
// snapshot anyway and buffering them only costs memory (each holds its
// frame, or the arena chunks a fast path copied its levels into: at most
// 4 KiB of text and 4 KiB of levels, shared with the deltas decoded around
// it). The newest few are kept because a REST snapshot may lag the
// stream slightly. When the snapshot comes from a SnapshotRequester (the
// control service, possibly another replica, which queues requests behind
// the same REST weight for minutes) the moment of the fetch is unknown:
// the book then keeps the deltas received within replyWindow of the newest
// (at least preArmLimit), as a fetch answered later than that is rare and
// only costs a refetch. Of the deltas dropped at any bound only the highest
// update id is kept (skipHW): a snapshot older than it is too old, as in
// step 2, so nothing dropped is ever needed.
//
// It is guarded by the owning shard's lock; its methods only append to out
// and report what the caller must start (a snapshot fetch).
type restBook struct {
	state    bookState
	lastID   int64   // book id: the last update id emitted (or the snapshot's)
	hw       int64   // highest update id received from the primary connection
	buf      []Event // deltas buffered while syncing
	limit    int     // bound of buf once armed
	fetching bool    // a snapshot repair is running
	armed    bool    // syncing and the snapshot request is sent: bound is limit
	awaiting bool    // syncing, the snapshot is requested from a SnapshotRequester: bound is replyWindow
	skipHW   int64   // highest update id of the deltas dropped while syncing
}

// preArmLimit bounds a restBook's buffer before its snapshot request is
// sent (about a second of a 100ms depth stream).
const preArmLimit = 8

// replyWindow is how long a book waiting for a SnapshotRequester's answer
// keeps a delta: the time a snapshot may take from its REST fetch to its
// answer reaching the bridge (fetch, publish, reply). Deltas received
// earlier are covered by any snapshot fetched after them; the queueing
// before the fetch does not count, so the buffer stays small however long
// the request waits for REST weight.
const replyWindow = 5 * time.Second

// arm starts buffering deltas: the snapshot request is being sent.
func (b *restBook) arm() {
	if b.state == bookSyncing {
		b.armed = true
	}
}

// await makes a syncing book keep the deltas of the last replyWindow: its
// snapshot is requested from a SnapshotRequester.
func (b *restBook) await() {
	if b.state == bookSyncing {
		b.awaiting = true
	}
}

// hold keeps a delta received while syncing.
func (b *restBook) hold(ev *Event) {
	lim := b.limit
	switch {
	case b.armed:
	case b.awaiting:
		b.expire(ev.RecvTS - int64(replyWindow))
	case lim <= 0 || lim > preArmLimit:
		lim = preArmLimit
	}
	b.buffer(ev, lim)
}

// expire drops the buffered deltas received before cut (Unix ns), keeping
// at least the newest preArmLimit-1 (with the one being added, preArmLimit).
func (b *restBook) expire(cut int64) {
	n := 0
	for n < len(b.buf)-(preArmLimit-1) && b.buf[n].RecvTS < cut {
		b.skipHW = max(b.skipHW, b.buf[n].LastID)
		n++
	}
	if n > 0 {
		k := copy(b.buf, b.buf[n:])
		clear(b.buf[k:])
		b.buf = b.buf[:k]
	}
}

// delta handles one live delta. It returns the extended out and whether a
// snapshot must be obtained (the caller starts a repair unless one runs).
func (b *restBook) delta(ev *Event, out []Event, c *symbolCounters) ([]Event, bool) {
	if ev.LastID > b.hw {
		b.hw = ev.LastID
	}
	switch b.state {
	case bookLive:
		switch {
		case ev.LastID <= b.lastID:
			c.duplicates.Add(1)
		case !continues(ev, b.lastID):
			c.gaps.Add(1)
			b.state = bookSyncing
			b.buf = b.buf[:0]
			b.hold(ev)
			return out, true
		default:
			b.lastID = ev.LastID
			out = emit(out, ev, c)
		}
		return out, false
	case bookSyncing:
		b.hold(ev)
		return out, false
	default: // bookIdle
		b.state = bookSyncing
		b.buf = b.buf[:0]
		b.hold(ev)
		return out, true
	}
}

// buffer appends ev to the sync buffer. When the buffer holds lim deltas
// (0: unbounded) the oldest half is dropped: the snapshot then has to be
// newer than what is left, which the "too old" checks enforce, so nothing
// is lost.
func (b *restBook) buffer(ev *Event, lim int) {
	if lim > 0 && len(b.buf) >= lim {
		for i := range len(b.buf) / 2 { // the dropped half
			b.skipHW = max(b.skipHW, b.buf[i].LastID)
		}
		n := copy(b.buf, b.buf[len(b.buf)/2:])
		clear(b.buf[n:])
		b.buf = b.buf[:n]
	}
	b.buf = append(b.buf, *ev)
}

// snapshot applies a snapshot with last update id lastID. snap is the
// snapshot event to emit ahead of the deltas, or nil when a
// SnapshotRequester already published it. It returns the extended out and
// whether another snapshot is needed (this one was too old, or the buffer
// itself has a gap).
func (b *restBook) snapshot(snap *Event, lastID int64, out []Event, c *symbolCounters) ([]Event, bool) {
	if b.state != bookSyncing {
		// A late answer for a book that resynchronized otherwise: ignore.
		return out, false
	}
	if lastID < b.skipHW {
		return out, true // older than a dropped delta: fetch again
	}
	if len(b.buf) > 0 && !continues(&b.buf[0], lastID) {
		return out, true // older than the first buffered delta: fetch again
	}
	c.snapshots.Add(1)
	if snap != nil {
		out = emit(out, snap, c)
	}
	b.state = bookLive
	b.lastID = lastID
	buf := b.buf
	for i := range buf {
		ev := &buf[i]
		if ev.LastID <= b.lastID {
			continue // covered by the snapshot (or a duplicate)
		}
		if !continues(ev, b.lastID) {
			// A gap inside the buffer: keep the rest and start over.
			c.gaps.Add(1)
			n := copy(buf, buf[i:])
			clear(buf[n:])
			b.buf = buf[:n]
			b.state = bookSyncing
			return out, true
		}
		b.lastID = ev.LastID
		out = emit(out, ev, c)
	}
	// Synced: free the buffer (it may have grown to the limit), stop
	// buffering until the next resync.
	clear(buf)
	b.buf = nil
	b.armed, b.awaiting, b.skipHW = false, false, 0
	return out, false
}

// streamBook tracks a BookStreamSnapshot order book (Bybit v5): the stream
// sends a snapshot first and deltas after; any later snapshot resets the
// book; u = 1 means the venue restarted. Deltas must continue the update id
// by exactly one and must not regress the cross sequence (Event.Seq, when
// the adapter sets it); anything else is a gap handled by policy (see
// BookGapPolicy). It is guarded by the owning shard's lock.
type streamBook struct {
	state    bookState
	lastID   int64 // u of the last emitted snapshot or delta
	lastSeq  int64 // cross sequence of the last emitted event (0 = unknown)
	hw       int64 // highest update id received from the primary connection
	policy   BookGapPolicy
	chained  bool // BookStreamChained: deltas chain by PrevID (bookchain_prev.go)
	chain    chainState
	resyncAt time.Time // when the last resubscribe was requested

	// waiters receive the next snapshot the book emits (snapshot requests
	// from the control subject, see Stream.Snapshot); each has room for one.
	// Once it is emitted they move to answered with it, and the shard
	// answers them after handing the snapshot to the publisher.
	waiters  []chan Event
	answered []chan Event
	answer   Event
}

// wait registers ch to receive the next snapshot emitted.
func (b *streamBook) wait(ch chan Event) { b.waiters = append(b.waiters, ch) }

// unwait removes ch (its requester gave up).
func (b *streamBook) unwait(ch chan Event) {
	for i, w := range b.waiters {
		if w == ch {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			return
		}
	}
}

// reset makes the book wait for the stream's next snapshot (after a
// reconnect, where the new subscription starts with one).
func (b *streamBook) reset() {
	b.state = bookIdle
	clear(b.chain.buf)
	b.chain.buf = b.chain.buf[:0]
}

// event handles one live snapshot or delta. It returns the extended out and
// whether the caller must resubscribe the topic to obtain a fresh snapshot.
func (b *streamBook) event(ev *Event, out []Event, c *symbolCounters) ([]Event, bool) {
	if ev.Type == EventBookSnapshot {
		restart := ev.LastID == 1 && b.lastID > 1
		if b.state == bookLive && ev.LastID < b.lastID && !restart {
			// An older snapshot (the replacement connection of a rotation
			// starts with one): the book is already past it.
			c.duplicates.Add(1)
			return out, false
		}
		// A snapshot at the current u is a reset the venue asked for (it
		// re-sends one when it has trouble; depth 1 re-sends the same u):
		// emit it, its msg ID is the same if nothing changed.
		b.state = bookLive
		b.lastID = ev.LastID
		b.lastSeq = ev.Seq
		if b.chained {
			b.hw = ev.LastID // ids may have restarted lower (a venue reset)
			b.markIDReset(ev)
		}
		c.snapshots.Add(1)
		if len(b.waiters) > 0 {
			b.answered = append(b.answered, b.waiters...)
			b.answer = *ev
			clear(b.waiters)
			b.waiters = b.waiters[:0]
		}
		out = emit(out, ev, c)
		if b.chained {
			out = b.chainLive(out, c)
		}
		return out, false
	}
	if b.chained {
		return b.chainedDelta(ev, out, c)
	}
	if ev.LastID > b.hw {
		b.hw = ev.LastID
	}
	if b.state != bookLive {
		// Waiting for a snapshot: deltas cannot be applied and the snapshot
		// will cover them.
		return out, false
	}
	if ev.LastID <= b.lastID && ev.LastID != 1 {
		c.duplicates.Add(1)
		return out, false
	}
	regress := ev.Seq != 0 && b.lastSeq != 0 && ev.Seq < b.lastSeq
	if ev.LastID == b.lastID+1 && !regress {
		b.lastID = ev.LastID
		if ev.Seq != 0 {
			b.lastSeq = ev.Seq
		}
		return emit(out, ev, c), false
	}
	c.gaps.Add(1)
	switch b.policy {
	case GapDropPacket:
		return out, false
	case GapAccept:
		b.lastID = ev.LastID
		if ev.Seq != 0 {
			b.lastSeq = ev.Seq
		}
		return emit(out, ev, c), false
	default:
		b.state = bookResyncing
		return out, true
	}
}

// emit appends ev to out and counts it.
func emit(out []Event, ev *Event, c *symbolCounters) []Event {
	c.emitted.Add(1)
	if n := len(out); n < cap(out) && &out[:n+1][n] == ev {
		// ev is out's next slot already (deliver's one-trade hand-over):
		// no copy, and no write barriers for one while the GC marks.
		return out[:n+1]
	}
	return append(out, *ev)
}
