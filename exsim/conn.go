package exsim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// frameKind classifies an outbound frame.
type frameKind uint8

const (
	fkControl  frameKind = iota // a control reply (text)
	fkPing                      // WebSocket ping
	fkPong                      // WebSocket pong
	fkTrade                     // market data: trades
	fkDepth                     // market data: a book diff (Binance depthUpdate, Bybit delta)
	fkSnapshot                  // market data: a Bybit book snapshot
	fkOther                     // market data: bookTicker, partial depth, serverShutdown
)

// WebSocket opcodes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// outFrame is one queued outbound frame. b is shared and never modified.
type outFrame struct {
	b      []byte
	ser    *series // the ground-truth series of the ids it carries, or nil
	lo, hi int64
	m      *market // the market it comes from, for per-symbol faults
	kind   frameKind
}

// ctrlMsg asks the writer to do something out of band.
type ctrlMsg struct {
	op     uint8 // ctrlClose or ctrlWake
	code   int
	reason string
}

const (
	ctrlWake  = iota // re-read stall state and policies
	ctrlClose        // write a close frame, then close
)

// pingRec is a ping the server sent and awaits a pong for.
type pingRec struct {
	payload string
	at      time.Time
}

// pend is a written, not yet flushed, range of series ids; end is the
// offset just past its last frame in the connection's outbound bytes.
type pend struct {
	ser    *series
	lo, hi int64
	end    int64
}

// sentKeep is how far back (in outbound bytes) a connection remembers its
// committed ranges: more than a kernel send buffer holds, so the ranges
// still unsent when the connection is closed can be found (inFlightAt).
const sentKeep = 16 << 20

// conn is one client WebSocket connection. A reader goroutine handles
// client frames; a writer goroutine owns every write to the socket and
// drains the bounded queue q, batching frames into few syscalls. Markets
// enqueue shared pre-encoded frames with send, which never blocks unless
// Config.Backpressure is set.
type conn struct {
	id     uint64
	srv    *Server
	venue  Venue
	ws     *websocket.Conn
	nc     net.Conn
	rec    *connRecord
	log    *slog.Logger
	opened time.Time
	connID string // Bybit conn_id

	q         chan outFrame
	ctrl      chan ctrlMsg
	done      chan struct{}
	closeOnce sync.Once

	// mu guards the fields below it.
	mu         sync.Mutex
	closed     bool
	binStreams []string // Binance subscriptions, in order
	route      string   // Binance USD-M route ("public", "market"); "" elsewhere
	combined   bool
	micro      bool
	topics     []string // Bybit subscriptions, OKX "channel:instId", in order
	okxBiz     bool     // an OKX /ws/v5/business connection
	argChars   int
	timers     []*time.Timer
	applied    map[uint64]bool // action rules already applied
	maxAge     *time.Timer     // the age cut, armed by start
	age        time.Duration   // the maximum age in force (noAge: none)
	tick       *time.Timer     // pinger (Binance) or idle check (Bybit); set before it can fire

	// pingMu guards pings. It is separate from mu because the writer takes
	// it, and the writer must never wait for a lock held by code that may
	// wait for the writer (Backpressure).
	pingMu sync.Mutex
	pings  []pingRec

	pol        atomic.Pointer[connPolicy]
	stallUntil atomic.Int64 // Unix ns; 0 = not stalled
	closeAfter atomic.Int64 // data frames left before an abrupt close; 0 = off
	lastActive atomic.Int64 // Unix ns of the last client ping or data sent (Bybit idle cut)

	// flushed is the number of outbound bytes handed to the kernel (after
	// the handshake); unsentFrom is flushed minus the kernel's unsent
	// bytes, taken when the connection was closed (-1 before).
	flushed    atomic.Int64
	unsentFrom atomic.Int64

	// Writer-owned state.
	hdr     [10]byte
	bw      *bufio.Writer
	wrote   int64  // outbound bytes written to bw
	pending []pend // written, not flushed
	sent    []pend // committed, the last sentKeep bytes of them
	rng     *rand.Rand
	scratch []byte

	// Reader-owned state.
	inbound []time.Time
}

