package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
)

// retireWait bounds a replaced or released stream's graceful Shutdown
// before it is closed.
const retireWait = 5 * time.Second

// unitsOf returns the cluster units of the subscriptions: one per
// (exchange, symbol), whatever channels and subscriptions name it.
func unitsOf(subs []Subscription) []cluster.Unit {
	seen := map[cluster.Unit]bool{}
	var out []cluster.Unit
	for _, s := range subs {
		for _, sym := range s.Symbols {
			u := cluster.Unit{Market: s.Exchange, Symbol: sym}
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// mutedSink passes states to the md_state writer except those of muted
// symbols (released by this replica) or of a retired stream.
type mutedSink struct {
	next  bridge.StateSink
	mu    sync.Mutex
	muted map[string]bool
	all   bool
}

func (m *mutedSink) PutState(st bridge.SymbolState) {
	m.mu.Lock()
	off := m.all || m.muted[st.Symbol]
	m.mu.Unlock()
	if !off {
		m.next.PutState(st)
	}
}

func (m *mutedSink) mute(symbols []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.muted == nil {
		m.muted = map[string]bool{}
	}
	for _, s := range symbols {
		m.muted[s] = true
	}
}

func (m *mutedSink) muteAll(all bool) {
	m.mu.Lock()
	m.all = all
	m.mu.Unlock()
}

// unitStream is one bridge.Stream the runner started for some units of
// one subscription (its exchange and channels).
type unitStream struct {
	ex      string
	ch      bridge.Channel
	s       *bridge.Stream
	sink    *mutedSink
	symbols []string // the units it is responsible for (a replaced stream: none)
	done    chan struct{}
}

// unitRunner implements cluster.Runner with bridge.Streams: the units
// gained together run in one new stream per subscription; releasing some
// units of a stream replaces it, make-before-break, by a stream of the
// units it keeps (the old one stops once the new one is CONNECTED). It is
// also the snapshot service's source, routing to the streams it runs.
type unitRunner struct {
	n        *Node
	handover time.Duration    // bound of a replacement's wait for CONNECTED
	sinkBase bridge.StateSink // the md_state writer (behind the hook)
	mk       func(ex string, ch bridge.Channel, symbols []string, sink bridge.StateSink) (*bridge.Stream, error)
	log      *slog.Logger
	// svc, in cluster mode, is the per-unit snapshot service: each unit
	// carried has its subscription in served.
	svc    *publisher.SnapshotService
	mu     sync.Mutex
	served map[cluster.Unit]*publisher.SnapshotUnit
	cur    []*unitStream // streams carrying units
	old    []*unitStream // streams being retired
	wg     sync.WaitGroup
	stop   chan struct{}
	shut   bool
}

var _ cluster.Runner = (*unitRunner)(nil)

// streams returns the streams running, current and retiring.
func (r *unitRunner) streams() bridge.Streams {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(bridge.Streams, 0, len(r.cur)+len(r.old))
	for _, us := range r.cur {
		out = append(out, us.s)
	}
	for _, us := range r.old {
		out = append(out, us.s)
	}
	return out
}

// Snapshot implements publisher.SnapshotSource over the running streams.
func (r *unitRunner) Snapshot(ctx context.Context, exchange, symbol string) (bridge.Event, error) {
	return r.streams().Snapshot(ctx, exchange, symbol)
}

// Serves implements publisher.SymbolFilter.
func (r *unitRunner) Serves(exchange, symbol string) bool {
	return r.streams().Serves(exchange, symbol)
}

// launch starts a stream of exchange ex and channels ch for symbols; the
// caller records it in r.cur. r.mu held.
func (r *unitRunner) launch(ex string, ch bridge.Channel, symbols []string, quiet bool) (*unitStream, error) {
	sink := &mutedSink{next: r.sinkBase, all: quiet}
	s, err := r.mk(ex, ch, symbols, sink)
	if err != nil {
		return nil, err
	}
	// Serve the units' snapshot requests before the stream runs: its own
	// book syncs ask for them.
	r.serve(ex, symbols)
	us := &unitStream{ex: ex, ch: ch, s: s, sink: sink, symbols: symbols, done: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(us.done)
		if err := s.Run(context.Background()); err != nil && r.n.cfg.OnStreamError != nil {
			r.n.cfg.OnStreamError(fmt.Errorf("%s stream: %w", s.Exchange(), err))
		}
	}()
	return us, nil
}

// serve subscribes the snapshot control subject of each unit not yet
// served (cluster mode). r.mu held.
func (r *unitRunner) serve(ex string, symbols []string) {
	if r.svc == nil {
		return
	}
	if r.served == nil {
		r.served = map[cluster.Unit]*publisher.SnapshotUnit{}
	}
	for _, sym := range symbols {
		u := cluster.Unit{Market: ex, Symbol: sym}
		if r.served[u] != nil {
			continue
		}
		su, err := r.svc.Serve(ex, sym)
		if err != nil {
			// Its book syncs still work: clusterRequester fetches
			// through this replica's stream when nobody answers.
			r.log.Warn("cannot serve the unit's snapshot requests", "unit", u.String(), "err", err)
			continue
		}
		r.served[u] = su
	}
}

// unserve releases the snapshot subscriptions of units: requests still
// queued for them are answered "unavailable" (the requester asks again
// and reaches another owner). r.mu held.
func (r *unitRunner) unserve(units []cluster.Unit) {
	for _, u := range units {
		if su := r.served[u]; su != nil {
			su.Release()
			delete(r.served, u)
		}
	}
}

// StartUnits starts one stream per subscription (of the node's current
// set) naming some of units; units no subscription names are skipped.
func (r *unitRunner) StartUnits(_ context.Context, units []cluster.Unit) error {
	want := map[cluster.Unit]bool{}
	for _, u := range units {
		want[u] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shut {
		return errors.New("node: shutting down")
	}
	var errs []error
	for i, sub := range r.n.subscriptions() {
		var syms []string
		for _, sym := range sub.Symbols {
			if want[cluster.Unit{Market: sub.Exchange, Symbol: sym}] {
				syms = append(syms, sym)
			}
		}
		if len(syms) == 0 {
			continue
		}
		us, err := r.launch(sub.Exchange, sub.Channels, syms, false)
		if err != nil {
			errs = append(errs, &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageStream, Err: err})
			continue
		}
		r.cur = append(r.cur, us)
	}
	return errors.Join(errs...)
}

// StopUnits stops carrying units: their states are muted and forgotten at
// once; a stream left with no units is retired, a stream that keeps some
// is replaced by a stream of those, and retired once that one is
// CONNECTED.
func (r *unitRunner) StopUnits(ctx context.Context, units []cluster.Unit) error {
	gone := map[cluster.Unit]bool{}
	for _, u := range units {
		gone[u] = true
	}
	r.mu.Lock()
	var errs []error
	var keep []*unitStream
	for _, us := range r.cur {
		ex := us.ex
		var kept, dropped []string
		for _, sym := range us.symbols {
			if gone[cluster.Unit{Market: ex, Symbol: sym}] {
				dropped = append(dropped, sym)
			} else {
				kept = append(kept, sym)
			}
		}
		if len(dropped) == 0 {
			keep = append(keep, us)
			continue
		}
		us.sink.mute(dropped)
		if len(kept) == 0 {
			r.retire(us, nil)
			continue
		}
		// The replacement reports nothing until it is CONNECTED: until
		// then the old stream carries the kept units and says so.
		nu, err := r.launch(us.ex, us.ch, kept, true)
		if err != nil {
			// Keep the old stream: it still carries the kept units.
			errs = append(errs, err)
			us.symbols = kept
			keep = append(keep, us)
			continue
		}
		keep = append(keep, nu)
		r.retire(us, nu)
	}
	r.cur = keep
	r.unserve(units)
	r.mu.Unlock()
	for _, u := range units {
		if err := r.n.states.Forget(ctx, u.Market, u.Symbol, r.n.cfg.Instance); err != nil {
			r.log.Warn("cannot delete the md_state entry of a released unit", "unit", u.String(), "err", err)
		}
	}
	return errors.Join(errs...)
}

// retire stops us in the background: at once, or, when it is replaced by
// nu, once nu's symbols are CONNECTED (bounded by the handover timeout).
// r.mu held.
func (r *unitRunner) retire(us *unitStream, nu *unitStream) {
	us.symbols = nil
	r.old = append(r.old, us)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if nu != nil {
			r.awaitConnected(nu)
		}
		us.sink.muteAll(true)
		if nu != nil {
			nu.sink.muteAll(false)
		}
		ctx, cancel := context.WithTimeout(context.Background(), retireWait)
		if err := us.s.Shutdown(ctx); err != nil {
			// Its pending publish was cancelled: the publisher counts and
			// logs the events it did not take (publish_abandoned_total,
			// md_state publish_dropped).
			r.log.Warn("a retired stream did not stop gracefully in time; its pending publish was cancelled",
				"exchange", us.ex, "channels", us.ch.String(), "replaced", nu != nil, "wait", retireWait, "err", err)
		}
		cancel()
		_ = us.s.Close()
		<-us.done
		if nu != nil {
			// The new stream's states, muted so far.
			for _, st := range nu.s.States() {
				nu.sink.PutState(st)
			}
		}
		r.mu.Lock()
		r.old = slices.DeleteFunc(r.old, func(o *unitStream) bool { return o == us })
		r.mu.Unlock()
	}()
}

// awaitConnected waits until every symbol of us is CONNECTED, the handover
// timeout passes, or the runner shuts down.
func (r *unitRunner) awaitConnected(us *unitStream) {
	deadline := time.NewTimer(r.handover)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, st := range us.s.States() {
			if st.State != "CONNECTED" {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-r.stop:
			return
		case <-us.done:
			return
		}
	}
}

// shutdown stops every stream: gracefully within ctx, or at once (close).
func (r *unitRunner) shutdown(ctx context.Context, graceful bool) error {
	r.mu.Lock()
	if !r.shut {
		r.shut = true
		close(r.stop)
	}
	all := append(slices.Clone(r.cur), r.old...)
	r.mu.Unlock()
	var errs []error
	for _, us := range all {
		if graceful {
			if err := us.s.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s stream: %w", us.s.Exchange(), err))
			}
		} else {
			_ = us.s.Close()
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// clusterRequester asks the control subject for snapshots like the
// publisher's requester (in cluster mode only the unit's owners subscribe
// it, this replica among them); should the answer be unknown_symbol or no
// responders (a subscription failed), the snapshot is fetched through
// this replica's own stream and published here.
type clusterRequester struct {
	next bridge.SnapshotRequester
	src  publisher.SnapshotSource
	pub  *publisher.JetStream
}

func (c *clusterRequester) RequestSnapshot(ctx context.Context, exchange, symbol string) (int64, error) {
	id, err := c.next.RequestSnapshot(ctx, exchange, symbol)
	if !errors.Is(err, publisher.ErrUnknownSymbol) && !errors.Is(err, publisher.ErrNoResponders) {
		return id, err
	}
	ev, err := c.src.Snapshot(ctx, exchange, symbol)
	if err != nil {
		return 0, err
	}
	if _, err := c.pub.PublishWait(ctx, ev); err != nil {
		return 0, err
	}
	return ev.LastID, nil
}
