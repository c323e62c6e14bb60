package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/resilience"
)

// writeWait bounds every write to a connection.
const writeWait = 5 * time.Second

// maxKeptFrameBuffer is the largest frame buffer a read loop keeps for the
// next frame; a larger one (after a rare huge frame) is released.
const maxKeptFrameBuffer = 1 << 20

// drainWait bounds how long a connection whose write failed keeps reading:
// the frames the venue sent before it closed are already in the socket's
// receive buffer and take microseconds to read.
const drainWait = 2 * time.Second

// connOwner is what a connection needs from the shard that owns it: where
// its frames' events go and whom to tell about the frames it cannot pass
// on. The shard implements it.
type connOwner interface {
	deliver(c *conn, evs []Event)              // one frame's events, in order
	serverShutdown(c *conn)                    // the venue announced it is going away
	frameLost(c *conn)                         // a frame was dropped (malformed): its content is unknown
	refused(c *conn, symbol string, err error) // the venue refused symbol's subscription
}

// connEnv is a connection's fixed settings and where it counts frames,
// shared by the connections of one shard.
type connEnv struct {
	ex               Exchange
	topics           []Topic
	handshake        time.Duration // WebSocket handshake bound
	subscribeTimeout time.Duration // bound of the wait for subscribe acks
	heartbeat        time.Duration // silence that makes a connection stale (0: not watched)
	maxFrame         int64
	inboundPerSecond float64
	opsPerHour       int // subscribe/unsubscribe requests per connection and hour; 0 = no limit
	now              func() time.Time
	goConn           func(func()) // runs a connection loop on a tracked goroutine
	ctr              *connCounters
	log              *slog.Logger
}

// conn is one WebSocket connection of a shard. It owns the socket's read
// loop, serializes and paces every write (subscribe frames, client pings,
// pongs, close), answers server pings, and watches for silence. The shard
// owns its lifecycle (dial, register, start, subscribe, close).
type conn struct {
	id     string
	own    connOwner
	env    *connEnv
	ws     *websocket.Conn
	log    *slog.Logger
	pacer  *pacer
	hb     *resilience.HeartbeatMonitor // nil: no stale detection
	opened time.Time

	ctx    context.Context // ends when the connection ends
	cancel context.CancelFunc

	writeMu sync.Mutex
	reqID   atomic.Int64

	done      chan struct{} // closed when the read loop has ended
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error // why the connection ended

	opsMu sync.Mutex
	ops   []time.Time // when the last subscribe/unsubscribe requests were sent (opsPerHour)

	ackMu   sync.Mutex
	acks    map[string]struct{} // outstanding subscribe request ids
	ackN    int                 // outstanding acks without a matching id
	acked   chan struct{}       // closed when every subscribe request is answered
	ackErr  error               // first refused subscription
	evBuf   []Event             // decode buffer, used by the read loop only
	gotData atomic.Bool         // a data frame arrived
	dataAt  atomic.Int64        // when the last data frame arrived (or the connection opened, or a silence probe found the venue quiet), Unix ns

	// delivering is set while the read loop hands a frame's events to the
	// shard (which may wait for the publisher): the connection is not
	// silent then, its reader is busy.
	delivering atomic.Bool
}

