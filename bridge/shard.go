package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// symbol is one subscribed symbol's synchronization state. Everything but
// the counters is guarded by the owning shard's mu.
type symbol struct {
	name   string
	log    *slog.Logger
	trades tradeSync
	rest   *restBook   // BookRESTSnapshot venues with ChannelBook
	stream *streamBook // BookStreamSnapshot venues with ChannelBook
	ch     *chanState  // bbo, kline, ticker, liquidation; nil without them
	ctr    symbolCounters
	ages   []*channelAge // data age of each subscribed channel (staleness.go)

	// Set when the symbol's trades / book events arrived on the current
	// primary connection since the last suspect event (QuietCheck).
	seenTrade, seenBook bool
	// A QuietCheck verification is pending or running (at most one each).
	verifyingTrades, verifyingBook bool
	// subErr is the venue's refusal of the symbol's subscription (an
	// unknown instrument), shown as its state's last error. Guarded by the
	// shard's stMu.
	subErr string
}

// snapReply answers a snapshot request (streamSnapshot) with the snapshot
// the book emitted.
type snapReply struct {
	ch chan Event
	ev Event
}

// batch is a queued hand-over to the publisher, with the snapshot requests
// its events answer.
type batch struct {
	evs     []Event
	replies []snapReply
	// evs is the delivering connection's decode buffer (deliver's one-trade
	// hand-over): published before deliver returns, never recycled.
	lent bool
}

// shard is one connection slot: a fixed set of topics, the connection that
// carries them (plus a replacement during a rotation), and the per-symbol
// state that turns frames into a loss-free, duplicate-free, ordered event
// sequence.
//
// Concurrency: frames from the connections and results of repair workers
// are processed under mu into batches, queued in order under mu; the
// publisher is called outside mu, by one goroutine at a time (pubMu) taking
// the queue in order, so events of one symbol are handed over in order and
// never concurrently, and a publisher that blocks (back-pressure) holds up
// only the goroutine publishing, not the shard's repairs, state or
// connection changes.
type shard struct {
	st     *Stream
	idx    int
	topics []Topic
	chans  Channel // the channels of its topics (all the stream's unless routed)
	syms   map[string]*symbol
	list   []*symbol
	last   *symbol // the symbol of the last processed event (guarded by mu)
	log    *slog.Logger
	ctr    connCounters
	env    *connEnv // what its connections need

	mu      sync.Mutex
	primary *conn       // the connection whose events are emitted
	cand    *conn       // the replacement during a rotation
	rot     *rotation   // overlap bookkeeping during a rotation
	out     []Event     // batch being built, queued by unlockPublish
	replies []snapReply // snapshot requests answered by events in out
	queue   []batch     // batches to publish, in order
	spare   [][]Event   // empty batch buffers for reuse
	quietAt time.Time   // when to verify symbols quiet since the last suspect event (zero: none pending)
	quietBy time.Time   // latest time for the pending check
	probing bool        // a silence probe runs (probeSilence)
	lent    bool        // out is the delivering connection's buffer (deliver's one-trade hand-over)
	ownOut  []Event     // out's own buffer while lent

	pubMu sync.Mutex // held while publishing the queue (publishQueued)
	done  []batch    // the batches last published, their buffers cleared (guarded by pubMu; recycled under mu and pubMu)

	shutdownCh chan struct{} // the primary announced a server shutdown
	rotReady   chan struct{} // the rotation's overlap is complete

	stMu    sync.Mutex
	sm      *resilience.ConnectionStateManager
	since   time.Time
	attempt int
	lastErr string
	connID  string
	connSeq int
	final   bool // finished: report DISCONNECTED whatever the state machine says
}

