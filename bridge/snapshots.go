package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// snapshotter fetches REST order book snapshots for a stream: coalesced per
// symbol (concurrent requests for one symbol share one fetch), at most
// SnapshotConcurrency at a time, and rate-limited stream-wide, so a
// thousand books resyncing at once queue up within the venue's REST weight
// instead of sending a thousand requests (the adapter's own limiter then
// only has to absorb what is left). Safe for concurrent use.
type snapshotter struct {
	ex  Exchange
	sem chan struct{}
	rl  *resilience.RateLimitManager // nil: no stream-wide rate limit
	now func() time.Time

	mu    sync.Mutex
	calls map[string]*snapCall
}

type snapCall struct {
	done chan struct{}
	ev   Event
	err  error
}

func newSnapshotter(s *settings, now func() time.Time) (*snapshotter, error) {
	f := &snapshotter{
		ex:    s.Exchange,
		sem:   make(chan struct{}, s.SnapshotConcurrency),
		now:   now,
		calls: make(map[string]*snapCall),
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

// fetch returns a snapshot of symbol, joining a fetch already in flight.
// A joined caller whose ctx ends returns ctx.Err() without affecting the
// fetch. issued, if not nil, is called once when the request is sent to the
// venue (after the queue: concurrency slot and rate limit), or at once when
// the call joins a fetch already in flight; it must not block.
func (f *snapshotter) fetch(ctx context.Context, symbol string, issued func()) (Event, error) {
	f.mu.Lock()
	if c, ok := f.calls[symbol]; ok {
		f.mu.Unlock()
		if issued != nil {
			issued()
		}
		select {
		case <-c.done:
			return c.ev, c.err
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
	c := &snapCall{done: make(chan struct{})}
	f.calls[symbol] = c
	f.mu.Unlock()

	c.ev, c.err = f.do(ctx, symbol, issued)

	f.mu.Lock()
	delete(f.calls, symbol)
	f.mu.Unlock()
	close(c.done)
	return c.ev, c.err
}

func (f *snapshotter) do(ctx context.Context, symbol string, issued func()) (Event, error) {
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
	if issued != nil {
		issued()
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
