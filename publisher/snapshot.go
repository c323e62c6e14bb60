package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

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
}

// SnapshotRequest is the optional JSON body of a control request (at most
// MaxRequestBody bytes). Unknown fields are ignored.
type SnapshotRequest struct {
	// Requester names the asking instance, for logs.
	Requester string `json:"requester,omitempty"`
	// Reason says why, for logs (e.g. "gap").
	Reason string `json:"reason,omitempty"`
}

// SnapshotServiceStats are the service's counters.
type SnapshotServiceStats struct {
	Requests  uint64 // requests received
	Served    uint64 // successful replies
	Failed    uint64 // error replies other than busy
	Busy      uint64 // requests refused for concurrency or rate limits
	Fetches   uint64 // snapshots fetched from the source
	Coalesced uint64 // requests that joined an already queued fetch
}

// flight is one fetch and the requests it will answer.
type flight struct {
	exchange, symbol string
	reqs             []*nats.Msg
}

// symbolFlights holds the running fetch of a symbol and the one queued
// behind it. A request never joins a running fetch: that snapshot may
// predate the request's gap. It joins (or starts) the queued one, so a burst
// of requests costs at most two fetches.
type symbolFlights struct {
	running, next *flight
}

// SnapshotService answers snapshot requests on
// <ControlPrefix>.snapshot.<exchange>.<symbol> in queue group "mdbridge":
// it validates the request, fetches the snapshot from the source (requests
// for one symbol coalesce onto one fetch), publishes it as book.snapshot
// through the bridge's JetStream publisher (JetStream.PublishWait: the same
// buffer, order, retry and msg IDs as the data, waiting for the ack) and
// replies with the stream sequence and last update id. A snapshot the
// stream already holds (the same msg ID, e.g. one the bridge published
// itself) is a success with duplicate set and the stored copy's sequence.
// Work is bounded: at most SnapshotConcurrency fetches run at once, new
// fetches are rate-limited to SnapshotRate/s (burst SnapshotBurst) and at
// most SnapshotMaxWaiters requests wait; beyond that requests get a "busy"
// error reply at once.
//
// Every replica joins the queue group, so any replica may serve any request:
// replicas are expected to serve the same symbols (otherwise one without the
// symbol replies unknown_symbol).
type SnapshotService struct {
	cfg    Config
	nc     *nats.Conn
	pub    *JetStream
	src    SnapshotSource
	filter SymbolFilter
	log    *slog.Logger
	sub    *nats.Subscription
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	flights map[string]*symbolFlights
	waiters int
	limiter *rate.Limiter
	closed  bool

	requests, served, failed, busy, fetches, coalesced atomic.Uint64
}

// NewSnapshotService subscribes the service on nc. It publishes through
// pub, the process's publisher, and takes its configuration (control
// prefix, snapshot limits and timeouts) from it. pub must outlive the
// service: shut the service down first.
func NewSnapshotService(nc *nats.Conn, pub *JetStream, src SnapshotSource, logger *slog.Logger) (*SnapshotService, error) {
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
		flights: make(map[string]*symbolFlights),
		limiter: snapshotLimiter(cfg),
	}
	s.filter, _ = src.(SymbolFilter)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	subject := cfg.ControlPrefix + ".snapshot.*.*"
	sub, err := nc.QueueSubscribe(subject, QueueGroup, s.handle)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("publisher: subscribe %s: %w", subject, err)
	}
	// Bound what may queue inside the client; beyond it requests are
	// dropped (the requester times out) rather than using unbounded memory.
	_ = sub.SetPendingLimits(8192, 8<<20)
	s.sub = sub
	s.log.Info("snapshot service listening", "subject", subject, "queue", QueueGroup)
	return s, nil
}

