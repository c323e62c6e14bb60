package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// pauseThreshold is the publish silence of one market on one replica that
// counts as an interruption when recovery times are measured.
const pauseThreshold = 1500 * time.Millisecond

// harness is one soak run.
type harness struct {
	cfg   Config
	log   *slog.Logger // progress
	clog  *slog.Logger // components
	start time.Time

	dir      string
	ownDir   bool
	sim      *exsim.Server
	nats     *natsServer
	proxies  []*proxy
	replicas []*replica // grows (replica_add) under mu: read it with reps
	rec      *recorder
	subs     []subscription
	tune     func(*bridge.StreamConfig)
	owners   *ownerTracker

	mu      sync.Mutex
	samples []Sample
	phase   string
	runs    []*faultRun
	snaps   *snapshotRequester // nil until the fault phase
}

// faultRun is one planned fault as it was executed.
type faultRun struct {
	PlannedFault
	Start, End time.Time
	Target     string
	Err        string
	Skipped    string
	affected   []pairKey
	// resumed is when the outage a fault causes itself ended (NATS back,
	// replica restarted); recovery is measured from it.
	resumed time.Time
	// NATS restarts: time from the restart until every live replica had a
	// publish acknowledged again, and until its backlog was drained.
	firstAck, drained time.Duration
}

// Run executes one soak and returns its report. It returns an error
// wrapping ErrConfig or ErrHarness when the soak could not run; a soak that
// ran returns its report and, if a guarantee was violated, an error wrapping
// ErrSoakFailed (the report lists the failures). Progress lines go to
// logger (nil discards).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &harness{cfg: cfg, log: logger, clog: cfg.ComponentLogger, rec: newRecorder(), start: time.Now()}
	if h.clog == nil {
		h.clog = slog.New(slog.DiscardHandler)
	}
	defer h.close()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	rep, err := h.run(ctx)
	if err != nil {
		return rep, err
	}
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%w: %d violations, seed %d: %v", ErrSoakFailed, len(rep.Failures), cfg.Seed, rep.Failures)
	}
	return rep, nil
}

