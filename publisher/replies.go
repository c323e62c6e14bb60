package publisher

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
)

// Publish acknowledgements. The publisher sends with core NATS, each
// attempt with its own reply subject <inbox>.<attempt id in base 36>, and
// reads JetStream's replies from one channel subscription on <inbox>.*, in
// its pump goroutine. nats.go's JetStream PublishMsgAsync does the same with
// a future, a map entry and a reply subject allocated per message and an
// extra goroutine hand-off per ack; at 5k msgs/s over 1000 symbols that
// bookkeeping and the JSON decoding of every ack were a fifth of the
// bridge's CPU.

// replies are the attempts' reply subjects, <prefix><attempt id in base
// 36>, and the channel their replies arrive on. nats.go delivers to ch
// without blocking (a full channel drops the reply: the attempt is retried
// after its ack timeout and comes back as a duplicate); the pump alone reads
// it and alone calls subject.
type replies struct {
	ch     chan *nats.Msg
	sub    *nats.Subscription // on <prefix>*; nil until subscribed
	prefix string             // <inbox>.
	buf    []byte             // the reply subject being written
}

// newReplies returns replies with a channel of size n and a placeholder
// prefix (subscribe replaces it).
func newReplies(n int) replies {
	return replies{ch: make(chan *nats.Msg, n), prefix: "_INBOX.publisher."}
}

// subscribe subscribes ch to a fresh inbox on nc. The SUB is written before
// any PUB on the same connection, so the server knows it before the first
// reply.
func (r *replies) subscribe(nc *nats.Conn) error {
	inbox := nc.NewInbox()
	sub, err := nc.ChanSubscribe(inbox+".*", r.ch)
	if err != nil {
		return fmt.Errorf("publisher: subscribe to publish acks on %s: %w", inbox, err)
	}
	r.prefix, r.sub = inbox+".", sub
	return nil
}

// unsubscribe ends the subscription, if any.
func (r *replies) unsubscribe() {
	if r.sub != nil {
		_ = r.sub.Unsubscribe() // fails only if the connection is closed
	}
}

// subject returns the reply subject of attempt id: a view of r.buf, valid
// until the next call.
func (r *replies) subject(id uint64) string {
	b := append(r.buf[:0], r.prefix...)
	b = strconv.AppendUint(b, id, 36)
	r.buf = b
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// attempt returns the attempt id a reply answers.
func (r *replies) attempt(m *nats.Msg) (uint64, bool) {
	return attemptID(m.Subject, r.prefix)
}

// attemptID returns the attempt id of a reply subject under prefix.
func attemptID(subject, prefix string) (uint64, bool) {
	if len(subject) <= len(prefix) || subject[:len(prefix)] != prefix {
		return 0, false
	}
	id, err := strconv.ParseUint(subject[len(prefix):], 36, 64)
	return id, err == nil
}

// applyReply records the outcome of the attempt m answers. A reply to an
// attempt no longer in flight (timed out, or failed with its connection) is
// ignored. p.mu is held.
func (p *JetStream) applyReply(m *nats.Msg, now time.Time) {
	id, ok := p.replies.attempt(m)
	if !ok {
		return
	}
	e, ok := p.byID[id]
	if !ok {
		return
	}
	a, err := parseAck(m)
	if err != nil {
		p.unsend(e)
		if isConflict(err) {
			p.conflict(e, err)
			return
		}
		p.c.failures.Add(1)
		if p.permanentAsync(e, err) {
			p.reject(e, err)
			return
		}
		p.fail(err)
		return
	}
	delete(p.byID, id)
	e.id = 0
	p.inflight--
	e.state = stAcked
	p.ackedAhead++
	p.c.acked.Add(1)
	if e.waiter != nil {
		e.resolve(Ack{Stream: string(a.stream), Sequence: a.seq, Duplicate: a.dup}, nil)
	}
	if a.dup {
		p.c.duplicates.Add(1)
	} else if e.reorderRisk {
		p.c.reordered.Add(1)
		p.log.Warn("a retried message was stored after a later message of the same subject",
			"msg_id", strings.Clone(e.vals[0]), "subject", e.subject)
	}
	p.hist.observe(now.Sub(e.enq))
	p.link.acked()
	if n := p.retry.acked(); n > 0 {
		p.log.Info("publishing resumed", "failures", n, "buffered", p.buf.msgs)
	}
}
