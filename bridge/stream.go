package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// HandlerFunc adapts a function to the Publisher interface, for library use
// without NATS: NewStream(cfg, bridge.HandlerFunc(h), nil). It is called with one
// batch per inbound frame (or per backfill page / snapshot), in order per
// symbol; calls for symbols on different connections may run concurrently.
// It must not retain the slice. An error stops the stream (Run returns it).
type HandlerFunc func(ctx context.Context, events []Event) error

// Publish calls f.
func (f HandlerFunc) Publish(ctx context.Context, events []Event) error { return f(ctx, events) }

// Stream ingests one exchange's market data for a set of symbols and hands
// normalized, deduplicated, gap-repaired events to a Publisher (or a
// HandlerFunc). See the package documentation for the guarantees.
type Stream struct {
	cfg     *settings
	pub     Publisher
	log     *slog.Logger
	sink    StateSink
	req     SnapshotRequester
	resumer TradeResumer
	now     func() time.Time
	shards  []*shard
	symbols map[string]*shard
	snaps   *snapshotter
	gate    *connectGate
	tsync   *resilience.TimeSyncManager
	quiet   chan struct{}                // serializes QuietCheck verifications (low priority REST)
	quietRL *resilience.RateLimitManager // and paces them (nil: RateLimitEnabled off)

	// routed: the venue is a Router and a symbol may be carried by one
	// connection per route (carriers), whose states md_state merges.
	routed   bool
	carriers map[string][]*shard

	mu        sync.Mutex
	started   bool
	closed    bool
	fatalErr  error
	pubCtx    context.Context // publisher calls; ends on Close or when Run's ctx ends
	pubCancel context.CancelFunc
	ioCtx     context.Context // connections and workers; ends on Shutdown too
	ioCancel  context.CancelCauseFunc
	bg        sync.WaitGroup // connection goroutines and workers
	done      chan struct{}  // closed when Run returns

	busyLog busyLog // summarizes snapshot requests refused as busy
}

// NewStream validates cfg, plans the connections and returns a stream ready
// to Run. pub receives the events (a *publisher.JetStream, or a HandlerFunc
// for library use); logger receives the stream's lifecycle and repair logs
// (nil discards). Optional collaborators (StateSink, SnapshotRequester,
// TradeResumer, ConnectGate) are StreamConfig fields. Errors wrap ErrConfig.
func NewStream(cfg StreamConfig, pub Publisher, logger *slog.Logger) (*Stream, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: a Publisher or HandlerFunc is required", ErrConfig)
	}
	set, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Stream{
		cfg:     set,
		pub:     pub,
		log:     logger,
		sink:    set.StateSink,
		req:     set.SnapshotRequester,
		resumer: set.TradeResumer,
		now:     time.Now,
		symbols: make(map[string]*shard, len(set.Symbols)),
		done:    make(chan struct{}),
		quiet:   make(chan struct{}, 1),
	}
	if set.ConnectGate != nil && set.res.RateLimitEnabled {
		s.gate = set.ConnectGate
	} else if s.gate, err = newConnectGate(set.limits, set.ConnectSpacing, set.res.RateLimitEnabled); err != nil {
		return nil, fmt.Errorf("%w: connect rate: %w", ErrConfig, err)
	}
	if s.snaps, err = newSnapshotter(set, s.now); err != nil {
		return nil, fmt.Errorf("%w: snapshot rate: %w", ErrConfig, err)
	}
	if set.res.RateLimitEnabled {
		// At most one verification per second on average (burst 10), so
		// that after a reconnect of many quiet symbols the checks trickle
		// and leave the REST weight to gap repairs.
		if s.quietRL, err = resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: 60, Burst: 10}); err != nil {
			return nil, fmt.Errorf("%w: quiet check rate: %w", ErrConfig, err)
		}
	}
	if set.res.TimeSyncEnabled {
		if s.tsync, err = resilience.NewTimeSyncManager(resilience.TimeSyncConfig{Interval: set.TimeSyncInterval}, logger); err != nil {
			return nil, fmt.Errorf("%w: time sync: %w", ErrConfig, err)
		}
	}
	ex := set.Exchange
	var plans []shardPlan
	over := false
	groups := routeGroups(ex, set.Channels)
	s.routed = len(groups) > 1
	for _, ch := range groups {
		p, o := planShards(set.Symbols, ch, planLimits{
			perConn:  set.perConn,
			maxChars: set.limits.MaxRequestArgsChars,
			cost: func(sym string) int {
				n := 0
				for _, f := range ex.SubscribeFrames(topicsOf(sym, ch), func() int64 { return 1 }) {
					n += len(f)
				}
				return n
			},
			maxConns: set.maxConns,
			venueMax: set.limits.MaxTopicsPerConn,
		})
		plans, over = append(plans, p...), over || o
	}
	if over {
		s.log.Warn("the symbols need more connections than the configured cap; using more",
			"exchange", set.exName, "connections", len(plans), "cap", set.maxConns)
	}
	if s.routed {
		s.carriers = make(map[string][]*shard, len(set.Symbols))
	}
	for i, p := range plans {
		sh, err := newShard(s, i, p)
		if err != nil {
			return nil, err
		}
		s.shards = append(s.shards, sh)
		for _, sym := range p.symbols {
			// The trade connection answers per-symbol lookups (trade
			// resume); a routed book-only connection only when no other does.
			if _, ok := s.symbols[sym]; !ok || p.channels&ChannelTrade != 0 {
				s.symbols[sym] = sh
			}
			if s.routed {
				s.carriers[sym] = append(s.carriers[sym], sh)
			}
		}
	}
	return s, nil
}

