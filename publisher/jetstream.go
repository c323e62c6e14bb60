package publisher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	sendBatchSize  = 256
	maxAPIFailures = 10 // server rejections (4xx) of one message before it is dropped
	logEvery       = 5 * time.Second
)

// JetStream publishes events to the JetStream stream: encoded into buffers
// it owns, held in a bounded ordered buffer, sent asynchronously with a
// bounded in-flight window, and retried with the same Nats-Msg-Id until
// acknowledged. See the package documentation for the delivery and ordering
// guarantees. Create it with NewJetStream; stop it with Shutdown or Close.
type JetStream struct {
	cfg     Config
	nc      *nats.Conn
	link    link // the connection the pump writes to (epoch guarded by mu)
	log     *slog.Logger
	limiter *logLimiter

	pool entryPool // recycled entries with their buffers

	wake chan struct{}

	replies replies // reply subjects and the channel of replies
	out     outMsg  // the message being written; pump only

	mu         sync.Mutex
	q          ring
	sendIdx    int // entries before it were sent in this pass (or are resolved)
	inflight   int
	byID       map[uint64]*entry // attempts in flight by id
	nextID     uint64
	buf        budget // occupancy and limits
	ackedAhead int    // acked entries still in q behind an unacked one
	retry      retryState
	drops      subjectDrops // per-subject share of dropped, rejected and abandoned
	closing    bool
	closed     bool
	spaceCh    chan struct{} // closed when room appears; nil when nobody waits
	emptyCh    chan struct{} // closed when q empties; set by Shutdown
	batch      []*entry
	popped     []*entry // popHead's scratch

	subjects subjectCache

	status    chan nats.Status
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	provision *provisioner // re-creates a vanished stream

	c    counters
	hist histogram

	noVerify     bool                                                                                        // tests: skip the long-outage check (verify.go)
	lookupStored func(context.Context, map[string]time.Time, map[string]struct{}) (map[string]uint64, error) // tests: replaces storedIDs
}

// NewJetStream validates cfg, provisions the stream (EnsureStream) and
// starts the publisher on nc. nc should come from Connect (nats.go's
// reconnect buffer disabled); the caller keeps owning it.
func NewJetStream(ctx context.Context, nc *nats.Conn, cfg Config, logger *slog.Logger) (*JetStream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("publisher: jetstream context: %w", err)
	}
	if _, err := ensureStream(ctx, js, cfg); err != nil {
		return nil, err
	}
	return attachJetStream(nc, js, cfg, logger)
}

// attachJetStream starts a publisher for cfg (validated, with defaults) on
// nc, re-provisioning the stream through js when it vanishes.
func attachJetStream(nc *nats.Conn, js jetstream.JetStream, cfg Config, logger *slog.Logger) (*JetStream, error) {
	p := newJetStream(cfg, logger)
	p.nc = nc
	p.provision.js = js
	if nc.Opts.ReconnectBufSize >= 0 {
		p.log.Warn("the NATS connection buffers publishes while reconnecting; messages written during an outage may overtake retried ones (use publisher.Connect, or nats.ReconnectBufSize(-1))",
			"reconnect_buf_size", nc.Opts.ReconnectBufSize)
	}
	if err := p.replies.subscribe(nc); err != nil {
		return nil, err
	}
	p.link.attach(nc)
	p.status = nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	p.start()
	return p, nil
}

// newJetStream returns a publisher for cfg (validated, with defaults) that
// has no connection yet and is not started.
func newJetStream(cfg Config, logger *slog.Logger) *JetStream {
	p := &JetStream{
		cfg:     cfg,
		log:     orDiscard(logger).With("component", "publisher", "stream", cfg.Stream),
		limiter: newLogLimiter(logEvery),
		wake:    make(chan struct{}, 1),
		replies: newReplies(2*cfg.MaxInFlight + 1024),
		link:    newLink(),
		out:     newOutMsg(),
		byID:    make(map[uint64]*entry, cfg.MaxInFlight),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	p.buf.maxMsgs, p.buf.maxBytes = cfg.BufferMessages, cfg.BufferBytes
	p.provision = newProvisioner(cfg, p.log)
	p.pool.max = min(cfg.BufferMessages, 2*cfg.MaxInFlight+1024)
	return p
}

// start starts the pump once p.link.pub (and, outside tests, p.nc, p.js and
// p.status) are set.
func (p *JetStream) start() {
	go p.run()
}

func (p *JetStream) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (p *JetStream) Stats() Stats {
	p.mu.Lock()
	s := Stats{BufferedMsgs: p.buf.msgs, BufferedBytes: p.buf.bytes, InFlight: p.inflight}
	p.mu.Unlock()
	s.Published = p.c.published.Load()
	s.Sent = p.c.sent.Load()
	s.Acked = p.c.acked.Load()
	s.Retries = p.c.retries.Load()
	s.Failures = p.c.failures.Load()
	s.Duplicates = p.c.duplicates.Load()
	s.Conflicts = p.c.conflicts.Load()
	s.Dropped = p.c.dropped.Load()
	s.Rejected = p.c.rejected.Load()
	s.Abandoned = p.c.abandoned.Load()
	s.Reordered = p.c.reordered.Load()
	s.AlreadyStored = p.c.alreadyStored.Load()
	s.Unverified = p.c.unverified.Load()
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
			n := p.buf.msgs - p.ackedAhead
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
		p.provision.stop()
		if p.status != nil {
			p.nc.RemoveStatusListener(p.status)
		}
		p.replies.unsubscribe()
		p.mu.Lock()
		p.closed = true
		for i := range p.q.len() {
			e := p.q.at(i)
			e.resolve(Ack{}, ErrClosed) // abandoned, if not resolved
			if e.state == stQueued || e.state == stInflight {
				p.drops.add(e.subject, 1)
			}
		}
		n := p.buf.msgs - p.ackedAhead
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