// setup starts the simulator, NATS, the proxies and the replicas.
func (h *harness) setup(ctx context.Context) error {
	h.dir = h.cfg.Dir
	if h.dir == "" {
		d, err := os.MkdirTemp("", "mdbridge-chaos-")
		if err != nil {
			return fmt.Errorf("%w: %w", ErrHarness, err)
		}
		h.dir, h.ownDir = d, true
	}
	// Markets start idle: generation begins once every replica is
	// subscribed (startGeneration), so no trade predates the bridges.
	idle := slices.Clone(h.cfg.Markets)
	for i := range idle {
		idle[i].TradeRate, idle[i].BookRate = 0, 0
	}
	// ClosedConns -1: the verdict classifies every missing trade by the
	// connections that delivered it, so no closed connection's record may
	// be forgotten however long the soak runs.
	// OKXKeepAlive 2s: OKX's empty keep-alive updates (seqId == prevSeqId)
	// show up within the soak (quiet books, the drain), not after a minute.
	sim, err := exsim.New(exsim.Config{Markets: idle, Seed: h.cfg.Seed, ClosedConns: -1, OKXKeepAlive: 2 * time.Second},
		h.clog.With("component", "exsim"))
	if err != nil {
		return fmt.Errorf("%w: simulator: %w", ErrHarness, err)
	}
	if err := sim.Start(context.Background()); err != nil {
		return fmt.Errorf("%w: simulator: %w", ErrHarness, err)
	}
	h.sim = sim
	if h.nats, err = startNATS(h.cfg.NATSPort, filepath.Join(h.dir, "jetstream"), nil, h.clog); err != nil {
		return err
	}
	for _, m := range h.cfg.Markets {
		i := slices.IndexFunc(h.subs, func(s subscription) bool { return s.exchange == string(m.Venue) })
		if i < 0 {
			h.subs = append(h.subs, subscription{exchange: string(m.Venue)})
			i = len(h.subs) - 1
		}
		h.subs[i].symbols = append(h.subs[i].symbols, m.Symbol)
		h.subs[i].channels |= marketChannels(m)
	}
	h.tune = func(sc *bridge.StreamConfig) {
		sc.HeartbeatTimeout = h.cfg.HeartbeatTimeout
		if h.cfg.RotationAge > 0 {
			sc.RotationAge = h.cfg.RotationAge
		}
		sc.TimeSyncInterval = 20 * time.Second
	}
	h.owners = newOwnerTracker(h.units())
	for range h.cfg.Replicas {
		if _, err := h.addReplica(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Cluster timing of the replicas: short, so that a killed replica's units
// move within the soak (expiry 4 s) and handovers are bounded.
const (
	clusterHeartbeat = time.Second
	clusterExpiry    = 4 * time.Second
	clusterTick      = 200 * time.Millisecond
	clusterHandover  = 30 * time.Second
)

// addReplica builds the next replica (its proxy, its cluster-mode node)
// and starts it.
func (h *harness) addReplica(ctx context.Context) (*replica, error) {
	p, err := newProxy(h.sim.Addr())
	if err != nil {
		return nil, fmt.Errorf("%w: proxy: %w", ErrHarness, err)
	}
	h.mu.Lock()
	i := len(h.replicas)
	r := newReplica(replicaConfig{
		index: i, instance: fmt.Sprintf("chaos-%c", 'a'+i), natsURL: h.nats.URL(),
		subs: h.subs, wsURL: "ws://" + p.Addr(), restURL: "http://" + p.Addr(), bybitDepth: h.cfg.BybitDepth,
		tune: h.tune, logger: h.clog.With("component", "bridge"), rec: h.rec,
		cluster: cluster.Config{Redundancy: h.cfg.Redundancy, Heartbeat: clusterHeartbeat, Expiry: clusterExpiry,
			Tick: clusterTick, HandoverTimeout: clusterHandover},
	})
	p.setOwner(r.generation)
	h.proxies = append(h.proxies, p)
	h.replicas = append(h.replicas, r)
	h.mu.Unlock()
	if err := r.start(ctx); err != nil {
		return r, fmt.Errorf("%w: %w", ErrHarness, err)
	}
	return r, nil
}

// reps returns the replicas (a copy: replica_add appends).
func (h *harness) reps() []*replica {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.replicas)
}

// proxyList returns the proxies (a copy), index i serving replica i.
func (h *harness) proxyList() []*proxy {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.proxies)
}

// units are the cluster units of the subscriptions.
func (h *harness) units() []cluster.Unit {
	var out []cluster.Unit
	for _, s := range h.subs {
		for _, sym := range s.symbols {
			out = append(out, cluster.Unit{Market: s.exchange, Symbol: sym})
		}
	}
	return out
}

// channels are the channels the replicas subscribe on venue v: the union of
// its markets' (marketChannels).
func (h *harness) channels(v exsim.Venue) bridge.Channel {
	var ch bridge.Channel
	for _, m := range h.cfg.Markets {
		if m.Venue == v {
			ch |= marketChannels(m)
		}
	}
	return ch
}

// close stops everything still running (the graceful path has already
// stopped the replicas).
func (h *harness) close() {
	for _, r := range h.reps() {
		r.kill()
	}
	for _, p := range h.proxyList() {
		p.close()
	}
	if h.nats != nil {
		_ = h.nats.stop()
	}
	if h.sim != nil {
		_ = h.sim.Close()
	}
	if h.ownDir {
		_ = os.RemoveAll(h.dir)
	}
}

func (h *harness) setPhase(p string) {
	h.mu.Lock()
	h.phase = p
	h.mu.Unlock()
	h.log.Info("chaos: phase "+p, "elapsed", time.Since(h.start).Round(time.Second))
}

func (h *harness) sample(steady bool) Sample {
	h.mu.Lock()
	phase := h.phase
	h.mu.Unlock()
	s := takeSample(h.start, phase, steady)
	if steady {
		for _, r := range h.reps() {
			if r.isUp() {
				s.Replicas++
			}
		}
	}
	h.mu.Lock()
	h.samples = append(h.samples, s)
	h.mu.Unlock()
	return s
}

// sampleLoop samples resources every SampleEvery until ctx ends.
func (h *harness) sampleLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sample(false)
		}
	}
}

