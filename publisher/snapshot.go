package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/qldata/mdbridge/bridge"
)

// SnapshotSource fetches a fresh order-book snapshot of one symbol (the
// bridge implements it with the venue's REST API). The returned event must
// be a book.snapshot of exactly that exchange and symbol. For a symbol it
// does not serve it returns an error wrapping ErrUnknownSymbol.
type SnapshotSource interface {
	Snapshot(ctx context.Context, exchange, symbol string) (bridge.Event, error)
}

// SymbolFilter is an optional capability of a SnapshotSource: when the
// source implements it, requests for symbols it does not serve are refused
// before any fetch.
type SymbolFilter interface {
	Serves(exchange, symbol string) bool
}

// Error codes of a snapshot reply.
const (
	CodeBadRequest    = "bad_request"
	CodeUnknownSymbol = "unknown_symbol"
	CodeBusy          = "busy"
	CodeFetchFailed   = "fetch_failed"
	CodePublishFailed = "publish_failed"
	CodeUnavailable   = "unavailable"
)

// SnapshotReply is the JSON reply on the control subject: on success
// {"stream":"MD","seq":N,"last_id":L,"exchange":..,"symbol":..}, on failure
// {"error":"...","code":"..."}.
type SnapshotReply struct {
	Stream    string `json:"stream,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	LastID    int64  `json:"last_id,omitempty"`
	Exchange  string `json:"exchange,omitempty"`
	Symbol    string `json:"symbol,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"` // the stream already held this snapshot (same last_id)
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"`
	// RetryAfterMS comes with code busy: when to ask again.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// SnapshotRequest is the optional JSON body of a control request (at most
// MaxRequestBody bytes). Unknown fields are ignored.
type SnapshotRequest struct {
	// Requester names the asking instance, for logs.
	Requester string `json:"requester,omitempty"`
	// Reason says why, for logs (e.g. "gap").
	Reason string `json:"reason,omitempty"`
	// TimeoutMS is how long the requester waits for the reply, in
	// milliseconds (0: unknown). A request still queued when it has
	// passed is dropped without a fetch (the requester gave up).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// SnapshotServiceStats are the service's counters.
type SnapshotServiceStats struct {
	Requests  uint64 // requests received
	Served    uint64 // successful replies
	Failed    uint64 // error replies other than busy
	Busy      uint64 // requests refused because SnapshotMaxWaiters requests wait
	Fetches   uint64 // snapshots fetched from the source
	Coalesced uint64 // requests that joined an already queued fetch
	Expired   uint64 // requests dropped from the queue once their timeout_ms had passed
	Queued    int    // fetches waiting in the queue now
}

// waiter is one request of a flight.
type waiter struct {
	m        *nats.Msg
	deadline time.Time // from timeout_ms; zero: none
}

// flight is one fetch and the requests it will answer.
type flight struct {
	exchange, symbol, key string
	unit                  *SnapshotUnit // the unit subscription it came from; nil: the service's
	reqs                  []waiter
}

// SnapshotService answers snapshot requests on
// <ControlPrefix>.snapshot.<exchange>.<symbol> in queue group "mdbridge":
// it validates the request, queues it, fetches the snapshot from the
// source, publishes it as book.snapshot through the bridge's JetStream
// publisher (JetStream.PublishWait: the same buffer, order, retry and msg
// IDs as the data, waiting for the ack) and replies with the stream
// sequence and last update id. A snapshot the stream already holds (the
// same msg ID, e.g. one the bridge published itself) is a success with
// duplicate set and the stored copy's sequence.
//
// Admission is a FIFO queue of fetches: requests for a symbol whose fetch
// is still queued join it (a request never joins a fetch already sent:
// that snapshot may predate the request's gap), so a burst for one symbol
// costs at most two fetches. Fetches leave the queue in order, paced to
// SnapshotRate/s (burst SnapshotBurst), at most SnapshotConcurrency
// running; a fetch's SnapshotTimeout starts when it leaves the queue.
// Requests whose timeout_ms has passed by then are dropped (counted as
// expired). Only when SnapshotMaxWaiters requests are queued or running
// does a request get a "busy" reply, with retry_after_ms.
//
// NewSnapshotService subscribes every subject (any replica may serve any
// request: replicas are expected to serve the same symbols, otherwise one
// without the symbol replies unknown_symbol). NewUnitSnapshotService
// subscribes nothing by itself: Serve subscribes one (exchange, symbol),
// as a cluster replica does for each unit it carries, so that requests
// reach only the replicas carrying the symbol.
type SnapshotService struct {
	cfg    Config
	nc     *nats.Conn
	pub    *JetStream
	src    SnapshotSource
	filter SymbolFilter
	log    *slog.Logger
	sub    *nats.Subscription // nil: per-unit subscriptions
	sem    chan struct{}
	ctx    context.Context // cancelled by Close: running fetches stop
	cancel context.CancelFunc
	stop   chan struct{} // closed when the service stops taking requests
	wake   chan struct{} // a flight was queued
	wg     sync.WaitGroup
	now    func() time.Time // guarded by mu (tests replace it)

	mu      sync.Mutex
	queued  map[string]*flight // the queued (not yet sent) flight of a symbol
	queue   []*flight          // FIFO
	running map[string]bool    // symbols with a fetch running
	units   map[string]*SnapshotUnit
	waiters int // requests queued or in a running flight
	limiter *rate.Limiter
	closed  bool

	requests, served, failed, busy, fetches, coalesced, expired atomic.Uint64
}

// NewSnapshotService subscribes the service on nc to every
// <ControlPrefix>.snapshot.*.* subject. It publishes through pub, the
// process's publisher, and takes its configuration (control prefix,
// snapshot limits and timeouts) from it. pub must outlive the service:
// shut the service down first.
func NewSnapshotService(nc *nats.Conn, pub *JetStream, src SnapshotSource, logger *slog.Logger) (*SnapshotService, error) {
	s, err := newSnapshotService(nc, pub, src, logger)
	if err != nil {
		return nil, err
	}
	subject := s.cfg.ControlPrefix + ".snapshot.*.*"
	sub, err := nc.QueueSubscribe(subject, QueueGroup, func(m *nats.Msg) { s.handle(m, nil) })
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("publisher: subscribe %s: %w", subject, err)
	}
	// Bound what may queue inside the client; beyond it requests are
	// dropped (the requester times out) rather than using unbounded memory.
	_ = sub.SetPendingLimits(8192, 8<<20)
	// The subscription reaches the server asynchronously: wait for it, so
	// that a request sent on another connection once this returns finds
	// the service. A connection that is down re-subscribes on reconnect.
	_ = nc.FlushTimeout(2 * time.Second)
	s.sub = sub
	s.log.Info("snapshot service listening", "subject", subject, "queue", QueueGroup)
	return s, nil
}

// NewUnitSnapshotService is NewSnapshotService without the wildcard
// subscription: it serves the subjects Serve subscribes, one per
// (exchange, symbol). A symbol no replica serves then gets NATS "no
// responders" (the requester retries within its timeout) instead of an
// unknown_symbol reply from a replica that happens not to carry it.
func NewUnitSnapshotService(nc *nats.Conn, pub *JetStream, src SnapshotSource, logger *slog.Logger) (*SnapshotService, error) {
	s, err := newSnapshotService(nc, pub, src, logger)
	if err != nil {
		return nil, err
	}
	s.log.Info("snapshot service ready; subscribing per unit", "subject", s.cfg.ControlPrefix+".snapshot.<exchange>.<symbol>", "queue", QueueGroup)
	return s, nil
}

func newSnapshotService(nc *nats.Conn, pub *JetStream, src SnapshotSource, logger *slog.Logger) (*SnapshotService, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: nil publisher", ErrConfig)
	}
	if src == nil {
		return nil, fmt.Errorf("%w: nil SnapshotSource", ErrConfig)
	}
	cfg := pub.cfg // validated, with defaults
	s := &SnapshotService{
		cfg:     cfg,
		nc:      nc,
		pub:     pub,
		src:     src,
		log:     orDiscard(logger).With("component", "snapshot-service"),
		sem:     make(chan struct{}, cfg.SnapshotConcurrency),
		stop:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		now:     time.Now,
		queued:  make(map[string]*flight),
		running: make(map[string]bool),
		units:   make(map[string]*SnapshotUnit),
		limiter: snapshotLimiter(cfg),
	}
	s.filter, _ = src.(SymbolFilter)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.dispatch()
	return s, nil
}