func newConn(s *Server, v Venue, ws *websocket.Conn, path, remote string) *conn {
	id := s.nextConnID.Add(1)
	now := time.Now()
	c := &conn{
		id:      id,
		srv:     s,
		venue:   v,
		ws:      ws,
		nc:      ws.NetConn(),
		log:     s.log.With("conn", id, "venue", string(v)),
		opened:  now,
		q:       make(chan outFrame, s.cfg.SendQueue),
		ctrl:    make(chan ctrlMsg, 4),
		done:    make(chan struct{}),
		applied: map[uint64]bool{},
		rng:     rand.New(rand.NewPCG(s.cfg.Seed, splitmix64(id))),
	}
	c.age = c.baseMaxAge()
	c.connID = bybitConnID(s.cfg.Seed, id)
	c.bw = bufio.NewWriterSize(c.nc, 64<<10)
	c.lastActive.Store(now.UnixNano())
	c.unsentFrom.Store(-1)
	c.rec = &connRecord{
		ID: id, Venue: v, Path: path, Remote: remote, Opened: now,
		delivered: map[*series]*rangeSet{},
	}
	return c
}

// bybitConnID formats a UUID-like conn_id.
func bybitConnID(seed, id uint64) string {
	h1, h2 := splitmix64(seed^id), splitmix64(seed+id)
	b := make([]byte, 0, 36)
	hex := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			b = append(b, "0123456789abcdef"[(v>>(4*uint(i)))&0xf])
		}
	}
	hex(h1>>32, 8)
	b = append(b, '-')
	hex(h1>>16, 4)
	b = append(b, '-')
	hex(h1, 4)
	b = append(b, '-')
	hex(h2>>48, 4)
	b = append(b, '-')
	hex(h2, 12)
	return string(b)
}

// isDone reports whether the connection has ended.
func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// send enqueues f. If the queue is full the client is too slow: it is
// disconnected and counted, as exchanges do (or, with Backpressure, send
// waits).
func (c *conn) send(f outFrame) {
	select {
	case c.q <- f:
		return
	default:
	}
	if c.srv.cfg.Backpressure {
		select {
		case c.q <- f:
		case <-c.done:
		}
		return
	}
	if !c.isDone() {
		c.srv.stats.slowDisconnects.Add(1)
		c.abort("slow consumer: send queue full")
	}
}

// sendControl enqueues a control reply.
func (c *conn) sendControl(b []byte) { c.send(outFrame{b: b, kind: fkControl}) }

// signal passes an out-of-band message to the writer without blocking.
func (c *conn) signal(m ctrlMsg) {
	select {
	case c.ctrl <- m:
	default:
		if m.op == ctrlClose { // the writer is flooded with signals: close hard
			c.abort(m.reason)
		}
	}
}

// closeGraceful makes the writer send a close frame, then close.
func (c *conn) closeGraceful(code int, reason string) {
	c.signal(ctrlMsg{op: ctrlClose, code: code, reason: reason})
}

// abort closes the TCP connection at once, without a close frame. Frames
// still queued or buffered are not sent (and not recorded as delivered).
// Frames flushed but still in the kernel's send buffer are recorded as in
// flight at the close (see inFlightAt).
func (c *conn) abort(reason string) {
	c.closeOnce.Do(func() {
		unsent, _ := unsentBytes(c.nc)
		c.unsentFrom.Store(c.flushed.Load() - int64(unsent))
		c.rec.setClosed(reason)
		close(c.done)
		_ = c.nc.Close()
		c.log.Debug("connection closed", "reason", reason)
	})
}

// afterFunc runs f after d unless the connection has ended.
func (c *conn) afterFunc(d time.Duration, f func()) *time.Timer {
	t := time.AfterFunc(d, func() {
		if !c.isDone() {
			f()
		}
	})
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return t
}

// start runs the connection: timers, writer and reader. It returns when
// both goroutines have ended.
func (c *conn) start(readFrame func(mt int, data []byte)) {
	cfg := &c.srv.cfg
	c.ws.SetReadLimit(1 << 20)
	c.ws.SetPingHandler(func(data string) error {
		if !c.countInbound() {
			return nil
		}
		c.send(outFrame{b: []byte(data), kind: fkPong})
		return nil
	})
	c.ws.SetPongHandler(func(data string) error {
		if !c.countInbound() {
			return nil
		}
		c.onPong(data)
		return nil
	})
	c.ws.SetCloseHandler(func(code int, text string) error {
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.closeGraceful(code, "")
		return nil
	})
	c.mu.Lock()
	// The age in force: faults applied when the connection registered
	// (a stored max_age) have already set it.
	c.maxAge = time.AfterFunc(c.ageLeftLocked(), c.onMaxAge)
	c.timers = append(c.timers, c.maxAge)
	c.mu.Unlock()
	// One periodic timer per connection: the Binance pinger or the Bybit
	// idle check. It is stored before it is armed, so the callback can
	// re-arm it.
	if c.venue.isBinance() {
		c.tick = c.afterFunc(time.Hour, c.pingTick)
		c.tick.Reset(cfg.PingInterval)
	} else {
		c.tick = c.afterFunc(time.Hour, c.idleTick)
		idle := cfg.BybitIdleTimeout
		if c.venue.isOKX() {
			idle = cfg.OKXIdleTimeout
		}
		c.tick.Reset(idleCheckPeriod(idle))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.abort(readErrReason(err))
			break
		}
		if !c.countInbound() {
			break
		}
		readFrame(mt, data)
	}
	wg.Wait()
}

func readErrReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return "client closed: " + strconv.Itoa(ce.Code)
	}
	return "read: " + err.Error()
}

// countInbound applies Binance's limit of client messages per second. It
// returns false (and disconnects) when the limit is exceeded.
func (c *conn) countInbound() bool {
	lim := c.srv.cfg.InboundLimit
	if c.venue == BinanceUSDM {
		lim = c.srv.cfg.USDMInboundLimit
	}
	if !c.venue.isBinance() || lim <= 0 {
		return true
	}
	now := c.srv.clock()
	if len(c.inbound) < lim {
		c.inbound = append(c.inbound, now)
		return true
	}
	oldest := c.inbound[0]
	if now.Sub(oldest) < time.Second {
		c.srv.stats.rateDisconnects.Add(1)
		c.closeGraceful(websocket.ClosePolicyViolation, "Too many requests")
		return false
	}
	copy(c.inbound, c.inbound[1:])
	c.inbound[len(c.inbound)-1] = now
	return true
}

// onPong handles a client pong: one echoing an outstanding ping answers it
// and every earlier one; other pongs are allowed but answer nothing.
func (c *conn) onPong(data string) {
	if p := c.pol.Load(); p != nil && p.dropPongs {
		return
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	for i, p := range c.pings {
		if p.payload == data {
			c.pings = append(c.pings[:0], c.pings[i+1:]...)
			return
		}
	}
}

// pingTick runs every PingInterval on Binance connections: it disconnects
// when a ping went unanswered for PongTimeout and sends the next ping.
func (c *conn) pingTick() {
	cfg := &c.srv.cfg
	now := time.Now()
	c.pingMu.Lock()
	late := len(c.pings) > 0 && now.Sub(c.pings[0].at) >= cfg.PongTimeout
	c.pingMu.Unlock()
	if late {
		c.srv.stats.pongTimeouts.Add(1)
		c.abort("pong timeout")
		return
	}
	c.send(outFrame{b: strconv.AppendInt(nil, c.srv.clock().UnixMilli(), 10), kind: fkPing})
	c.tick.Reset(cfg.PingInterval)
}

func idleCheckPeriod(idle time.Duration) time.Duration {
	return min(max(idle/8, time.Millisecond), 30*time.Second)
}

// idleTick cuts a Bybit connection without pings or data for the idle
// timeout.
func (c *conn) idleTick() {
	idle := c.srv.cfg.BybitIdleTimeout
	if c.venue.isOKX() {
		idle = c.srv.cfg.OKXIdleTimeout
	}
	if time.Since(time.Unix(0, c.lastActive.Load())) >= idle {
		c.abort("idle: no ping and no data")
		return
	}
	c.tick.Reset(idleCheckPeriod(idle))
}

// onMaxAge closes a connection that reached its maximum age.
func (c *conn) onMaxAge() {
	if c.isDone() {
		return
	}
	c.srv.stats.ageCuts.Add(1)
	c.closeGraceful(websocket.CloseNormalClosure, "max connection age")
}

// noAge is a maximum age that never comes.
const noAge = time.Duration(math.MaxInt64)

// baseMaxAge is the venue's connection age limit without faults.
func (c *conn) baseMaxAge() time.Duration {
	if c.venue.isBinance() {
		return c.srv.cfg.MaxConnAge
	}
	return noAge
}

// setMaxAge sets the age cut to age after the connection opened: it
// reschedules the cut of a running connection, and start arms it for one
// that is only registered yet.
func (c *conn) setMaxAge(age time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.age = age
	if c.maxAge != nil {
		c.maxAge.Reset(c.ageLeftLocked())
	}
}

// ageLeftLocked is the time until the age cut. c.mu must be held.
func (c *conn) ageLeftLocked() time.Duration {
	if c.age == noAge {
		return noAge
	}
	return max(time.Until(c.opened.Add(c.age)), 0)
}

// stall stops the writer until t (zero time = until the connection ends).
func (c *conn) stall(until time.Time) {
	v := int64(math.MaxInt64)
	if !until.IsZero() {
		v = until.UnixNano()
	}
	c.stallUntil.Store(v)
	c.signal(ctrlMsg{op: ctrlWake})
}

// writeLoop is the writer goroutine.
func (c *conn) writeLoop() {
	defer c.teardown()
	for {
		select {
		case f := <-c.q:
			if !c.writeFrame(f) {
				return
			}
		case m := <-c.ctrl:
			if c.handleCtrl(m) {
				return
			}
			continue
		case <-c.done:
			return
		}
	drain:
		for {
			select {
			case f := <-c.q:
				if !c.writeFrame(f) {
					return
				}
			case m := <-c.ctrl:
				if c.handleCtrl(m) {
					return
				}
			default:
				break drain
			}
		}
		if !c.flush() {
			return
		}
	}
}

// handleCtrl handles a signal; true means the writer must exit.
func (c *conn) handleCtrl(m ctrlMsg) bool {
	if m.op != ctrlClose {
		return false
	}
	c.flush()
	payload := make([]byte, 2, 2+len(m.reason))
	binary.BigEndian.PutUint16(payload, uint16(m.code))
	payload = append(payload, m.reason...)
	c.writeWS(opClose, payload)
	c.flush()
	reason := "closed by server"
	if m.reason != "" {
		reason = "closed by server: " + m.reason
	}
	c.abort(reason)
	return true
}

// waitStall blocks while the connection is stalled; false means exit.
func (c *conn) waitStall() bool {
	for {
		until := c.stallUntil.Load()
		if until == 0 {
			return true
		}
		d := time.Until(time.Unix(0, until))
		if until == math.MaxInt64 {
			d = time.Hour
		}
		if d <= 0 {
			c.stallUntil.CompareAndSwap(until, 0)
			return true
		}
		if !c.flush() {
			return false
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case m := <-c.ctrl:
			t.Stop()
			if c.handleCtrl(m) {
				return false
			}
		case <-c.done:
			t.Stop()
			return false
		}
	}
}

// writeFrame writes one frame into the buffer, applying the connection's
// faults; false means the writer must exit.
func (c *conn) writeFrame(f outFrame) bool {
	if c.isDone() { // the client is gone: nothing queued matters any more
		return false
	}
	if c.stallUntil.Load() != 0 && !c.waitStall() {
		return false
	}
	switch f.kind {
	case fkPing:
		c.pingMu.Lock()
		c.pings = append(c.pings, pingRec{payload: string(f.b), at: time.Now()})
		c.pingMu.Unlock()
		c.writeWS(opPing, f.b)
		return true
	case fkPong:
		c.writeWS(opPong, f.b)
		return true
	case fkControl:
		c.writeWS(opText, f.b)
		return true
	}
	if p := c.pol.Load(); p != nil {
		if !c.applyPolicy(p, f) {
			return true
		}
	} else {
		c.writeData(f)
	}
	if n := c.closeAfter.Load(); n > 0 {
		if c.closeAfter.Add(-1) == 0 {
			c.flush()
			c.srv.stats.faultCloses.Add(1)
			c.abort("fault: close after N messages")
			return false
		}
	}
	return true
}

// writeData writes a data frame and notes its ids for the ground truth.
// The ids are noted first: they are committed before the bytes reach the
// socket, so a client never sees a frame the truth does not list yet.
func (c *conn) writeData(f outFrame) {
	if f.ser != nil {
		end := c.wrote + int64(wsHeaderLen(len(f.b))+len(f.b))
		if n := len(c.pending); n > 0 && c.pending[n-1].ser == f.ser && c.pending[n-1].hi+1 == f.lo {
			c.pending[n-1].hi, c.pending[n-1].end = f.hi, end
		} else {
			c.pending = append(c.pending, pend{f.ser, f.lo, f.hi, end})
		}
	}
	c.writeWS(opText, f.b)
	c.rec.sent.Add(1)
}

// wsHeaderLen is the header length of an unmasked server frame of n
// payload bytes.
func wsHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= math.MaxUint16:
		return 4
	}
	return 10
}

