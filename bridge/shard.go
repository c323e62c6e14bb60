package bridge

import (
	"context"
	"errors"
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
	ctr    symbolCounters

	// Set when the symbol's trades / book events arrived on the current
	// primary connection since the last suspect event (QuietCheck).
	seenTrade, seenBook bool
	// A QuietCheck verification is pending or running (at most one each).
	verifyingTrades, verifyingBook bool
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
	syms   map[string]*symbol
	list   []*symbol
	log    *slog.Logger
	ctr    connCounters

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

	pubMu sync.Mutex // held while publishing the queue (publishQueued)

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
		syms:       make(map[string]*symbol, len(p.symbols)),
		log:        st.log.With("exchange", st.cfg.exName, "shard", idx),
		shutdownCh: make(chan struct{}, 1),
		rotReady:   make(chan struct{}, 1),
		sm:         resilience.NewConnectionStateManager(),
		since:      st.now(),
	}
	cfg := st.cfg
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
		sym.trades.seq = resilience.NewSequenceTracker()
		sym.trades.track = cfg.res.SequenceTracking
		sym.trades.limit = cfg.PendingLimit
		if cfg.Channels&ChannelBook != 0 {
			switch cfg.Exchange.BookMode() {
			case BookStreamSnapshot:
				sym.stream = &streamBook{policy: cfg.BookGapPolicy}
			default:
				sym.rest = &restBook{limit: cfg.BookBufferLimit}
			}
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
func (sh *shard) deliver(c *conn, evs []Event) {
	sh.mu.Lock()
	switch c {
	case sh.primary:
		for i := range evs {
			sh.process(&evs[i])
		}
		if sh.rot != nil {
			sh.rot.primaryProgress(sh, evs)
		}
	case sh.cand:
		if sh.rot != nil {
			sh.rot.collect(sh, evs)
		}
	}
	sh.unlockPublish()
}

// process runs one live event through its symbol's synchronization and
// appends what may be emitted to sh.out. Called with mu held.
func (sh *shard) process(ev *Event) {
	sym := sh.syms[ev.Symbol]
	if sym == nil {
		sh.ctr.malformed.Add(1)
		return
	}
	sym.ctr.received.Add(1)
	sym.ctr.lastMsgNS.Store(ev.RecvTS)
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
	default:
		sh.ctr.malformed.Add(1)
	}
}

// unlockPublish queues the batch built under mu, releases mu and publishes
// what is queued. Every section that may have emitted events ends with it
// instead of mu.Unlock.
func (sh *shard) unlockPublish() {
	if len(sh.out) > 0 {
		sh.queue = append(sh.queue, batch{evs: sh.out, replies: sh.replies})
		sh.replies = nil
		sh.out = nil
		if n := len(sh.spare); n > 0 {
			sh.out, sh.spare = sh.spare[n-1], sh.spare[:n-1]
		}
	}
	pending := len(sh.queue) > 0
	sh.mu.Unlock()
	if pending {
		sh.publishQueued()
	}
}