// dial opens a WebSocket connection for sh's topics. The connection does not
// read until start.
func dial(ctx context.Context, own connOwner, env *connEnv, id string) (*conn, error) {
	url := env.ex.URL(env.topics)
	d := websocket.Dialer{
		HandshakeTimeout: env.handshake,
		ReadBufferSize:   16 << 10,
		WriteBufferSize:  4 << 10,
		Proxy:            http.ProxyFromEnvironment,
	}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			if rl := handshakeRateLimit(resp); rl != nil {
				return nil, fmt.Errorf("bridge: dial %s: %w", id, rl)
			}
			return nil, fmt.Errorf("bridge: dial %s: HTTP %d: %w", id, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("bridge: dial %s: %w", id, err)
	}
	ws.SetReadLimit(env.maxFrame)
	cctx, cancel := context.WithCancel(ctx)
	c := &conn{
		id:     id,
		own:    own,
		env:    env,
		ws:     ws,
		log:    env.log.With("conn", id),
		pacer:  newPacer(env.inboundPerSecond),
		opened: env.now(),
		ctx:    cctx,
		cancel: cancel,
		done:   make(chan struct{}),
		acked:  make(chan struct{}),
	}
	if env.heartbeat > 0 {
		hb, err := resilience.NewHeartbeatMonitor(resilience.HeartbeatConfig{
			Timeout:      env.heartbeat,
			PingInterval: min(env.heartbeat/3, resilience.DefaultHeartbeatPingInterval),
		})
		if err != nil {
			cancel()
			_ = ws.Close()
			return nil, fmt.Errorf("%w: heartbeat: %w", ErrConfig, err)
		}
		hb.RecordHeartbeat()
		c.hb = hb
	}
	ws.SetPingHandler(c.onPing)
	ws.SetPongHandler(func(string) error { c.alive(); return nil })
	c.dataAt.Store(c.opened.UnixNano())
	return c, nil
}

// handshakeRateLimit maps a refused handshake (429/418/403) to a
// RateLimitError carrying Retry-After.
func handshakeRateLimit(resp *http.Response) *RateLimitError {
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusTeapot, http.StatusForbidden:
	default:
		return nil
	}
	ra := time.Duration(0)
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			ra = time.Duration(n) * time.Second
		}
	}
	return &RateLimitError{Status: resp.StatusCode, RetryAfter: ra, Banned: resp.StatusCode != http.StatusTooManyRequests}
}

// start runs the read loop, the stale watcher and the client pinger.
func (c *conn) start() {
	env := c.env
	env.goConn(c.readLoop)
	env.goConn(func() {
		for {
			var stale <-chan struct{}
			if c.hb != nil {
				stale = c.hb.Stale(c.ctx)
			}
			select {
			case <-stale:
				if c.delivering.Load() {
					// The reader waits for the publisher (back-pressure),
					// the venue is not silent: closing now would discard
					// what the socket has received.
					c.alive()
					continue
				}
				c.log.Warn("connection stale: no frame within the heartbeat timeout; reconnecting",
					"timeout", env.heartbeat, "last", c.hb.LastHeartbeat())
				c.fail(ErrStale)
			case <-c.ctx.Done():
				// The stream stopped or the connection ended: make sure the
				// read loop returns.
				c.fail(context.Cause(c.ctx))
			}
			return
		}
	})
	if ping, every := pingPlan(env.ex.Heartbeat(), env.heartbeat); every > 0 {
		env.goConn(func() { c.pingLoop(ping, every) })
	}
}

// pingPlan decides the client's keep-alive: the venue's application ping
// (Bybit) every Interval, or WebSocket pings where the server pings (Binance);
// in both cases at least three times per heartbeat timeout, so that a quiet
// but healthy connection produces replies (inbound life) well before the
// stale timeout. It returns no ping (every = 0) when the server's own pings
// already arrive often enough.
func pingPlan(hb Heartbeat, timeout time.Duration) (ping func(int64) []byte, every time.Duration) {
	every = hb.Interval
	if t := timeout / 3; t > 0 && (every <= 0 || t < every) {
		every = t
	}
	if hb.ClientPing == nil && every >= hb.Interval {
		return nil, 0 // the server pings often enough
	}
	return hb.ClientPing, every
}

// nextID yields request ids unique on this connection.
func (c *conn) nextID() int64 { return c.reqID.Add(1) }

// alive records inbound life for the stale watcher.
func (c *conn) alive() {
	if c.hb != nil {
		c.hb.RecordHeartbeat()
	}
}

// onPing answers a server ping with a pong echoing its payload, promptly,
// from the read loop; the write is serialized and paced like every other.
func (c *conn) onPing(data string) error {
	c.alive()
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.pacer.wait(c.ctx); err != nil {
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
	var ne net.Error
	if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	// Returning the error would end the read loop at once; the frames
	// after this ping must still be read.
	c.closeAfterDrain(fmt.Errorf("bridge: pong: %w", err))
	return nil
}

// pingLoop sends a keep-alive every interval: the venue's application
// ping frame, or a WebSocket ping when ping is nil.
func (c *conn) pingLoop(ping func(int64) []byte, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			var err error
			if ping != nil {
				err = c.writeText(ping(c.nextID()))
			} else {
				err = c.writePing()
			}
			if err != nil {
				c.closeAfterDrain(fmt.Errorf("bridge: ping: %w", err))
				return
			}
		}
	}
}

