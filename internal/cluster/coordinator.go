package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// stateConnected is the md_state state that completes a handover.
const stateConnected = "CONNECTED"

// Runner carries units: the Coordinator tells it which to start and which
// to stop. Both are called from the Coordinator's goroutine only and should
// return quickly (start work in the background).
type Runner interface {
	// StartUnits starts carrying units (none of them is running).
	StartUnits(ctx context.Context, units []Unit) error
	// StopUnits stops carrying units (all of them are running) and removes
	// this instance's md_state entries for them.
	StopUnits(ctx context.Context, units []Unit) error
}

// Stats are a Coordinator's counters and gauges.
type Stats struct {
	Members     int    // live members in this replica's view, itself included
	Owned       int    // units this replica is assigned
	Releasing   int    // units lost but still running (handover in progress)
	BelowR      int    // units with fewer than min(R, members) live CONNECTED owners in md_state
	Gained      uint64 // units started
	Handovers   uint64 // lost units released after their new owners were CONNECTED
	Timeouts    uint64 // lost units released at HandoverTimeout
	Frozen      bool   // own entry could not be refreshed: assignment held
	Reconciles  uint64
	RunnerFails uint64 // StartUnits/StopUnits errors
	Units       int    // units of the subscription set (all replicas)
	Retired     uint64 // running units stopped because the subscription set dropped them
	Restarted   uint64 // running units restarted because their channels changed
	Rewatches   uint64 // membership and md_state watches set up again (ended, or a NATS reconnect)
}

// ownerState is one md_state entry: the unit's state on one instance.
type ownerState struct {
	unit     Unit
	instance string
	state    string
	updated  time.Time
}

// Coordinator keeps a replica's share of the units running; see the
// package documentation.
type Coordinator struct {
	cfg     Config
	members jetstream.KeyValue
	states  jetstream.KeyValue
	runner  Runner
	log     *slog.Logger
	now     func() time.Time
	units   []Unit
	unitSet map[Unit]bool
	started time.Time

	putMu      sync.Mutex // one write of the own entry at a time
	mu         sync.Mutex
	seen       map[string]time.Time // member instance → last seen (local clock)
	keyOf      map[string]string    // member key → instance
	byKey      map[string]*ownerState
	byUnit     map[Unit]map[string]*ownerState
	running    map[Unit]bool
	releasing  map[Unit]time.Time // lost units still running, since when
	lastPut    time.Time          // last successful refresh of the own entry
	lastEcho   time.Time          // when the membership watch last delivered the own entry
	readySince time.Time          // when the oldest unreleased ready handover became ready
	draining   bool
	stats      Stats
	runOnce    bool

	// SetUnits' pending change, applied by the next reconcile
	pendingSet     bool
	pendingUnits   []Unit
	pendingRestart []Unit
	wake           chan struct{}
}

