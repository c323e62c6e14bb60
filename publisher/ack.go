package publisher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish acknowledgements. The publisher sends with core NATS, each
// attempt with its own reply subject <inbox>.<attempt id in base 36>, and
// reads JetStream's replies from one channel subscription on <inbox>.*, in
// its pump goroutine. nats.go's JetStream PublishMsgAsync does the same with
// a future, a map entry and a reply subject allocated per message and an
// extra goroutine hand-off per ack; at 5k msgs/s over 1000 symbols that
// bookkeeping and the JSON decoding of every ack were a fifth of the
// bridge's CPU.

// statusHeader and noRespondersStatus mark the server's reply to a request
// nobody answered (no stream binds the subject, or JetStream is off).
const (
	statusHeader       = "Status"
	noRespondersStatus = "503"
)

// ackReply is the JSON of a JetStream publish reply.
type ackReply struct {
	Error     *jetstream.APIError `json:"error"`
	Stream    string              `json:"stream"`
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate"`
}

// pubAck is a parsed publish acknowledgement. stream views the reply's data.
type pubAck struct {
	stream []byte
	seq    uint64
	dup    bool
}

// parseAck reads a JetStream publish reply: the stream and sequence that
// hold the message and whether it was a duplicate, or why it was not
// stored. The replies nats-server writes,
// {"stream":"MD"[,"domain":"hub"],"seq":7[,"duplicate": true]}, are read by
// scanAck without a JSON decoder and without allocating; anything else
// (errors, another shape) goes through encoding/json (parseAckJSON), and
// both give the same result for every input (FuzzParseAck).
func parseAck(m *nats.Msg) (pubAck, error) {
	if len(m.Data) == 0 {
		if m.Header.Get(statusHeader) == noRespondersStatus {
			return pubAck{}, nats.ErrNoResponders
		}
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if a, ok := scanAck(m.Data); ok {
		return a, nil
	}
	return parseAckJSON(m.Data)
}

// parseAckJSON is parseAck's general path.
func parseAckJSON(d []byte) (pubAck, error) {
	var r ackReply
	if err := json.Unmarshal(d, &r); err != nil {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return pubAck{}, r.Error
	}
	if r.Stream == "" {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	return pubAck{stream: []byte(r.Stream), seq: r.Seq, dup: r.Duplicate}, nil
}

// scanAck reads a successful publish reply of the simple shape: a JSON
// object whose members are "stream" (required, not empty), "seq", "domain"
// and "duplicate", each at most once, with string values of printable ASCII
// without escapes, an unsigned decimal seq and a true/false duplicate,
// whitespace allowed between tokens. On anything else it reports false and
// the caller decodes with encoding/json, so it never accepts an input that
// encoding/json reads differently.
func scanAck(d []byte) (a pubAck, ok bool) {
	const (
		hasStream = 1 << iota
		hasSeq
		hasDomain
		hasDup
	)
	s := ackScanner{d: d}
	seen := 0
	if !s.byte('{') {
		return pubAck{}, false
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return pubAck{}, false
		}
		var bit int
		switch string(key) { // compared without allocating
		case "stream":
			bit = hasStream
			a.stream, ok = s.str()
			ok = ok && len(a.stream) > 0
		case "domain":
			bit = hasDomain
			_, ok = s.str()
		case "seq":
			bit = hasSeq
			a.seq, ok = s.uint()
		case "duplicate":
			bit = hasDup
			a.dup, ok = s.bool()
		}
		if bit == 0 || !ok || seen&bit != 0 {
			return pubAck{}, false // another key, a bad value, or a repeated key (encoding/json keeps the last)
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		if !s.byte('}') {
			return pubAck{}, false
		}
		s.ws()
		return a, s.i == len(d) && seen&hasStream != 0
	}
}

// ackScanner reads the tokens scanAck accepts.
type ackScanner struct {
	d []byte
	i int
}

// ws skips JSON whitespace.
func (s *ackScanner) ws() {
	for s.i < len(s.d) && (s.d[s.i] == ' ' || s.d[s.i] == '\t' || s.d[s.i] == '\n' || s.d[s.i] == '\r') {
		s.i++
	}
}

// byte skips whitespace and then c, if it is next.
func (s *ackScanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.d) && s.d[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *ackScanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.d); s.i++ {
		switch c := s.d[s.i]; {
		case c == '"':
			s.i++
			return s.d[start : s.i-1], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, false
		}
	}
	return nil, false
}

// uint reads an unsigned decimal integer without leading zeros that fits
// in a uint64.
func (s *ackScanner) uint() (uint64, bool) {
	s.ws()
	start := s.i
	var n uint64
	for ; s.i < len(s.d) && s.d[s.i] >= '0' && s.d[s.i] <= '9'; s.i++ {
		d := uint64(s.d[s.i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	digits := s.i - start
	if digits == 0 || digits > 1 && s.d[start] == '0' {
		return 0, false
	}
	if s.i < len(s.d) && (s.d[s.i] == '.' || s.d[s.i] == 'e' || s.d[s.i] == 'E') {
		return 0, false // a fraction or exponent: not a uint64 for encoding/json
	}
	return n, true
}

// bool reads true or false.
func (s *ackScanner) bool() (bool, bool) {
	s.ws()
	switch {
	case bytes.HasPrefix(s.d[s.i:], []byte("true")):
		s.i += 4
		return true, true
	case bytes.HasPrefix(s.d[s.i:], []byte("false")):
		s.i += 5
		return false, true
	}
	return false, false
}

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
