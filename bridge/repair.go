package bridge

// The repair workers of a shard: trade backfill by id, the recent-trades
// backfill after a reconnect, order book snapshots, and the verification
// of symbols that stayed quiet after a suspect event. Each runs on its own
// goroutine (Stream.goWork), talks to the venue over REST without holding
// the shard's lock, and applies what it got under the lock.

import (
	"context"
	"errors"
)

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
	failures := newRetrier(restRetryInitial, restRetryMax)
	stuck := newRetrier(staleRetryInitial, staleRetryMax)
	// Missing ids are counted as soon as they are known, before the trades
	// after them are published: whoever sees those trades also sees the
	// count. The total is logged once when the repair ends.
	var missing int64
	countMissing := func(n int64) {
		if n > 0 {
			sym.ctr.missing.Add(uint64(n))
			missing += n
		}
	}
	defer func() {
		if missing > 0 {
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
		countMissing(skipped)
		sh.unlockPublish()
		if skipped > 0 {
			sym.log.Error("trade gap longer than BackfillMax: the oldest trades are not fetched", "skipped", skipped, "from", from)
		}
		giveUp := func(why string, err error) {
			sh.mu.Lock()
			n := t.declareMissing(holeEnd)
			countMissing(n)
			sh.mu.Unlock()
			sym.log.Error("trade backfill gave up on a hole", "why", why, "from", from, "to", holeEnd, "count", n, "err", err)
			failures.reset()
			stuck.reset()
		}
		page, err := cfg.Exchange.Trades(ctx, sym.name, from, limit)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrNotSupported) || failures.failures() >= 5 {
				giveUp("request failed", err)
				continue
			}
			sym.log.Warn("trade backfill request failed; retrying", "from", from, "attempt", failures.failures()+1, "err", err)
			if failures.wait(ctx, err) != nil {
				return
			}
			continue
		}
		failures.reset()
		for i := range page {
			sh.stamp(&page[i])
		}
		sh.mu.Lock()
		before := t.seq.Last()
		var n int64
		sh.out, n, done = t.merge(page, sh.out, &sym.ctr)
		progressed := t.seq.Last() != before
		countMissing(n)
		sh.unlockPublish()
		if done {
			return
		}
		if !progressed {
			// The venue has nothing at from yet (REST behind the stream):
			// retry briefly, then give up on the hole.
			if stuck.failures() >= 3 {
				giveUp("venue returned no trades for the range", nil)
				continue
			}
			if stuck.wait(ctx, nil) != nil {
				return
			}
			continue
		}
		stuck.reset()
	}
}

// recentRepair is the best-effort backfill for venues without consecutive
// trade ids: after a reconnect, fetch the most recent trades and emit those
// newer than the last one emitted. A connection that opens meanwhile joins
// the repair (tradeSync.startRecent): the answer is applied, and the repair
// fetches again once that connection is subscribed, since the answer may
// predate its feed.
func (sh *shard) recentRepair(ctx context.Context, sym *symbol) {
	rt := sh.st.cfg.Exchange.(RecentTrader)
	t := &sym.trades
	for {
		var recent []Event
		var err error
		retry := newRetrier(restRetryInitial, restRetryMax)
		for attempt := 1; attempt <= 3; attempt++ {
			recent, err = rt.RecentTrades(ctx, sym.name, sh.st.cfg.RecentTradesLimit)
			if err == nil || ctx.Err() != nil || attempt == 3 {
				break
			}
			if retry.wait(ctx, err) != nil {
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		now := sh.st.now()
		var next recentNext
		if err != nil {
			sh.mu.Lock()
			sh.out, next = t.abortRecent(now, sh.out, &sym.ctr)
			if next == recentDone {
				// Counted before the replayed trades are published.
				sym.ctr.gaps.Add(1)
			}
			sh.unlockPublish()
			if next != recentDone {
				sym.log.Warn("recent-trades backfill failed; a new connection's backfill follows", "err", err)
				if next == recentHandOver {
					return
				}
				continue
			}
			sym.log.Warn("recent-trades backfill failed; trades missed during the reconnect may be lost", "err", err)
			return
		}
		for i := range recent {
			sh.stamp(&recent[i])
		}
		before := sym.ctr.backfilled.Load()
		var short bool
		sh.mu.Lock()
		sh.out, short, next = t.finishRecent(recent, now, sh.out, &sym.ctr)
		lastID := t.lastID
		if short {
			// Counted before the trades after the loss are published (the
			// backfilled ones may be in an earlier batch already).
			sym.ctr.gaps.Add(1)
			sym.ctr.missing.Add(1)
		}
		sh.unlockPublish()
		if short {
			// The venue's recent-trade window (Bybit: 60 spot, 1000 linear) does
			// not reach back to the last trade emitted: trades between are lost.
			// Their ids are not consecutive, so the number is unknown: count the
			// lower bound, one, where every loss is counted.
			sym.log.Error("trades missed and not recoverable: the venue's recent trades do not reach back to the last trade emitted (count unknown, at least 1)",
				"last_id", lastID, "limit", sh.st.cfg.RecentTradesLimit)
		}
		if n := sym.ctr.backfilled.Load() - before; n > 0 {
			sym.log.Info("backfilled recent trades after reconnect", "count", n)
		}
		switch next {
		case recentRefetch:
			sym.log.Debug("a connection subscribed during the recent-trades backfill; fetching again")
		case recentHandOver:
			sym.log.Debug("a connection is subscribing during the recent-trades backfill; it fetches again")
			return
		default:
			return
		}
	}
}

// bookRepair obtains a snapshot for a BookRESTSnapshot book (through the
// SnapshotRequester when configured, else by fetching and emitting it) and
// resumes the book, repeating while the snapshot is too old.
func (sh *shard) bookRepair(ctx context.Context, sym *symbol) {
	st := sh.st
	failed := newRetrier(restRetryInitial, restRetryMax)
	tooOld := newRetrier(staleRetryInitial, staleRetryMax)
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
		var busy RetryDelayer
		switch {
		case err != nil && st.req != nil && errors.As(err, &busy):
			// Refused for load: not a failure; ask again after the
			// delay the refusal named (at least the backoff's).
			sh.ctr.snapshotBusy.Add(1)
			sym.log.Debug("order book snapshot request refused as busy; retrying", "retry_after", busy.RetryDelay(), "err", err)
			if n, total := st.busyLog.refused(st.now()); n > 0 {
				st.log.Warn("snapshot service busy; book repairs ask again after its retry_after",
					"refusals", n, "refusals_total", total, "retry_after", busy.RetryDelay(), "symbol", sym.name)
			}
			if failed.wait(ctx, err) != nil {
				return
			}
			continue
		case err != nil:
			sym.log.Warn("order book snapshot failed; retrying", "attempt", failed.failures()+1, "err", err)
			if failed.wait(ctx, err) != nil {
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
		sym.log.Debug("order book snapshot older than the buffered deltas; fetching again", "last_id", lastID)
		if tooOld.wait(ctx, nil) != nil {
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
	var missing int64 // counted before the trades after them are published
	defer func() {
		if missing > 0 {
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
		if n > 0 {
			sym.ctr.missing.Add(uint64(n))
			missing += n
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