// New builds a Coordinator on the membership bucket (from EnsureBucket) and
// the md_state bucket. A nil logger discards. Errors wrap ErrConfig.
func New(cfg Config, members, states jetstream.KeyValue, runner Runner, logger *slog.Logger) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if members == nil || states == nil || runner == nil {
		return nil, fmt.Errorf("%w: buckets and runner are required", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	c := &Coordinator{
		cfg: cfg, members: members, states: states, runner: runner,
		log: logger.With("component", "cluster"), now: time.Now,
		unitSet: map[Unit]bool{}, seen: map[string]time.Time{}, keyOf: map[string]string{},
		byKey: map[string]*ownerState{}, byUnit: map[Unit]map[string]*ownerState{},
		running: map[Unit]bool{}, releasing: map[Unit]time.Time{},
		wake: make(chan struct{}, 1),
	}
	for _, u := range cfg.Units {
		if !c.unitSet[u] {
			c.unitSet[u] = true
			c.units = append(c.units, u)
		}
	}
	slices.SortFunc(c.units, compareUnits)
	c.stats.Units = len(c.units)
	return c, nil
}

// SetUnits replaces the units to spread (runtime subscription changes).
// The next reconcile, at once if Run is past its settling, stops the
// running units no longer in units at once (nobody is to carry them: no
// handover), starts the new ones this replica is assigned, and restarts
// (stop, then start) the running units of restart, whose channels changed.
// It does not block.
func (c *Coordinator) SetUnits(units []Unit, restart []Unit) {
	c.mu.Lock()
	c.pendingSet = true
	c.pendingUnits = slices.Clone(units)
	c.pendingRestart = append(c.pendingRestart, restart...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// applyUnits applies SetUnits' pending change; it returns the running
// units to stop for good and those to restart. c.mu held.
func (c *Coordinator) applyUnits() (gone, restart []Unit) {
	if !c.pendingSet {
		return nil, nil
	}
	set := map[Unit]bool{}
	var units []Unit
	for _, u := range c.pendingUnits {
		if !set[u] {
			set[u] = true
			units = append(units, u)
		}
	}
	slices.SortFunc(units, compareUnits)
	for u := range c.running {
		if !set[u] {
			gone = append(gone, u)
		}
	}
	slices.SortFunc(gone, compareUnits)
	for _, u := range c.pendingRestart {
		if set[u] && c.running[u] && !slices.Contains(restart, u) {
			restart = append(restart, u)
		}
	}
	for u := range c.byUnit {
		if !set[u] {
			for k, os := range c.byKey {
				if os.unit == u {
					delete(c.byKey, k)
				}
			}
			delete(c.byUnit, u)
		}
	}
	c.units, c.unitSet = units, set
	c.pendingSet, c.pendingUnits, c.pendingRestart = false, nil, nil
	c.stats.Units = len(units)
	return gone, restart
}

// Run announces the replica, follows the membership and md_state buckets
// and keeps the runner's units equal to this replica's assignment until ctx
// ends. It returns an error if the first announcement or a watch cannot be
// set up; afterwards NATS failures are logged and retried, and the replica
// freezes its assignment while it cannot refresh its own entry.
func (c *Coordinator) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.runOnce {
		c.mu.Unlock()
		return errors.New("cluster: Run called twice")
	}
	c.runOnce = true
	c.started = c.now()
	c.mu.Unlock()
	if err := c.announce(ctx); err != nil {
		return fmt.Errorf("cluster: announcing %s in %s: %w", c.cfg.Instance, c.cfg.Bucket, err)
	}
	mw, err := c.members.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("cluster: watching %s: %w", c.cfg.Bucket, err)
	}
	swCtx, swCancel := context.WithCancel(ctx)
	sw, err := publisher.WatchStates(swCtx, c.states, "", publisher.WithStaleAfter(c.cfg.StaleAfter))
	if err != nil {
		swCancel()
		_ = mw.Stop()
		return fmt.Errorf("cluster: %w", err)
	}
	// Watches that end (a consumer lost with the connection) are set up
	// again; the loop below only sees their entries.
	memberCh := make(chan jetstream.KeyValueEntry, 64)
	stateCh := make(chan publisher.StateEntry, 256)
	go c.followMembers(ctx, mw, memberCh, c.reconnects())
	go c.followStates(ctx, sw, swCancel, stateCh, c.reconnects())
	var announcing atomic.Bool
	hb := time.NewTicker(c.cfg.Heartbeat)
	defer hb.Stop()
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	// The first assignment waits one heartbeat after the initial member
	// list, so that replicas starting together see each other first.
	var settle <-chan time.Time
	settled := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-memberCh:
			if e == nil {
				if !settled && settle == nil {
					settle = time.After(c.cfg.Heartbeat)
				}
				continue
			}
			if c.memberEvent(e) && settled {
				c.reconcile(ctx)
			}
		case se := <-stateCh:
			c.stateEvent(se)
		case <-c.wake:
			if settled {
				c.reconcile(ctx)
			}
		case <-settle:
			settle, settled = nil, true
			c.reconcile(ctx)
		case <-hb.C:
			// A slow put must not hold the loop: one refresh at a time,
			// in the background.
			if !announcing.Load() {
				announcing.Store(true)
				go func() {
					defer announcing.Store(false)
					if err := c.announce(ctx); err != nil && ctx.Err() == nil {
						c.log.Warn("cannot refresh the membership entry", "bucket", c.cfg.Bucket, "err", err)
					}
				}()
			}
		case <-tick.C:
			if settled {
				c.reconcile(ctx)
			}
		}
	}
}