// SnapshotUnit is the subscription of one (exchange, symbol) of a
// per-unit service (SnapshotService.Serve).
type SnapshotUnit struct {
	s        *SnapshotService
	key      string
	sub      *nats.Subscription
	released bool // guarded by s.mu
}

// Serve subscribes <ControlPrefix>.snapshot.<exchange>.<symbol> in the
// queue group (the replicas carrying the symbol share its requests). Call
// it before the symbol's stream starts, and Release when the symbol is no
// longer carried. Serving a symbol twice is an error.
func (s *SnapshotService) Serve(exchange, symbol string) (*SnapshotUnit, error) {
	if err := errors.Join(bridge.ValidateIdent(exchange), bridge.ValidateIdent(symbol)); err != nil {
		return nil, err
	}
	key := exchange + "." + symbol
	u := &SnapshotUnit{s: s, key: key}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("publisher: snapshot service closed")
	case s.units[key] != nil:
		return nil, fmt.Errorf("publisher: snapshot service already serves %s", key)
	}
	subject := s.cfg.ControlPrefix + ".snapshot." + key
	sub, err := s.nc.QueueSubscribe(subject, QueueGroup, func(m *nats.Msg) { s.handle(m, u) })
	if err != nil {
		return nil, fmt.Errorf("publisher: subscribe %s: %w", subject, err)
	}
	_ = sub.SetPendingLimits(8192, 8<<20)
	u.sub = sub
	s.units[key] = u
	return u, nil
}

