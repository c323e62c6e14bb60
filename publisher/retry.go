package publisher

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// connChanged handles a change of the connection's status: attempts
// written to a connection that broke get no reply, so they fail now rather
// than at their ack deadline. While reconnecting that is every attempt in
// flight; once reconnected, those sent before the reconnect. p.mu is held.
func (p *JetStream) connChanged(s nats.Status) {
	all := !p.link.connected()
	p.link.advance(p.link.count())
	p.failOlder(p.link.epoch, all)
	if s == nats.CONNECTED {
		p.retry.now() // reconnected: retry now
	}
}

// failOlder fails the attempts in flight that were sent before the
// connection's reconnect count reached epoch (every one with all). Each
// attempt records the count read before its batch was collected, or after
// it was written if the count changed meanwhile (step). p.mu is held.
func (p *JetStream) failOlder(epoch uint64, all bool) {
	n := 0
	for i := 0; i < p.sendIdx && i < p.q.len(); i++ {
		if e := p.q.at(i); e.state == stInflight && (all || e.epoch < epoch) {
			p.unsend(e)
			n++
		}
	}
	if n > 0 {
		p.c.failures.Add(uint64(n))
		p.fail(nats.ErrDisconnected)
	}
}

// oldestInflight returns the earliest-sent attempt still awaiting its ack.
// Attempts in flight all belong to the current pass and were sent in queue
// order, so it is the first in-flight entry. p.mu is held.
func (p *JetStream) oldestInflight() (int, *entry) {
	if p.inflight == 0 {
		return -1, nil
	}
	for i := 0; i < p.sendIdx && i < p.q.len(); i++ {
		if e := p.q.at(i); e.state == stInflight {
			return i, e
		}
	}
	return -1, nil
}

// expire fails attempts whose ack is overdue. A late reply to them is
// ignored; the message is republished with the same msg ID. If more than
// 4 × MaxInFlight attempts in a row time out, it forces a reconnect, which
// also renews the reply subscription. p.mu is held.
func (p *JetStream) expire(now time.Time) {
	i, e := p.oldestInflight()
	for ; e != nil && i < p.sendIdx && i < p.q.len(); i++ {
		e = p.q.at(i)
		if e.state != stInflight {
			continue
		}
		if now.Sub(e.sentAt) < p.cfg.AckTimeout {
			break
		}
		p.unsend(e)
		p.link.timedOut()
		p.c.failures.Add(1)
		p.fail(jetstream.ErrAsyncPublishTimeout)
	}
	if n, ok := p.link.tooManyLost(4 * p.cfg.MaxInFlight); ok {
		p.log.Warn("many publish acks lost; forcing a NATS reconnect", "lost", n)
		p.link.reconnect()
	}
}

// unsend returns an in-flight entry to the queue; a reply to its attempt
// will be ignored. p.mu is held.
func (p *JetStream) unsend(e *entry) {
	delete(p.byID, e.id)
	e.id = 0
	e.state = stQueued
	p.inflight--
}

// revert returns unsent entries to the queue after a synchronous publish
// error and starts a retry pass. p.mu is held. A reply to rest[0]'s attempt
// (a write that failed halfway) is ignored like any other late reply.
func (p *JetStream) revert(rest []*entry, err error) {
	for _, e := range rest {
		p.unsend(e)
	}
	p.c.failures.Add(1)
	if permanentSync(err) {
		p.reject(rest[0], err)
	}
	p.fail(err)
}

// isDisconnect reports errors caused by a lost connection.
func isDisconnect(err error) bool {
	return errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrConnectionClosed)
}

// permanentSync reports errors that no retry can fix.
func permanentSync(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrHeadersNotSupported) || errors.Is(err, nats.ErrInvalidMsg)
}

// permanentAsync reports whether a server error means the message can never
// be stored: a too-large message at once, another client error (4xx) after
// maxAPIFailures attempts. Disconnects, timeouts and 5xx are retried forever.
func (p *JetStream) permanentAsync(e *entry, err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	if apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
		return true
	}
	if apiErr.Code >= 400 && apiErr.Code < 500 && apiErr.Code != 408 && apiErr.Code != 429 {
		e.apiFails++
		return e.apiFails >= maxAPIFailures
	}
	return false
}

// isConflict reports JetStream's "duplicate message id is in process"
// (409, err_code 10158): a clustered stream was still storing another
// publish of the same msg ID (another replica's copy of the same event)
// when this one arrived. It is not a failure of this publisher: the retry
// gets the duplicate ack once the other copy is stored, or stores the
// message if that copy failed, so it is retried without limit and never
// rejected.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeDuplicateInProcess
}

// jsErrCodeDuplicateInProcess is the server's JSStreamDuplicateMessageConflict
// (nats.go has no constant for it).
const jsErrCodeDuplicateInProcess jetstream.ErrorCode = 10158

// conflict retries a message another publisher was storing at the same
// moment (isConflict): counted apart from failures, not logged as a
// warning, retried in order after the usual short backoff. p.mu is held.
func (p *JetStream) conflict(e *entry, err error) {
	p.c.conflicts.Add(1)
	p.retry.conflict(err)
	if p.limiter.allow("conflict") {
		p.log.Debug("another replica was storing the same message; retrying", "msg_id", strings.Clone(e.vals[0]), "subject", e.subject)
	}
}

// reject drops a message the server can never store. p.mu is held.
func (p *JetStream) reject(e *entry, err error) {
	p.discard(e)
	e.resolve(Ack{}, fmt.Errorf("%w: %w", ErrRejected, err))
	p.c.rejected.Add(1)
	p.drops.add(e.subject, 1)
	p.log.Error("dropping a message JetStream cannot store", "msg_id", strings.Clone(e.vals[0]), "subject", e.subject, "err", err)
}

// fail enters the failing state: no new sends until every in-flight attempt
// is resolved, then a retry pass from the oldest unacknowledged message.
// p.mu is held.
func (p *JetStream) fail(err error) {
	p.retry.fail(err)
	if p.limiter.allow("fail") {
		p.log.Warn("publish failed; retrying unacknowledged messages in order",
			"err", err, "buffered", p.buf.msgs, "in_flight", p.inflight, "failures", p.retry.failures)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		if p.limiter.allow("reprovision") {
			p.provision.trigger()
		}
	}
}

// beginRetry starts a retry pass after a backoff. p.mu is held.
func (p *JetStream) beginRetry(now time.Time) {
	p.retry.begin(now, p.link.connected())
	p.sendIdx = 0
	if p.ackedAhead > 0 {
		p.markReorderRisk()
	}
}

// markReorderRisk flags queued entries that a later acked entry of the same
// subject has overtaken. p.mu is held.
func (p *JetStream) markReorderRisk() {
	seen := make(map[string]struct{})
	for i := p.q.len() - 1; i >= 0; i-- {
		e := p.q.at(i)
		switch e.state {
		case stAcked:
			seen[e.subject] = struct{}{}
		case stQueued:
			if _, ok := seen[e.subject]; ok {
				e.reorderRisk = true
			}
		}
	}
}
