package bridge

// Resynchronizing a stream-snapshot book (Bybit): a resubscribe yields a
// fresh snapshot in the id series of the deltas; snapshot requests from the
// control subject are served the same way.

import (
	"context"
	"fmt"
)

// streamSnapshot serves a snapshot request for a stream-snapshot book
// (Stream.Snapshot): it resubscribes the book, unless a resync is already
// under way, and returns the next snapshot the book emits.
func (sh *shard) streamSnapshot(ctx context.Context, name string) (Event, error) {
	ch := make(chan Event, 1)
	sh.mu.Lock()
	sym := sh.syms[name]
	if sym == nil || sym.stream == nil {
		sh.mu.Unlock()
		return Event{}, fmt.Errorf("%w: %s %q has no order book subscription on this stream", ErrUnknownSymbol, sh.st.cfg.exName, name)
	}
	b := sym.stream
	b.wait(ch)
	if b.state == bookLive {
		// Deltas are held back until the fresh snapshot (it covers them);
		// housekeeping repeats the resubscribe if it does not come.
		b.state = bookResyncing
		sh.resubscribe(sym, "snapshot requested")
	}
	sh.mu.Unlock()
	select {
	case ev := <-ch:
		return ev, nil
	case <-ctx.Done():
		sh.mu.Lock()
		b.unwait(ch)
		sh.mu.Unlock()
		select {
		case ev := <-ch: // answered meanwhile
			return ev, nil
		default:
		}
		return Event{}, fmt.Errorf("bridge: %s %s: no fresh snapshot from the stream yet (the book was resubscribed; see the connection state): %w", sh.st.cfg.exName, name, ctx.Err())
	}
}

// resubscribe asks the primary connection for a fresh snapshot of sym's
// book. Called with mu held; the writes happen on another goroutine.
func (sh *shard) resubscribe(sym *symbol, reason string) {
	c := sh.primary
	sym.stream.resyncAt = sh.st.now()
	if c == nil {
		return
	}
	sym.log.Info("order book: resubscribing for a fresh snapshot", "reason", reason, "policy", sh.st.cfg.BookGapPolicy)
	topics := []Topic{{Symbol: sym.name, Channel: ChannelBook}}
	sh.st.goWork(func(context.Context) {
		if err := c.resubscribe(topics); err != nil {
			c.closeAfterDrain(fmt.Errorf("bridge: resubscribe: %w", err))
		}
	})
}