func newShard(st *Stream, idx int, p shardPlan) (*shard, error) {
	sh := &shard{
		st:         st,
		idx:        idx,
		topics:     p.topics,
		chans:      p.channels,
		syms:       make(map[string]*symbol, len(p.symbols)),
		log:        st.log.With("exchange", st.cfg.exName, "shard", idx),
		shutdownCh: make(chan struct{}, 1),
		rotReady:   make(chan struct{}, 1),
		sm:         resilience.NewConnectionStateManager(),
		since:      st.now(),
	}
	cfg := st.cfg
	sh.env = &connEnv{
		ex:               cfg.Exchange,
		topics:           sh.topics,
		handshake:        cfg.HandshakeTimeout,
		subscribeTimeout: cfg.SubscribeTimeout,
		heartbeat:        cfg.HeartbeatTimeout,
		maxFrame:         cfg.limits.MaxFrameBytes,
		inboundPerSecond: cfg.limits.MaxInboundPerSecond,
		opsPerHour:       cfg.limits.MaxOpsPerHour,
		now:              st.now,
		goConn:           st.goConn,
		ctr:              &sh.ctr,
		log:              sh.log,
	}
	for _, name := range p.symbols {
		sym := &symbol{name: name, log: sh.log.With("symbol", name)}
		dcfg := resilience.DedupConfig{WindowSize: cfg.DedupWindow, TTL: cfg.DedupTTL}
		var err error
		if !cfg.res.SequenceTracking { // with tracking the SequenceTracker alone decides
			if sym.trades.dedupSeq, err = resilience.NewMessageDeduplicator[int64](dcfg); err != nil {
				return nil, fmt.Errorf("%w: dedup: %w", ErrConfig, err)
			}
		}
		if sym.trades.dedupID, err = resilience.NewMessageDeduplicator[string](dcfg); err != nil {
			return nil, fmt.Errorf("%w: dedup: %w", ErrConfig, err)
		}
		if sym.ch, err = newChanState(cfg.Channels, dcfg); err != nil {
			return nil, err
		}
		sym.trades.seq = resilience.NewSequenceTracker()
		sym.trades.track = cfg.res.SequenceTracking
		sym.trades.limit = cfg.PendingLimit
		if p.channels&ChannelBook != 0 {
			switch cfg.Exchange.BookMode() {
			case BookStreamSnapshot:
				sym.stream = &streamBook{policy: cfg.BookGapPolicy}
			case BookStreamChained:
				sym.stream = &streamBook{policy: cfg.BookGapPolicy, chained: true}
			default:
				sym.rest = &restBook{limit: cfg.BookBufferLimit}
			}
		}
		if sym.ages, err = newChannelAges(cfg, p.channels, sym, &sh.ctr.staleAlerts); err != nil {
			return nil, err
		}
		sh.syms[name] = sym
		sh.list = append(sh.list, sym)
	}
	return sh, nil
}

// deliver processes the events of one frame from connection c and hands the
// resulting batch to the publisher. Events of a rotation's replacement are
// held back until it takes over; events of a connection that is neither
// primary nor replacement (a closing one) are dropped: the connection that
// replaced it carries them.
var _ connOwner = (*shard)(nil)

func (sh *shard) deliver(c *conn, evs []Event) {
	sh.mu.Lock()
	switch c {
	case sh.primary:
		if len(evs) == 1 && evs[0].Type == EventTrade && len(sh.out) == 0 && sh.rot == nil {
			// A trade emits nothing but itself while it is processed (a
			// gap's repair runs elsewhere): with the frame's own buffer as
			// out, capacity 1, its emit copies the event onto itself (a
			// no-op) instead of into a batch buffer, and the batch needs
			// no clearing after. The buffer is the connection's, reused
			// for its next frame: unlockPublish publishes the batch before
			// deliver returns (see there) and does not recycle it.
			sh.ownOut, sh.out = sh.out, evs[:0:1]
			sh.process(&evs[0])
			switch {
			case len(sh.out) == 1 && &sh.out[0] == &evs[0]:
				sh.lent = true
			case len(sh.out) == 0: // not emitted (a duplicate, buffered during a repair)
				sh.out, sh.ownOut = sh.ownOut, nil
			default: // more than the trade (not expected): out was reallocated, a buffer of its own
				sh.ownOut = nil
			}
			sh.unlockPublish()
			return
		}
		for i := range evs {
			sh.process(&evs[i])
		}
		if sh.rot != nil {
			sh.rot.primaryProgress(sh, evs)
		}
	case sh.cand:
		if sh.rot != nil {
			sh.rot.collect(sh, evs)
		} else {
			sh.ctr.superseded.Add(uint64(len(evs)))
		}
	default:
		sh.ctr.superseded.Add(uint64(len(evs)))
	}
	sh.unlockPublish()
}