// run executes the phases and builds the report.
func (h *harness) run(ctx context.Context) (*Report, error) {
	sctx, stopSampling := context.WithCancel(context.Background())
	var swg sync.WaitGroup
	swg.Add(1)
	go func() { defer swg.Done(); h.sampleLoop(sctx) }()
	defer func() { stopSampling(); swg.Wait() }()

	if err := h.startGeneration(ctx); err != nil {
		return nil, err
	}
	h.setPhase("warmup")
	octx, stopOwners := context.WithCancel(context.Background())
	var owg sync.WaitGroup
	owg.Add(1)
	go func() { defer owg.Done(); h.ownerLoop(octx) }()
	defer func() { stopOwners(); owg.Wait() }()
	if resilience.Sleep(ctx, h.cfg.Warmup) != nil {
		return nil, fmt.Errorf("%w: interrupted during warm-up: %w", ErrHarness, ctx.Err())
	}
	if err := h.waitConnected(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	baseline := h.sample(true)

	var venues []exsim.Venue
	for _, s := range h.subs {
		if v := faultVenue(exsim.Venue(s.exchange)); !slices.Contains(venues, v) {
			venues = append(venues, v)
		}
	}
	plan := NewPlan(PlanConfig{Seed: h.cfg.Seed, Duration: h.cfg.Duration, Every: h.cfg.FaultEvery, Venues: venues,
		Kinds: h.cfg.Kinds, HeartbeatTimeout: h.cfg.HeartbeatTimeout, Replicas: h.cfg.Replicas})
	h.setPhase("chaos")
	h.log.Info("chaos: fault plan", "seed", h.cfg.Seed, "faults", len(plan), "duration", h.cfg.Duration)
	chaosStart := time.Now()
	stopRequests := h.startSnapshotRequests(ctx)
	h.executePlan(ctx, plan)
	stopRequests()
	h.restoreAll()
	chaosEnd := time.Now()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: interrupted: %w", ErrHarness, ctx.Err())
	}

	h.setPhase("settle")
	if resilience.Sleep(ctx, h.cfg.Settle) != nil {
		return nil, fmt.Errorf("%w: interrupted while settling: %w", ErrHarness, ctx.Err())
	}
	if err := h.waitConnected(ctx, 60*time.Second); err != nil {
		h.log.Warn("chaos: not every symbol is CONNECTED after settling", "err", err)
	}
	steadyErr := h.waitSteady(ctx, 60*time.Second)
	stopOwners()
	owg.Wait()
	final := h.sample(true)
	if h.cfg.HeapProfile != "" {
		if err := writeHeapProfile(h.cfg.HeapProfile); err != nil {
			h.log.Warn("chaos: heap profile", "err", err)
		}
	}

	h.setPhase("drain")
	gen, drainErr := h.quiesceAndDrain(ctx)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: interrupted while draining: %w", ErrHarness, ctx.Err())
	}

	h.setPhase("reconcile")
	rep := &Report{Seed: h.cfg.Seed, Started: h.start, Config: reportConfig(h.cfg), ChaosPhase: chaosEnd.Sub(chaosStart)}
	rep.Owners = h.owners.report(h.cfg.Redundancy)
	if steadyErr != nil {
		rep.Owners.Steady = steadyErr.Error()
	}
	if drainErr != nil {
		rep.Failures = append(rep.Failures, drainErr.Error())
	}
	if err := h.reconcile(ctx, rep, gen); err != nil {
		return rep, err
	}
	h.setPhase("shutdown")
	for _, r := range h.reps() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := r.shutdown(sctx); err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("replica %s graceful shutdown: %v", r.name(), err))
		}
		cancel()
	}
	stopSampling()
	swg.Wait()
	h.finishReport(rep, baseline, final)
	rep.Elapsed = time.Since(h.start)
	return rep, nil
}

