package node

import (
	"cmp"
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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// Sources of the running subscription set (SubscribeStatus.Source).
const (
	SourceKV    = "kv"    // the Runtime key's spec
	SourceStart = "start" // Config.Subscriptions (MDB_SUBSCRIBE): the key is absent or was rejected at start
)

// SubscribeStatus is a replica's report of the subscription set it runs,
// kept in the Runtime bucket under StatusKeyPrefix + instance (written at
// start and on every change, deleted by a graceful Shutdown).
type SubscribeStatus struct {
	Instance string `json:"instance"`
	Source   string `json:"source"`             // SourceKV or SourceStart
	Revision uint64 `json:"revision,omitempty"` // KV revision of the spec running (source kv)
	Spec     string `json:"spec"`               // the set running, in spec form
	Units    int    `json:"units"`              // (exchange, symbol) units of the set, on all replicas
	// Rejected is why the key's latest spec (revision RejectedRevision)
	// was not applied; empty once a later spec is applied.
	Rejected         string    `json:"rejected,omitempty"`
	RejectedRevision uint64    `json:"rejected_revision,omitempty"`
	Changes          uint64    `json:"changes"`        // specs applied at run time since start
	RejectedTotal    uint64    `json:"rejected_total"` // specs rejected since start
	Updated          time.Time `json:"updated"`
	UniverseStats
}

// StatusKey is the Runtime bucket key of an instance's SubscribeStatus.
func StatusKey(instance string) string { return StatusKeyPrefix + cluster.MemberKey(instance) }

// EnsureConfigBucket creates or opens the KV bucket of the runtime
// subscription spec (history 10: `nats kv history` shows the last specs).
// Its error says what the NATS user must be allowed.
func EnsureConfigBucket(ctx context.Context, js jetstream.JetStream, bucket string, storage jetstream.StorageType, replicas int) (jetstream.KeyValue, error) {
	bucket = cmp.Or(bucket, DefaultConfigBucket)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "mdbridge runtime configuration (subscription spec, replicas' running sets)",
		History:     10,
		Storage:     storage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("KV bucket %q: %w (the NATS account needs JetStream, and the user permission to create and use the bucket: publish $JS.API.STREAM.CREATE.KV_%s, $JS.API.STREAM.INFO.KV_%s, $JS.API.CONSUMER.> and $KV.%s.>, subscribe _INBOX.>; or create it beforehand with `nats kv add %s --history 10`)",
			bucket, err, bucket, bucket, bucket, bucket)
	}
	return kv, nil
}

// specFollower keeps a node's subscription set equal to the Runtime key.
type specFollower struct {
	n   *Node
	cfg Runtime
	log *slog.Logger
	kv  jetstream.KeyValue

	mu      sync.Mutex // guards st
	st      SubscribeStatus
	lastRev uint64 // latest revision considered (applied or rejected); follower goroutine only
	// watches counts the watches of the key set up (the first, then one
	// after each end or NATS reconnect).
	watches atomic.Int64
}

func newSpecFollower(n *Node, cfg Runtime) (*specFollower, error) {
	if cfg.Parse == nil {
		return nil, errors.New("node: Runtime.Parse is required")
	}
	cfg.Bucket = cmp.Or(cfg.Bucket, DefaultConfigBucket)
	cfg.Key = cmp.Or(cfg.Key, DefaultSubscribeKey)
	if err := bridge.ValidateIdent(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("node: runtime bucket: %w", err)
	}
	if err := bridge.ValidateIdent(cfg.Key); err != nil {
		return nil, fmt.Errorf("node: runtime key: %w", err)
	}
	f := &specFollower{n: n, cfg: cfg, log: n.log.With("component", "subscriptions", "bucket", cfg.Bucket, "key", cfg.Key)}
	f.st = SubscribeStatus{Instance: n.cfg.Instance, Source: SourceStart, Spec: render(n.cfg.Subscriptions), Units: len(unitsOf(n.cfg.Subscriptions))}
	return f, nil
}

// render writes subs in spec form.
func render(subs []Subscription) string {
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ";")
}

// load provisions the bucket and takes the key's spec as the starting
// set when it is present and valid.
func (f *specFollower) load(ctx context.Context) error {
	pc := f.n.cfg.Publisher
	kv, err := EnsureConfigBucket(ctx, f.n.js, f.cfg.Bucket, pc.Storage, pc.Replicas)
	if err != nil {
		return err
	}
	f.kv = kv
	e, err := kv.Get(ctx, f.cfg.Key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		f.log.Info("no runtime subscription spec in KV; running the start set (MDB_SUBSCRIBE)", "spec", render(f.n.cfg.Subscriptions))
	case err != nil:
		return fmt.Errorf("reading the subscription spec %s/%s: %w", f.cfg.Bucket, f.cfg.Key, err)
	default:
		if f.event(ctx, e, false) {
			return nil
		}
	}
	resolved, err := f.n.uni.resolve(ctx, f.n.cfg.Subscriptions, false)
	if err != nil {
		return err
	}
	f.n.setSets(f.n.cfg.Subscriptions, resolved)
	f.mu.Lock()
	f.st.Units = len(unitsOf(resolved))
	f.mu.Unlock()
	f.writeStatus(ctx)
	return nil
}