// Release stops serving the unit: its queued requests and those still
// arriving on the draining subscription are answered "unavailable" (the
// requester asks again and reaches another replica carrying it); a fetch
// already sent completes and replies. Idempotent.
func (u *SnapshotUnit) Release() {
	s := u.s
	s.mu.Lock()
	if u.released {
		s.mu.Unlock()
		return
	}
	u.released = true
	if s.units[u.key] == u {
		delete(s.units, u.key)
	}
	var gone *flight
	if f := s.queued[u.key]; f != nil && f.unit == u {
		gone = f
		delete(s.queued, u.key)
		s.queue = slices.DeleteFunc(s.queue, func(q *flight) bool { return q == f })
	}
	s.mu.Unlock()
	_ = u.sub.Drain()
	if gone != nil {
		s.answerAll(gone, s.unavailable(gone.exchange, gone.symbol, "no longer carried by this replica"))
	}
}

func (s *SnapshotService) unavailable(exchange, symbol, why string) SnapshotReply {
	return SnapshotReply{Error: fmt.Sprintf("unavailable: %s %s %s", exchange, symbol, why), Code: CodeUnavailable, Exchange: exchange, Symbol: symbol}
}

// handle runs on a subscription's goroutine: it validates and queues
// without blocking. u is the unit subscription, nil for the wildcard one.
func (s *SnapshotService) handle(m *nats.Msg, u *SnapshotUnit) {
	s.requests.Add(1)
	exchange, symbol, req, err := s.parse(m)
	if err != nil {
		s.replyErr(m, CodeBadRequest, err.Error())
		return
	}
	if u == nil && s.filter != nil && !s.filter.Serves(exchange, symbol) {
		s.replyErr(m, CodeUnknownSymbol, fmt.Sprintf("unknown exchange or symbol: %s %s is not served by this bridge", exchange, symbol))
		return
	}
	w := waiter{m: m}
	key := exchange + "." + symbol
	s.mu.Lock()
	if req.TimeoutMS > 0 {
		w.deadline = s.now().Add(time.Duration(req.TimeoutMS) * time.Millisecond)
	}
	switch {
	case s.closed:
		s.mu.Unlock()
		s.replyErr(m, CodeUnavailable, "snapshot service shutting down")
		return
	case u != nil && u.released:
		s.mu.Unlock()
		s.failed.Add(1)
		s.respond(m, s.unavailable(exchange, symbol, "no longer carried by this replica"))
		return
	case s.waiters >= s.cfg.SnapshotMaxWaiters && s.dropExpired() == 0:
		after := s.retryAfter()
		s.mu.Unlock()
		s.busy.Add(1)
		s.respond(m, SnapshotReply{Error: fmt.Sprintf("busy: %d requests waiting", s.cfg.SnapshotMaxWaiters), Code: CodeBusy, RetryAfterMS: after})
		return
	}
	if f := s.queued[key]; f != nil {
		f.reqs = append(f.reqs, w)
		s.coalesced.Add(1)
	} else {
		f := &flight{exchange: exchange, symbol: symbol, key: key, unit: u, reqs: []waiter{w}}
		s.queued[key] = f
		s.queue = append(s.queue, f)
		s.signal()
	}
	s.waiters++
	s.mu.Unlock()
}