// handle runs on the subscription's goroutine: it validates and dispatches
// without blocking.
func (s *SnapshotService) handle(m *nats.Msg) {
	s.requests.Add(1)
	exchange, symbol, err := s.parse(m)
	if err != nil {
		s.replyErr(m, CodeBadRequest, err.Error())
		return
	}
	if s.filter != nil && !s.filter.Serves(exchange, symbol) {
		s.replyErr(m, CodeUnknownSymbol, fmt.Sprintf("unknown exchange or symbol: %s %s is not served by this bridge", exchange, symbol))
		return
	}
	key := exchange + "." + symbol
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.replyErr(m, CodeUnavailable, "snapshot service shutting down")
		return
	}
	if s.waiters >= s.cfg.SnapshotMaxWaiters {
		s.mu.Unlock()
		s.refuse(m, "too many waiting requests")
		return
	}
	sf := s.flights[key]
	switch {
	case sf != nil && sf.next != nil:
		sf.next.reqs = append(sf.next.reqs, m)
		s.coalesced.Add(1)
	case !s.limiter.Allow():
		s.mu.Unlock()
		s.refuse(m, "snapshot rate limit reached")
		return
	case sf == nil:
		f := &flight{exchange: exchange, symbol: symbol, reqs: []*nats.Msg{m}}
		s.flights[key] = &symbolFlights{running: f}
		s.start(key, f)
	default:
		sf.next = &flight{exchange: exchange, symbol: symbol, reqs: []*nats.Msg{m}}
	}
	s.waiters++
	s.mu.Unlock()
}

// parse extracts exchange and symbol from the subject and checks the body.
func (s *SnapshotService) parse(m *nats.Msg) (string, string, error) {
	rest, ok := strings.CutPrefix(m.Subject, s.cfg.ControlPrefix+".snapshot.")
	exchange, symbol, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", "", fmt.Errorf("subject %q is not %s.snapshot.<exchange>.<symbol>", m.Subject, s.cfg.ControlPrefix)
	}
	if err := bridge.ValidateIdent(exchange); err != nil {
		return "", "", fmt.Errorf("exchange: %w", err)
	}
	if err := bridge.ValidateIdent(symbol); err != nil {
		return "", "", fmt.Errorf("symbol: %w", err)
	}
	if len(m.Data) > MaxRequestBody {
		return "", "", fmt.Errorf("request body is %d bytes, at most %d allowed", len(m.Data), MaxRequestBody)
	}
	if body := bytes.TrimSpace(m.Data); len(body) > 0 {
		var req SnapshotRequest
		if body[0] != '{' {
			return "", "", errors.New("malformed request body: want a JSON object or nothing")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return "", "", fmt.Errorf("malformed request body: %v", err)
		}
		if req.Requester != "" || req.Reason != "" {
			s.log.Debug("snapshot requested", "exchange", exchange, "symbol", symbol, "requester", req.Requester, "reason", req.Reason)
		}
	}
	return exchange, symbol, nil
}

// start runs a flight in its own goroutine. s.mu is held.
func (s *SnapshotService) start(key string, f *flight) {
	s.fetches.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(key, f)
	}()
}

// serve fetches, publishes and replies for one flight, then starts the
// queued flight of the same symbol, if any.
func (s *SnapshotService) serve(key string, f *flight) {
	reply := s.fetchAndPublish(f.exchange, f.symbol)
	s.mu.Lock()
	sf := s.flights[key]
	sf.running, sf.next = sf.next, nil
	if sf.running != nil {
		s.start(key, sf.running)
	} else {
		delete(s.flights, key)
	}
	s.mu.Unlock()
	// Reply (and release the waiter slots) only now, so a requester that
	// retries at once joins the next flight rather than this finished one.
	body, _ := json.Marshal(reply)
	for _, m := range f.reqs {
		if err := m.Respond(body); err != nil {
			s.log.Debug("snapshot reply failed", "err", err)
		}
	}
	if reply.Error == "" {
		s.served.Add(uint64(len(f.reqs)))
	} else {
		s.failed.Add(uint64(len(f.reqs)))
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
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return fail(CodeBusy, "busy: no fetch slot within %s", s.cfg.SnapshotTimeout)
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

func (s *SnapshotService) refuse(m *nats.Msg, why string) {
	s.busy.Add(1)
	s.respond(m, SnapshotReply{Error: "busy: " + why, Code: CodeBusy})
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
	return SnapshotServiceStats{
		Requests: s.requests.Load(), Served: s.served.Load(), Failed: s.failed.Load(),
		Busy: s.busy.Load(), Fetches: s.fetches.Load(), Coalesced: s.coalesced.Load(),
	}
}

// Shutdown stops taking requests and waits for running fetches to reply,
// bounded by ctx; then it closes.
func (s *SnapshotService) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.sub.Unsubscribe()
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
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.sub.Unsubscribe()
	s.cancel()
	s.wg.Wait()
	return nil
}

// snapshotLimiter admits SnapshotRate fetches per second, in bursts of up
// to SnapshotBurst.
func snapshotLimiter(cfg Config) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(cfg.SnapshotRate), cfg.SnapshotBurst)
}