// rewatchDelay is the pause before a watch that ended is set up again.
const rewatchDelay = time.Second

// reconnects returns a new listener of the connection's reconnects (nil,
// never ready, without Config.Conn); its reader removes it
// (stopListening).
func (c *Coordinator) reconnects() chan nats.Status {
	if c.cfg.Conn == nil {
		return nil
	}
	return c.cfg.Conn.StatusChanged(nats.CONNECTED)
}

// stopListening removes a reconnect listener.
func (c *Coordinator) stopListening(ch chan nats.Status) {
	if ch != nil {
		c.cfg.Conn.RemoveStatusListener(ch)
	}
}

func (c *Coordinator) rewatched() {
	c.mu.Lock()
	c.stats.Rewatches++
	c.mu.Unlock()
}

// followMembers forwards the membership watch's entries (nil marks the end
// of the initial values) to out, setting the watch up again when it ends
// (after rewatchDelay) or the connection reconnects (at once), until ctx
// ends. A new watch delivers the current entries again, as after a cut.
func (c *Coordinator) followMembers(ctx context.Context, w jetstream.KeyWatcher, out chan<- jetstream.KeyValueEntry, reconnected chan nats.Status) {
	defer c.stopListening(reconnected)
	for {
		again := false
	forward:
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					break forward
				}
				select {
				case out <- e:
				case <-ctx.Done():
					_ = w.Stop()
					return
				}
			case <-reconnected:
				again = true
				break forward
			case <-ctx.Done():
				_ = w.Stop()
				return
			}
		}
		_ = w.Stop()
		for {
			if !again && resilience.Sleep(ctx, rewatchDelay) != nil {
				return
			}
			again = false
			var err error
			if w, err = c.members.WatchAll(ctx); err == nil {
				break
			}
			c.log.Warn("cannot watch the membership bucket; retrying", "bucket", c.cfg.Bucket, "err", err)
		}
		c.rewatched()
		c.log.Info("membership watch set up again", "bucket", c.cfg.Bucket)
	}
}

// followStates forwards md_state entries to out, setting the watch up
// again when it ends (after rewatchDelay) or the connection reconnects
// (at once: the old watch is cancelled), until ctx ends.
func (c *Coordinator) followStates(ctx context.Context, ch <-chan publisher.StateEntry, cancel context.CancelFunc, out chan<- publisher.StateEntry, reconnected chan nats.Status) {
	defer c.stopListening(reconnected)
	defer func() { cancel() }()
	for {
		again := false
	forward:
		for {
			select {
			case se, ok := <-ch:
				if !ok {
					break forward
				}
				select {
				case out <- se:
				case <-ctx.Done():
					return
				}
			case <-reconnected:
				again = true
				break forward
			case <-ctx.Done():
				return
			}
		}
		cancel()
		for {
			if !again && resilience.Sleep(ctx, rewatchDelay) != nil {
				return
			}
			again = false
			wctx, wcancel := context.WithCancel(ctx)
			var err error
			if ch, err = publisher.WatchStates(wctx, c.states, "", publisher.WithStaleAfter(c.cfg.StaleAfter)); err == nil {
				cancel = wcancel
				break
			}
			wcancel()
			c.log.Warn("cannot watch md_state; retrying", "err", err)
		}
		c.rewatched()
		c.log.Info("md_state watch set up again")
	}
}