// dropExpired removes the queued requests whose timeout has passed (their
// requesters gave up; they would only hold waiter slots until dequeued)
// and returns how many. s.mu held.
func (s *SnapshotService) dropExpired() int {
	now := s.now()
	dropped := 0
	s.queue = slices.DeleteFunc(s.queue, func(f *flight) bool {
		n := len(f.reqs)
		f.reqs = slices.DeleteFunc(f.reqs, func(w waiter) bool { return !w.deadline.IsZero() && !now.Before(w.deadline) })
		dropped += n - len(f.reqs)
		if len(f.reqs) > 0 {
			return false
		}
		if s.queued[f.key] == f {
			delete(s.queued, f.key)
		}
		return true
	})
	if dropped > 0 {
		s.expired.Add(uint64(dropped))
		s.waiters -= dropped
	}
	return dropped
}

// retryAfter estimates, in milliseconds, when the queue will have room:
// the time the rate limit needs to start the queued fetches. s.mu held.
func (s *SnapshotService) retryAfter() int64 {
	ms := int64(float64(len(s.queue)) / s.cfg.SnapshotRate * 1000)
	return min(max(ms, 100), 60_000)
}

// parse extracts exchange and symbol from the subject and checks the body.
func (s *SnapshotService) parse(m *nats.Msg) (exchange, symbol string, req SnapshotRequest, err error) {
	rest, ok := strings.CutPrefix(m.Subject, s.cfg.ControlPrefix+".snapshot.")
	exchange, symbol, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", "", req, fmt.Errorf("subject %q is not %s.snapshot.<exchange>.<symbol>", m.Subject, s.cfg.ControlPrefix)
	}
	if err := bridge.ValidateIdent(exchange); err != nil {
		return "", "", req, fmt.Errorf("exchange: %w", err)
	}
	if err := bridge.ValidateIdent(symbol); err != nil {
		return "", "", req, fmt.Errorf("symbol: %w", err)
	}
	if len(m.Data) > MaxRequestBody {
		return "", "", req, fmt.Errorf("request body is %d bytes, at most %d allowed", len(m.Data), MaxRequestBody)
	}
	if body := bytes.TrimSpace(m.Data); len(body) > 0 {
		if body[0] != '{' {
			return "", "", req, errors.New("malformed request body: want a JSON object or nothing")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return "", "", req, fmt.Errorf("malformed request body: %v", err)
		}
		if req.TimeoutMS < 0 {
			return "", "", req, fmt.Errorf("timeout_ms %d: must not be negative", req.TimeoutMS)
		}
		if req.Requester != "" || req.Reason != "" {
			s.log.Debug("snapshot requested", "exchange", exchange, "symbol", symbol, "requester", req.Requester, "reason", req.Reason)
		}
	}
	return exchange, symbol, req, nil
}

