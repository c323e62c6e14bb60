package publisher

import (
	"time"

	"github.com/nats-io/nats.go"
)

// maxAckDrain bounds the replies one step applies before it sends again.
const maxAckDrain = 1024

// run is the pump: the only goroutine that sends and that applies replies.
func (p *JetStream) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var first *nats.Msg
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case first = <-p.replies.ch:
		case <-timer.C:
		case s, ok := <-p.status:
			if !ok {
				p.status = nil
				continue
			}
			p.mu.Lock()
			p.connChanged(s)
			p.mu.Unlock()
		}
		if d := p.step(first); d > 0 {
			timer.Reset(d)
		}
	}
}

// step applies replies (first, then those waiting), pops resolved entries,
// expires overdue attempts and sends what the window allows. It returns how
// long until it must run again without a wake-up (a retry time or an ack
// deadline), or 0.
func (p *JetStream) step(first *nats.Msg) time.Duration {
	epoch := p.link.count() // read without p.mu: it takes the connection's lock
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if first != nil {
		p.applyReply(first, now)
	}
drain:
	for range maxAckDrain {
		select {
		case m := <-p.replies.ch:
			p.applyReply(m, now)
		default:
			break drain
		}
	}
	p.popHead()
	p.expire(now)
	for !p.closed {
		select {
		case <-p.stop:
			return 0
		default:
		}
		// A reconnect since the last send fails what was written to the
		// broken connection before anything is written to the new one, even
		// if the status event has not been seen yet: otherwise new messages
		// could be stored ahead of the lost ones' retries.
		if p.link.advance(epoch) {
			p.failOlder(epoch, false)
		}
		if p.retry.failing {
			if p.inflight > 0 {
				break // wait until every in-flight attempt is resolved
			}
			p.beginRetry(now)
		}
		if p.retry.waiting(now) {
			break
		}
		if p.needsVerify(now) {
			// A message waited longer than the duplicate window can cover
			// (a long outage): check the stream before sending it, and
			// only over a live connection.
			if !p.link.connected() {
				break
			}
			p.verifyOld(now)
			now = time.Now()
			continue // the check took time: more messages may have aged past the limit
		}
		batch := p.collect(now, p.link.epoch)
		if len(batch) == 0 {
			break
		}
		p.mu.Unlock()
		i, err := p.send(batch)
		epoch = p.link.count()
		p.mu.Lock()
		if epoch != p.link.epoch {
			// The connection was replaced while the batch was written: a
			// write may have gone to the new one (nats.go holds its lock
			// while reconnecting, so a blocked write lands there). Count
			// them as the new connection's: those lost with the old one time
			// out instead of failing at once, and one stored ahead of older
			// lost messages is seen by the reorder check.
			for _, e := range batch[:i] {
				e.epoch = epoch
			}
		}
		if err != nil {
			p.revert(batch[i:], err)
		}
		clear(batch)
		now = time.Now()
	}
	return p.wakeAfter(now)
}

// collect marks the next queued entries in flight, up to the window, each
// with a new attempt id. p.mu is held.
func (p *JetStream) collect(now time.Time, epoch uint64) []*entry {
	room := min(p.cfg.MaxInFlight-p.inflight, sendBatchSize)
	batch := p.batch[:0]
	for p.sendIdx < p.q.len() && len(batch) < room {
		e := p.q.at(p.sendIdx)
		p.sendIdx++
		if e.state != stQueued {
			continue
		}
		p.nextID++
		e.state = stInflight
		e.sentAt = now
		e.id, e.epoch = p.nextID, epoch
		p.byID[e.id] = e
		p.inflight++
		batch = append(batch, e)
	}
	p.batch = batch
	return batch
}

// outMsg is the pump's one outgoing message. Its header map's value
// slices alias vals, so loading an entry sets the headers of the next write
// without allocating; nats.go copies the message into its write buffer
// during PublishMsg.
type outMsg struct {
	msg  nats.Msg
	vals *[3]string
}

func newOutMsg() outMsg {
	v := new([3]string)
	return outMsg{vals: v, msg: nats.Msg{Header: nats.Header{
		HeaderMsgID:      v[0:1:1],
		HeaderType:       v[1:2:2],
		HeaderExchangeTS: v[2:3:3],
	}}}
}

// load fills the message with e's attempt, to be answered on reply. The
// message views e's buffers until reset.
func (o *outMsg) load(e *entry, reply string) *nats.Msg {
	*o.vals = e.vals
	o.msg.Subject, o.msg.Data, o.msg.Reply = e.subject, e.body, reply
	return &o.msg
}

// reset drops the views of the last entry loaded.
func (o *outMsg) reset() {
	clear(o.vals[:])
	o.msg.Subject, o.msg.Reply, o.msg.Data = "", "", nil
}

// send publishes the batch in order without holding p.mu, each message with
// its attempt's reply subject. It returns the index of the first message
// that could not be written, with the error. The pump's one message, header
// map and reply buffer are filled per write: nats.go copies them into its
// write buffer during PublishMsg.
func (p *JetStream) send(batch []*entry) (int, error) {
	defer p.out.reset() // it views the entries' buffers
	for i, e := range batch {
		if err := p.link.pub(p.out.load(e, p.replies.subject(e.id))); err != nil {
			p.c.sent.Add(uint64(i))
			return i, err
		}
		if e.sent {
			p.c.retries.Add(1)
		}
		e.sent = true
	}
	p.c.sent.Add(uint64(len(batch)))
	return len(batch), nil
}

// wakeAfter returns when the pump must run without a wake-up: at the retry
// time, or at the oldest attempt's ack deadline. p.mu is held.
func (p *JetStream) wakeAfter(now time.Time) time.Duration {
	var d time.Duration
	if p.retry.at.After(now) {
		d = p.retry.at.Sub(now)
	}
	if _, e := p.oldestInflight(); e != nil {
		dl := max(e.sentAt.Add(p.cfg.AckTimeout).Sub(now), time.Millisecond)
		if d == 0 || dl < d {
			d = dl
		}
	}
	return d
}
