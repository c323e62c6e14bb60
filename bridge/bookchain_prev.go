package bridge

import (
	"context"
	"time"
)

// Prev-chained stream books (BookStreamChained, OKX v5 `books`).
//
// The stream sends a snapshot (PrevID -1 on the wire), then deltas; every
// message names the id of the one before it: a delta continues the book
// when its PrevID equals the book's LastID, whatever its own LastID:
//
//   - PrevID == book id, LastID > book id: the normal case, emitted;
//   - PrevID == book id == LastID: a keep-alive (OKX sends one after about a
//     minute without a change, with empty sides): nothing changes, nothing
//     is emitted, it is not a gap;
//   - PrevID == book id > LastID: the venue reset its sequence (OKX
//     maintenance). The chain is intact, but ids going down would break
//     every id-based consumer (msg IDs, BookBuilder), so the book is
//     resynchronized: a fresh snapshot starts the new id range;
//   - PrevID != book id, LastID <= book id: an older message (a replay, the
//     overlap of a rotation): a duplicate;
//   - anything else is a gap, handled by the BookGapPolicy like any
//     stream-snapshot book.
//
// If the delta announcing a reset is lost, the deltas after it look older
// than the book; chainRestartRun of them in a row, chained to each other,
// resynchronize the book.
//
// A feed that stops sending the initial snapshot (announced by OKX for
// 2026) is handled by a REST bootstrap: deltas that arrive while the book
// waits for a snapshot are buffered (bounded); when no snapshot came within
// chainBootWait of the first one, Exchange.Snapshot is fetched and the
// documented procedure applied: a snapshot older than the first buffered
// delta's PrevID is fetched again; buffered deltas with LastID <= the
// snapshot's are dropped; the first one applied must have PrevID <=
// snapshot id < LastID, the rest chain by PrevID. A WebSocket snapshot that
// arrives in the meantime wins.

// chainBootWait is how long a prev-chained book waiting for its stream
// snapshot buffers deltas before it bootstraps from REST. A resubscription's
// first deltas can be in-flight ones of the old subscription, so a delta
// alone does not prove the venue skipped the snapshot.
const chainBootWait = 3 * time.Second

// chainBufLimit bounds the deltas a prev-chained book buffers while it
// waits for a snapshot; past it the oldest half is dropped (the REST
// snapshot must then be newer than what is left).
const chainBufLimit = 1024

// chainState is the REST bootstrap state of a prev-chained book.
type chainState struct {
	buf      []Event // deltas received while waiting for a snapshot
	fetching bool    // a REST bootstrap runs
	dupLast  int64   // LastID of the last delta taken for an older copy
	dupRun   int     // how many such deltas in a row chained to each other
}

// chainRestartRun is how many deltas in a row, each older than the book and
// chaining to the one before, reveal that the venue restarted its sequence
// lower while the delta that said so was lost: copies of old messages do
// not chain to each other in a row (duplicated frames are interleaved with
// new ones), so the book resynchronizes instead of ignoring every update.
const chainRestartRun = 8

// chainedDelta handles a delta of a prev-chained book. It returns the
// extended out and whether the caller must resubscribe the topic.
func (b *streamBook) chainedDelta(ev *Event, out []Event, c *symbolCounters) ([]Event, bool) {
	if b.state != bookLive {
		if len(b.chain.buf) >= chainBufLimit {
			n := copy(b.chain.buf, b.chain.buf[len(b.chain.buf)/2:])
			clear(b.chain.buf[n:])
			b.chain.buf = b.chain.buf[:n]
		}
		b.chain.buf = append(b.chain.buf, *ev)
		return out, false
	}
	switch {
	case ev.PrevID == b.lastID && ev.LastID == b.lastID:
		return out, false // keep-alive
	case ev.PrevID == b.lastID && ev.LastID < b.lastID:
		c.gaps.Add(1)
		b.state = bookResyncing
		return out, true
	case ev.PrevID == b.lastID:
		if ev.LastID > b.hw {
			b.hw = ev.LastID
		}
		b.lastID = ev.LastID
		b.chain.dupRun = 0
		return emit(out, ev, c), false
	case ev.LastID <= b.lastID:
		c.duplicates.Add(1)
		if b.chain.dupRun > 0 && ev.PrevID == b.chain.dupLast {
			b.chain.dupRun++
		} else {
			b.chain.dupRun = 1
		}
		b.chain.dupLast = ev.LastID
		if b.chain.dupRun >= chainRestartRun {
			b.chain.dupRun = 0
			c.gaps.Add(1)
			b.state = bookResyncing
			return out, true
		}
		return out, false
	}
	c.gaps.Add(1)
	switch b.policy {
	case GapDropPacket:
		return out, false
	case GapAccept:
		b.lastID = ev.LastID
		b.hw = max(b.hw, ev.LastID)
		return emit(out, ev, c), false
	default:
		b.state = bookResyncing
		return out, true
	}
}