// publishQueued hands the queued batches to the publisher in order, one
// goroutine at a time; a goroutine that finds another publishing waits for
// it and then publishes what is left (its own batch may be done by then).
// A publisher error while the stream runs is fatal: the stream stops and
// Run returns it.
//
// Snapshot requests answered by a batch are answered after it is handed
// over, so the requester's own publish of the snapshot (a msg-ID
// duplicate) comes after the stream's.
func (sh *shard) publishQueued() {
	sh.pubMu.Lock()
	defer sh.pubMu.Unlock()
	var q []batch
	for {
		sh.mu.Lock()
		for i := range q {
			// Recycle the published buffers. Entries keep references to
			// their frames until overwritten; a buffer grown by a large
			// batch (a backfill page, a big frame) is dropped so it does
			// not pin memory.
			if b := q[i].evs; cap(b) <= 1024 && len(sh.spare) < 4 {
				clear(b)
				sh.spare = append(sh.spare, b[:0])
			}
		}
		clear(q)
		q, sh.queue = sh.queue, q[:0]
		sh.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for i := range q {
			if err := sh.st.pub.Publish(sh.st.pubCtx, q[i].evs); err != nil && sh.st.pubCtx.Err() == nil {
				sh.st.fatal(fmt.Errorf("bridge: publisher: %w", err))
			}
			for _, r := range q[i].replies {
				r.ch <- r.ev // room for one: each request is answered once
			}
		}
	}
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

// streamSnapshot serves a snapshot request for a stream-snapshot book
// (Stream.Snapshot): it resubscribes the book, unless a resync is already
// under way, and returns the next snapshot the book emits.
func (sh *shard) streamSnapshot(ctx context.Context, name string) (Event, error) {
	ch := make(chan Event, 1)
	sh.mu.Lock()
	sym := sh.syms[name]
	if sym == nil || sym.stream == nil {
		sh.mu.Unlock()
		return Event{}, fmt.Errorf("%w: %s %q has no order book subscription on this stream", ErrUnknownSymbol, sh.st.cfg.exName, name)
	}
	b := sym.stream
	b.wait(ch)
	if b.state == bookLive {
		// Deltas are held back until the fresh snapshot (it covers them);
		// housekeeping repeats the resubscribe if it does not come.
		b.state = bookResyncing
		sh.resubscribe(sym, "snapshot requested")
	}
	sh.mu.Unlock()
	select {
	case ev := <-ch:
		return ev, nil
	case <-ctx.Done():
		sh.mu.Lock()
		b.unwait(ch)
		sh.mu.Unlock()
		select {
		case ev := <-ch: // answered meanwhile
			return ev, nil
		default:
		}
		return Event{}, fmt.Errorf("bridge: %s %s: no fresh snapshot from the stream yet (the book was resubscribed; see the connection state): %w", sh.st.cfg.exName, name, ctx.Err())
	}
}

// resubscribe asks the primary connection for a fresh snapshot of sym's
// book. Called with mu held; the writes happen on another goroutine.
func (sh *shard) resubscribe(sym *symbol, reason string) {
	c := sh.primary
	sym.stream.resyncAt = sh.st.now()
	if c == nil {
		return
	}
	sym.log.Info("order book: resubscribing for a fresh snapshot", "reason", reason, "policy", sh.st.cfg.BookGapPolicy)
	topics := []Topic{{Symbol: sym.name, Channel: ChannelBook}}
	sh.st.goWork(func(context.Context) {
		if err := c.resubscribe(topics); err != nil {
			c.closeAfterDrain(fmt.Errorf("bridge: resubscribe: %w", err))
		}
	})
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
	}
	if sh.quietAt.IsZero() || now.Before(sh.quietAt) {
		return
	}
	sh.quietAt = time.Time{}
	trades := sh.st.cfg.Channels&ChannelTrade != 0
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

// goVerify runs a QuietCheck verification on a worker with *running (one
// of the symbol's verifying flags) set until it returns. Called with mu held.
func (sh *shard) goVerify(running *bool, verify func(context.Context)) {
	*running = true
	sh.st.goWork(func(ctx context.Context) {
		verify(ctx)
		sh.mu.Lock()
		*running = false
		sh.mu.Unlock()
	})
}

// onNewPrimary prepares the symbols for the first frames of a new primary
// connection after a loss (not a rotation). Called with mu held, before the
// connection reads. It returns the symbols that need a recent-trades repair
// once subscribed.
func (sh *shard) onNewPrimary(reconnect bool) []*symbol {
	if !reconnect {
		return nil
	}
	var recent []*symbol
	_, canRecent := sh.st.cfg.Exchange.(RecentTrader)
	sh.scheduleQuietCheck()
	for _, sym := range sh.list {
		if sym.stream != nil {
			sym.stream.reset() // the new subscription starts with a snapshot
		}
		if canRecent && sym.trades.track && sh.st.cfg.Channels&ChannelTrade != 0 && sym.trades.byID && sym.trades.startRecent() {
			recent = append(recent, sym)
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

// startTradeRepair starts the repair worker of a consecutive-id gap.
// Called with mu held.
func (sh *shard) startTradeRepair(sym *symbol, gap tradeGap) {
	sym.log.Info("trade gap: backfilling", "from", gap.from, "to", gap.to, "count", gap.to-gap.from+1)
	sh.st.goWork(func(ctx context.Context) { sh.tradeRepair(ctx, sym) })
}

// tradeRepair fills the holes in a symbol's trades from REST until the live
// trades buffered meanwhile continue the sequence. Each request starts at
// the first missing id and reaches to the newest buffered trade (up to a
// page), so one request usually fills several holes. Ids the venue cannot
// return are counted as missing and logged, never hidden.
func (sh *shard) tradeRepair(ctx context.Context, sym *symbol) {
	cfg := sh.st.cfg
	t := &sym.trades
	var failures, stuck int
	var missing int64
	defer func() {
		if missing > 0 {
			sym.ctr.missing.Add(uint64(missing))
			sym.log.Error("trades missed and not recoverable", "count", missing)
		}
	}()
	for {
		sh.mu.Lock()
		var done bool
		sh.out, done = t.advance(sh.out, &sym.ctr)
		if done {
			sh.unlockPublish()
			return
		}
		from, holeEnd, limit, skipped := t.nextFetch(cfg.BackfillPage, cfg.BackfillMax)
		sh.unlockPublish()
		if skipped > 0 {
			missing += skipped
			sym.log.Error("trade gap longer than BackfillMax: the oldest trades are not fetched", "skipped", skipped, "from", from)
		}
		giveUp := func(why string, err error) {
			sh.mu.Lock()
			n := t.declareMissing(holeEnd)
			sh.mu.Unlock()
			missing += n
			sym.log.Error("trade backfill gave up on a hole", "why", why, "from", from, "to", holeEnd, "count", n, "err", err)
			failures, stuck = 0, 0
		}
		page, err := cfg.Exchange.Trades(ctx, sym.name, from, limit)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if errors.Is(err, ErrNotSupported) || failures > 5 {
				giveUp("request failed", err)
				continue
			}
			sym.log.Warn("trade backfill request failed; retrying", "from", from, "attempt", failures, "err", err)
			if sleepCtx(ctx, retryDelay(err, failures)) != nil {
				return
			}
			continue
		}
		failures = 0
		for i := range page {
			sh.stamp(&page[i])
		}
		sh.mu.Lock()
		before := t.seq.Last()
		var n int64
		sh.out, n, done = t.merge(page, sh.out, &sym.ctr)
		progressed := t.seq.Last() != before
		sh.unlockPublish()
		missing += n
		if done {
			return
		}
		if !progressed {
			// The venue has nothing at from yet (REST behind the stream):
			// retry briefly, then give up on the hole.
			stuck++
			if stuck > 3 {
				giveUp("venue returned no trades for the range", nil)
				continue
			}
			if sleepCtx(ctx, 200*time.Millisecond) != nil {
				return
			}
			continue
		}
		stuck = 0
	}
}

// recentRepair is the best-effort backfill for venues without consecutive
// trade ids: after a reconnect, fetch the most recent trades and emit those
// newer than the last one emitted.
func (sh *shard) recentRepair(ctx context.Context, sym *symbol) {
	rt := sh.st.cfg.Exchange.(RecentTrader)
	var recent []Event
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		recent, err = rt.RecentTrades(ctx, sym.name, sh.st.cfg.RecentTradesLimit)
		if err == nil || ctx.Err() != nil {
			break
		}
		if sleepCtx(ctx, retryDelay(err, attempt)) != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return
	}
	now := sh.st.now()
	if err != nil {
		sym.log.Warn("recent-trades backfill failed; trades missed during the reconnect may be lost", "err", err)
		sym.ctr.gaps.Add(1)
		sh.mu.Lock()
		sh.out = sym.trades.abortRecent(now, sh.out, &sym.ctr)
		sh.unlockPublish()
		return
	}
	for i := range recent {
		sh.stamp(&recent[i])
	}
	before := sym.ctr.backfilled.Load()
	var short bool
	sh.mu.Lock()
	sh.out, short = sym.trades.finishRecent(recent, now, sh.out, &sym.ctr)
	lastID := sym.trades.lastID
	sh.unlockPublish()
	if short {
		// The venue's recent-trade window (Bybit: 60 spot, 1000 linear) does
		// not reach back to the last trade emitted: trades between are lost.
		// Their ids are not consecutive, so the number is unknown: count the
		// lower bound, one, where every loss is counted.
		sym.ctr.gaps.Add(1)
		sym.ctr.missing.Add(1)
		sym.log.Error("trades missed and not recoverable: the venue's recent trades do not reach back to the last trade emitted (count unknown, at least 1)",
			"last_id", lastID, "limit", sh.st.cfg.RecentTradesLimit)
	}
	if n := sym.ctr.backfilled.Load() - before; n > 0 {
		sym.log.Info("backfilled recent trades after reconnect", "count", n)
	}
}

// bookRepair obtains a snapshot for a BookRESTSnapshot book (through the
// SnapshotRequester when configured, else by fetching and emitting it) and
// resumes the book, repeating while the snapshot is too old.
func (sh *shard) bookRepair(ctx context.Context, sym *symbol) {
	st := sh.st
	attempt := 0
	// The book buffers deltas only from the moment the request is sent:
	// older ones are covered by the snapshot (restBook.arm). A requester's
	// fetch time is unknown: the book keeps a time window (restBook.await).
	issued := func() {
		sh.mu.Lock()
		sym.rest.arm()
		sh.mu.Unlock()
	}
	awaiting := func() {
		sh.mu.Lock()
		sym.rest.await()
		sh.mu.Unlock()
	}
	for {
		var snap *Event
		var lastID int64
		var err error
		if st.req != nil {
			awaiting()
			lastID, err = st.req.RequestSnapshot(ctx, st.cfg.exName, sym.name)
		} else {
			var ev Event
			ev, err = st.snaps.fetch(ctx, sym.name, issued)
			snap, lastID = &ev, ev.LastID
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			attempt++
			sym.log.Warn("order book snapshot failed; retrying", "attempt", attempt, "err", err)
			if sleepCtx(ctx, retryDelay(err, attempt)) != nil {
				return
			}
			continue
		}
		sh.mu.Lock()
		var again bool
		sh.out, again = sym.rest.snapshot(snap, lastID, sh.out, &sym.ctr)
		if !again {
			sym.rest.fetching = false
		}
		sh.unlockPublish()
		if !again {
			return
		}
		attempt++
		sym.log.Debug("order book snapshot older than the buffered deltas; fetching again", "last_id", lastID)
		if sleepCtx(ctx, min(time.Duration(attempt)*50*time.Millisecond, time.Second)) != nil {
			return
		}
	}
}

// stamp fills fields a REST answer may leave empty.
func (sh *shard) stamp(ev *Event) {
	if ev.Exchange == "" {
		ev.Exchange = sh.st.cfg.exName
	}
	if ev.RecvTS == 0 {
		ev.RecvTS = sh.st.now().UnixNano()
	}
}

// retryDelay is the wait before retrying a failed REST call: the venue's
// Retry-After when it gave one, else a capped linear backoff.
func retryDelay(err error, attempt int) time.Duration {
	var rl *RateLimitError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		return rl.RetryAfter
	}
	return min(time.Duration(attempt)*200*time.Millisecond, 5*time.Second)
}

// verifyTrades looks for trades after last that a quiet symbol may have
// missed while reconnecting, and emits them in order as backfilled. Ids
// the venue no longer has are counted as missing. If live trades moved the
// symbol on meanwhile, they decide (a gap among them starts a repair).
func (sh *shard) verifyTrades(ctx context.Context, sym *symbol, last int64) {
	if !sh.st.acquireQuiet(ctx) {
		return
	}
	defer sh.st.releaseQuiet()
	cfg := sh.st.cfg
	t := &sym.trades
	var missing int64
	defer func() {
		if missing > 0 {
			sym.ctr.missing.Add(uint64(missing))
			sym.log.Error("trades missed and not recoverable", "count", missing)
		}
	}()
	for fetched := 0; fetched < cfg.BackfillMax; {
		page, err := cfg.Exchange.Trades(ctx, sym.name, last+1, cfg.BackfillPage)
		if err != nil || len(page) == 0 {
			if err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotSupported) {
				sym.log.Warn("quiet-symbol trade check failed", "err", err)
			}
			return
		}
		fetched += len(page)
		for i := range page {
			sh.stamp(&page[i])
		}
		sh.mu.Lock()
		if t.repairing || t.seq.Last() != last {
			sh.mu.Unlock()
			return
		}
		before := sym.ctr.backfilled.Load()
		t.repairing = true // merge runs as a repair with nothing buffered
		var n int64
		sh.out, n, _ = t.merge(page, sh.out, &sym.ctr)
		missing += n
		if n > 0 {
			sym.ctr.gaps.Add(1)
		}
		last = t.seq.Last()
		sh.unlockPublish()
		if got := sym.ctr.backfilled.Load() - before; got > 0 {
			sym.log.Info("quiet symbol: recovered trades missed while reconnecting", "count", got)
		}
		if len(page) < cfg.BackfillPage {
			return
		}
	}
}