// process runs one live event through its symbol's synchronization and
// appends what may be emitted to sh.out. Called with mu held.
func (sh *shard) process(ev *Event) {
	sym := sh.last
	if sym == nil || sym.name != ev.Symbol { // interned: usually one pointer compare
		if sym = sh.syms[ev.Symbol]; sym == nil {
			// A venue-wide stream (OKX liquidation-orders by instType; an
			// OKX index feeding several swaps) may deliver a symbol another
			// shard carries: not malformed.
			if ev.Type != EventLiquidation && !(ev.Type == EventTicker && ev.Depth > 0) {
				sh.ctr.malformed.Add(1)
			}
			return
		}
		sh.last = sym
	}
	sym.ctr.received.Add(1)
	sym.ctr.lastMsgNS.Store(ev.RecvTS)
	sym.recordAge(ev)
	switch ev.Type {
	case EventTrade:
		sym.seenTrade = true
		var gap *tradeGap
		sh.out, gap = sym.trades.live(ev, time.Unix(0, ev.RecvTS), sh.out, &sym.ctr)
		if gap != nil {
			sh.startTradeRepair(sym, *gap)
		}
	case EventBookDelta, EventBookSnapshot:
		sym.seenBook = true
		switch {
		case sym.rest != nil:
			if ev.Type != EventBookDelta {
				sh.ctr.malformed.Add(1)
				return
			}
			var need bool
			sh.out, need = sym.rest.delta(ev, sh.out, &sym.ctr)
			if need && !sym.rest.fetching {
				sym.rest.fetching = true
				sh.st.goWork(func(ctx context.Context) { sh.bookRepair(ctx, sym) })
			}
		case sym.stream != nil:
			var resub bool
			b := sym.stream
			sh.out, resub = b.event(ev, sh.out, &sym.ctr)
			if resub {
				sh.resubscribe(sym, "gap")
			}
			for _, ch := range b.answered {
				sh.replies = append(sh.replies, snapReply{ch, b.answer})
			}
			clear(b.answered)
			b.answered = b.answered[:0]
		default:
			sh.ctr.malformed.Add(1) // book data without a book subscription
		}
	case EventBBO, EventKline, EventTicker, EventLiquidation:
		sh.processChannel(sym, ev)
	default:
		sh.ctr.malformed.Add(1)
	}
}