// Exchange returns the stream's exchange id ("binance", "bybit", ...).
func (s *Stream) Exchange() string { return s.cfg.exName }

// Symbols returns the stream's symbols in configuration order.
func (s *Stream) Symbols() []string { return append([]string(nil), s.cfg.Symbols...) }

// Connections returns the number of connection slots in the plan.
func (s *Stream) Connections() int { return len(s.shards) }

// Run connects, subscribes and ingests until ctx ends, Shutdown or Close is
// called, or a fatal error occurs. It returns nil after a requested stop,
// the publisher's error if the publisher failed, or ErrConnectionLost when
// Resilience.AutoReconnect is off and a connection was lost. Run may be
// called once; a second call returns ErrClosed.
func (s *Stream) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%w: Run may be called once", ErrClosed)
	}
	s.started = true
	s.pubCtx, s.pubCancel = context.WithCancel(ctx)
	s.ioCtx, s.ioCancel = context.WithCancelCause(s.pubCtx)
	s.mu.Unlock()
	defer close(s.done)
	defer s.pubCancel()

	s.log.Info("stream starting", "exchange", s.cfg.exName, "symbols", len(s.cfg.Symbols),
		"channels", s.cfg.Channels.String(), "connections", len(s.shards))
	if s.tsync != nil {
		s.goWork(func(ctx context.Context) { s.tsync.Run(ctx, s.cfg.Exchange) })
	}
	s.goWork(s.reportLoop)
	s.goWork(s.staleLoop)
	for _, sh := range s.shards {
		s.goWork(sh.pollOpenInterest)
	}
	s.resumeTrades(s.ioCtx)
	var wg sync.WaitGroup
	for _, sh := range s.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sh.run(s.ioCtx); err != nil {
				s.fatal(err)
			}
		}()
	}
	wg.Wait()
	s.ioCancel(ErrClosed)
	s.bg.Wait()
	s.mu.Lock()
	err := s.fatalErr
	s.mu.Unlock()
	if err != nil {
		s.log.Error("stream stopped", "exchange", s.cfg.exName, "err", err)
	} else {
		s.log.Info("stream stopped", "exchange", s.cfg.exName)
	}
	return err
}

// Shutdown stops the stream gracefully: connections are closed (each symbol
// is reported DISCONNECTED), frames already read are handed to the
// publisher, and Shutdown waits for Run to return. If ctx ends first, the
// publisher's pending call is cancelled and ctx.Err() is returned: the
// events it had not taken are not published by this stream (a
// *publisher.JetStream counts and logs them as abandoned). Trades
// held back for a running backfill at that moment are dropped (and logged).
func (s *Stream) Shutdown(ctx context.Context) error {
	if !s.stopRun() {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.pubCancel()
		<-s.done
		return ctx.Err()
	}
}

// Close stops the stream at once, cancelling a pending publisher call, and
// waits for Run to return.
func (s *Stream) Close() error {
	if !s.stopRun() {
		return nil
	}
	s.pubCancel()
	<-s.done
	return nil
}

// stopRun cancels the connections and workers of a running stream and
// reports true; before Run it marks the stream closed (Run then returns
// ErrClosed) and reports false.
func (s *Stream) stopRun() bool {
	s.mu.Lock()
	started := s.started
	s.closed = s.closed || !started
	s.mu.Unlock()
	if started {
		s.ioCancel(ErrClosed)
	}
	return started
}