// subscribedVenues are the venues of c's subscriptions: c's venue, except
// on OKX, whose one endpoint serves both markets (topics "channel:instId",
// swaps' instIds ending in -SWAP).
func subscribedVenues(c exsim.ConnInfo) []exsim.Venue {
	if !isOKX(c.Venue) {
		return []exsim.Venue{c.Venue}
	}
	var out []exsim.Venue
	for _, t := range c.Subscriptions {
		v := exsim.OKXSpot
		if strings.HasSuffix(t, "-SWAP") {
			v = exsim.OKXSwap
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// startGeneration waits until the cluster is steady (every replica sees
// every other, no unit below R owners, no handover in progress), every
// symbol every replica runs is CONNECTED and the simulator lists a
// subscribed connection of every replica on every venue it carries a unit
// of, then sets the configured rates.
func (h *harness) startGeneration(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := h.clusterSteady()
		if err == nil {
			err = h.waitConnected(ctx, 30*time.Second)
		}
		if err == nil {
			want, subscribed := map[string]bool{}, map[string]bool{}
			for i, r := range h.reps() {
				for _, u := range h.units() {
					if r.carries(u.Market, u.Symbol) {
						want[fmt.Sprintf("%d/%s", i, faultVenueOf(u.Market))] = true
					}
				}
			}
			for _, c := range h.sim.Conns() {
				if c.Open && len(c.Subscriptions) > 0 {
					if i, _ := h.ownerOf(c); i >= 0 {
						for _, v := range subscribedVenues(c) {
							subscribed[fmt.Sprintf("%d/%s", i, faultVenue(v))] = true
						}
					}
				}
			}
			for k := range want {
				if !subscribed[k] {
					err = fmt.Errorf("%w: the simulator lists no subscription for replica/venue %s (subscribed: %v)", ErrHarness, k, subscribed)
					break
				}
			}
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		if resilience.Sleep(ctx, 100*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
	for _, m := range h.cfg.Markets {
		if err := h.sim.SetRates(m.Venue, m.Symbol, m.TradeRate, m.BookRate); err != nil {
			return fmt.Errorf("%w: %w", ErrHarness, err)
		}
	}
	return nil
}

// waitSteady waits until clusterSteady holds (every unit back at R owners
// after the faults).
func (h *harness) waitSteady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := h.clusterSteady()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if resilience.Sleep(ctx, 200*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
}

// faultVenueOf is faultVenue of an exchange id.
func faultVenueOf(exchange string) exsim.Venue { return faultVenue(exsim.Venue(exchange)) }

// clusterSteady returns nil when every replica is up and its coordinator
// sees all of them, no unit below R owners and no handover in progress.
func (h *harness) clusterSteady() error {
	reps := h.reps()
	for _, r := range reps {
		st, ok := r.clusterStats()
		if !ok {
			return fmt.Errorf("%w: replica %s down", ErrHarness, r.name())
		}
		if st.Members != len(reps) || st.BelowR != 0 || st.Releasing != 0 {
			return fmt.Errorf("%w: replica %s: cluster not steady: %+v", ErrHarness, r.name(), st)
		}
	}
	return nil
}

// waitConnected waits until every symbol of every running replica is
// CONNECTED.
func (h *harness) waitConnected(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var bad []string
		for _, r := range h.reps() {
			r.mu.Lock()
			for _, s := range r.streamsLocked() {
				for _, st := range s.States() {
					if st.State != "CONNECTED" {
						bad = append(bad, fmt.Sprintf("%s %s %s %s", r.name(), st.Exchange, st.Symbol, st.State))
					}
				}
			}
			up := r.up
			r.mu.Unlock()
			if !up {
				bad = append(bad, r.name()+" down")
			}
		}
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not connected after %s: %v", ErrHarness, timeout, bad)
		}
		if resilience.Sleep(ctx, 200*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
}

// executePlan runs the plan: each fault starts at its offset on its own
// goroutine (faults overlap) and restores what it broke when its hold ends
// or the phase ends.
func (h *harness) executePlan(ctx context.Context, plan []PlannedFault) {
	pctx, cancel := context.WithTimeout(ctx, h.cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	for _, f := range plan {
		for {
			wait := time.Until(start.Add(f.At))
			if wait <= 0 {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-progress.C:
				t.Stop()
				h.logProgress()
				continue
			case <-pctx.Done():
				t.Stop()
			}
			break
		}
		if pctx.Err() != nil {
			break
		}
		fr := &faultRun{PlannedFault: f}
		h.mu.Lock()
		h.runs = append(h.runs, fr)
		h.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.execute(pctx, fr)
		}()
	}
	<-pctx.Done()
	wg.Wait()
}

func (h *harness) logProgress() {
	h.mu.Lock()
	n := len(h.runs)
	active := 0
	for _, r := range h.runs {
		if r.End.IsZero() {
			active++
		}
	}
	h.mu.Unlock()
	up := 0
	for _, r := range h.reps() {
		if r.isUp() {
			up++
		}
	}
	s := takeSample(h.start, "chaos", false)
	h.log.Info("chaos: progress", "elapsed", time.Since(h.start).Round(time.Second), "faults", n, "active", active,
		"replicas_up", up, "nats_up", h.nats.up(), "goroutines", s.Goroutines, "heap", mib(s.HeapInuse))
}

// startSnapshotRequests sends a snapshot request on the control subject for
// every market every SnapshotEvery (the first after half of it), as a
// consumer would, while the faults run; the returned function stops the
// rounds and waits for the running one. A request that fails (NATS down,
// every replica killed) is counted, not retried.
func (h *harness) startSnapshotRequests(ctx context.Context) (stop func()) {
	if h.cfg.SnapshotEvery <= 0 {
		return func() {}
	}
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{h.nats.URL()}, Name: "chaos-consumer"}, h.clog)
	if err != nil {
		h.log.Warn("chaos: no snapshot requests: NATS connection failed", "err", err)
		return func() {}
	}
	req, err := newSnapshotRequester(nc, 10*time.Second)
	if err != nil {
		nc.Close()
		h.log.Warn("chaos: no snapshot requests", "err", err)
		return func() {}
	}
	h.mu.Lock()
	h.snaps = req
	h.mu.Unlock()
	var markets []marketKey
	for _, m := range h.cfg.Markets {
		if h.channels(m.Venue)&bridge.ChannelBook != 0 { // trades-only markets have no book to request
			markets = append(markets, marketKey{string(m.Venue), m.Symbol})
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait := h.cfg.SnapshotEvery / 2
		for resilience.Sleep(rctx, wait) == nil {
			wait = h.cfg.SnapshotEvery
			// Each request ends on its own timeout: stopping the rounds
			// does not cancel the one running.
			req.round(context.WithoutCancel(rctx), markets)
		}
	}()
	return func() {
		cancel()
		<-done
		nc.Close()
	}
}

// restoreAll clears every simulator fault and brings NATS and every replica
// back (the plan's faults restore themselves; this is the safety net).
func (h *harness) restoreAll() {
	h.sim.ClearFaults()
	h.sim.SetClockSkew(0)
	if err := h.nats.start(); err != nil {
		h.log.Error("chaos: NATS restart failed", "err", err)
	}
	for _, r := range h.reps() {
		h.restartReplica(r)
	}
}

// restartReplica starts a replica again, retrying while NATS is not
// reachable.
func (h *harness) restartReplica(r *replica) time.Time {
	for attempt := 1; ; attempt++ {
		if r.isUp() {
			return time.Now()
		}
		err := r.start(context.Background())
		if err == nil {
			return time.Now()
		}
		h.log.Warn("chaos: replica restart failed; retrying", "replica", r.name(), "attempt", attempt, "err", err)
		time.Sleep(time.Second)
	}
}

// exchangePairs returns the pairs of venue v on the replicas that are up,
// or on replica only (>= 0).
func (h *harness) exchangePairs(v exsim.Venue, only int) []pairKey {
	var out []pairKey
	for i, r := range h.reps() {
		if (only >= 0 && i != only) || !r.isUp() {
			continue
		}
		for _, s := range h.subs {
			if faultVenue(exsim.Venue(s.exchange)) != v {
				continue
			}
			for _, sym := range s.symbols {
				if r.carries(s.exchange, sym) {
					out = append(out, pairKey{i, s.exchange, sym})
				}
			}
		}
	}
	return out
}

// replicaPairs returns every pair of replica i.
func (h *harness) replicaPairs(i int) []pairKey {
	r := h.reps()[i]
	var out []pairKey
	for _, s := range h.subs {
		for _, sym := range s.symbols {
			if r.carries(s.exchange, sym) {
				out = append(out, pairKey{i, s.exchange, sym})
			}
		}
	}
	return out
}

// ownerOf returns the replica index and generation that opened a
// simulator connection (-1 if unknown).
func (h *harness) ownerOf(c exsim.ConnInfo) (int, string) {
	for i, p := range h.proxyList() {
		if g := p.generationOf(c.Remote, c.Opened); g != "" {
			return i, g
		}
	}
	return -1, ""
}

// pickConn chooses the target of a one-connection fault.
func (h *harness) pickConn(v exsim.Venue, n int) (exsim.ConnInfo, bool) {
	var open []exsim.ConnInfo
	for _, c := range h.sim.Conns() {
		if c.Open && c.Venue == v {
			open = append(open, c)
		}
	}
	if len(open) == 0 {
		return exsim.ConnInfo{}, false
	}
	return open[(n-1)%len(open)], true
}

// execute runs one fault to its end.
func (h *harness) execute(ctx context.Context, fr *faultRun) {
	fr.Start = time.Now()
	defer func() {
		h.mu.Lock()
		fr.End = time.Now()
		h.mu.Unlock()
	}()
	hold := func() { _ = resilience.Sleep(ctx, fr.Hold) }
	inject := func(f exsim.Fault) uint64 {
		id, err := h.sim.InjectFault(f)
		if err != nil {
			fr.Err = err.Error()
		}
		return id
	}
	clear := func(id uint64) {
		if id != 0 {
			_ = h.sim.ClearFault(id) // may be gone already (restoreAll)
		}
	}
	f := exsim.Fault{Venue: fr.Venue}
	target := func() bool {
		fr.affected = h.exchangePairs(fr.Venue, -1)
		fr.Target = "every " + string(fr.Venue) + " connection"
		if fr.Conn == 0 {
			return true
		}
		c, ok := h.pickConn(fr.Venue, fr.Conn)
		if !ok {
			fr.Skipped = "no open " + string(fr.Venue) + " connection"
			return false
		}
		i, gen := h.ownerOf(c)
		f.Conn, f.Venue = c.ID, ""
		fr.Target = fmt.Sprintf("conn %d (%s)", c.ID, gen)
		if i >= 0 {
			fr.affected = h.exchangePairs(fr.Venue, i)
		}
		return true
	}
	switch fr.Kind {
	case KindClose:
		if target() {
			f.Kind = exsim.FaultClose
			inject(f)
		}
	case KindStall:
		if target() {
			f.Kind, f.Duration = exsim.FaultStall, exsim.Duration(fr.Hold)
			inject(f)
			hold()
		}
	case KindDuplicate, KindGap, KindMalformed, KindOversized, KindREST429, KindRESTBan, KindREST5xx, KindSkew, KindMaxAge:
		target()
		switch fr.Kind {
		case KindDuplicate:
			f.Kind, f.Rate = exsim.FaultDuplicate, fr.Rate
		case KindGap:
			f.Kind, f.Rate = exsim.FaultGap, fr.Rate
		case KindMalformed, KindOversized:
			f.Kind, f.Mode, f.Count, f.Rate, f.Size, f.Extra = exsim.FaultMalformed, fr.Mode, fr.Count, fr.Rate, fr.Size, fr.Extra
		case KindREST429, KindRESTBan, KindREST5xx:
			f.Kind, f.Status, f.Count, f.Duration = exsim.FaultREST, fr.Status, fr.Count, exsim.Duration(fr.Value)
		case KindSkew:
			f.Kind, f.Duration = exsim.FaultSkew, exsim.Duration(fr.Value)
		case KindMaxAge:
			f.Kind, f.Duration = exsim.FaultMaxAge, exsim.Duration(fr.Value)
		}
		f.Scope = exsim.ScopeAll
		id := inject(f)
		hold()
		clear(id)
	case KindShutdown:
		target()
		f.Kind, f.Duration = exsim.FaultShutdown, exsim.Duration(fr.Value)
		inject(f)
		_ = resilience.Sleep(ctx, fr.Value)
	case KindResnapshot:
		target()
		f.Kind = exsim.FaultResnapshot
		inject(f)
	case KindSeqReset:
		target()
		// Only the books are affected (the okx trades stream has none).
		fr.affected = slices.DeleteFunc(fr.affected, func(k pairKey) bool {
			return h.channels(exsim.Venue(k.exchange))&bridge.ChannelBook == 0
		})
		var done []string
		for _, m := range h.cfg.Markets {
			if faultVenue(m.Venue) != fr.Venue || h.channels(m.Venue)&bridge.ChannelBook == 0 {
				continue
			}
			if err := h.sim.OKXSeqReset(m.Venue, m.Symbol); err != nil {
				fr.Err = err.Error()
				continue
			}
			done = append(done, string(m.Venue)+" "+m.Symbol)
		}
		fr.Target = "books seqId of " + strings.Join(done, ", ")
	case KindNATS:
		h.natsRestart(ctx, fr)
	case KindKill:
		h.killRestart(ctx, fr)
	case KindAdd:
		r, err := h.addReplica(context.Background())
		if r != nil {
			fr.Target = r.generation()
			fr.Replica = r.cfg.index
		}
		if err != nil && r != nil {
			// Not started (NATS down): retried until it is.
			h.log.Warn("chaos: replica_add: start failed; retrying", "err", err)
			fr.resumed = h.restartReplica(r)
			break
		}
		if err != nil {
			fr.Err = err.Error()
		}
		fr.resumed = time.Now()
	}
}

// natsRestart stops the NATS server for the hold, starts it again on the
// same port and store, and measures how long the replicas take to publish
// again and to drain their backlog.
func (h *harness) natsRestart(ctx context.Context, fr *faultRun) {
	fr.Target = h.nats.URL()
	if err := h.nats.stop(); err != nil {
		fr.Err = "stop: " + err.Error()
	}
	_ = resilience.Sleep(ctx, fr.Hold)
	if err := h.nats.start(); err != nil {
		fr.Err = "start: " + err.Error()
		return
	}
	fr.resumed = time.Now()
	acked := map[int]uint64{}
	for i, r := range h.reps() {
		if st, ok := r.pubStats(); ok {
			acked[i] = st.Acked
		}
	}
	deadline := fr.resumed.Add(90 * time.Second)
	for time.Now().Before(deadline) {
		allAck, allDrained := true, true
		for i, r := range h.reps() {
			st, ok := r.pubStats()
			base, had := acked[i]
			if !ok || !had {
				continue // killed meanwhile
			}
			if st.Acked <= base {
				allAck = false
			}
			if st.BufferedMsgs > 0 {
				allDrained = false
			}
		}
		if allAck && fr.firstAck == 0 {
			fr.firstAck = time.Since(fr.resumed)
		}
		if allAck && allDrained {
			fr.drained = time.Since(fr.resumed)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killRestart kills a replica abruptly and restarts it after the hold.
func (h *harness) killRestart(ctx context.Context, fr *faultRun) {
	reps := h.reps()
	if fr.Replica >= len(reps) {
		fr.Skipped = "replica not added (yet)"
		return
	}
	r := reps[fr.Replica]
	if !r.isUp() {
		fr.Skipped = "replica already down"
		return
	}
	for i, o := range reps {
		if i != fr.Replica && !o.isUp() {
			fr.Skipped = "another replica is down"
			return
		}
	}
	fr.Target = r.generation()
	fr.affected = h.replicaPairs(fr.Replica)
	r.kill()
	_ = resilience.Sleep(ctx, fr.Hold)
	fr.resumed = h.restartReplica(r)
}

// quiesceAndDrain stops generation and waits until the bridge has nothing
// left to publish. It returns the generated id ranges per market.
func (h *harness) quiesceAndDrain(ctx context.Context) (map[string]exsim.Range, error) {
	for _, m := range h.cfg.Markets {
		_ = h.sim.SetRates(m.Venue, m.Symbol, 0, 0)
	}
	time.Sleep(200 * time.Millisecond) // the generators' last tick
	h.rec.stop()
	gen := map[string]exsim.Range{}
	for _, m := range h.cfg.Markets {
		r, _ := h.sim.Generated(m.Venue, m.Symbol, exsim.SeriesTrade)
		gen[string(m.Venue)+"."+m.Symbol] = r
	}
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{h.nats.URL()}, Name: "chaos-reader"}, h.clog)
	if err != nil {
		return gen, fmt.Errorf("drain: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return gen, err
	}
	// Every live replica must catch up with the final state: the last
	// Binance trade id published, and every book published up to the
	// simulator's final update id (a repair or resync still running holds
	// events back while the publisher looks idle).
	finalBook := map[string]int64{}
	for _, m := range h.cfg.Markets {
		b, err := h.sim.Book(m.Venue, m.Symbol)
		if err != nil {
			return gen, err
		}
		id := b.LastUpdateID
		switch {
		case h.channels(m.Venue)&bridge.ChannelBook == 0:
			id = 0 // not subscribed
		case isOKX(m.Venue):
			if id, err = h.sim.OKXSeqID(m.Venue, m.Symbol); err != nil {
				return gen, err
			}
		case !isBinance(m.Venue):
			id = b.BybitU[h.cfg.BybitDepth]
		}
		finalBook[string(m.Venue)+"."+m.Symbol] = id
	}
	behind := func() []string {
		var out []string
		for i, r := range h.reps() {
			if !r.isUp() {
				out = append(out, r.name()+" down")
				continue
			}
			for _, m := range h.cfg.Markets {
				if !r.carries(string(m.Venue), m.Symbol) {
					continue // another replica's unit
				}
				k := string(m.Venue) + "." + m.Symbol
				trade, book := h.rec.progress(pairKey{i, string(m.Venue), m.Symbol})
				if exactTrades(m.Venue) && h.channels(m.Venue)&bridge.ChannelTrade != 0 && !gen[k].Empty() && trade < gen[k].Last {
					out = append(out, fmt.Sprintf("%s %s trades at %d of %d", r.name(), k, trade, gen[k].Last))
				}
				if book < finalBook[k] {
					out = append(out, fmt.Sprintf("%s %s book at %d of %d", r.name(), k, book, finalBook[k]))
				}
			}
		}
		return out
	}
	start := time.Now()
	minWait := h.cfg.HeartbeatTimeout + 2*bridge.DefaultQuietCheck
	var lastSeq uint64
	stableSince := time.Now()
	for {
		if time.Since(start) > h.cfg.DrainTimeout {
			pending := behind()
			for _, r := range h.reps() {
				if st, ok := r.pubStats(); ok && (st.BufferedMsgs > 0 || st.InFlight > 0) {
					pending = append(pending, fmt.Sprintf("%s: %d buffered, %d in flight", r.name(), st.BufferedMsgs, st.InFlight))
				}
			}
			return gen, fmt.Errorf("not drained %s after generation stopped: %v", h.cfg.DrainTimeout, pending)
		}
		if resilience.Sleep(ctx, 500*time.Millisecond) != nil {
			return gen, ctx.Err()
		}
		idle := len(behind()) == 0
		for _, r := range h.reps() {
			st, ok := r.pubStats()
			if !ok || st.BufferedMsgs > 0 || st.InFlight > 0 {
				idle = false
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := js.Stream(sctx, publisher.DefaultStream)
		var seq uint64
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(sctx); err == nil {
				seq = info.State.LastSeq
			}
		}
		cancel()
		if err != nil || seq != lastSeq {
			lastSeq, stableSince = seq, time.Now()
			continue
		}
		if idle && time.Since(stableSince) >= 5*time.Second && time.Since(start) >= minWait {
			break
		}
	}
	for _, m := range h.cfg.Markets {
		r, _ := h.sim.Generated(m.Venue, m.Symbol, exsim.SeriesTrade)
		if k := string(m.Venue) + "." + m.Symbol; r != gen[k] {
			return gen, fmt.Errorf("%w: %s generated more trades after SetRates(0): %v then %v", ErrHarness, k, gen[k], r)
		}
	}
	h.log.Info("chaos: drained", "took", time.Since(start).Round(time.Second), "stream_last_seq", lastSeq)
	return gen, nil
}

// reconcile reads the stream back and compares it with the ground truth.
func (h *harness) reconcile(ctx context.Context, rep *Report, gen map[string]exsim.Range) error {
	var truths []MarketTruth
	for _, m := range h.cfg.Markets {
		mt, err := marketTruth(h.sim, m.Venue, m.Symbol, h.cfg.BybitDepth)
		if err != nil {
			return err
		}
		ch := h.channels(m.Venue)
		mt.NoTrades, mt.NoBook = ch&bridge.ChannelTrade == 0, ch&bridge.ChannelBook == 0
		truths = append(truths, mt)
	}
	in := ReconcileInput{Markets: truths, Ordinal: h.sim.BybitTradeOrdinal, Conns: h.connFates(),
		SnapshotOrigin: func(exchange, symbol string, lastID int64) string {
			return h.rec.snapshotOrigin(h.start, exchange, symbol, lastID)
		},
		Counted: func(exchange, symbol string) uint64 {
			var n uint64
			for _, r := range h.reps() {
				n += r.counted(exchange, symbol)
			}
			return n
		}}
	r := newReconciler(truths, in.Ordinal)
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{h.nats.URL()}, Name: "chaos-reader"}, h.clog)
	if err != nil {
		return fmt.Errorf("%w: reader: %w", ErrHarness, err)
	}
	defer nc.Close()
	n, err := readStream(ctx, nc, publisher.DefaultStream, func(m *StreamMsg, decodeErr error) {
		if decodeErr != nil {
			r.stream.DecodeErrors++
			r.example(fmt.Sprintf("seq %d: %v", m.Seq, decodeErr))
			return
		}
		r.add(m)
	})
	if err != nil {
		return fmt.Errorf("%w: reading the stream after %d messages: %w", ErrHarness, n, err)
	}
	rep.Markets, rep.Stream = r.finish(in)
	h.mu.Lock()
	if h.snaps != nil {
		rep.SnapshotRequests = h.snaps.results()
	}
	h.mu.Unlock()
	return nil
}

// marketTruth takes the simulator's ground truth of one market: its trades
// and the book series the bridge follows (Binance depth; Bybit
// orderbook.<bybitDepth>, compared to that many levels per side).
func marketTruth(sim *exsim.Server, v exsim.Venue, symbol string, bybitDepth int) (MarketTruth, error) {
	t, err := sim.Truth(v, symbol)
	if err != nil {
		return MarketTruth{}, fmt.Errorf("%w: truth: %w", ErrHarness, err)
	}
	b, err := sim.Book(v, symbol)
	if err != nil {
		return MarketTruth{}, fmt.Errorf("%w: book: %w", ErrHarness, err)
	}
	mt := MarketTruth{Venue: v, Symbol: symbol, Trades: t.Get(exsim.SeriesTrade), Bids: b.Bids, Asks: b.Asks}
	switch {
	case isBinance(v):
		mt.Book, mt.BookID = t.Get(exsim.SeriesDepth), b.LastUpdateID
	case isOKX(v):
		// The books series holds push ordinals; the stream's ids are the
		// wire seqIds (the final one is the compared book id).
		seq, err := sim.OKXSeqID(v, symbol)
		if err != nil {
			return MarketTruth{}, fmt.Errorf("%w: okx seqId: %w", ErrHarness, err)
		}
		mt.Book, mt.Depth, mt.BookID, mt.Pushes = t.Get(exsim.SeriesOKXBooks), okxBookDepth, seq, true
	default:
		mt.Book, mt.Depth, mt.BookID = t.Get(exsim.SeriesOrderbook(bybitDepth)), bybitDepth, b.BybitU[bybitDepth]
	}
	return mt, nil
}

// connFates attributes every simulator connection to a replica generation
// and says whether its deliveries may have died with a killed replica: the
// generation was killed while the connection was open, or less than
// killWindow after it closed, or while NATS was down since it closed (its
// events may still have been unacknowledged, or held back by a repair).
func (h *harness) connFates() map[uint64]ConnFate {
	const killWindow = 10 * time.Second
	killed := map[string]time.Time{}
	for _, r := range h.reps() {
		r.mu.Lock()
		for _, g := range r.history {
			if g.Killed {
				killed[fmt.Sprintf("%s#%d", g.Replica, g.Gen)] = g.Ended
			}
		}
		r.mu.Unlock()
	}
	type span struct{ from, to time.Time }
	var outages []span
	h.mu.Lock()
	for _, fr := range h.runs {
		if fr.Kind == KindNATS && fr.Skipped == "" {
			to := fr.End
			if !fr.resumed.IsZero() {
				to = fr.resumed.Add(fr.drained)
			}
			outages = append(outages, span{fr.Start, to})
		}
	}
	h.mu.Unlock()
	out := map[uint64]ConnFate{}
	for _, c := range h.sim.Conns() {
		_, gen := h.ownerOf(c)
		f := ConnFate{Gen: gen}
		if k, ok := killed[gen]; ok {
			switch {
			case c.Closed.IsZero() || !c.Closed.Before(k.Add(-killWindow)):
				f.Killed = true
			default:
				f.Killed = slices.ContainsFunc(outages, func(o span) bool { return o.to.After(c.Closed) && o.from.Before(k) })
			}
		}
		out[c.ID] = f
	}
	return out
}