// follow watches the key until ctx ends, setting the watch up again when
// it ends (a connection lost) and right after the connection reconnects:
// the ordered consumer behind a KV watch otherwise stays silent until it
// misses heartbeats (about 12 s) after a reconnect. The new watch starts
// with the key's current revision; event skips revisions already
// considered, so nothing is applied twice.
func (f *specFollower) follow(ctx context.Context) {
	var reconnected chan nats.Status
	if nc := f.n.nc; nc != nil {
		// A status listener of its own: the connection's reconnect
		// handler (one per connection) stays the application's.
		reconnected = nc.StatusChanged(nats.CONNECTED)
		defer nc.RemoveStatusListener(reconnected)
	}
	for {
		w, err := f.kv.Watch(ctx, f.cfg.Key)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("cannot watch the subscription spec; retrying", "err", err)
		} else {
			f.watches.Add(1)
			again := f.drain(ctx, w, reconnected)
			_ = w.Stop()
			if again {
				f.log.Info("NATS reconnected; watching the subscription spec again", "after_revision", f.lastRev)
				continue
			}
		}
		if resilience.Sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// drain applies the watch's updates until ctx ends or the watch ends
// (false), or the connection reconnects (true: set the watch up again).
func (f *specFollower) drain(ctx context.Context, w jetstream.KeyWatcher, reconnected <-chan nats.Status) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-reconnected:
			return true
		case e, ok := <-w.Updates():
			if !ok {
				return false
			}
			if e != nil {
				f.event(ctx, e, true)
			}
		}
	}
}

// event considers one revision of the key: a valid spec (or a deletion:
// back to the start set) becomes the running set; an invalid one (or
// one with a universe pattern that matches nothing) is logged, counted
// and reported, and the running set stays. It reports whether the
// revision was applied.
func (f *specFollower) event(ctx context.Context, e jetstream.KeyValueEntry, running bool) bool {
	rev := e.Revision()
	if rev <= f.lastRev {
		return false
	}
	f.lastRev = rev
	f.n.changeMu.Lock()
	defer f.n.changeMu.Unlock()
	subs, source := f.n.cfg.Subscriptions, SourceStart
	var err error
	if op := e.Operation(); op != jetstream.KeyValueDelete && op != jetstream.KeyValuePurge {
		source = SourceKV
		if subs, err = f.cfg.Parse(string(e.Value())); err == nil {
			err = f.n.check(subs)
		}
	}
	var resolved []Subscription
	if err == nil {
		resolved, err = f.n.uni.resolve(ctx, subs, false)
	}
	if err != nil {
		f.log.Error("subscription spec rejected; the running set stays", "revision", rev, "err", err)
		f.mu.Lock()
		f.st.Rejected, f.st.RejectedRevision = err.Error(), rev
		f.st.RejectedTotal++
		f.mu.Unlock()
		f.writeStatus(ctx)
		return false
	}
	if running {
		f.n.subMu.Lock()
		f.n.spec = subs
		f.n.subMu.Unlock()
		f.n.changeSubscriptions(ctx, resolved)
		f.n.uni.mu.Lock()
		f.n.uni.stats.Symbols = 0
		if hasPatterns(subs) {
			f.n.uni.stats.Symbols = len(unitsOf(resolved))
		}
		f.n.uni.mu.Unlock()
	} else {
		f.n.setSets(subs, resolved)
	}
	spec := render(subs)
	f.mu.Lock()
	f.st.Source, f.st.Revision, f.st.Spec, f.st.Units = source, 0, spec, len(unitsOf(resolved))
	if source == SourceKV {
		f.st.Revision = rev
	}
	f.st.Rejected, f.st.RejectedRevision = "", 0
	if running {
		f.st.Changes++
	}
	f.mu.Unlock()
	f.log.Info("subscription set applied", "source", source, "revision", rev, "spec", spec)
	f.writeStatus(ctx)
	return true
}

// status returns the current report.
func (f *specFollower) status() SubscribeStatus {
	u := f.n.Universe()
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.UniverseStats = u
	return st
}

// writeStatus writes the report to the status key (failures are logged).
func (f *specFollower) writeStatus(ctx context.Context) {
	st := f.status()
	st.Updated = time.Now().UTC()
	f.mu.Lock()
	f.st.Updated = st.Updated
	f.mu.Unlock()
	body, err := json.Marshal(st)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := f.kv.Put(ctx, StatusKey(f.n.cfg.Instance), body); err != nil {
		f.log.Warn("cannot write the running set's report", "status_key", StatusKey(f.n.cfg.Instance), "err", err)
	}
}