// unlockPublish queues the batch built under mu, releases mu and publishes
// what is queued. Every section that may have emitted events ends with it
// instead of mu.Unlock.
//
// The queue is published in order, by one goroutine at a time (pubMu); a
// goroutine that finds another publishing waits for it and then publishes
// what is left (its own batch may be done by then: a publisher takes the
// whole queue when it starts and does not look at it again), so
// back-pressure from the publisher still holds up every producer, but no
// holder of mu. A
// publisher error while the stream runs is fatal: the stream stops and Run
// returns it. Snapshot requests answered by a batch are answered after it
// is handed over, so the requester's own publish of the snapshot (a msg-ID
// duplicate) comes after the stream's.
func (sh *shard) unlockPublish() {
	if len(sh.out) > 0 {
		sh.queue = append(sh.queue, batch{evs: sh.out, replies: sh.replies, lent: sh.lent})
		sh.replies = nil
		sh.out = nil
		if sh.lent {
			sh.out, sh.ownOut, sh.lent = sh.ownOut, nil, false
		} else if n := len(sh.spare); n > 0 {
			sh.out, sh.spare = sh.spare[n-1], sh.spare[:n-1]
		}
	}
	if len(sh.queue) == 0 {
		sh.mu.Unlock()
		return
	}
	if !sh.pubMu.TryLock() {
		sh.mu.Unlock()
		sh.pubMu.Lock()
		sh.mu.Lock()
	}
	// mu and pubMu held. The buffers published last time (cleared then)
	// become spares, and the queue is taken as it is: a goroutine that
	// queues a batch from now on waits for pubMu and publishes it itself,
	// so mu is not taken again after publishing.
	for _, b := range sh.done {
		if b.evs != nil && len(sh.spare) < 4 {
			sh.spare = append(sh.spare, b.evs)
		}
	}
	clear(sh.done)
	q := sh.queue
	sh.queue, sh.done = sh.done[:0], nil
	sh.mu.Unlock()
	for i := range q {
		if err := sh.st.pub.Publish(sh.st.pubCtx, q[i].evs); err != nil && sh.st.pubCtx.Err() == nil {
			sh.st.fatal(fmt.Errorf("bridge: publisher: %w", err))
		}
		for _, r := range q[i].replies {
			r.ch <- r.ev // room for one: each request is answered once
		}
		// Entries keep references to their frames until overwritten:
		// cleared now, and a buffer grown by a large batch (a backfill
		// page, a big frame) is dropped so it does not pin memory. A
		// lent buffer goes back to its connection as it is.
		if q[i].lent {
			q[i] = batch{}
		} else if b := q[i].evs; cap(b) <= 1024 {
			clear(b)
			q[i] = batch{evs: b[:0]}
		} else {
			q[i] = batch{}
		}
	}
	sh.done = q // recycled by the next publisher, under mu
	sh.pubMu.Unlock()
}

// serverShutdown is called by a connection that received the venue's
// shutdown announcement.
func (sh *shard) serverShutdown(c *conn) {
	sh.mu.Lock()
	primary := c == sh.primary
	sh.mu.Unlock()
	if !primary {
		return
	}
	select {
	case sh.shutdownCh <- struct{}{}:
	default:
	}
}

// housekeeping runs every second while a connection serves: it repeats
// resubscriptions that did not produce a snapshot in time and starts the
// QuietCheck verifications after a reconnect.
func (sh *shard) housekeeping() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := sh.st.now()
	for _, sym := range sh.list {
		if b := sym.stream; b != nil && b.state == bookResyncing && now.Sub(b.resyncAt) > sh.st.cfg.ResyncTimeout {
			sh.resubscribe(sym, "no snapshot within the resync timeout")
		}
		if b := sym.stream; b != nil && b.chainNeedsBoot(now.UnixNano()) {
			b.chain.fetching = true
			sh.st.goWork(func(ctx context.Context) { sh.chainBootstrap(ctx, sym) })
		}
	}
	if d := sh.st.cfg.SilenceCheck; d > 0 && sh.primary != nil && !sh.probing && now.UnixNano()-sh.primary.dataAt.Load() > int64(d) {
		c := sh.primary
		sh.probing = true
		sh.st.goWork(func(ctx context.Context) { sh.probeSilence(ctx, c) })
	}
	if sh.quietAt.IsZero() || now.Before(sh.quietAt) {
		return
	}
	sh.quietAt = time.Time{}
	trades := sh.chans&ChannelTrade != 0
	for _, sym := range sh.list {
		t := &sym.trades
		if trades && !sym.seenTrade && !sym.verifyingTrades && t.track && !t.byID && t.seq.Started() && !t.repairing {
			last := t.seq.Last()
			sh.goVerify(&sym.verifyingTrades, func(ctx context.Context) { sh.verifyTrades(ctx, sym, last) })
		}
		// A stream-snapshot book (Bybit) quiet since the suspect event may
		// have lost its last deltas with nothing after them to reveal the
		// jump: resubscribing yields a fresh snapshot to continue from.
		if b := sym.stream; b != nil && !sym.seenBook && b.state == bookLive {
			sym.log.Info("quiet symbol: verifying its order book with a fresh snapshot", "last_id", b.lastID)
			b.state = bookResyncing
			sh.resubscribe(sym, "quiet symbol after a reconnect")
		}
		if b := sym.rest; b != nil && !sym.seenBook && !sym.verifyingBook && b.state == bookLive && !b.fetching {
			last := b.lastID
			sh.goVerify(&sym.verifyingBook, func(ctx context.Context) { sh.verifyBook(ctx, sym, last) })
		}
	}
}