// chainLive is called when the book took a snapshot: the buffered deltas
// that continue it are emitted after it (the same ones the venue sends after
// a snapshot would chain), the rest dropped.
func (b *streamBook) chainLive(out []Event, c *symbolCounters) []Event {
	buf := b.chain.buf
	b.chain.buf = nil
	for i := range buf {
		if buf[i].PrevID == b.lastID && buf[i].LastID > b.lastID {
			b.lastID = buf[i].LastID
			b.hw = max(b.hw, b.lastID)
			out = emit(out, &buf[i], c)
		}
	}
	return out
}

// chainNeedsBoot reports whether a waiting book has buffered deltas for
// longer than chainBootWait without a snapshot (at now, Unix ns).
func (b *streamBook) chainNeedsBoot(now int64) bool {
	return b.chained && b.state != bookLive && !b.chain.fetching && len(b.chain.buf) > 0 &&
		now-b.chain.buf[0].RecvTS >= int64(chainBootWait)
}

// chainRESTSnapshot applies a REST snapshot to a waiting book. It returns
// the extended out and whether another snapshot is needed (too old).
func (b *streamBook) chainRESTSnapshot(snap *Event, out []Event, c *symbolCounters) ([]Event, bool) {
	if b.state == bookLive {
		return out, false // a stream snapshot came first
	}
	buf := b.chain.buf
	if len(buf) > 0 && snap.LastID < buf[0].PrevID {
		return out, true // older than the first buffered delta
	}
	// The first delta applied must straddle the snapshot.
	start := -1
	for i := range buf {
		if buf[i].LastID > snap.LastID && buf[i].PrevID <= snap.LastID {
			start = i
			break
		}
	}
	if start < 0 && len(buf) > 0 && buf[len(buf)-1].LastID > snap.LastID {
		return out, true // no delta straddles it: a gap in the buffer
	}
	b.state = bookLive
	b.lastID = snap.LastID
	b.lastSeq = snap.Seq
	b.hw = snap.LastID
	c.snapshots.Add(1)
	out = emit(out, snap, c)
	if start >= 0 {
		first := buf[start]
		b.lastID = first.LastID
		b.hw = max(b.hw, first.LastID)
		out = emit(out, &first, c)
		b.chain.buf = buf[start+1:]
		out = b.chainLive(out, c)
	}
	b.chain.buf = nil
	return out, false
}

// chainBootstrap fetches a REST snapshot for a prev-chained book that waits
// for a stream snapshot the venue did not send, and applies it. It retries
// (with the resync timeout's pace) while the book still waits.
func (sh *shard) chainBootstrap(ctx context.Context, sym *symbol) {
	defer func() {
		sh.mu.Lock()
		sym.stream.chain.fetching = false
		sh.mu.Unlock()
	}()
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		snap, err := sh.st.cfg.Exchange.Snapshot(ctx, sym.name)
		sh.mu.Lock()
		b := sym.stream
		if b.state == bookLive {
			sh.mu.Unlock()
			return
		}
		if err != nil {
			sh.mu.Unlock()
			sym.log.Warn("order book bootstrap: REST snapshot failed", "err", err)
		} else {
			var again bool
			sh.out, again = b.chainRESTSnapshot(&snap, sh.out, &sym.ctr)
			sh.unlockPublish()
			if !again {
				sym.log.Info("order book bootstrapped from a REST snapshot (the stream sent none)", "last_id", snap.LastID)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second << attempt):
		}
	}
}