// Snapshot returns a fresh order book snapshot of one of the stream's
// symbols, in the id series of the deltas the stream emits. It makes a
// Stream usable as the publisher's snapshot source for the control subject.
//
// For a BookRESTSnapshot venue (Binance) it is a REST snapshot, coalesced
// with concurrent requests and rate-limited with the stream's own resyncs;
// the caller publishes it. For a BookStreamSnapshot venue (Bybit) a REST
// snapshot is in another id series than the subscribed depth's deltas (its
// u is the 1000-level stream's), so the book is resubscribed instead and
// Snapshot returns the fresh WebSocket snapshot once the stream has emitted
// it (publishing it again is a duplicate by its Nats-Msg-Id). It waits
// until ctx ends for that snapshot: across a reconnect, the new
// subscription's first snapshot answers.
//
// It returns ErrUnknownExchange or ErrUnknownSymbol (wrapped) for requests
// that are not the stream's (for a stream-snapshot venue, also for a symbol
// without a book subscription), ctx's error, and the adapter's error
// otherwise.
func (s *Stream) Snapshot(ctx context.Context, exchange, symbol string) (Event, error) {
	if exchange != s.cfg.exName {
		return Event{}, fmt.Errorf("%w: %q (this stream is %q)", ErrUnknownExchange, exchange, s.cfg.exName)
	}
	sh, ok := s.symbols[symbol]
	if !ok {
		return Event{}, fmt.Errorf("%w: %s %q", ErrUnknownSymbol, exchange, symbol)
	}
	if s.cfg.Exchange.BookMode().streamed() {
		return sh.streamSnapshot(ctx, symbol)
	}
	return s.snaps.fetch(ctx, symbol, nil)
}

// hasBook reports whether the stream carries symbol's order book.
func (s *Stream) hasBook(symbol string) bool {
	_, ok := s.symbols[symbol]
	return ok && s.cfg.Channels&ChannelBook != 0
}

// Serves reports whether the stream carries symbol on exchange (the
// publisher's SymbolFilter: requests for other symbols are refused before
// any fetch).
func (s *Stream) Serves(exchange, symbol string) bool {
	_, ok := s.symbols[symbol]
	return ok && exchange == s.cfg.exName
}

// ClockOffset returns the last measured exchange clock minus local clock
// (0 when time sync is off or not yet measured).
func (s *Stream) ClockOffset() time.Duration {
	if s.tsync == nil {
		return 0
	}
	return s.tsync.Offset()
}

func (s *Stream) clockOffset() int64 { return int64(s.ClockOffset()) }

// Stats returns the stream's counters and the state of each connection.
func (s *Stream) Stats() Stats {
	var st Stats
	for _, sh := range s.shards {
		st.Frames += sh.ctr.frames.Load()
		st.Malformed += sh.ctr.malformed.Load()
		st.Reconnects += sh.ctr.reconnects.Load()
		st.Rotations += sh.ctr.rotations.Load()
		st.SilenceProbes += sh.ctr.silence.Load()
		st.SilentFeeds += sh.ctr.silent.Load()
		st.Superseded += sh.ctr.superseded.Load()
		st.StaleAlerts += sh.ctr.staleAlerts.Load()
		st.SnapshotBusy += sh.ctr.snapshotBusy.Load()
		for _, sym := range sh.list {
			c := &sym.ctr
			st.Received += c.received.Load()
			st.Emitted += c.emitted.Load()
			st.Duplicates += c.duplicates.Load()
			st.Gaps += c.gaps.Load()
			st.Snapshots += c.snapshots.Load()
			st.Backfilled += c.backfilled.Load()
			st.Missing += c.missing.Load()
			st.Dropped += c.dropped.Load()
		}
		st.Connections = append(st.Connections, sh.connStats())
	}
	return st
}

// States returns the current state of every symbol, as reported to the
// StateSink.
func (s *Stream) States() []SymbolState {
	var out []SymbolState
	for _, sh := range s.shards {
		for _, st := range sh.symbolStates(sh.stateName()) {
			if s.routed && s.carriers[st.Symbol][0] != sh {
				continue // merged into the first carrier's entry
			}
			out = append(out, s.mergedStates(sh, []SymbolState{st})...)
		}
	}
	return out
}

// reportLoop refreshes every symbol's state every StateInterval.
func (s *Stream) reportLoop(ctx context.Context) {
	if s.sink == nil {
		return
	}
	t := time.NewTicker(s.cfg.StateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, sh := range s.shards {
				sh.report()
			}
		}
	}
}

// fatal stops the stream with err (the first one wins).
func (s *Stream) fatal(err error) {
	s.mu.Lock()
	if s.fatalErr == nil {
		s.fatalErr = err
	}
	s.mu.Unlock()
	s.ioCancel(err)
}

// goWork runs f on a tracked goroutine with the stream's I/O context.
func (s *Stream) goWork(f func(ctx context.Context)) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f(s.ioCtx)
	}()
}

// goConn runs f on a tracked goroutine (connection loops).
func (s *Stream) goConn(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

// acquireQuiet takes the QuietCheck slot (one verification at a time: they
// are low priority REST traffic); false if ctx ended first.
func (s *Stream) acquireQuiet(ctx context.Context) bool {
	select {
	case s.quiet <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if s.quietRL != nil && s.quietRL.Acquire(ctx) != nil {
		<-s.quiet
		return false
	}
	return true
}

func (s *Stream) releaseQuiet() { <-s.quiet }