// announce writes the own membership entry.
func (c *Coordinator) announce(ctx context.Context) error {
	c.putMu.Lock()
	defer c.putMu.Unlock()
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		return nil
	}
	m := Member{
		Instance: c.cfg.Instance, Started: c.started, Updated: c.now(),
		Redundancy: c.cfg.Redundancy, Units: len(c.running) - len(c.releasing), Releasing: len(c.releasing),
	}
	c.mu.Unlock()
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Expiry/2)
	defer cancel()
	if _, err := c.members.Put(ctx, MemberKey(c.cfg.Instance), body); err != nil {
		return err
	}
	c.mu.Lock()
	c.lastPut = c.now()
	c.mu.Unlock()
	return nil
}

// memberEvent records a membership change; it reports whether the set of
// members changed.
func (c *Coordinator) memberEvent(e jetstream.KeyValueEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		inst, ok := c.keyOf[e.Key()]
		if !ok {
			return false
		}
		delete(c.keyOf, e.Key())
		_, was := c.seen[inst]
		delete(c.seen, inst)
		if was {
			c.log.Info("member left", "member", inst)
		}
		return was
	}
	var m Member
	if err := json.Unmarshal(e.Value(), &m); err != nil || m.Instance == "" {
		return false
	}
	c.keyOf[e.Key()] = m.Instance
	if m.Instance == c.cfg.Instance {
		now := c.now()
		if !c.lastEcho.IsZero() && now.Sub(c.lastEcho) > c.cfg.Expiry-c.cfg.Heartbeat {
			// The watch was silent (cut off, or set up again): the
			// others' entries it delivers next may come after this
			// one. Each gets a fresh Expiry to show up before it can
			// expire.
			for m := range c.seen {
				c.seen[m] = now
			}
		}
		c.lastEcho = now
	}
	if m.Draining {
		_, was := c.seen[m.Instance]
		delete(c.seen, m.Instance)
		return was
	}
	_, was := c.seen[m.Instance]
	c.seen[m.Instance] = c.now()
	if !was && m.Instance != c.cfg.Instance {
		c.log.Info("member joined", "member", m.Instance)
	}
	return !was
}

// stateEvent records an md_state entry.
func (c *Coordinator) stateEvent(se publisher.StateEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byKey[se.Key]; old != nil && (se.Deleted || se.Err != nil) {
		delete(c.byKey, se.Key)
		if m := c.byUnit[old.unit]; m != nil && m[old.instance] == old {
			delete(m, old.instance)
		}
		return
	}
	if se.Deleted || se.Err != nil {
		return
	}
	st := se.State
	u := Unit{Market: st.Exchange, Symbol: st.Symbol}
	if !c.unitSet[u] {
		return
	}
	os := c.byKey[se.Key]
	if os == nil {
		os = &ownerState{unit: u, instance: st.Instance}
		c.byKey[se.Key] = os
		if c.byUnit[u] == nil {
			c.byUnit[u] = map[string]*ownerState{}
		}
		c.byUnit[u][st.Instance] = os
	}
	os.state, os.updated = st.State, st.Updated
}

// live returns the live members (itself included unless draining). c.mu held.
//
// A member expires once it has been silent for Expiry while the membership
// watch demonstrably worked: the watch delivered this replica's own entry
// more than Expiry after the member's last one. A replica whose watch is
// cut off from NATS hears nobody, itself included, so it expires nobody:
// it would otherwise, in the moments before it notices it cannot refresh
// its own entry (it freezes then), see itself alone and start every unit.
// While draining (no own refreshes, nothing started) silence alone counts.
func (c *Coordinator) live(now time.Time) []string {
	out := make([]string, 0, len(c.seen)+1)
	for m, t := range c.seen {
		if m == c.cfg.Instance {
			continue
		}
		if now.Sub(t) > c.cfg.Expiry && (c.draining || c.lastEcho.Sub(t) > c.cfg.Expiry) {
			delete(c.seen, m)
			c.log.Info("member expired", "member", m, "silent_for", now.Sub(t).Round(time.Millisecond))
			continue
		}
		out = append(out, m)
	}
	if !c.draining {
		out = append(out, c.cfg.Instance)
	}
	slices.Sort(out)
	return out
}

