package publisher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
)

// Publish encodes the events into buffers the publisher owns and queues
// them in order. It does not retain events. With the Block policy it waits
// while the buffer is full and returns ctx's error (wrapped) if ctx ends
// first; events before the one it waited for are queued, the rest are not
// and are counted in Stats.Abandoned and SymbolDropped (and logged).
// With DropOldest it never waits. It returns ErrClosed after Shutdown or
// Close. An event that cannot be published correctly (exchange or symbol not
// a valid identifier, unknown type, trade without id) is dropped, logged and
// counted in Stats.Rejected.
func (p *JetStream) Publish(ctx context.Context, events []bridge.Event) error {
	var buf, fresh [32]*entry
	for len(events) > 0 {
		n := min(len(events), len(buf))
		spare := p.pool.get(fresh[:n])
		batch := buf[:0]
		for i := range events[:n] {
			if e := p.encode(&events[i], spare[i]); e != nil {
				batch = append(batch, e)
			} else {
				p.pool.put(spare[i])
			}
		}
		if q, err := p.enqueue(ctx, batch); err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrClosed) {
				p.abandon(batch[q:], events[n:], err)
			}
			p.pool.put(batch[q:]...)
			return err
		}
		events = events[n:]
	}
	return nil
}

// abandon counts the events a Publish cancelled by its context did not
// queue (the entries not queued and the events not yet encoded) in
// Stats.Abandoned and SymbolDropped, and logs them once: a stream shut down
// with a deadline (a replaced or released stream in cluster mode) cancels
// its pending call this way.
func (p *JetStream) abandon(unqueued []*entry, rest []bridge.Event, err error) {
	n := 0
	for _, e := range unqueued {
		p.drops.add(e.subject, 1)
		n++
	}
	for i := range rest {
		if subj, ok := p.subject(&rest[i]); ok {
			p.drops.add(subj, 1)
			n++
		}
	}
	if n == 0 {
		return
	}
	p.c.abandoned.Add(uint64(n))
	p.log.Error("publish cancelled: events abandoned before they were buffered (counted in publish_abandoned_total and md_state publish_dropped); another owner or the replacing stream may have published them (JetStream drops repeats by Nats-Msg-Id), otherwise they are lost",
		"abandoned", n, "err", err)
}

// encode fills e with one event, or returns nil for an event whose subject
// would be invalid.
func (p *JetStream) encode(ev *bridge.Event, e *entry) *entry {
	if ev.Type == bridge.EventUnknown || ev.Type == bridge.EventTrade && ev.ID == "" {
		// Its msg ID would collide with every other such event and
		// JetStream would silently drop all but the first.
		p.c.rejected.Add(1)
		if p.limiter.allow("badevent") {
			p.log.Error("dropping event without a usable msg ID (unknown type or empty trade id)",
				"exchange", ev.Exchange, "symbol", ev.Symbol, "type", ev.Type.String())
		}
		return nil
	}
	subj, ok := p.subject(ev)
	if !ok {
		return nil
	}
	e.subject = subj
	e.body = ev.AppendJSON(e.body[:0])
	b := ev.AppendMsgID(e.idBuf[:0])
	idLen := len(b)
	b = strconv.AppendInt(b, ev.TS, 10)
	e.idBuf = b
	// A view, not a copy: e owns b until it is recycled (see entry).
	str := unsafe.String(unsafe.SliceData(b), len(b))
	e.vals[0], e.vals[1], e.vals[2] = str[:idLen], ev.Type.String(), str[idLen:]
	e.size = int64(len(e.body)+len(str)+len(subj)+len(e.vals[1])) + entryOverhead
	return e
}

// subject returns the interned data subject of ev, validating exchange and
// symbol the first time a subject is seen.
func (p *JetStream) subject(ev *bridge.Event) (string, bool) {
	var sb [160]byte
	b := ev.AppendSubject(sb[:0], p.cfg.SubjectPrefix)
	if s, ok := p.subjects.lookup(b); ok {
		return s, true
	}
	if err := errors.Join(bridge.ValidateIdent(ev.Exchange), bridge.ValidateIdent(ev.Symbol)); err != nil {
		p.c.rejected.Add(1)
		if p.limiter.allow("badident") {
			p.log.Error("dropping event with invalid exchange or symbol", "err", err)
		}
		return "", false
	}
	return p.subjects.add(b), true
}

// enqueue appends the batch to the buffer in order; see Publish. It
// returns how many entries it queued; the caller recycles the rest when it
// returns an error.
func (p *JetStream) enqueue(ctx context.Context, batch []*entry) (int, error) {
	now := time.Now()
	p.mu.Lock()
	for i, e := range batch {
		e.enq, e.checked = now, now
		for p.cfg.DropPolicy == Block && !p.closing && !p.buf.fits(e.size) {
			if p.spaceCh == nil {
				p.spaceCh = make(chan struct{})
			}
			ch := p.spaceCh
			p.mu.Unlock()
			p.signal() // the pump must see what this call queued before waiting
			select {
			case <-ch:
			case <-p.stop:
			case <-ctx.Done():
				return i, fmt.Errorf("publisher: buffer full (%d messages): %w", p.cfg.BufferMessages, ctx.Err())
			}
			p.mu.Lock()
		}
		if p.closing {
			p.mu.Unlock()
			return i, ErrClosed
		}
		e.state = stQueued
		p.q.push(e)
		p.buf.add(e.size)
		p.c.published.Add(1)
		if p.cfg.DropPolicy == DropOldest {
			for p.buf.over() && p.dropOldest() {
			}
		}
	}
	p.mu.Unlock()
	p.signal()
	return len(batch), nil
}

// dropOldest discards the oldest queued (not in flight, not acked) message.
// It reports false when there is none. p.mu is held.
func (p *JetStream) dropOldest() bool {
	start := p.sendIdx
	if p.retry.failing {
		start = 0 // failed attempts wait before sendIdx until the retry pass
	}
	for i := start; i < p.q.len(); i++ {
		e := p.q.at(i)
		if e.state != stQueued {
			continue
		}
		p.discard(e)
		e.resolve(Ack{}, ErrDropped)
		n := p.c.dropped.Add(1)
		p.drops.add(e.subject, 1)
		if p.limiter.allow("drop") {
			p.log.Warn("buffer full: dropping oldest unsent messages (DropOldest policy)",
				"msg_id", strings.Clone(e.vals[0]), "dropped_total", n, "buffered", p.buf.msgs, "buffered_bytes", p.buf.bytes)
		}
		p.popHead()
		return true
	}
	return false
}

// discard marks a queued or failed entry dropped and releases its share of
// the buffer. p.mu is held.
func (p *JetStream) discard(e *entry) {
	e.state = stDropped
	p.buf.remove(e.size)
	e.size = 0
}

// popHead removes resolved entries from the head and wakes waiters. p.mu is
// held.
func (p *JetStream) popHead() {
	popped := p.popped[:0]
	for p.q.len() > 0 {
		e := p.q.front()
		switch e.state {
		case stAcked:
			p.ackedAhead--
			p.buf.remove(e.size)
		case stDropped:
		default:
			goto done
		}
		p.q.pop()
		if p.sendIdx > 0 {
			p.sendIdx--
		}
		popped = append(popped, e)
	}
done:
	if len(popped) == 0 {
		return
	}
	p.pool.put(popped...)
	clear(popped)
	p.popped = popped
	if p.spaceCh != nil {
		close(p.spaceCh)
		p.spaceCh = nil
	}
	if p.q.len() == 0 && p.emptyCh != nil {
		close(p.emptyCh)
		p.emptyCh = nil
	}
}