// dispatch takes flights off the queue in order: each needs a fetch slot
// (SnapshotConcurrency) and a token of the rate limiter.
func (s *SnapshotService) dispatch() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if !s.awaitReady(ctx) || s.limiter.Wait(ctx) != nil {
			<-s.sem
			return
		}
		f := s.pop()
		if f == nil {
			<-s.sem // a released unit or expired requests emptied the queue meanwhile
			continue
		}
		s.fetches.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serve(f)
		}()
	}
}

// awaitReady waits until the queue holds a flight that may start; false
// once ctx ends.
func (s *SnapshotService) awaitReady(ctx context.Context) bool {
	for {
		s.mu.Lock()
		ok := s.ready() >= 0
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return false
		}
	}
}

// ready returns the index of the first queued flight that may start (its
// symbol has no fetch running: a symbol's fetches run one after the
// other, so a burst of requests costs at most two), or -1. s.mu held.
func (s *SnapshotService) ready() int {
	for i, f := range s.queue {
		if !s.running[f.key] {
			return i
		}
	}
	return -1
}

// pop takes the first flight that may start and still has a requester
// waiting off the queue and marks its symbol running; requests whose
// timeout has passed are dropped on the way (their requesters gave up: a
// fetch for them would be wasted REST budget).
func (s *SnapshotService) pop() *flight {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for {
		i := s.ready()
		if i < 0 {
			return nil
		}
		f := s.queue[i]
		s.queue = slices.Delete(s.queue, i, i+1)
		if s.queued[f.key] == f {
			delete(s.queued, f.key)
		}
		live := f.reqs[:0]
		for _, w := range f.reqs {
			if w.deadline.IsZero() || now.Before(w.deadline) {
				live = append(live, w)
			}
		}
		if dropped := len(f.reqs) - len(live); dropped > 0 {
			s.expired.Add(uint64(dropped))
			s.waiters -= dropped
			s.log.Debug("snapshot requests expired in the queue", "exchange", f.exchange, "symbol", f.symbol, "count", dropped)
		}
		f.reqs = live
		if len(live) > 0 {
			s.running[f.key] = true
			return f
		}
	}
}

// serve fetches, publishes and replies for one flight taken off the queue.
func (s *SnapshotService) serve(f *flight) {
	reply := s.fetchAndPublish(f.exchange, f.symbol)
	s.mu.Lock()
	delete(s.running, f.key)
	s.mu.Unlock()
	s.signal()
	// Reply only now, so a requester that asks again at once joins a
	// flight queued after this fetch.
	s.answerAll(f, reply)
}

// signal wakes the dispatcher.
func (s *SnapshotService) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// answerAll replies to every request of f (which is no longer queued) and
// releases their waiter slots.
func (s *SnapshotService) answerAll(f *flight, reply SnapshotReply) {
	// Counted first: a requester that reads Stats after its reply sees it.
	if reply.Error == "" {
		s.served.Add(uint64(len(f.reqs)))
	} else {
		s.failed.Add(uint64(len(f.reqs)))
	}
	body, _ := json.Marshal(reply)
	for _, w := range f.reqs {
		if err := w.m.Respond(body); err != nil {
			s.log.Debug("snapshot reply failed", "err", err)
		}
	}
	s.mu.Lock()
	s.waiters -= len(f.reqs)
	s.mu.Unlock()
}

