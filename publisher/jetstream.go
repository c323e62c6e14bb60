package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// Header names of the wire contract (DESIGN.md).
const (
	HeaderMsgID      = jetstream.MsgIDHeader // "Nats-Msg-Id"
	HeaderType       = "Md-Type"
	HeaderExchangeTS = "Md-Exchange-Ts"
)

var _ bridge.Publisher = (*JetStream)(nil)

const (
	minBackoff     = 5 * time.Millisecond
	maxBackoff     = time.Second
	sendBatchSize  = 256
	maxAPIFailures = 10       // server rejections (4xx) of one message before it is dropped
	entryOverhead  = 96       // bytes counted per message beyond body, subject and header values
	maxPooledBody  = 64 << 10 // larger body buffers are not reused
	entryChunk     = 16       // entries allocated together when the free list is empty
	bodyReserve    = 256      // initial body capacity of a new entry (a trade is ~190 bytes)
	idReserve      = 96       // initial capacity for msg id and timestamp
	maxSubjects    = 1 << 16  // subject cache bound
	logEvery       = 5 * time.Second
)

type entryState uint8

const (
	stQueued   entryState = iota // waiting to be sent (again)
	stInflight                   // sent, awaiting ack or error
	stAcked                      // acknowledged; popped once at the head
	stDropped                    // discarded (DropOldest or rejected); popped once at the head
)

// entry is one buffered message. Entries are recycled through a free list,
// with their buffers: body, and idBuf holding the msg id and timestamp that
// vals[0] and vals[2] view without a copy (so those strings are valid only
// until the entry is recycled; anything that keeps one longer, such as a log
// attribute, clones it). Headers live in the pump's one header map, filled
// just before each write (nats.go reads it only during PublishMsg).
type entry struct {
	subject     string
	body        []byte
	idBuf       []byte
	vals        [3]string // header values: msg id, type, exchange ts
	size        int64
	enq         time.Time // when Publish queued it
	sentAt      time.Time // when the current attempt was sent
	id          uint64    // current attempt while in flight (its reply subject), else 0
	epoch       uint64    // the connection's reconnect count when it was sent
	state       entryState
	sent        bool
	reorderRisk bool
	apiFails    uint8
}

// newEntries fills dst with new entries: the structs in one allocation, and
// one buffer per entry holding its body and idBuf.
func newEntries(dst []*entry) {
	es := make([]entry, len(dst))
	for i := range es {
		b := make([]byte, bodyReserve+idReserve)
		es[i].body = b[:0:bodyReserve]
		es[i].idBuf = b[bodyReserve:bodyReserve]
		dst[i] = &es[i]
	}
}

// sendHeader is the pump's reusable header map: its value slices alias vals,
// so setting vals sets the headers of the next write.
type sendHeader struct {
	hdr  nats.Header
	vals *[3]string
}

func newSendHeader() sendHeader {
	v := new([3]string)
	return sendHeader{vals: v, hdr: nats.Header{
		HeaderMsgID:      v[0:1:1],
		HeaderType:       v[1:2:2],
		HeaderExchangeTS: v[2:3:3],
	}}
}

// JetStream publishes events to the JetStream stream: encoded into buffers
// it owns, held in a bounded ordered buffer, sent asynchronously with a
// bounded in-flight window, and retried with the same Nats-Msg-Id until
// acknowledged. See the package documentation for the delivery and ordering
// guarantees. Create it with NewJetStream; stop it with Shutdown or Close.
type JetStream struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream // stream management only; publishing is core NATS
	pub       func(*nats.Msg) error
	epochFn   func() uint64 // the connection's reconnect count
	connected func() bool
	reconnect func() // forces a reconnect
	log       *slog.Logger
	limiter   *logLimiter

	freeMu  sync.Mutex // leaf lock guarding free
	free    []*entry   // recycled entries: buffers and header maps reused
	maxFree int

	wake chan struct{}

	// Replies to attempts, read by the pump only. nats.go delivers them to
	// acks without blocking (a full channel drops the reply: the attempt is
	// retried after its ack timeout and comes back as a duplicate).
	acks        chan *nats.Msg
	ackSub      *nats.Subscription
	replyPrefix string   // <inbox>.
	replyBuf    []byte   // the reply subject being written; pump only
	out         nats.Msg // the message being written; pump only

	mu         sync.Mutex
	q          ring
	sendIdx    int // entries before it were sent in this pass (or are resolved)
	inflight   int
	byID       map[uint64]*entry // attempts in flight by id
	nextID     uint64
	bufMsgs    int
	bufBytes   int64
	ackedAhead int    // acked entries still in q behind an unacked one
	lost       int    // attempts timed out since the last ack
	epoch      uint64 // the connection's reconnect count at the last send
	failing    bool
	failedN    uint64 // failures since the last successful ack
	lastErr    error
	retryAt    time.Time
	backoff    time.Duration
	closing    bool
	closed     bool
	spaceCh    chan struct{} // closed when room appears; nil when nobody waits
	emptyCh    chan struct{} // closed when q empties; set by Shutdown
	batch      []*entry
	popped     []*entry   // popHead's scratch
	header     sendHeader // used by the pump only, outside p.mu

	subjMu   sync.RWMutex
	subjects map[string]string

	status      chan nats.Status
	stop        chan struct{}
	done        chan struct{}
	closeOnce   sync.Once
	bg          sync.WaitGroup
	bgCtx       context.Context
	bgCancel    context.CancelFunc
	reprovision atomic.Bool

	c    counters
	hist histogram
}

