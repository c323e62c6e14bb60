package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// fakeBookVenue is a pure-logic stand-in for an Exchange: only Snapshot is
// real, counting calls and concurrency.
type fakeBookVenue struct {
	Exchange // nil: any other method panics (not used here)
	calls    atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64
	delay    time.Duration
}

func (f *fakeBookVenue) Name() string { return "fake" }

func (f *fakeBookVenue) Snapshot(ctx context.Context, symbol string) (Event, error) {
	f.calls.Add(1)
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
	return Event{Type: EventBookSnapshot, Symbol: symbol, LastID: 42}, nil
}

// TestSnapshotterCoalescesAndBounds: 200 books resyncing at once, each
// asked 5 times concurrently, cost one fetch per book, at most
// SnapshotConcurrency at a time.
func TestSnapshotterCoalescesAndBounds(t *testing.T) {
	synctest.Test(t, testSnapshotterCoalesces)
}

func testSnapshotterCoalesces(t *testing.T) {
	f := &fakeBookVenue{delay: 2 * time.Millisecond}
	set := &settings{StreamConfig: StreamConfig{Exchange: f, SnapshotConcurrency: 3, SnapshotsPerMinute: 600000}}
	set.res = resilience.DefaultResilienceConfig()
	s, err := newSnapshotter(set, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		sym := fmt.Sprintf("S%03d", i)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ev, err := s.fetch(context.Background(), sym, nil)
				if err != nil || ev.Symbol != sym || ev.Exchange != "fake" || ev.RecvTS == 0 {
					t.Errorf("fetch %s = %+v, %v", sym, ev, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if n := f.calls.Load(); n < 200 || n > 400 {
		t.Fatalf("%d REST snapshots for 200 books asked 5 times each: not coalesced", n)
	}
	if p := f.peak.Load(); p > 3 {
		t.Fatalf("%d snapshots in flight at once, bound 3", p)
	}
}

// TestSnapshotterRateLimit: the stream-wide limit spaces fetches.
func TestSnapshotterRateLimit(t *testing.T) {
	synctest.Test(t, testSnapshotterRateLimit)
}

func testSnapshotterRateLimit(t *testing.T) {
	f := &fakeBookVenue{}
	set := &settings{StreamConfig: StreamConfig{Exchange: f, SnapshotConcurrency: 8, SnapshotsPerMinute: 600}}
	set.res = resilience.DefaultResilienceConfig()
	s, err := newSnapshotter(set, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	// Burst 30 (600/20), then 10 per second.
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.fetch(ctx, fmt.Sprintf("S%d", i), nil); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	// The burst, then one at 100, 200 and 300 ms.
	if n := ok.Load(); n != 33 {
		t.Fatalf("%d snapshots within 350ms; the limit allows the burst of 30 plus 3", n)
	}
}

// TestSnapshotterNeverAnswersWithAnOlderFetch: a call made while a fetch of
// the same symbol is already sent to the venue is not answered by it (that
// snapshot may predate the caller's gap): it queues a second fetch, which
// later calls join while it waits; every joiner's issued callback runs when
// the fetch answering it is sent.
func TestSnapshotterNeverAnswersWithAnOlderFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBookVenue{delay: 10 * time.Millisecond}
		set := &settings{StreamConfig: StreamConfig{Exchange: f, SnapshotConcurrency: 1, SnapshotsPerMinute: 600000}}
		set.res = resilience.DefaultResilienceConfig()
		s, err := newSnapshotter(set, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		var issued atomic.Int64
		onIssued := func() { issued.Add(1) }
		var wg sync.WaitGroup
		call := func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.fetch(context.Background(), "BTCUSDT", onIssued); err != nil {
					t.Error(err)
				}
			}()
		}
		call()
		synctest.Wait() // the first fetch is sent and in flight
		if n := f.calls.Load(); n != 1 || issued.Load() != 1 {
			t.Fatalf("after the first call: %d fetches, %d issued callbacks; want 1, 1", n, issued.Load())
		}
		for range 5 {
			call() // arrive during the first fetch: one queued fetch, not the running one
		}
		synctest.Wait()
		if n := f.calls.Load(); n != 1 || issued.Load() != 1 {
			t.Fatalf("during the first fetch: %d fetches, %d issued callbacks; want 1, 1 (the others wait for a slot)", n, issued.Load())
		}
		wg.Wait()
		if n := f.calls.Load(); n != 2 {
			t.Fatalf("%d fetches for a call and 5 calls made during its fetch; want 2", n)
		}
		if n := issued.Load(); n != 6 {
			t.Fatalf("%d issued callbacks, want 6 (one per call, when its fetch was sent)", n)
		}
	})
}
