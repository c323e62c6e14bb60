package bridge

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// TestRestBookPreArmBound: before the snapshot request is sent a waiting
// book keeps only the newest few deltas; a snapshot older than one it
// dropped is refused, one covering them is used; once armed the buffer
// grows to limit; after the sync the buffer is released.
func TestRestBookPreArmBound(t *testing.T) {
	b := restBook{limit: 1000}
	var c symbolCounters
	var out []Event
	delta := func(i int64) {
		ev := Event{Type: EventBookDelta, FirstID: 10*i + 1, LastID: 10 * (i + 1)}
		out, _ = b.delta(&ev, out, &c)
	}
	for i := range int64(100) { // ids 1..1000, queued behind other books
		delta(i)
	}
	if len(b.buf) > preArmLimit {
		t.Fatalf("unarmed buffer holds %d deltas, bound %d", len(b.buf), preArmLimit)
	}
	first := b.buf[0].FirstID
	if b.skipHW != first-1 {
		t.Fatalf("skipHW %d, want %d (last id before the kept deltas)", b.skipHW, first-1)
	}
	b.arm()
	for i := int64(100); i < 150; i++ { // ids 1001..1500 while the request is in flight
		delta(i)
	}
	if want := 50 + int(1000-first+1)/10; len(b.buf) != want {
		t.Fatalf("armed buffer holds %d deltas, want %d", len(b.buf), want)
	}
	// Older than a dropped delta: fetch again (even though it is within one
	// id of a dropped one, which the old buffer would have applied).
	if _, again := b.snapshot(&Event{Type: EventBookSnapshot, LastID: first - 5}, first-5, out, &c); !again {
		t.Fatal("snapshot older than a dropped delta accepted")
	}
	var again bool
	out, again = b.snapshot(&Event{Type: EventBookSnapshot, LastID: 1495}, 1495, out, &c)
	if again {
		t.Fatal("usable snapshot refused")
	}
	if got := render(out); got != "S1495 D1491-1500" {
		t.Fatalf("emitted %q", got)
	}
	if b.buf != nil || b.armed || b.skipHW != 0 || b.state != bookLive {
		t.Fatalf("after sync: buf cap %d, armed %v, skipHW %d, state %d", cap(b.buf), b.armed, b.skipHW, b.state)
	}
	// A later gap starts unarmed again.
	ev := Event{Type: EventBookDelta, FirstID: 1600, LastID: 1610}
	if _, need := b.delta(&ev, nil, &c); !need || b.armed || len(b.buf) != 1 {
		t.Fatalf("gap: need %v, armed %v, buffered %d", need, b.armed, len(b.buf))
	}
	// arm outside a sync does nothing.
	live := restBook{state: bookLive}
	live.arm()
	if live.armed {
		t.Fatal("arm armed a live book")
	}
}

// TestSnapshotterIssued: the issued callback runs when the request leaves
// the queue (after the concurrency slot is free); a caller arriving while a
// fetch of its symbol is in flight is not answered by it, so its callback
// runs when its own fetch is sent.
func TestSnapshotterIssued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBookVenue{delay: time.Second}
		set := &settings{StreamConfig: StreamConfig{Exchange: f, SnapshotConcurrency: 1, SnapshotsPerMinute: 600000}}
		set.res = resilience.DefaultResilienceConfig()
		s, err := newSnapshotter(set, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		var issuedA, issuedB, issuedA2 atomic.Int64
		ctx := context.Background()
		go s.fetch(ctx, "A", func() { issuedA.Add(1) })
		synctest.Wait()
		go s.fetch(ctx, "B", func() { issuedB.Add(1) })
		synctest.Wait()
		go s.fetch(ctx, "A", func() { issuedA2.Add(1) })
		synctest.Wait()
		if issuedA.Load() != 1 || issuedB.Load() != 0 || issuedA2.Load() != 0 {
			t.Fatalf("issued A %d, B %d, second A %d; want 1, 0, 0 (B and the second A queue behind A)", issuedA.Load(), issuedB.Load(), issuedA2.Load())
		}
		time.Sleep(1500 * time.Millisecond) // fake time: A done, one of B and the second A in flight
		if issuedB.Load()+issuedA2.Load() != 1 || f.calls.Load() != 2 {
			t.Fatalf("issued B %d, second A %d, calls %d", issuedB.Load(), issuedA2.Load(), f.calls.Load())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if issuedB.Load() != 1 || issuedA2.Load() != 1 || f.calls.Load() != 3 {
			t.Fatalf("issued B %d, second A %d, calls %d; want 1, 1, 3", issuedB.Load(), issuedA2.Load(), f.calls.Load())
		}
		time.Sleep(time.Second)
		synctest.Wait()
	})
}

// TestRestBookAwaitWindow: a book whose snapshot is requested from a
// SnapshotRequester keeps only the deltas of the last replyWindow however
// long the answer takes (here a minute of a 100 ms stream), refuses a
// snapshot older than a dropped delta and syncs from one within the window.
func TestRestBookAwaitWindow(t *testing.T) {
	b := restBook{limit: 1000}
	var c symbolCounters
	var out []Event
	t0 := time.Unix(1_700_000_000, 0)
	delta := func(i int64) {
		ev := Event{Type: EventBookDelta, FirstID: 10*i + 1, LastID: 10 * (i + 1),
			RecvTS: t0.Add(time.Duration(i) * 100 * time.Millisecond).UnixNano()}
		out, _ = b.delta(&ev, out, &c)
	}
	delta(0)
	b.await()
	for i := int64(1); i < 600; i++ {
		delta(i)
		if want := int(replyWindow/(100*time.Millisecond)) + 1; len(b.buf) > want {
			t.Fatalf("after %d deltas the buffer holds %d, want <= %d", i+1, len(b.buf), want)
		}
	}
	first := b.buf[0].FirstID
	if first != 10*(599-50)+1 || b.skipHW != first-1 {
		t.Fatalf("oldest kept delta starts at %d, skipHW %d", first, b.skipHW)
	}
	if _, again := b.snapshot(&Event{Type: EventBookSnapshot, LastID: first - 2}, first-2, out, &c); !again {
		t.Fatal("snapshot older than a dropped delta accepted")
	}
	out, again := b.snapshot(&Event{Type: EventBookSnapshot, LastID: 5985}, 5985, out, &c)
	if again {
		t.Fatal("snapshot within the window refused")
	}
	if got := render(out); got != "S5985 D5981-5990 D5991-6000" {
		t.Fatalf("emitted %q", got)
	}
	if b.buf != nil || b.awaiting || b.skipHW != 0 {
		t.Fatalf("after sync: buf cap %d, awaiting %v, skipHW %d", cap(b.buf), b.awaiting, b.skipHW)
	}
	// Deltas without a receive time (RecvTS 0) are never expired early.
	q := restBook{limit: 1000, state: bookSyncing}
	q.await()
	for i := range int64(30) {
		ev := Event{Type: EventBookDelta, FirstID: i + 1, LastID: i + 1}
		q.hold(&ev)
	}
	if len(q.buf) != 30 {
		t.Fatalf("buffer without receive times holds %d, want 30", len(q.buf))
	}
}