// NewJetStream validates cfg, provisions the stream (EnsureStream) and
// starts the publisher on nc. nc should come from Connect (nats.go's
// reconnect buffer disabled); the caller keeps owning it.
func NewJetStream(ctx context.Context, nc *nats.Conn, cfg Config, logger *slog.Logger) (*JetStream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := newJetStream(cfg, logger)
	p.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("publisher: jetstream context: %w", err)
	}
	p.js = js
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		return nil, err
	}
	if nc.Opts.ReconnectBufSize >= 0 {
		p.log.Warn("the NATS connection buffers publishes while reconnecting; messages written during an outage may overtake retried ones (use publisher.Connect, or nats.ReconnectBufSize(-1))",
			"reconnect_buf_size", nc.Opts.ReconnectBufSize)
	}
	// Replies: one channel subscription on a fresh inbox. The SUB is
	// written before any PUB on the same connection, so the server knows it
	// before the first reply.
	inbox := nc.NewInbox()
	p.replyPrefix = inbox + "."
	p.ackSub, err = nc.ChanSubscribe(inbox+".*", p.acks)
	if err != nil {
		return nil, fmt.Errorf("publisher: subscribe to publish acks on %s: %w", inbox, err)
	}
	p.pub = nc.PublishMsg
	p.epochFn = func() uint64 { return nc.Stats().Reconnects }
	p.connected = nc.IsConnected
	p.reconnect = func() { _ = nc.ForceReconnect() }
	p.status = nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	p.start()
	return p, nil
}