// writeWS frames p as one unmasked, unfragmented server frame.
func (c *conn) writeWS(op byte, p []byte) {
	if c.writeWSHeader(op, len(p)) {
		c.writeWSBody(p)
	}
}

// writeWSHeader starts an unmasked, unfragmented server frame of n
// payload bytes: writeWSBody writes them. It returns false once the
// connection is unusable.
func (c *conn) writeWSHeader(op byte, n int) bool {
	hdr := &c.hdr // a field, not a local: a local would escape to the heap
	hdr[0] = 0x80 | op
	h := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= math.MaxUint16:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	if c.bw.Available() < h+n && !c.flush() {
		return false
	}
	_, _ = c.bw.Write(hdr[:h])
	c.wrote += int64(h)
	return true
}

// writeWSBody writes payload bytes of the frame writeWSHeader started. It
// returns false once the connection is unusable.
//
// A frame larger than the buffer (an oversized malformed frame) goes out
// in pieces, each with its own write deadline: one write of 16 MiB would
// run under the deadline of the last flush, which may have passed, and
// would keep writing to a client that has already closed. Each piece
// fills the buffer (which never flushes itself) and is flushed under a
// fresh deadline.
func (c *conn) writeWSBody(p []byte) bool {
	for len(p) > c.bw.Available() {
		n := c.bw.Available()
		_, _ = c.bw.Write(p[:n])
		c.wrote += int64(n)
		if !c.flush() {
			return false
		}
		p = p[n:]
	}
	_, _ = c.bw.Write(p)
	c.wrote += int64(len(p))
	return true
}