// fetchAndPublish gets the snapshot and stores it in the stream.
func (s *SnapshotService) fetchAndPublish(exchange, symbol string) SnapshotReply {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.SnapshotTimeout)
	defer cancel()
	fail := func(code, format string, args ...any) SnapshotReply {
		msg := fmt.Sprintf(format, args...)
		s.log.Warn("snapshot request failed", "exchange", exchange, "symbol", symbol, "code", code, "err", msg)
		return SnapshotReply{Error: msg, Code: code, Exchange: exchange, Symbol: symbol}
	}
	ev, err := s.src.Snapshot(ctx, exchange, symbol)
	if err != nil {
		if errors.Is(err, ErrUnknownSymbol) || errors.Is(err, bridge.ErrUnknownSymbol) {
			return fail(CodeUnknownSymbol, "unknown exchange or symbol: %v", err)
		}
		return fail(CodeFetchFailed, "snapshot fetch failed: %v", err)
	}
	if ev.Type != bridge.EventBookSnapshot || ev.Exchange != exchange || ev.Symbol != symbol {
		return fail(CodeFetchFailed, "source returned %s %s/%s, want book.snapshot %s/%s", ev.Type, ev.Exchange, ev.Symbol, exchange, symbol)
	}
	ack, err := s.pub.PublishWait(ctx, ev)
	if err != nil {
		return fail(CodePublishFailed, "publish failed: %v", err)
	}
	s.log.Info("snapshot published", "exchange", exchange, "symbol", symbol, "last_id", ev.LastID, "seq", ack.Sequence, "duplicate", ack.Duplicate)
	return SnapshotReply{Stream: ack.Stream, Seq: ack.Sequence, LastID: ev.LastID, Exchange: exchange, Symbol: symbol, Duplicate: ack.Duplicate}
}

func (s *SnapshotService) replyErr(m *nats.Msg, code, msg string) {
	s.failed.Add(1)
	s.respond(m, SnapshotReply{Error: msg, Code: code})
}

func (s *SnapshotService) respond(m *nats.Msg, r SnapshotReply) {
	body, _ := json.Marshal(r)
	if err := m.Respond(body); err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		s.log.Debug("snapshot reply failed", "err", err)
	}
}

// Stats returns the service's counters.
func (s *SnapshotService) Stats() SnapshotServiceStats {
	s.mu.Lock()
	queued := len(s.queue)
	s.mu.Unlock()
	return SnapshotServiceStats{
		Requests: s.requests.Load(), Served: s.served.Load(), Failed: s.failed.Load(),
		Busy: s.busy.Load(), Fetches: s.fetches.Load(), Coalesced: s.coalesced.Load(),
		Expired: s.expired.Load(), Queued: queued,
	}
}

// stopTaking closes the service to new requests: it unsubscribes, stops
// the dispatcher and answers the queued requests "unavailable" (another
// replica may serve them). Idempotent.
func (s *SnapshotService) stopTaking() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	queue := s.queue
	s.queue, s.queued = nil, map[string]*flight{}
	units := s.units
	s.units = map[string]*SnapshotUnit{}
	s.mu.Unlock()
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
	for _, u := range units {
		_ = u.sub.Unsubscribe()
	}
	for _, f := range queue {
		s.answerAll(f, s.unavailable(f.exchange, f.symbol, "not served: the snapshot service is shutting down"))
	}
}

// Shutdown stops taking requests (queued ones are answered "unavailable")
// and waits for running fetches to reply, bounded by ctx; then it closes.
func (s *SnapshotService) Shutdown(ctx context.Context) error {
	s.stopTaking()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("publisher: snapshot service shutdown: %w", ctx.Err())
	}
	s.Close()
	return nil
}

// Close stops now: it unsubscribes and cancels running fetches and
// publishes (their requesters get an error reply; a snapshot already
// queued in the publisher is still published).
func (s *SnapshotService) Close() error {
	s.stopTaking()
	s.cancel()
	s.wg.Wait()
	return nil
}

// snapshotLimiter admits SnapshotRate fetches per second, in bursts of up
// to SnapshotBurst.
func snapshotLimiter(cfg Config) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(cfg.SnapshotRate), cfg.SnapshotBurst)
}