// connected reports whether instance reports u CONNECTED, freshly. c.mu held.
func (c *Coordinator) connected(u Unit, instance string, now time.Time) bool {
	os := c.byUnit[u][instance]
	return os != nil && os.state == stateConnected && now.Sub(os.updated) <= c.cfg.StaleAfter
}

// reconcile brings the runner's units to the assignment.
func (c *Coordinator) reconcile(ctx context.Context) {
	c.mu.Lock()
	gone, restart := c.applyUnits()
	c.mu.Unlock()
	c.changeUnits(ctx, gone, restart)
	c.mu.Lock()
	now := c.now()
	c.stats.Reconciles++
	live := c.live(now)
	frozen := !c.draining && now.Sub(c.lastPut) > c.cfg.Expiry
	if frozen != c.stats.Frozen {
		if frozen {
			c.log.Warn("cannot refresh the membership entry; holding the current units", "last_refresh", c.lastPut)
		} else {
			c.log.Info("membership entry refreshed again; reconciling")
		}
		c.stats.Frozen = frozen
	}
	var start, ready, expired []Unit
	below, owned, losing := 0, 0, 0
	want := min(c.cfg.Redundancy, len(live))
	if c.draining {
		want = min(c.cfg.Redundancy, len(live)+1)
	}
	for _, u := range c.units {
		owners := Owners(u, live, c.cfg.Redundancy)
		n := 0
		for _, m := range live {
			if c.connected(u, m, now) {
				n++
			}
		}
		if n < want {
			below++
		}
		mine := slices.Contains(owners, c.cfg.Instance)
		if mine {
			owned++
		}
		if frozen {
			continue
		}
		switch {
		case mine && !c.running[u]:
			start = append(start, u)
		case mine:
			delete(c.releasing, u)
		case c.running[u]:
			losing++
			since, ok := c.releasing[u]
			if !ok {
				c.releasing[u] = now
				since = now
			}
			done := true
			for _, o := range owners {
				if !c.connected(u, o, now) {
					done = false
					break
				}
			}
			if done {
				ready = append(ready, u)
			} else if now.Sub(since) >= c.cfg.HandoverTimeout {
				c.log.Warn("handover timed out; releasing the unit", "unit", u.String(), "new_owners", owners, "waited", now.Sub(since).Round(time.Millisecond))
				expired = append(expired, u)
			}
		}
	}
	// Releases are batched: releasing part of a stream restarts the rest
	// of it, so the units whose new owners are ready go together, once all
	// lost units are ready or a heartbeat after the first was.
	var stop []Unit
	if len(ready) == 0 {
		c.readySince = time.Time{}
	} else if c.readySince.IsZero() {
		c.readySince = now
	}
	if len(ready) > 0 && (len(ready)+len(expired) == losing || now.Sub(c.readySince) >= c.cfg.Heartbeat) {
		stop = append(stop, ready...)
		c.stats.Handovers += uint64(len(ready))
		c.readySince = time.Time{}
	}
	if len(expired) > 0 {
		stop = append(stop, expired...)
		c.stats.Timeouts += uint64(len(expired))
	}
	c.stats.Members, c.stats.Owned, c.stats.BelowR = len(live), owned, below
	c.mu.Unlock()

	if len(start) > 0 {
		c.log.Info("starting units", "count", len(start), "members", len(live))
		if err := c.runner.StartUnits(ctx, start); err != nil {
			c.log.Error("starting units failed", "count", len(start), "err", err)
			c.mu.Lock()
			c.stats.RunnerFails++
			c.mu.Unlock()
		} else {
			c.mu.Lock()
			for _, u := range start {
				c.running[u] = true
			}
			c.stats.Gained += uint64(len(start))
			c.mu.Unlock()
		}
	}
	if len(stop) > 0 {
		c.log.Info("releasing units", "count", len(stop), "members", len(live))
		err := c.runner.StopUnits(ctx, stop)
		c.mu.Lock()
		if err != nil {
			c.log.Error("releasing units failed", "count", len(stop), "err", err)
			c.stats.RunnerFails++
		}
		for _, u := range stop {
			delete(c.running, u)
			delete(c.releasing, u)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.stats.Releasing = len(c.releasing)
	c.mu.Unlock()
}

// changeUnits stops the running units the subscription set dropped (their
// md_state entries go with them, as the Runner's StopUnits does) and
// restarts those whose channels changed.
func (c *Coordinator) changeUnits(ctx context.Context, gone, restart []Unit) {
	if len(gone)+len(restart) == 0 {
		return
	}
	stop := append(slices.Clone(gone), restart...)
	c.log.Info("subscription set changed", "stopping", len(gone), "restarting", len(restart))
	err := c.runner.StopUnits(ctx, stop)
	c.mu.Lock()
	if err != nil {
		c.log.Error("stopping units the subscription set dropped failed", "count", len(stop), "err", err)
		c.stats.RunnerFails++
	}
	for _, u := range stop {
		delete(c.running, u)
		delete(c.releasing, u)
	}
	c.stats.Retired += uint64(len(gone))
	c.mu.Unlock()
	if len(restart) == 0 {
		return
	}
	if err := c.runner.StartUnits(ctx, restart); err != nil {
		c.log.Error("restarting units failed", "count", len(restart), "err", err)
		c.mu.Lock()
		c.stats.RunnerFails++
		c.mu.Unlock()
		return // the next reconcile starts them again
	}
	c.mu.Lock()
	for _, u := range restart {
		c.running[u] = true
	}
	c.stats.Restarted += uint64(len(restart))
	c.mu.Unlock()
}

// Drain makes the replica leave the cluster gracefully: it marks its entry
// draining (the others drop it from their view at once and take over its
// units), then waits until every unit it runs is CONNECTED on its new
// owners, or ctx ends. Run keeps going (call it before cancelling Run's
// context); the units are not stopped (the caller stops its streams).
// With R ≥ 2 and other members it returns almost at once for the units
// that already had another owner.
func (c *Coordinator) Drain(ctx context.Context) error {
	c.mu.Lock()
	c.draining = true
	m := Member{Instance: c.cfg.Instance, Started: c.started, Updated: c.now(), Redundancy: c.cfg.Redundancy, Draining: true}
	c.mu.Unlock()
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.putMu.Lock()
	_, err = c.members.Put(ctx, MemberKey(c.cfg.Instance), body)
	c.putMu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: marking %s draining: %w", c.cfg.Instance, err)
	}
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	for {
		if c.handedOver() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: drain: %w", ctx.Err())
		case <-tick.C:
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Heartbeat)
	defer cancel()
	if err := c.members.Delete(dctx, MemberKey(c.cfg.Instance)); err != nil {
		return fmt.Errorf("cluster: leaving %s: %w", c.cfg.Bucket, err)
	}
	return nil
}

// handedOver reports whether every unit this replica runs is CONNECTED on
// the other live members that own it (true when there are none).
func (c *Coordinator) handedOver() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	live := c.live(now)
	if len(live) == 0 {
		return true
	}
	for u := range c.running {
		for _, o := range Owners(u, live, c.cfg.Redundancy) {
			if !c.connected(u, o, now) {
				return false
			}
		}
	}
	return true
}

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Members returns the live members of this replica's view, sorted.
func (c *Coordinator) Members() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live(c.now())
}

// Running returns the units the runner carries, sorted.
func (c *Coordinator) Running() []Unit {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Collect(maps.Keys(c.running))
	slices.SortFunc(out, compareUnits)
	return out
}

// Redundancy is R.
func (c *Coordinator) Redundancy() int { return c.cfg.Redundancy }

// String describes the coordinator for logs.
func (c *Coordinator) String() string {
	return fmt.Sprintf("cluster %s: R=%d, %d units, members %s", c.cfg.Instance, c.cfg.Redundancy, c.Stats().Units, strings.Join(c.Members(), ","))
}
