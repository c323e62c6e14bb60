package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// run is the supervisor of one connection slot, the single owner of its
// reconnect loop: connect (DISCONNECTED -> CONNECTING -> CONNECTED), serve
// until the connection is lost (rotating it make-before-break on age or
// server shutdown), reconnect with backoff (CONNECTED -> RECONNECTING ->
// CONNECTED), and after MaxReconnectAttempts failures report FAILED and keep
// retrying at ReconnectDelayMax cadence (FAILED -> CONNECTING): a feed never
// stops for good while the stream runs. It returns when ctx ends (nil) or,
// with AutoReconnect off, when the connection is lost (ErrConnectionLost).
func (sh *shard) run(ctx context.Context) error {
	defer sh.finish()
	rm, err := resilience.NewReconnectionManager(sh.st.cfg.reconnectConfig())
	if err != nil {
		return fmt.Errorf("%w: reconnect: %w", ErrConfig, err)
	}
	sh.transition(resilience.Connecting, nil)
	c, err := sh.connect(ctx, rm, false)
	for c != nil {
		lost := sh.serve(ctx, c)
		if ctx.Err() != nil {
			return nil
		}
		sh.ctr.reconnects.Add(1)
		sh.transition(resilience.Reconnecting, lost)
		if !sh.st.cfg.res.AutoReconnect {
			return fmt.Errorf("%w: %s: %w", ErrConnectionLost, sh.currentConnID(), lost)
		}
		sh.log.Warn("connection lost; reconnecting", "conn", sh.currentConnID(), "err", lost)
		c, err = sh.connect(ctx, rm, true)
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// connect establishes a new primary connection, retrying with backoff.
// It returns nil when ctx ends, or an error when AutoReconnect is off and
// the attempt failed.
func (sh *shard) connect(ctx context.Context, rm *resilience.ReconnectionManager, reconnect bool) (*conn, error) {
	cfg := sh.st.cfg
	failed := false
	var wait time.Duration
	for attempt := 0; ; attempt++ {
		if attempt > 0 || reconnect {
			d := rm.Delay()
			if failed {
				max := rm.Config().MaxDelay
				d = max/2 + rand.N(max/2+1)
			}
			if wait > d {
				d = wait // the venue's Retry-After
			}
			if resilience.Sleep(ctx, d) != nil {
				return nil, nil
			}
		}
		if failed {
			sh.transition(resilience.Connecting, nil)
		}
		c, err := sh.open(ctx, reconnect)
		if err == nil {
			rm.RecordSuccess()
			sh.setAttempt(0, nil)
			sh.transition(resilience.Connected, nil)
			sh.log.Info("connected", "conn", c.id, "topics", len(sh.topics))
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if !cfg.res.AutoReconnect {
			return nil, fmt.Errorf("%w: %s: %w", ErrConnectionLost, sh.currentConnID(), err)
		}
		wait = 0
		var rl *RateLimitError
		if errors.As(err, &rl) {
			wait = rl.RetryAfter
		}
		rm.RecordFailure()
		sh.setAttempt(rm.Attempts(), err)
		switch {
		case failed:
			sh.transition(resilience.Failed, err)
			sh.log.Warn("connection attempt failed; retrying slowly", "attempt", rm.Attempts(), "err", err)
		case !rm.ShouldReconnect():
			failed = true
			sh.transition(resilience.Failed, err)
			sh.log.Error("connection failed after the maximum attempts; retrying at the maximum delay",
				"attempts", rm.Attempts(), "err", err)
		default:
			sh.report()
			sh.log.Warn("connection attempt failed; retrying", "attempt", rm.Attempts(), "err", err)
		}
	}
}

// open dials, registers the new connection as primary, starts it and
// subscribes.
func (sh *shard) open(ctx context.Context, reconnect bool) (*conn, error) {
	c, err := sh.dialNext(ctx)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	sh.primary = c
	recent := sh.onNewPrimary(c, reconnect)
	c.start() // under mu: its first frames wait for the symbols to be prepared
	sh.mu.Unlock()
	sh.setConnID(c.id)
	if err := c.subscribe(ctx, sh.topics); err != nil {
		if ctx.Err() != nil {
			c.fail(err)
		} else {
			c.closeAfterDrain(err) // topics subscribed by the first frames may have delivered already
		}
		<-c.done
		sh.mu.Lock()
		if sh.primary == c {
			sh.primary = nil
		}
		for _, sym := range recent {
			sh.out = sym.trades.recentCanceled(sh.st.now(), sh.out, &sym.ctr)
		}
		sh.unlockPublish()
		return nil, err
	}
	if len(recent) > 0 {
		// Answers taken from now on cover what the connection's feed does
		// not: start the repairs, or make the running ones fetch again.
		sh.mu.Lock()
		for _, sym := range recent {
			if sym.trades.recentSubscribed() {
				sh.st.goWork(func(ctx context.Context) { sh.recentRepair(ctx, sym) })
			}
		}
		sh.mu.Unlock()
	}
	return c, nil
}

// dialNext waits for the stream's connect gate and dials the shard's next
// connection (not yet registered or started).
func (sh *shard) dialNext(ctx context.Context) (*conn, error) {
	if err := sh.st.gate.wait(ctx); err != nil {
		return nil, err
	}
	return dial(ctx, sh, sh.env, sh.nextConnID())
}

// candResult is the outcome of opening a rotation's replacement.
type candResult struct {
	c   *conn
	err error
}

// openCandidate dials the replacement connection of a rotation, registers
// it as the candidate, starts and subscribes it.
func (sh *shard) openCandidate(ctx context.Context, old *conn) (*conn, error) {
	c, err := sh.dialNext(ctx)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	if sh.primary != old || sh.cand != nil {
		// The connection to replace is gone (reconnected meanwhile).
		sh.mu.Unlock()
		c.closeGraceful(errRotated)
		return nil, errRotationObsolete
	}
	sh.cand = c
	sh.rot = newRotation(sh)
	c.start()
	sh.mu.Unlock()
	if err := c.subscribe(ctx, sh.topics); err != nil {
		sh.dropCandidate(c, err)
		return nil, err
	}
	sh.mu.Lock()
	still := sh.cand == c && sh.rot != nil
	if still {
		sh.rot.setSubscribed(sh)
	}
	sh.mu.Unlock()
	if !still { // abandoned meanwhile (the primary was lost)
		c.closeGraceful(errRotationObsolete)
		return nil, errRotationObsolete
	}
	return c, nil
}

// dropCandidate abandons a rotation's replacement.
func (sh *shard) dropCandidate(c *conn, err error) {
	sh.mu.Lock()
	if sh.cand == c {
		sh.cand, sh.rot = nil, nil
		select { // a stale readiness signal must not promote the next candidate
		case <-sh.rotReady:
		default:
		}
	}
	sh.mu.Unlock()
	c.closeGraceful(err)
}

// promote completes a rotation: the replacement becomes primary, its
// buffered events are replayed through the sequence logic (dropping what
// the old connection already emitted) and the old connection is closed.
func (sh *shard) promote(reason string) *conn {
	sh.mu.Lock()
	old, c, rot := sh.primary, sh.cand, sh.rot
	sh.primary, sh.cand, sh.rot = c, nil, nil
	for i := range rot.buf {
		sh.process(&rot.buf[i])
	}
	open, seen := len(rot.open), len(rot.seen)
	sh.unlockPublish()
	select {
	case <-sh.rotReady:
	default:
	}
	sh.ctr.rotations.Add(1)
	sh.setConnID(c.id)
	sh.report()
	if old != nil {
		old.closeGraceful(errRotated)
	}
	args := []any{"old", idOf(old), "new", c.id, "reason", reason, "replayed", len(rot.buf),
		"keys", rot.total, "keys_quiet", rot.total - seen}
	if open > 0 || rot.overflow {
		sh.log.Warn("rotation completed without full overlap; gap repair covers the rest",
			append(args, "keys_not_overlapped", open, "overflow", rot.overflow)...)
	} else {
		sh.log.Info("rotated connection (make-before-break)", args...)
	}
	return c
}

var (
	errRotated          = errors.New("bridge: connection replaced by rotation")
	errRotationObsolete = errors.New("bridge: rotation abandoned: the connection to replace is gone")
)

func idOf(c *conn) string {
	if c == nil {
		return ""
	}
	return c.id
}

// serve runs while c is the primary connection: it rotates it before the
// venue's age limit and on server shutdown announcements, and returns the
// error that ended the last primary (nil when ctx ends).
func (sh *shard) serve(ctx context.Context, c *conn) error {
	cfg := sh.st.cfg
	var (
		rotTimer *time.Timer
		rotC     <-chan time.Time
		overlapT *time.Timer
		overlapC <-chan time.Time
		candCh   = make(chan candResult, 1)
		cand     *conn
		dialing  bool
		rotRetry = newRetrier(rotationRetryInitial, rotationRetryMax)
	)
	armRotation := func(d time.Duration) {
		if rotTimer != nil {
			rotTimer.Stop()
			rotC = nil
		}
		if cfg.RotationAge > 0 {
			rotTimer = time.NewTimer(max(d, 0))
			rotC = rotTimer.C
		}
	}
	stopOverlap := func() {
		if overlapT != nil {
			overlapT.Stop()
			overlapT, overlapC = nil, nil
		}
	}
	ageDelay := func(c *conn) time.Duration {
		// Spread rotations of shards opened together by up to 1% of the age.
		jitter := time.Duration(rand.Int64N(int64(cfg.RotationAge)/100 + 1))
		return time.Until(c.opened.Add(cfg.RotationAge - jitter))
	}
	armRotation(ageDelay(c))
	// A shutdown announcement of an earlier connection is stale.
	select {
	case <-sh.shutdownCh:
	default:
	}
	defer func() {
		if rotTimer != nil {
			rotTimer.Stop()
		}
		stopOverlap()
		// Abandon a rotation in progress, including a replacement still
		// being dialed (it finds no primary to replace and closes itself).
		sh.mu.Lock()
		pending := sh.cand
		sh.cand, sh.rot = nil, nil
		select {
		case <-c.done: // lost: no primary until the reconnect registers one
			if sh.primary == c {
				sh.primary = nil
			}
		default: // stopping: finish closes the primary
		}
		sh.mu.Unlock()
		if pending != nil {
			pending.closeGraceful(context.Canceled)
		}
	}()
	// takeOver promotes the candidate and schedules the new primary's
	// rotation.
	takeOver := func(reason string) {
		stopOverlap()
		c = sh.promote(reason)
		cand = nil
		armRotation(ageDelay(c))
	}
	// retryRotation schedules another attempt after a failed replacement,
	// backing off up to 30s.
	retryRotation := func(err error) time.Duration {
		d := rotRetry.fail(err)
		armRotation(d)
		return d
	}
	startRotation := func(reason string) {
		if dialing || cand != nil {
			return
		}
		dialing = true
		old := c
		sh.log.Info("starting make-before-break rotation", "conn", c.id, "reason", reason)
		sh.st.goWork(func(ctx context.Context) {
			nc, err := sh.openCandidate(ctx, old)
			candCh <- candResult{nc, err}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var candDone <-chan struct{}
		if cand != nil {
			candDone = cand.done
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.done:
			if cand != nil && sh.candidateSubscribed(cand) {
				takeOver("old connection ended")
				continue
			}
			return c.cause()
		case <-rotC:
			rotC = nil
			startRotation("connection age")
		case <-sh.shutdownCh:
			startRotation("server shutdown")
		case r := <-candCh:
			dialing = false
			if r.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d := retryRotation(r.err)
				sh.log.Warn("rotation: replacement connection failed; retrying", "err", r.err, "in", d)
				continue
			}
			rotRetry.reset()
			cand = r.c
			overlapT = time.NewTimer(cfg.OverlapTimeout)
			overlapC = overlapT.C
		case <-candDone:
			err := cand.cause()
			sh.dropCandidate(cand, err)
			cand = nil
			stopOverlap()
			retryRotation(err)
			sh.log.Warn("rotation: replacement connection ended before taking over; retrying", "err", err)
		case <-sh.rotReady:
			if cand != nil {
				takeOver("overlap complete")
			}
		case <-overlapC:
			overlapT, overlapC = nil, nil
			if cand != nil {
				takeOver("overlap timeout")
			}
		case <-tick.C:
			sh.housekeeping()
		}
	}
}

func (sh *shard) candidateSubscribed(c *conn) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.cand == c && sh.rot != nil && sh.rot.subscribed
}

// finish closes the shard's connections and reports DISCONNECTED for every
// symbol, whether or not the state machine allows the transition.
func (sh *shard) finish() {
	sh.mu.Lock()
	p, cnd := sh.primary, sh.cand
	sh.primary, sh.cand, sh.rot = nil, nil, nil
	sh.mu.Unlock()
	for _, c := range []*conn{p, cnd} {
		if c != nil {
			c.closeGraceful(ErrClosed)
			<-c.done
		}
	}
	sh.stMu.Lock()
	if err := sh.sm.Transition(resilience.Disconnected); err != nil {
		sh.log.Debug("final state transition not in the state diagram; reporting DISCONNECTED anyway", "from", sh.sm.State())
	}
	sh.since = sh.st.now()
	sh.final = true
	sh.stMu.Unlock()
	sh.reportState(resilience.Disconnected.String())
}
