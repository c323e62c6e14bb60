package bridge

import (
	"testing"
	"time"
)

func chainDelta(prev, seq int64) Event {
	return Event{Type: EventBookDelta, Exchange: "okx", Symbol: "BTC-USDT", PrevID: prev, FirstID: prev + 1, LastID: seq,
		Bids: []Level{{"1", "1"}}}
}

func chainSnap(seq int64) Event {
	return Event{Type: EventBookSnapshot, Exchange: "okx", Symbol: "BTC-USDT", LastID: seq, Bids: []Level{{"1", "2"}}}
}

// The documented example chain (-1,10) (10,15) (15,15) (15,3) (3,5): the
// keep-alive is neither emitted nor a gap; the reset (15,3) resyncs, and the
// fresh snapshot of the new range is taken.
func TestChainedBookRules(t *testing.T) {
	var c symbolCounters
	b := &streamBook{chained: true}
	var out []Event
	var resub bool
	step := func(ev Event) {
		t.Helper()
		out, resub = b.event(&ev, out, &c)
	}
	step(chainSnap(10))
	step(chainDelta(10, 15))
	step(chainDelta(15, 15)) // keep-alive
	if len(out) != 2 || resub || c.gaps.Load() != 0 {
		t.Fatalf("after keep-alive: %d events, resub %v, gaps %d", len(out), resub, c.gaps.Load())
	}
	step(chainDelta(12, 15)) // an older copy
	if len(out) != 2 || resub || c.duplicates.Load() != 1 {
		t.Fatalf("duplicate: %d events, resub %v, dups %d", len(out), resub, c.duplicates.Load())
	}
	step(chainDelta(15, 3)) // maintenance reset
	if !resub || b.state != bookResyncing {
		t.Fatalf("reset: resub %v state %v", resub, b.state)
	}
	step(chainDelta(3, 5)) // buffered while resyncing
	step(chainSnap(4))     // fresh snapshot of the new range, lower than the book was
	if b.state != bookLive || b.lastID != 4 {
		t.Fatalf("after snapshot: state %v lastID %d", b.state, b.lastID)
	}
	// snapshot 4 emitted; the buffered (3,5) does not chain to 4: dropped.
	if got := out[len(out)-1]; got.Type != EventBookSnapshot || got.LastID != 4 {
		t.Fatalf("last emitted %+v", got)
	}
	step(chainDelta(7, 9)) // a gap
	if !resub || c.gaps.Load() != 2 {
		t.Fatalf("gap: resub %v gaps %d", resub, c.gaps.Load())
	}
}

func TestChainedBookSnapshotThenBuffered(t *testing.T) {
	var c symbolCounters
	b := &streamBook{chained: true}
	var out []Event
	for _, ev := range []Event{chainDelta(100, 110), chainDelta(110, 120), chainSnap(110)} {
		out, _ = b.event(&ev, out, &c)
	}
	// snapshot 110, then the buffered (110,120) that continues it
	if len(out) != 2 || out[0].Type != EventBookSnapshot || out[1].LastID != 120 || b.lastID != 120 {
		t.Fatalf("out %+v lastID %d", out, b.lastID)
	}
}

// A feed without the initial snapshot: the REST snapshot is applied by the
// documented procedure.
func TestChainedBookRESTBootstrap(t *testing.T) {
	var c symbolCounters
	b := &streamBook{chained: true}
	var out []Event
	for _, ev := range []Event{chainDelta(100, 110), chainDelta(110, 120), chainDelta(120, 130)} {
		ev.RecvTS = 1
		out, _ = b.event(&ev, out, &c)
	}
	if b.chainNeedsBoot(2) || !b.chainNeedsBoot(1+int64(chainBootWait)) {
		t.Fatal("chainNeedsBoot")
	}
	old := chainSnap(90)
	if _, again := b.chainRESTSnapshot(&old, nil, &c); !again {
		t.Fatal("a snapshot older than the first delta's prev must be refetched")
	}
	snap := chainSnap(115)
	out, again := b.chainRESTSnapshot(&snap, out, &c)
	if again || len(out) != 3 || out[0].LastID != 115 || out[1].LastID != 120 || out[2].LastID != 130 || b.lastID != 130 {
		t.Fatalf("again %v out %+v", again, out)
	}
}

// A connection's subscribe/unsubscribe requests stay within the venue's
// hourly budget (OKX 480): past it spendOps refuses, an hour later it
// accepts again.
func TestSpendOpsBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &conn{env: &connEnv{opsPerHour: 3, now: func() time.Time { return now }}}
	if err := c.spendOps(2); err != nil {
		t.Fatal(err)
	}
	if err := c.spendOps(2); err != errOpBudget {
		t.Fatalf("over budget: %v", err)
	}
	if err := c.spendOps(1); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if err := c.spendOps(3); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	unlimited := &conn{env: &connEnv{now: time.Now}}
	if err := unlimited.spendOps(1 << 20); err != nil {
		t.Fatal(err)
	}
}

// A lost reset delta: the new, lower sequence looks like old copies; a run
// of them chained to each other resyncs the book.
func TestChainedBookMissedReset(t *testing.T) {
	var c symbolCounters
	b := &streamBook{chained: true}
	var resub bool
	snap := chainSnap(1000)
	out, _ := b.event(&snap, nil, &c)
	d := chainDelta(1000, 1010)
	out, _ = b.event(&d, out, &c)
	// (1010, 500) was lost; then 500 -> 505 -> 510 ...
	prev := int64(500)
	for i := range chainRestartRun {
		d := chainDelta(prev, prev+5)
		prev += 5
		out, resub = b.event(&d, out, &c)
		if resub != (i == chainRestartRun-1) {
			t.Fatalf("delta %d: resub %v", i, resub)
		}
	}
	// Duplicated frames interleaved with new ones never form such a run.
	b = &streamBook{chained: true}
	snap = chainSnap(10)
	out, _ = b.event(&snap, nil, &c)
	for i := int64(10); i < 40; i++ {
		d := chainDelta(i, i+1)
		out, _ = b.event(&d, out, &c)
		out, resub = b.event(&d, out, &c)
		if resub {
			t.Fatalf("resync on an interleaved duplicate at %d", i)
		}
	}
	_ = out
}