// verifyBook compares a quiet BookRESTSnapshot book with a fresh snapshot
// after a reconnect: if the venue's book moved past the last update the
// stream emitted and no delta arrived since, updates were missed; the
// snapshot is emitted (consumers reset) and the book continues from it.
// The stream's own snapshot is used even with a SnapshotRequester, because
// the book must continue exactly from the emitted snapshot.
func (sh *shard) verifyBook(ctx context.Context, sym *symbol, last int64) {
	if !sh.st.acquireQuiet(ctx) {
		return
	}
	defer sh.st.releaseQuiet()
	ev, err := sh.st.snaps.fetch(ctx, sym.name, nil)
	if err != nil {
		if ctx.Err() == nil {
			sym.log.Warn("quiet-symbol book check failed", "err", err)
		}
		return
	}
	sh.mu.Lock()
	b := sym.rest
	if b.state != bookLive || b.lastID != last || ev.LastID <= last {
		sh.mu.Unlock()
		return // deltas arrived meanwhile (they decide), or nothing was missed
	}
	sym.ctr.gaps.Add(1)
	sym.ctr.snapshots.Add(1)
	sym.log.Warn("quiet symbol: book updates were missed while reconnecting; resetting to a snapshot",
		"last_id", last, "snapshot_id", ev.LastID)
	b.lastID = ev.LastID
	sh.out = emit(sh.out, &ev, &sym.ctr)
	sh.unlockPublish()
}