// writePing sends a WebSocket ping, serialized and paced.
func (c *conn) writePing() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.pacer.wait(c.ctx); err != nil {
		return err
	}
	return c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
}

// writeText sends one text frame, serialized and paced.
func (c *conn) writeText(data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.pacer.wait(c.ctx); err != nil {
		return err
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// subscribe sends the subscribe frames for topics and waits until every
// request is acknowledged (or the timeout). A refused subscription is
// logged and reported but does not fail the connection: the other topics
// are fine and retrying cannot fix a bad symbol.
func (c *conn) subscribe(ctx context.Context, topics []Topic) error {
	var ids []int64
	frames := c.env.ex.SubscribeFrames(topics, func() int64 {
		id := c.nextID()
		ids = append(ids, id)
		return id
	})
	if len(frames) == 0 {
		c.closeAcked()
		return nil
	}
	c.ackMu.Lock()
	c.acks = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		c.acks[strconv.FormatInt(id, 10)] = struct{}{}
	}
	c.ackN = len(frames)
	c.ackMu.Unlock()
	if err := c.spendOps(len(frames)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSubscribe, c.id, err)
	}
	for _, f := range frames {
		if err := c.writeText(f); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSubscribe, c.id, err)
		}
	}
	t := time.NewTimer(c.env.subscribeTimeout)
	defer t.Stop()
	select {
	case <-c.acked:
		if err := c.ackError(); err != nil {
			c.log.Error("subscription refused", "err", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: %s: no acknowledgement within %s", ErrSubscribe, c.id, c.env.subscribeTimeout)
	case <-c.done:
		return fmt.Errorf("%w: %s: connection ended: %w", ErrSubscribe, c.id, c.cause())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resubscribe unsubscribes and subscribes topics again (a fresh snapshot
// for a stream-snapshot book). Replies are not awaited.
func (c *conn) resubscribe(topics []Topic) error {
	ex := c.env.ex
	unsub, sub := ex.UnsubscribeFrames(topics, c.nextID), ex.SubscribeFrames(topics, c.nextID)
	if err := c.spendOps(len(unsub) + len(sub)); err != nil {
		return err
	}
	for _, f := range unsub {
		if err := c.writeText(f); err != nil {
			return err
		}
	}
	for _, f := range sub {
		if err := c.writeText(f); err != nil {
			return err
		}
	}
	return nil
}

// errOpBudget: the connection spent its venue's hourly budget of
// subscribe/unsubscribe requests (Limits.MaxOpsPerHour).
var errOpBudget = errors.New("the connection's hourly budget of subscribe/unsubscribe requests is spent; replacing it")

// spendOps records n subscribe/unsubscribe requests about to be sent, or
// fails with errOpBudget if they would exceed the hourly budget.
func (c *conn) spendOps(n int) error {
	max := c.env.opsPerHour
	if max <= 0 {
		return nil
	}
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	now := c.env.now()
	k := 0
	for k < len(c.ops) && now.Sub(c.ops[k]) >= time.Hour {
		k++
	}
	c.ops = append(c.ops[:0], c.ops[k:]...)
	if len(c.ops)+n > max {
		return errOpBudget
	}
	for range n {
		c.ops = append(c.ops, now)
	}
	return nil
}

// onAck accounts a control reply against the outstanding subscribe
// requests.
func (c *conn) onAck(f Frame) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if c.ackN == 0 {
		if f.Kind == FrameError {
			c.log.Warn("exchange refused a request", "req_id", f.ReqID, "err", f.Err)
		}
		return
	}
	if _, ok := c.acks[f.ReqID]; ok {
		delete(c.acks, f.ReqID)
	} else if f.ReqID != "" {
		return // a reply to something else (an earlier resubscribe)
	}
	c.ackN--
	if f.Kind == FrameError && c.ackErr == nil {
		c.ackErr = fmt.Errorf("%w: %w", ErrSubscribe, f.Err)
	}
	if c.ackN == 0 {
		close(c.acked)
	}
}

func (c *conn) closeAcked() {
	c.ackMu.Lock()
	c.ackN = 0
	close(c.acked)
	c.ackMu.Unlock()
}

func (c *conn) ackError() error {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return c.ackErr
}

// readLoop reads frames until the connection ends, decodes them and hands
// the events to the shard, one batch per frame. Frames are read into one
// reused buffer (no allocation per frame): Decode must not keep the frame
// past its return (see Exchange.Decode).
func (c *conn) readLoop() {
	env := c.env
	ex := env.ex
	malformedLogged := 0
	var buf bytes.Buffer
	for {
		if buf.Cap() > maxKeptFrameBuffer {
			buf = bytes.Buffer{} // do not pin the memory of a rare huge frame
		}
		typ, r, err := c.ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		data := buf.Bytes()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				env.ctr.malformed.Add(1)
				err = fmt.Errorf("%w: frame over the read limit of %d bytes: %w", ErrMalformed, env.maxFrame, err)
			}
			c.end(err)
			return
		}
		c.alive()
		env.ctr.frames.Add(1)
		if typ != websocket.TextMessage {
			env.ctr.malformed.Add(1)
			continue
		}
		recv := env.now().UnixNano()
		evs, fr, derr := ex.Decode(data, recv, c.evBuf[:0])
		if derr != nil {
			env.ctr.malformed.Add(1)
			c.own.frameLost(c)
			if malformedLogged < 10 {
				malformedLogged++
				c.log.Warn("dropped malformed frame", "err", derr, "bytes", len(data))
			} else {
				c.log.Debug("dropped malformed frame", "err", derr, "bytes", len(data))
			}
			continue
		}
		c.evBuf = evs[:0]
		switch fr.Kind {
		case FrameAck, FrameError:
			c.onAck(fr)
			if fr.Kind == FrameError && fr.Symbol != "" {
				c.own.refused(c, fr.Symbol, fr.Err)
			}
		case FrameShutdown:
			c.log.Info("server announced shutdown; rotating the connection")
			c.own.serverShutdown(c)
		}
		if len(evs) > 0 {
			c.gotData.Store(true)
			c.dataAt.Store(recv)
			c.delivering.Store(true)
			c.own.deliver(c, evs)
			c.delivering.Store(false)
		}
	}
}

// end records why the read loop stopped and releases the connection.
func (c *conn) end(err error) {
	c.setErr(err)
	c.cancel()
	_ = c.ws.Close()
	close(c.done)
}

func (c *conn) setErr(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

// cause returns why the connection ended (nil while it runs).
func (c *conn) cause() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// closeAfterDrain ends a connection without discarding what it received
// (a failed write or subscribe): a venue that closed the connection (the
// usual cause of a failed write) sent its last frames before, and they are
// in the socket's receive buffer. Writing stops at once; the read loop
// reads on until the close arrives, the socket errs or drainWait passes,
// and delivers every frame it reads; then it ends the connection. Later
// fail and closeGraceful calls do nothing.
func (c *conn) closeAfterDrain(err error) {
	c.closeOnce.Do(func() {
		c.setErr(err)
		c.log.Warn("connection failed; reading what it received, then replacing it", "err", err)
		_ = c.ws.SetReadDeadline(time.Now().Add(drainWait))
		c.cancel() // stops the pinger and the paced writers
	})
}

// fail closes the connection abruptly, recording err as the cause. It is
// for connections with nothing left to read (stale) and for stopping; a
// failed write uses closeAfterDrain.
func (c *conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.setErr(err)
		c.cancel()
		_ = c.ws.Close()
	})
}

// closeGraceful sends a close frame and closes the connection (rotation,
// shutdown). The read loop then ends.
func (c *conn) closeGraceful(reason error) {
	c.closeOnce.Do(func() {
		c.setErr(reason)
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		c.cancel()
		_ = c.ws.Close()
	})
}
