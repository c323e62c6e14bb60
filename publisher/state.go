package publisher

import (
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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

var _ bridge.StateSink = (*StateWriter)(nil)

const (
	// StateDisconnected is the state WriteFinal writes for every key.
	StateDisconnected = "DISCONNECTED"

	// StateHistory is the number of revisions the bucket keeps per key. With
	// one, a watcher that falls behind would skip a transition overwritten
	// by the next write; with a few, it sees every recent transition, and
	// `nats kv history md_state <key>` shows them.
	StateHistory = 8

	maxPendingPerKey = 32 // transitions queued per key before the oldest is dropped
	// stateWriteBatch is how many keys are written at once. One Put at a
	// time (a JetStream round trip, 1.5-2 ms on a loaded server) capped a
	// replica at ~600 writes/s, while its refresh alone rewrites every key
	// each StateRefresh: a handover's ~1000 new keys waited seconds behind
	// it before their CONNECTED was visible.
	stateWriteBatch = 64
	stateWriteWait  = 5 * time.Second
)

// EnsureStateBucket creates or updates the md_state KV bucket: StateHistory
// revisions per key, TTL cfg.StateTTL, cfg's storage and replicas.
//
// Liveness design: the StateWriter rewrites every key each StateRefresh with
// a fresh "updated"; a reader reports an entry stale once "updated" is older
// than StaleAfter (3 × refresh by default), so a dead instance is recognised
// within seconds; the bucket TTL then removes its entries after StateTTL
// (1 h by default) so they do not accumulate.
func EnsureStateBucket(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.KVBucket,
		Description: "mdbridge connection state per exchange, symbol and instance",
		History:     StateHistory,
		TTL:         cfg.StateTTL,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: KV bucket %q: %w", ErrNoStream, cfg.KVBucket, err)
	}
	return kv, nil
}