// tradesSinceMargin is how much earlier than its connection's opening a
// symbol's first trades may be backfilled (tradeSync.since): the clock
// offset may not be measured yet. The trades of that margin a previous
// owner published are msg-ID duplicates within the stream's window.
const tradesSinceMargin = 2 * time.Second

// onNewPrimary prepares the symbols for the first frames of a new primary
// connection c after a loss (not a rotation). Called with mu held, before
// the connection reads. It returns the symbols that need a recent-trades
// repair once subscribed. On every new primary, the symbols without a
// trade emitted yet note when trades may start arriving (tradeSync.since).
func (sh *shard) onNewPrimary(c *conn, reconnect bool) []*symbol {
	var recent []*symbol
	if reconnect {
		_, canRecent := sh.st.cfg.Exchange.(RecentTrader)
		sh.scheduleQuietCheck()
		for _, sym := range sh.list {
			if sym.stream != nil {
				sym.stream.reset() // the new subscription starts with a snapshot
			}
			if sym.ch != nil {
				sym.ch.reconnected()
			}
			t := &sym.trades
			if canRecent && t.track && sh.chans&ChannelTrade != 0 && (t.byID || t.lastID == "") && t.startRecent() {
				recent = append(recent, sym)
			}
		}
	}
	// After the repairs: a symbol's first connection needs none.
	from := c.opened.UnixNano() + sh.st.clockOffset() - int64(tradesSinceMargin)
	for _, sym := range sh.list {
		if t := &sym.trades; t.since == 0 && t.lastID == "" {
			t.since = from
		}
	}
	return recent
}

// scheduleQuietCheck arranges for the symbols that receive nothing in the
// next QuietCheck to be verified over REST: something may have been lost
// (a reconnect, a dropped frame) and a quiet symbol would not reveal it by
// its next message. Called with mu held.
//
// A symbol that receives data after the suspect event is safe: frames are
// ordered, so its next message reveals any loss before it. Every new suspect
// event therefore clears the "seen" marks and moves the check to QuietCheck
// after it, but not beyond 3 x QuietCheck after the first pending one, so
// that a steady trickle of bad frames cannot postpone the check forever.
func (sh *shard) scheduleQuietCheck() {
	q := sh.st.cfg.QuietCheck
	if q <= 0 {
		return
	}
	now := sh.st.now()
	if sh.quietAt.IsZero() {
		sh.quietBy = now.Add(3 * q)
	}
	sh.quietAt = now.Add(q)
	if sh.quietAt.After(sh.quietBy) {
		sh.quietAt = sh.quietBy
	}
	for _, sym := range sh.list {
		sym.seenTrade, sym.seenBook = false, false
	}
}

// frameLost is called when a frame of connection c was dropped (malformed):
// its content is unknown, so quiet symbols are verified.
func (sh *shard) frameLost(c *conn) {
	sh.mu.Lock()
	if c == sh.primary {
		sh.scheduleQuietCheck()
	}
	sh.mu.Unlock()
}

// refused records that the venue refused symbol's subscription on c: the
// symbol's state shows it as its last error; the other symbols of the
// connection are not affected.
func (sh *shard) refused(c *conn, symbol string, err error) {
	sym := sh.syms[symbol]
	if sym == nil {
		return
	}
	sym.log.Error("subscription refused", "err", err)
	sh.stMu.Lock()
	sym.subErr = fmt.Errorf("%w: %w", ErrSubscribe, err).Error()
	sh.stMu.Unlock()
	sh.report()
}
