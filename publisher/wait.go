package publisher

import (
	"context"
	"fmt"

	"github.com/qldata/mdbridge/bridge"
)

// Ack is JetStream's acknowledgement of an event published with
// PublishWait.
type Ack struct {
	Stream    string // the stream that holds the event
	Sequence  uint64 // its stream sequence; for a duplicate, the stored copy's
	Duplicate bool   // the stream already held an event with the same msg ID
}

// ackResult is the outcome the pump hands to a PublishWait caller.
type ackResult struct {
	ack Ack
	err error
}

// PublishWait publishes one event through the same buffer, order, retry
// and msg-ID deduplication as Publish (it is queued behind every event
// published before it) and waits until JetStream acknowledges it. An event
// the stream already holds (the same msg ID within the duplicate window) is
// acknowledged with Duplicate set and the stored copy's sequence.
//
// If ctx ends first it returns ctx's error (wrapped); the event stays
// buffered and is still published. Other errors: ErrClosed (after Shutdown
// or Close, also when Close abandons the event), ErrDropped (discarded by
// DropOldest), ErrRejected (wrapped with the reason: no valid subject or
// msg ID, or the server refuses it for good).
func (p *JetStream) PublishWait(ctx context.Context, ev bridge.Event) (Ack, error) {
	var one [1]*entry
	e := p.pool.get(one[:])[0]
	if p.encode(&ev, e) == nil {
		p.pool.put(e)
		return Ack{}, fmt.Errorf("%w: %s event of %q/%q has no valid subject or msg ID", ErrRejected, ev.Type, ev.Exchange, ev.Symbol)
	}
	done := make(chan ackResult, 1)
	e.waiter = done
	if _, err := p.enqueue(ctx, one[:]); err != nil {
		p.pool.put(e) // the caller learns it was not queued
		return Ack{}, err
	}
	select {
	case r := <-done:
		return r.ack, r.err
	case <-ctx.Done():
		return Ack{}, fmt.Errorf("publisher: waiting for the ack of %s: %w", ev.MsgID(), ctx.Err())
	}
}

// resolve hands the outcome of e to its PublishWait caller, if any, at most
// once. It never blocks (the caller's channel has room for one result).
// p.mu is held.
func (e *entry) resolve(a Ack, err error) {
	if e.waiter != nil {
		e.waiter <- ackResult{a, err}
		e.waiter = nil
	}
}
