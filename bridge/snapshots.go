package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// snapshotter fetches REST order book snapshots for a stream: coalesced per
// symbol, at most SnapshotConcurrency at a time, and rate-limited
// stream-wide, so a thousand books resyncing at once queue up within the
// venue's REST weight instead of sending a thousand requests (the adapter's
// venue limiter, shared by every stream of the venue, then only has to
// absorb what is left). It is the one owner of fetch coalescing,
// concurrency and rate for the stream's books, for the silent-feed check
// and for snapshot requests from the control service (Stream.Snapshot).
//
// Coalescing never hands a caller a snapshot requested from the venue
// before the caller asked: a call joins a fetch of the same symbol only
// while that fetch is still queued (waiting for a concurrency slot or the
// rate limit); once a fetch is sent, later calls queue a new one. A burst
// of calls for one symbol thus costs at most two fetches, and every answer
// is at least as new as its request (the rule the control service applies
// to requests from other replicas). Safe for concurrent use.
type snapshotter struct {
	ex  Exchange
	sem chan struct{}
	rl  *resilience.RateLimitManager // nil: no stream-wide rate limit
	now func() time.Time

	mu      sync.Mutex
	pending map[string]*snapCall // queued fetches, not yet sent to the venue
}

type snapCall struct {
	done   chan struct{}
	issued []func() // joiners' callbacks, run when the fetch is sent; guarded by snapshotter.mu
	ev     Event
	err    error
}

func newSnapshotter(s *settings, now func() time.Time) (*snapshotter, error) {
	f := &snapshotter{
		ex:      s.Exchange,
		sem:     make(chan struct{}, s.SnapshotConcurrency),
		now:     now,
		pending: make(map[string]*snapCall),
	}
	if s.res.RateLimitEnabled {
		rl, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{
			RequestsPerMinute: s.SnapshotsPerMinute,
			Burst:             max(s.SnapshotsPerMinute/20, 1),
		})
		if err != nil {
			return nil, err
		}
		f.rl = rl
	}
	return f, nil
}

// fetch returns a snapshot of symbol, joining a fetch of it that is still
// queued (see snapshotter). A joined caller whose ctx ends returns
// ctx.Err() without affecting the fetch. issued, if not nil, is called once
// when the fetch that answers the call is sent to the venue (after the
// queue: concurrency slot and rate limit); it must not block.
func (f *snapshotter) fetch(ctx context.Context, symbol string, issued func()) (Event, error) {
	f.mu.Lock()
	if c, ok := f.pending[symbol]; ok {
		if issued != nil {
			c.issued = append(c.issued, issued)
		}
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.ev, c.err
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
	c := &snapCall{done: make(chan struct{})}
	if issued != nil {
		c.issued = append(c.issued, issued)
	}
	f.pending[symbol] = c
	f.mu.Unlock()

	c.ev, c.err = f.do(ctx, symbol, c)

	f.mu.Lock()
	f.unqueue(symbol, c)
	f.mu.Unlock()
	close(c.done)
	return c.ev, c.err
}

// unqueue removes c from the queued fetches (if it is still there) and
// returns the callbacks of the calls it answers. f.mu is held.
func (f *snapshotter) unqueue(symbol string, c *snapCall) []func() {
	if f.pending[symbol] == c {
		delete(f.pending, symbol)
	}
	fns := c.issued
	c.issued = nil
	return fns
}

func (f *snapshotter) do(ctx context.Context, symbol string, c *snapCall) (Event, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
	defer func() { <-f.sem }()
	if f.rl != nil {
		if err := f.rl.Acquire(ctx); err != nil {
			return Event{}, err
		}
	}
	// Sent now: later calls must not join this fetch.
	f.mu.Lock()
	fns := f.unqueue(symbol, c)
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	ev, err := f.ex.Snapshot(ctx, symbol)
	if err != nil {
		return Event{}, err
	}
	ev.Type = EventBookSnapshot
	if ev.Exchange == "" {
		ev.Exchange = f.ex.Name()
	}
	if ev.Symbol == "" {
		ev.Symbol = symbol
	}
	if ev.RecvTS == 0 {
		ev.RecvTS = f.now().UnixNano()
	}
	return ev, nil
}