// flush records the pending ids as delivered, then writes the buffer to
// the socket. Committing first keeps the truth ahead of what clients can
// read; if the write then fails the ids stay recorded (they may have
// reached the client), so "never delivered" remains a safe claim. A
// connection cut before the flush discards them: they were never sent. It
// returns false once the connection is unusable.
func (c *conn) flush() bool {
	if c.isDone() {
		c.pending = c.pending[:0]
		return false
	}
	if len(c.pending) > 0 {
		c.rec.commit(c.pending)
		c.keepSent(c.pending)
		c.pending = c.pending[:0]
		c.lastActive.Store(time.Now().UnixNano())
	}
	if c.bw.Buffered() > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		if err := c.bw.Flush(); err != nil {
			c.abort("write: " + err.Error())
			return false
		}
		c.flushed.Store(c.wrote)
	}
	return true
}

// keepSent remembers committed ranges with their byte offsets for
// inFlightAt, forgetting those more than sentKeep bytes back.
func (c *conn) keepSent(ps []pend) {
	k := 0
	for k < len(c.sent) && c.sent[k].end < c.wrote-sentKeep {
		k++
	}
	if k > 0 {
		n := copy(c.sent, c.sent[k:])
		c.sent = c.sent[:n]
	}
	c.sent = append(c.sent, ps...)
}

// inFlightAt records as in flight at the close the committed ranges whose
// frames end past offset from: when the connection was closed they were
// still in the kernel's send buffer (or not handed to it), and a client
// write arriving after the close makes the kernel reset the connection
// and discard them (the client then never receives them, through no fault
// of its own). They stay recorded as delivered: they may have arrived.
// Writer goroutine, after the close.
func (c *conn) inFlightAt(from int64) {
	if from < 0 {
		return
	}
	var in []pend
	for _, p := range c.sent {
		if p.end > from {
			in = append(in, p)
		}
	}
	if len(in) > 0 {
		c.rec.markInFlight(in)
	}
	c.sent = nil
}

// teardown runs when the writer exits: it closes the socket, stops the
// timers and removes the connection from every market.
func (c *conn) teardown() {
	c.abort("closed")
	c.inFlightAt(c.unsentFrom.Load())
	c.rec.setEnded()
	c.mu.Lock()
	c.closed = true
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
	streams, topics := c.binStreams, c.topics
	combined, micro := c.combined, c.micro
	c.mu.Unlock()
	for _, name := range streams {
		c.srv.binanceUnsubscribe(c, name, combined, micro)
	}
	for _, t := range topics {
		if a, ok := parseOKXTopic(t); ok && c.venue.isOKX() {
			c.srv.okxUnsubscribe(c, a)
			continue
		}
		c.srv.bybitUnsubscribe(c, t)
	}
	c.srv.connEnded(c)
}