// StateKey returns the md_state key of a state, "<exchange>.<symbol>.<instance>".
// Characters of the instance name that are not letters, digits, '_', '-' or
// '=' (a host name's dots, for instance) become '_' so the key has exactly
// three tokens. It fails with bridge.ErrBadIdent for an invalid exchange or
// symbol.
func StateKey(exchange, symbol, instance string) (string, error) {
	if err := errors.Join(bridge.ValidateIdent(exchange), bridge.ValidateIdent(symbol)); err != nil {
		return "", err
	}
	if instance == "" {
		instance = "_"
	}
	var b strings.Builder
	b.Grow(len(exchange) + len(symbol) + len(instance) + 2)
	b.WriteString(exchange)
	b.WriteByte('.')
	b.WriteString(symbol)
	b.WriteByte('.')
	for i := 0; i < len(instance); i++ {
		c := instance[i]
		if bridge.IsIdentChar(c) || c == '=' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String(), nil
}

// StateWriterStats are the state writer's counters.
type StateWriterStats struct {
	Writes     uint64 // successful KV puts
	Failures   uint64 // failed KV puts (retried)
	Coalesced  uint64 // updates merged into a queued one of the same state
	Overflowed uint64 // queued transitions dropped because a key had too many
	Keys       int    // keys known
}

// keyState is the write queue of one key.
type keyState struct {
	key     string
	last    bridge.SymbolState   // latest state given, rewritten by refreshes
	pending []bridge.SymbolState // not yet written, in order
	queued  bool                 // in StateWriter.dirty
	gone    bool                 // forgotten: never written again
}

// StateWriter implements bridge.StateSink on the md_state bucket. PutState
// never blocks: states are queued per key, consecutive updates with the same
// State are coalesced (transitions are kept, in order), and one background
// goroutine writes them in order per key, up to stateWriteBatch keys at
// once, retrying failures. Every key is rewritten
// each StateRefresh with a fresh Updated. WriteFinal writes DISCONNECTED for
// every key synchronously at shutdown.
type StateWriter struct {
	kv      jetstream.KeyValue
	cfg     Config
	log     *slog.Logger
	limiter *logLimiter

	io     sync.Mutex // serializes background writes with Forget's delete
	mu     sync.Mutex
	keys   map[string]*keyState
	dirty  []*keyState
	closed bool

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	ctx      context.Context
	cancel   context.CancelFunc

	writes, failures, coalesced, overflowed atomic.Uint64
	drops                                   atomic.Pointer[func(exchange, symbol string) uint64]
}

// NewStateWriter starts a state writer on kv (from EnsureStateBucket).
func NewStateWriter(kv jetstream.KeyValue, cfg Config, logger *slog.Logger) (*StateWriter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &StateWriter{
		kv:      kv,
		cfg:     cfg.withDefaults(),
		log:     orDiscard(logger).With("component", "state"),
		limiter: newLogLimiter(logEvery),
		keys:    make(map[string]*keyState),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w, nil
}

// PutState queues st for its key. It never blocks and does not retain
// pointers into st. States with an invalid exchange or symbol are logged and
// ignored; after WriteFinal or Close every state is ignored.
func (w *StateWriter) PutState(st bridge.SymbolState) {
	key, err := StateKey(st.Exchange, st.Symbol, st.Instance)
	if err != nil {
		if w.limiter.allow("badkey") {
			w.log.Error("ignoring state with invalid key", "err", err)
		}
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.queue(key, st)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// queue appends st to its key's pending list. w.mu is held.
func (w *StateWriter) queue(key string, st bridge.SymbolState) {
	ks := w.keys[key]
	if ks == nil {
		ks = &keyState{key: key}
		w.keys[key] = ks
	}
	ks.last = st
	n := len(ks.pending)
	switch {
	case n > 0 && ks.pending[n-1].State == st.State:
		ks.pending[n-1] = st // same state: only the newest counters matter
		w.coalesced.Add(1)
	case n >= maxPendingPerKey:
		copy(ks.pending, ks.pending[1:])
		ks.pending[n-1] = st
		w.overflowed.Add(1)
		if w.limiter.allow("overflow") {
			w.log.Warn("state transitions arrive faster than KV writes; dropping the oldest queued", "key", key)
		}
	default:
		ks.pending = append(ks.pending, st)
	}
	if !ks.queued {
		ks.queued = true
		w.dirty = append(w.dirty, ks)
	}
}

// run writes queued states and refreshes every key periodically.
func (w *StateWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.StateRefresh)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := newBackoff(100*time.Millisecond, w.cfg.StateRefresh)
	var retryAt time.Time // while in the future, new states only queue
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
			if time.Now().Before(retryAt) {
				continue
			}
		case <-retry.C:
		case <-tick.C:
			w.refreshAll()
		}
		for {
			batch := w.nextBatch(stateWriteBatch)
			if len(batch) == 0 {
				break
			}
			if failed := w.writeLive(batch); len(failed) > 0 {
				for _, p := range failed {
					w.requeue(p.ks, p.st)
				}
				backoff.RecordFailure()
				d := backoff.Ceiling()
				retryAt = time.Now().Add(d)
				retry.Reset(d)
				break
			}
			backoff.Reset()
			retryAt = time.Time{}
		}
	}
}

// pendingWrite is one queued state taken for writing.
type pendingWrite struct {
	ks *keyState
	st bridge.SymbolState
}

// writeLive writes a batch (one state per key) concurrently, skipping the
// keys Forget removed, and returns the writes that failed.
func (w *StateWriter) writeLive(batch []pendingWrite) (failed []pendingWrite) {
	w.io.Lock()
	defer w.io.Unlock()
	w.mu.Lock()
	live := batch[:0:0]
	for _, p := range batch {
		if !p.ks.gone {
			live = append(live, p)
		}
	}
	w.mu.Unlock()
	errs := make([]error, len(live))
	var wg sync.WaitGroup
	for i, p := range live {
		wg.Go(func() { errs[i] = w.write(w.ctx, p.ks.key, p.st) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			failed = append(failed, live[i])
		}
	}
	return failed
}

// Forget stops writing the state of exchange and symbol on instance and
// deletes its md_state key (a replica that hands the symbol over to
// another, so that the entry does not linger as stale). States put for the
// key afterwards start it again. It returns the delete's error.
func (w *StateWriter) Forget(ctx context.Context, exchange, symbol, instance string) error {
	key, err := StateKey(exchange, symbol, instance)
	if err != nil {
		return err
	}
	w.io.Lock()
	defer w.io.Unlock()
	w.mu.Lock()
	if ks := w.keys[key]; ks != nil {
		ks.gone, ks.pending = true, nil
		delete(w.keys, key)
	}
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, stateWriteWait)
	defer cancel()
	if err := w.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("publisher: forget state %s: %w", key, err)
	}
	return nil
}

// nextBatch takes the first pending state of each of the first n dirty
// keys. A key with more states pending stays dirty, ahead of the keys not
// taken: the next batch writes its next state, so each key's states are
// written in order.
func (w *StateWriter) nextBatch(n int) []pendingWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []pendingWrite
	keep := w.dirty[:0] // filtered in place: keep never passes i
	i := 0
	for ; i < len(w.dirty) && len(out) < n; i++ {
		ks := w.dirty[i]
		if len(ks.pending) == 0 {
			ks.queued = false
			continue
		}
		out = append(out, pendingWrite{ks: ks, st: ks.pending[0]})
		ks.pending = slices.Delete(ks.pending, 0, 1)
		if len(ks.pending) == 0 {
			ks.queued = false
		} else {
			keep = append(keep, ks)
		}
	}
	w.dirty = append(keep, w.dirty[i:]...)
	if len(w.dirty) == 0 {
		w.dirty = nil
	}
	return out
}