// newJetStream returns a publisher for cfg (validated, with defaults) that
// has no connection yet and is not started.
func newJetStream(cfg Config, logger *slog.Logger) *JetStream {
	p := &JetStream{
		cfg:         cfg,
		log:         orDiscard(logger).With("component", "publisher", "stream", cfg.Stream),
		limiter:     newLogLimiter(logEvery),
		wake:        make(chan struct{}, 1),
		acks:        make(chan *nats.Msg, 2*cfg.MaxInFlight+1024),
		replyPrefix: "_INBOX.publisher.",
		epochFn:     func() uint64 { return 0 },
		connected:   func() bool { return false },
		reconnect:   func() {},
		byID:        make(map[uint64]*entry, cfg.MaxInFlight),
		subjects:    make(map[string]string),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	p.maxFree = min(cfg.BufferMessages, 2*cfg.MaxInFlight+1024)
	p.header = newSendHeader()
	p.out.Header = p.header.hdr
	return p
}

// start starts the pump once p.pub (and, outside tests, p.nc, p.js and
// p.status) are set.
func (p *JetStream) start() {
	p.bgCtx, p.bgCancel = context.WithCancel(context.Background())
	go p.run()
}

func (p *JetStream) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Publish encodes the events into buffers the publisher owns and queues
// them in order. It does not retain events. With the Block policy it waits
// while the buffer is full and returns ctx's error (wrapped) if ctx ends
// first; events before the one it waited for are queued, the rest are not.
// With DropOldest it never waits. It returns ErrClosed after Shutdown or
// Close. An event that cannot be published correctly (exchange or symbol not
// a valid identifier, unknown type, trade without id) is dropped, logged and
// counted in Stats.Rejected.
func (p *JetStream) Publish(ctx context.Context, events []bridge.Event) error {
	var buf, fresh [32]*entry
	for len(events) > 0 {
		n := min(len(events), len(buf))
		spare := p.getEntries(fresh[:n])
		batch := buf[:0]
		for i := range events[:n] {
			if e := p.encode(&events[i], spare[i]); e != nil {
				batch = append(batch, e)
			} else {
				p.putEntries(spare[i])
			}
		}
		if err := p.enqueue(ctx, batch); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// getEntries fills dst with recycled or new entries. New entries are
// allocated entryChunk at a time, outside freeMu; the spare ones join the
// free list.
func (p *JetStream) getEntries(dst []*entry) []*entry {
	p.freeMu.Lock()
	n := min(len(dst), len(p.free))
	copy(dst, p.free[len(p.free)-n:])
	clear(p.free[len(p.free)-n:])
	p.free = p.free[:len(p.free)-n]
	p.freeMu.Unlock()
	for n < len(dst) {
		var chunk [entryChunk]*entry
		newEntries(chunk[:])
		k := copy(dst[n:], chunk[:])
		n += k
		if k < len(chunk) {
			p.freeMu.Lock()
			p.free = append(p.free, chunk[k:min(len(chunk), k+p.maxFree-len(p.free))]...)
			p.freeMu.Unlock()
		}
	}
	return dst
}

// putEntries returns entries to the free list (or to the garbage collector
// when the list is full), taking freeMu once.
func (p *JetStream) putEntries(es ...*entry) {
	for _, e := range es {
		if cap(e.body) > maxPooledBody {
			e.body = nil
		}
		e.id, e.subject, e.vals = 0, "", [3]string{}
		e.state, e.sent, e.reorderRisk, e.apiFails = stQueued, false, false, 0
	}
	p.freeMu.Lock()
	p.free = append(p.free, es[:min(len(es), max(p.maxFree-len(p.free), 0))]...)
	p.freeMu.Unlock()
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
	p.subjMu.RLock()
	s, ok := p.subjects[string(b)]
	p.subjMu.RUnlock()
	if ok {
		return s, true
	}
	if err := errors.Join(bridge.ValidateIdent(ev.Exchange), bridge.ValidateIdent(ev.Symbol)); err != nil {
		p.c.rejected.Add(1)
		if p.limiter.allow("badident") {
			p.log.Error("dropping event with invalid exchange or symbol", "err", err)
		}
		return "", false
	}
	s = string(b)
	p.subjMu.Lock()
	if len(p.subjects) < maxSubjects {
		p.subjects[s] = s
	}
	p.subjMu.Unlock()
	return s, true
}

// fits reports whether e can join the buffer without exceeding its limits.
// A message larger than BufferBytes fits into an empty buffer.
func (p *JetStream) fits(e *entry) bool {
	return p.bufMsgs < p.cfg.BufferMessages && (p.bufBytes+e.size <= p.cfg.BufferBytes || p.bufMsgs == 0)
}

// over reports whether the buffer exceeds its limits.
func (p *JetStream) over() bool {
	return p.bufMsgs > p.cfg.BufferMessages || (p.bufBytes > p.cfg.BufferBytes && p.bufMsgs > 1)
}

func (p *JetStream) enqueue(ctx context.Context, batch []*entry) error {
	now := time.Now()
	p.mu.Lock()
	for i, e := range batch {
		e.enq = now
		for p.cfg.DropPolicy == Block && !p.closing && !p.fits(e) {
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
				p.putEntries(batch[i:]...)
				return fmt.Errorf("publisher: buffer full (%d messages): %w", p.cfg.BufferMessages, ctx.Err())
			}
			p.mu.Lock()
		}
		if p.closing {
			p.mu.Unlock()
			p.putEntries(batch[i:]...)
			return ErrClosed
		}
		e.state = stQueued
		p.q.push(e)
		p.bufMsgs++
		p.bufBytes += e.size
		p.c.published.Add(1)
		if p.cfg.DropPolicy == DropOldest {
			for p.over() && p.dropOldest() {
			}
		}
	}
	p.mu.Unlock()
	p.signal()
	return nil
}

// dropOldest discards the oldest queued (not in flight, not acked) message.
// It reports false when there is none. p.mu is held.
func (p *JetStream) dropOldest() bool {
	start := p.sendIdx
	if p.failing {
		start = 0 // failed attempts wait before sendIdx until the retry pass
	}
	for i := start; i < p.q.len(); i++ {
		e := p.q.at(i)
		if e.state != stQueued {
			continue
		}
		p.discard(e)
		n := p.c.dropped.Add(1)
		if p.limiter.allow("drop") {
			p.log.Warn("buffer full: dropping oldest unsent messages (DropOldest policy)",
				"msg_id", strings.Clone(e.vals[0]), "dropped_total", n, "buffered", p.bufMsgs, "buffered_bytes", p.bufBytes)
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
	p.bufMsgs--
	p.bufBytes -= e.size
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
			p.bufMsgs--
			p.bufBytes -= e.size
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
	p.putEntries(popped...)
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
		case first = <-p.acks:
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
	epoch := p.epochFn() // read without p.mu: it takes the connection's lock
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if first != nil {
		p.applyReply(first, now)
	}
drain:
	for range maxAckDrain {
		select {
		case m := <-p.acks:
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
		if epoch != p.epoch {
			p.epoch = epoch
			p.failOlder(epoch, false)
		}
		if p.failing {
			if p.inflight > 0 {
				break // wait until every in-flight attempt is resolved
			}
			p.beginRetry(now)
		}
		if now.Before(p.retryAt) {
			break
		}
		batch := p.collect(now, p.epoch)
		if len(batch) == 0 {
			break
		}
		p.mu.Unlock()
		i, err := p.send(batch)
		epoch = p.epochFn()
		p.mu.Lock()
		if epoch != p.epoch {
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

// connChanged handles a change of the connection's status: attempts
// written to a connection that broke get no reply, so they fail now rather
// than at their ack deadline. While reconnecting that is every attempt in
// flight; once reconnected, those sent before the reconnect. p.mu is held.
func (p *JetStream) connChanged(s nats.Status) {
	all := !p.connected()
	p.epoch = p.epochFn()
	p.failOlder(p.epoch, all)
	if s == nats.CONNECTED {
		p.retryAt = time.Time{} // reconnected: retry now
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
		p.lost++
		p.c.failures.Add(1)
		p.fail(jetstream.ErrAsyncPublishTimeout)
	}
	if p.lost > 4*p.cfg.MaxInFlight {
		p.log.Warn("many publish acks lost; forcing a NATS reconnect", "lost", p.lost)
		p.lost = 0
		p.reconnect()
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

// wakeAfter returns when the pump must run without a wake-up: at the retry
// time, or at the oldest attempt's ack deadline. p.mu is held.
func (p *JetStream) wakeAfter(now time.Time) time.Duration {
	var d time.Duration
	if p.retryAt.After(now) {
		d = p.retryAt.Sub(now)
	}
	if _, e := p.oldestInflight(); e != nil {
		dl := max(e.sentAt.Add(p.cfg.AckTimeout).Sub(now), time.Millisecond)
		if d == 0 || dl < d {
			d = dl
		}
	}
	return d
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

// send publishes the batch in order without holding p.mu, each message with
// its attempt's reply subject. It returns the index of the first message
// that could not be written, with the error. The pump's one message, header
// map and reply buffer are filled per write: nats.go copies them into its
// write buffer during PublishMsg.
func (p *JetStream) send(batch []*entry) (int, error) {
	defer p.clearOut() // it views the entries' buffers
	for i, e := range batch {
		*p.header.vals = e.vals
		p.out.Subject, p.out.Data, p.out.Reply = e.subject, e.body, p.reply(e.id)
		if err := p.pub(&p.out); err != nil {
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

// reply returns the reply subject of attempt id: a view of p.replyBuf,
// valid until the next call.
func (p *JetStream) reply(id uint64) string {
	b := append(p.replyBuf[:0], p.replyPrefix...)
	b = strconv.AppendUint(b, id, 36)
	p.replyBuf = b
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (p *JetStream) clearOut() {
	clear(p.header.vals[:])
	p.out.Subject, p.out.Reply, p.out.Data = "", "", nil
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

// applyReply records the outcome of the attempt m answers. A reply to an
// attempt no longer in flight (timed out, or failed with its connection) is
// ignored. p.mu is held.
func (p *JetStream) applyReply(m *nats.Msg, now time.Time) {
	id, ok := attemptID(m.Subject, p.replyPrefix)
	if !ok {
		return
	}
	e, ok := p.byID[id]
	if !ok {
		return
	}
	dup, err := parseAck(m)
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
	if dup {
		p.c.duplicates.Add(1)
	} else if e.reorderRisk {
		p.c.reordered.Add(1)
		p.log.Warn("a retried message was stored after a later message of the same subject",
			"msg_id", strings.Clone(e.vals[0]), "subject", e.subject)
	}
	p.hist.observe(now.Sub(e.enq))
	p.lost = 0
	if p.failedN > 0 && !p.failing {
		p.log.Info("publishing resumed", "failures", p.failedN, "buffered", p.bufMsgs)
		p.failedN = 0
	}
	p.backoff = 0
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

// reject drops a message the server can never store. p.mu is held.
func (p *JetStream) reject(e *entry, err error) {
	p.discard(e)
	p.c.rejected.Add(1)
	p.log.Error("dropping a message JetStream cannot store", "msg_id", strings.Clone(e.vals[0]), "subject", e.subject, "err", err)
}

// fail enters the failing state: no new sends until every in-flight attempt
// is resolved, then a retry pass from the oldest unacknowledged message.
// p.mu is held.
func (p *JetStream) fail(err error) {
	p.failing = true
	p.failedN++
	p.lastErr = err
	if p.limiter.allow("fail") {
		p.log.Warn("publish failed; retrying unacknowledged messages in order",
			"err", err, "buffered", p.bufMsgs, "in_flight", p.inflight, "failures", p.failedN)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		p.reprovisionStream()
	}
}

// beginRetry starts a retry pass after a backoff. p.mu is held.
func (p *JetStream) beginRetry(now time.Time) {
	p.failing = false
	p.sendIdx = 0
	p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	if p.connected() && isDisconnect(p.lastErr) {
		// The connection is already back: retry at once.
		p.backoff = minBackoff
	}
	p.retryAt = now.Add(p.backoff)
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

// reprovisionStream re-creates the stream in the background (at most every
// logEvery) when JetStream stops answering for it: a server restarted
// without its store, or an operator deleted the stream.
func (p *JetStream) reprovisionStream() {
	if !p.limiter.allow("reprovision") || !p.reprovision.CompareAndSwap(false, true) {
		return
	}
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		defer p.reprovision.Store(false)
		ctx, cancel := context.WithTimeout(p.bgCtx, 10*time.Second)
		defer cancel()
		if _, err := EnsureStream(ctx, p.js, p.cfg); err != nil {
			p.log.Warn("stream not available; will retry", "err", err)
		}
	}()
}

// Stats returns a snapshot of the counters.
func (p *JetStream) Stats() Stats {
	p.mu.Lock()
	s := Stats{BufferedMsgs: p.bufMsgs, BufferedBytes: p.bufBytes, InFlight: p.inflight}
	p.mu.Unlock()
	s.Published = p.c.published.Load()
	s.Sent = p.c.sent.Load()
	s.Acked = p.c.acked.Load()
	s.Retries = p.c.retries.Load()
	s.Failures = p.c.failures.Load()
	s.Duplicates = p.c.duplicates.Load()
	s.Dropped = p.c.dropped.Load()
	s.Rejected = p.c.rejected.Load()
	s.Abandoned = p.c.abandoned.Load()
	s.Reordered = p.c.reordered.Load()
	s.Latency = p.hist.snapshot()
	return s
}

// Shutdown stops accepting events (Publish returns ErrClosed), waits until
// every buffered message is acknowledged or dropped, then closes. If ctx
// ends first it closes anyway and returns ErrUnflushed (wrapped, with the
// count and ctx's error).
func (p *JetStream) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	if p.spaceCh != nil {
		close(p.spaceCh) // blocked publishers return ErrClosed
		p.spaceCh = nil
	}
	var empty chan struct{}
	if p.q.len() > 0 {
		if p.emptyCh == nil {
			p.emptyCh = make(chan struct{})
		}
		empty = p.emptyCh
	}
	p.mu.Unlock()
	if empty != nil {
		p.signal()
		select {
		case <-empty:
		case <-ctx.Done():
			p.mu.Lock()
			n := p.bufMsgs - p.ackedAhead
			p.mu.Unlock()
			p.Close()
			return fmt.Errorf("%w: %d messages: %w", ErrUnflushed, n, ctx.Err())
		}
	}
	p.Close()
	return nil
}

// Close stops the publisher now. Messages not yet acknowledged are
// abandoned: counted in Stats.Abandoned and logged. Publish returns
// ErrClosed afterwards. Close does not close the NATS connection.
func (p *JetStream) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		close(p.stop)
		<-p.done
		p.bgCancel()
		p.bg.Wait()
		if p.status != nil {
			p.nc.RemoveStatusListener(p.status)
		}
		if p.ackSub != nil {
			_ = p.ackSub.Unsubscribe() // fails only if the connection is closed
		}
		p.mu.Lock()
		p.closed = true
		n := p.bufMsgs - p.ackedAhead
		if n > 0 {
			p.c.abandoned.Add(uint64(n))
			p.log.Error("closed with unacknowledged messages", "abandoned", n)
		}
		if p.spaceCh != nil {
			close(p.spaceCh)
			p.spaceCh = nil
		}
		p.mu.Unlock()
	})
	return nil
}