// leave deletes the status key (graceful shutdown).
func (f *specFollower) leave(ctx context.Context) {
	if f.kv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := f.kv.Delete(ctx, StatusKey(f.n.cfg.Instance)); err != nil {
		f.log.Warn("cannot delete the running set's report", "err", err)
	}
}

// discardSink drops states (dry-run streams).
type discardSink struct{}

func (discardSink) PutState(bridge.SymbolState) {}

// check builds, without running them, the streams of subs: a spec that
// passes runs. Errors are *SubscriptionError with Index into subs.
func (n *Node) check(subs []Subscription) error {
	if len(subs) == 0 {
		return errors.New("no subscription")
	}
	for i, sub := range subs {
		if _, err := n.adapters.get(sub.Exchange); err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageAdapter, Err: err}
		}
		sub, err := checkPatterns(sub)
		if err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageUniverse, Err: err}
		}
		s, err := n.runner.mk(sub.Exchange, sub.Channels, sub.Symbols, discardSink{})
		if err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageStream, Err: err}
		}
		_ = s.Close()
	}
	return nil
}

// CheckSubscriptions builds, without touching the network and without
// running them, the adapters and streams subs need, so that a spec that
// passes is one a replica accepts (`mdbridge subscribe set` checks with
// it). Errors are *SubscriptionError with Index into subs.
func CheckSubscriptions(subs []Subscription, v Venues) error {
	if len(subs) == 0 {
		return errors.New("no subscription")
	}
	set := newAdapterSet(v, nil)
	set.offline = true
	pub := bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil })
	for i, sub := range subs {
		ex, err := set.get(sub.Exchange)
		if err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageAdapter, Err: err}
		}
		if sub, err = checkPatterns(sub); err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageUniverse, Err: err}
		}
		res := resilience.DefaultResilienceConfig()
		s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: sub.Symbols, Channels: sub.Channels, Resilience: &res}, pub, nil)
		if err != nil {
			return &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageStream, Err: err}
		}
		_ = s.Close()
	}
	return nil
}

// unitChannels returns each unit's channels over subs.
func unitChannels(subs []Subscription) map[cluster.Unit]bridge.Channel {
	out := map[cluster.Unit]bridge.Channel{}
	for _, s := range subs {
		for _, sym := range s.Symbols {
			out[cluster.Unit{Market: s.Exchange, Symbol: sym}] |= s.Channels
		}
	}
	return out
}

// changeSubscriptions makes subs (patterns resolved) the running set: in
// cluster mode the coordinator spreads the new units; otherwise the runner
// stops the units removed (their md_state entries deleted), stops and
// starts again those whose channels changed, and starts the units added.
// It returns the units added and removed. n.changeMu held.
func (n *Node) changeSubscriptions(ctx context.Context, subs []Subscription) (added, removed []cluster.Unit) {
	old := n.subscriptions()
	oldCh, newCh := unitChannels(old), unitChannels(subs)
	var changed []cluster.Unit
	for _, u := range unitsOf(old) {
		ch, ok := newCh[u]
		switch {
		case !ok:
			removed = append(removed, u)
		case ch != oldCh[u]:
			changed = append(changed, u)
		}
	}
	for _, u := range unitsOf(subs) {
		if _, ok := oldCh[u]; !ok {
			added = append(added, u)
		}
	}
	n.subMu.Lock()
	n.active = subs
	n.subMu.Unlock()
	n.log.Info("subscription set changing", "added", len(added), "removed", len(removed), "channels_changed", len(changed))
	if n.coord != nil {
		n.coord.SetUnits(unitsOf(subs), changed)
		return added, removed
	}
	if stop := append(slices.Clone(removed), changed...); len(stop) > 0 {
		if err := n.runner.StopUnits(ctx, stop); err != nil {
			n.log.Error("stopping units failed", "count", len(stop), "err", err)
		}
	}
	if start := append(slices.Clone(added), changed...); len(start) > 0 {
		if err := n.runner.StartUnits(ctx, start); err != nil {
			n.log.Error("starting units failed", "count", len(start), "err", err)
		}
	}
	return added, removed
}

// unitNames lists at most max units for a log line.
func unitNames(units []cluster.Unit, max int) string {
	var parts []string
	for i, u := range units {
		if i == max {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(units)-max))
			break
		}
		parts = append(parts, u.String())
	}
	return strings.Join(parts, " ")
}

// SubscribeStatus returns the report of the running subscription set and
// true, or false without Config.Runtime.
func (n *Node) SubscribeStatus() (SubscribeStatus, bool) {
	if n.rt == nil {
		return SubscribeStatus{}, false
	}
	return n.rt.status(), true
}

// Subscriptions returns the subscription set running now (Config.Runtime:
// it changes at run time).
func (n *Node) Subscriptions() []Subscription { return n.subscriptions() }

var _ publisher.SnapshotSource = (*unitRunner)(nil)