// requeue puts back a state whose write failed, ahead of newer ones, unless
// a newer state of the same kind superseded it.
func (w *StateWriter) requeue(ks *keyState, st bridge.SymbolState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(ks.pending) == 0 || ks.pending[0].State != st.State {
		ks.pending = slices.Insert(ks.pending, 0, st)
		if len(ks.pending) > maxPendingPerKey {
			ks.pending = slices.Delete(ks.pending, 0, 1)
			w.overflowed.Add(1)
		}
	}
	if !ks.queued {
		ks.queued = true
		w.dirty = append(w.dirty, ks)
	}
}

// refreshAll queues the latest state of every idle key, so "updated"
// advances while the instance lives.
func (w *StateWriter) refreshAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ks := range w.keys {
		if len(ks.pending) == 0 {
			w.queue(ks.key, ks.last)
		}
	}
}

// SetDropCounter makes every state written carry the publisher's count of
// the symbol's events it did not store (bridge.Counters.PublishDropped),
// e.g. JetStream.SymbolDropped, so drops are visible in md_state per
// instance. Call it before the first PutState.
func (w *StateWriter) SetDropCounter(f func(exchange, symbol string) uint64) { w.drops.Store(&f) }

// write puts one state with Updated = now.
func (w *StateWriter) write(ctx context.Context, key string, st bridge.SymbolState) error {
	st.Updated = time.Now()
	if f := w.drops.Load(); f != nil {
		st.PublishDropped = (*f)(st.Exchange, st.Symbol)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("publisher: encode state %s: %w", key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, stateWriteWait)
	defer cancel()
	if _, err := w.kv.Put(ctx, key, body); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			// Cancelled by the caller: at shutdown halt cancels the
			// background write, and WriteFinal writes the state again.
			// Not a KV failure.
			w.log.Debug("KV state write cancelled", "key", key)
			return fmt.Errorf("publisher: write state %s: %w", key, err)
		}
		w.failures.Add(1)
		if w.limiter.allow("fail") {
			w.log.Warn("KV state write failed; will retry", "key", key, "err", err)
		}
		return fmt.Errorf("publisher: write state %s: %w", key, err)
	}
	w.writes.Add(1)
	return nil
}

// Stats returns the writer's counters.
func (w *StateWriter) Stats() StateWriterStats {
	w.mu.Lock()
	n := len(w.keys)
	w.mu.Unlock()
	return StateWriterStats{
		Writes: w.writes.Load(), Failures: w.failures.Load(),
		Coalesced: w.coalesced.Load(), Overflowed: w.overflowed.Load(), Keys: n,
	}
}

// halt stops the background goroutine and refuses further states.
func (w *StateWriter) halt() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
		w.cancel()
		<-w.done
	})
}

// WriteFinal stops the writer, writes every still-queued state, then writes
// DISCONNECTED (Since = now) for every key not already in that state,
// synchronously and bounded by ctx. Keys are written up to
// stateWriteBatch at a time, each key's states in order (a replica
// shutting down with thousands of units would otherwise spend one KV
// round trip per key, in series, of its shutdown grace). It returns the
// joined write errors.
func (w *StateWriter) WriteFinal(ctx context.Context) error {
	w.halt()
	w.mu.Lock()
	keys := make([]*keyState, 0, len(w.keys))
	for _, ks := range w.keys {
		keys = append(keys, ks)
	}
	w.mu.Unlock()
	slices.SortFunc(keys, func(a, b *keyState) int { return strings.Compare(a.key, b.key) })
	errs := make([][]error, len(keys))
	sem := make(chan struct{}, stateWriteBatch)
	var wg sync.WaitGroup
	for i, ks := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = w.writeFinalKey(ctx, ks)
		})
	}
	wg.Wait()
	return errors.Join(slices.Concat(errs...)...)
}

// writeFinalKey writes ks's queued states, then its DISCONNECTED state.
func (w *StateWriter) writeFinalKey(ctx context.Context, ks *keyState) []error {
	var errs []error
	for _, st := range ks.pending {
		if err := w.write(ctx, ks.key, st); err != nil {
			errs = append(errs, err)
		}
	}
	ks.pending = nil
	if ks.last.State == StateDisconnected {
		return errs
	}
	st := ks.last
	st.State = StateDisconnected
	st.Since = time.Now()
	if err := w.write(ctx, ks.key, st); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Close stops the writer without final writes: its entries stop being
// refreshed and become stale, as a crashed instance's would.
func (w *StateWriter) Close() error {
	w.halt()
	return nil
}
