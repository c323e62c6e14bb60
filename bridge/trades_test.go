package bridge

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

func newTestTradeSync(t *testing.T, track bool, limit int) *tradeSync {
	t.Helper()
	cfg := resilience.DedupConfig{WindowSize: 64, TTL: time.Minute}
	ds, err := resilience.NewMessageDeduplicator[int64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	di, err := resilience.NewMessageDeduplicator[string](cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &tradeSync{track: track, seq: resilience.NewSequenceTracker(), dedupSeq: ds, dedupID: di, limit: limit}
}

func seqTrade(n int64) Event {
	return Event{Type: EventTrade, ID: strconv.FormatInt(n, 10), Seq: n, TS: n}
}

func idTrade(id string, ts int64) Event { return Event{Type: EventTrade, ID: id, TS: ts} }

// tradeOp is one step of a trade table test.
type tradeOp struct {
	live int64   // a live trade with this consecutive id (0: none)
	fill []int64 // a REST page merged into the running repair
}

func TestTradeSyncConsecutive(t *testing.T) {
	live := func(n int64) tradeOp { return tradeOp{live: n} }
	fill := func(ids ...int64) tradeOp { return tradeOp{fill: ids} }
	tests := []struct {
		name     string
		limit    int
		ops      []tradeOp
		want     string
		gaps     []tradeGap // reported by live
		dups     uint64
		backfill uint64
		missing  int64
		done     bool // the last merge completed the repair
	}{
		{
			name: "in order",
			ops:  []tradeOp{live(1), live(2), live(3)},
			want: "T1 T2 T3",
		},
		{
			name: "duplicates and old ids dropped",
			ops:  []tradeOp{live(1), live(2), live(2), live(1), live(3)},
			want: "T1 T2 T3",
			dups: 2,
		},
		{
			name:     "gap: live trades wait until the backfill is emitted in order",
			ops:      []tradeOp{live(1), live(2), live(5), live(6), fill(3, 4), live(7)},
			want:     "T1 T2 T3 T4 T5 T6 T7",
			gaps:     []tradeGap{{3, 4}},
			backfill: 2,
		},
		{
			name:     "backfill over several pages",
			ops:      []tradeOp{live(10), live(20), fill(11, 12, 13), fill(14, 15, 16, 17, 18, 19)},
			want:     "T10 T11 T12 T13 T14 T15 T16 T17 T18 T19 T20",
			gaps:     []tradeGap{{11, 19}},
			backfill: 9,
			done:     true,
		},
		{
			name:     "one page fills several holes among the buffered trades",
			ops:      []tradeOp{live(1), live(3), live(4), live(7), live(8), fill(2, 3, 4, 5, 6, 7)},
			want:     "T1 T2 T3 T4 T5 T6 T7 T8",
			gaps:     []tradeGap{{2, 2}},
			backfill: 3,
			done:     true,
		},
		{
			name:     "duplicates among the buffered live trades",
			ops:      []tradeOp{live(1), live(4), live(4), live(5), live(3), fill(2, 3)},
			want:     "T1 T2 T3 T4 T5",
			gaps:     []tradeGap{{2, 3}},
			dups:     2,
			backfill: 2,
			done:     true,
		},
		{
			name:     "ids the venue does not return are missing, order kept",
			ops:      []tradeOp{live(1), live(5), fill(3, 4), live(6)},
			want:     "T1 T3 T4 T5 T6",
			gaps:     []tradeGap{{2, 4}},
			backfill: 2,
			missing:  1,
		},
		{
			name:     "buffer overflow is recovered as another gap",
			limit:    2,
			ops:      []tradeOp{live(1), live(3), live(4), live(5), live(6), fill(2), live(7), fill(5, 6)},
			want:     "T1 T2 T3 T4 T5 T6 T7",
			gaps:     []tradeGap{{2, 2}, {5, 6}},
			backfill: 3,
			done:     true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestTradeSync(t, true, tt.limit)
			var c symbolCounters
			var out []Event
			var gaps []tradeGap
			var missing int64
			done := false
			now := time.Unix(1000, 0)
			for _, op := range tt.ops {
				if op.live != 0 {
					ev := seqTrade(op.live)
					var gap *tradeGap
					out, gap = ts.live(&ev, now, out, &c)
					if gap != nil {
						gaps = append(gaps, *gap)
					}
					continue
				}
				var evs []Event
				for _, n := range op.fill {
					evs = append(evs, seqTrade(n))
				}
				var n int64
				out, n, done = ts.merge(evs, out, &c)
				missing += n
			}
			if got := render(out); got != tt.want {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
			if !slices.Equal(gaps, tt.gaps) {
				t.Errorf("gaps %v, want %v", gaps, tt.gaps)
			}
			if got := c.duplicates.Load(); got != tt.dups {
				t.Errorf("duplicates %d, want %d", got, tt.dups)
			}
			if got := c.backfilled.Load(); got != tt.backfill {
				t.Errorf("backfilled %d, want %d", got, tt.backfill)
			}
			if missing != tt.missing {
				t.Errorf("missing %d, want %d", missing, tt.missing)
			}
			if tt.done && !done {
				t.Error("repair not complete after the last page")
			}
			if ts.repairing {
				t.Error("still repairing at the end")
			}
		})
	}
}

func TestTradeSyncNextFetch(t *testing.T) {
	now := time.Unix(1, 0)
	var c symbolCounters
	ts := newTestTradeSync(t, true, 0)
	for _, n := range []int64{1, 5, 9} {
		ev := seqTrade(n)
		ts.live(&ev, now, nil, &c)
	}
	from, holeEnd, limit, skipped := ts.nextFetch(1000, 0)
	if from != 2 || holeEnd != 4 || limit != 7 || skipped != 0 {
		t.Fatalf("nextFetch = %d %d %d %d, want from 2, hole to 4, limit 7 (reaching to 8), none skipped", from, holeEnd, limit, skipped)
	}
	if from, _, limit, _ = ts.nextFetch(3, 0); from != 2 || limit != 3 {
		t.Fatalf("page 3: from %d limit %d", from, limit)
	}

	ts = newTestTradeSync(t, true, 0)
	for _, n := range []int64{1, 100} {
		ev := seqTrade(n)
		ts.live(&ev, now, nil, &c)
	}
	from, holeEnd, _, skipped = ts.nextFetch(1000, 10)
	if from != 90 || holeEnd != 99 || skipped != 88 {
		t.Fatalf("BackfillMax 10: from %d hole to %d skipped %d, want 90 99 88", from, holeEnd, skipped)
	}
	if n := ts.declareMissing(99); n != 10 {
		t.Fatalf("declareMissing = %d, want 10", n)
	}
	out, done := ts.advance(nil, &c)
	if !done || render(out) != "T100" {
		t.Fatalf("after giving up: %q done %v", render(out), done)
	}
}

func TestTradeSyncUntracked(t *testing.T) {
	ts := newTestTradeSync(t, false, 0)
	var c symbolCounters
	var out []Event
	for _, n := range []int64{1, 2, 5, 5, 3} {
		ev := seqTrade(n)
		var gap *tradeGap
		out, gap = ts.live(&ev, time.Unix(1, 0), out, &c)
		if gap != nil {
			t.Fatalf("gap %v reported with sequence tracking off", gap)
		}
	}
	if got := render(out); got != "T1 T2 T5 T3" {
		t.Fatalf("emitted %q, want pass-through minus duplicates", got)
	}
	if c.duplicates.Load() != 1 {
		t.Fatalf("duplicates %d, want 1", c.duplicates.Load())
	}
}

func TestTradeSyncByID(t *testing.T) {
	tests := []struct {
		name      string
		before    []Event // emitted live before the reconnect
		pending   []Event // live trades buffered during the repair
		recent    []Event // the recent-trades answer (any order)
		want      string
		wantShort bool
		backfill  uint64
		dups      uint64
	}{
		{
			name:     "recent trades after the last one seen are emitted before live ones",
			before:   []Event{idTrade("a", 1), idTrade("b", 2)},
			pending:  []Event{idTrade("d", 4), idTrade("e", 5)},
			recent:   []Event{idTrade("d", 4), idTrade("c", 3), idTrade("b", 2), idTrade("a", 1)},
			want:     "Ta Tb Tc Td Te",
			backfill: 2,
			dups:     1,
		},
		{
			name:      "answer does not reach back: emit newer ones, report possible loss",
			before:    []Event{idTrade("a", 1)},
			recent:    []Event{idTrade("x", 5), idTrade("y", 6)},
			want:      "Ta Tx Ty",
			wantShort: true,
			backfill:  2,
		},
		{
			name:     "nothing missed",
			before:   []Event{idTrade("a", 1), idTrade("b", 2)},
			pending:  []Event{idTrade("c", 3)},
			recent:   []Event{idTrade("a", 1), idTrade("b", 2)},
			want:     "Ta Tb Tc",
			backfill: 0,
		},
		{
			name:     "same-millisecond trades after the last id",
			before:   []Event{idTrade("a", 7)},
			recent:   []Event{idTrade("z", 6), idTrade("a", 7), idTrade("b", 7)},
			want:     "Ta Tb",
			backfill: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestTradeSync(t, true, 0)
			var c symbolCounters
			var out []Event
			now := time.Unix(1, 0)
			for i := range tt.before {
				out, _ = ts.live(&tt.before[i], now, out, &c)
			}
			if !ts.startRecent() {
				t.Fatal("startRecent refused after trades were emitted")
			}
			if !ts.recentSubscribed() {
				t.Fatal("recentSubscribed did not ask for a worker")
			}
			for i := range tt.pending {
				var gap *tradeGap
				out, gap = ts.live(&tt.pending[i], now, out, &c)
				if gap != nil {
					t.Fatal("gap reported for ids without sequence")
				}
			}
			if n := len(out); n != len(tt.before) {
				t.Fatalf("%d events emitted during the repair", n-len(tt.before))
			}
			out, short, next := ts.finishRecent(tt.recent, now, out, &c)
			if next != recentDone {
				t.Errorf("next %v, want recentDone", next)
			}
			if got := render(out); got != tt.want {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
			if short != tt.wantShort {
				t.Errorf("short %v, want %v", short, tt.wantShort)
			}
			if got := c.backfilled.Load(); got != tt.backfill {
				t.Errorf("backfilled %d, want %d", got, tt.backfill)
			}
			if got := c.duplicates.Load(); got != tt.dups {
				t.Errorf("duplicates %d, want %d", got, tt.dups)
			}
			if ts.repairing {
				t.Error("still repairing")
			}
		})
	}
}

func TestTradeSyncStartRecentNeedsHistory(t *testing.T) {
	ts := newTestTradeSync(t, true, 0)
	if ts.startRecent() {
		t.Fatal("startRecent accepted with nothing emitted")
	}
}

func TestTradeSyncOverflowWithoutIDsIsCounted(t *testing.T) {
	ts := newTestTradeSync(t, true, 1)
	var c symbolCounters
	ev := idTrade("a", 1)
	out, _ := ts.live(&ev, time.Unix(1, 0), nil, &c)
	ts.startRecent()
	ts.recentSubscribed()
	for _, id := range []string{"b", "c", "d"} {
		ev := idTrade(id, 2)
		out, _ = ts.live(&ev, time.Unix(1, 0), out, &c)
	}
	if got := c.dropped.Load(); got != 2 {
		t.Fatalf("dropped %d, want 2 (buffer of 1)", got)
	}
	out, _ = ts.abortRecent(time.Unix(1, 0), out, &c)
	if got := render(out); got != "Ta Tb" {
		t.Fatalf("emitted %q", got)
	}
}

// TestTradeSyncRecentJoined covers a connection that opens while a
// recent-trades repair runs (issue 15/20): the repair goes on buffering
// and fetches again after that connection's subscription, whether the
// running request's answer comes before (hand-over) or after (refetch) the
// subscription; the trades only the later answer has are emitted, in
// order, once each, and the buffered live trades follow.
func TestTradeSyncRecentJoined(t *testing.T) {
	for _, tt := range []struct {
		name      string
		answerNow bool // the first answer arrives before the new connection is subscribed
		want      recentNext
	}{
		{"answer after the subscription", false, recentRefetch},
		{"answer during the subscription", true, recentHandOver},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestTradeSync(t, true, 0)
			var c symbolCounters
			now := time.Unix(1, 0)
			a := idTrade("a", 1)
			out, _ := ts.live(&a, now, nil, &c)
			if !ts.startRecent() || !ts.recentSubscribed() {
				t.Fatal("no repair started")
			}
			// The worker's request is under way (its answer has a, b); the
			// connection is lost, c and d never arrive, a new one opens.
			if !ts.startRecent() {
				t.Fatal("the new connection did not join the running repair")
			}
			first := []Event{idTrade("a", 1), idTrade("b", 2)}
			var next recentNext
			if tt.answerNow {
				out, _, next = ts.finishRecent(first, now, out, &c)
				if ts.recentSubscribed() != (next == recentHandOver) {
					t.Fatal("recentSubscribed after a hand-over must start a worker")
				}
			} else {
				if ts.recentSubscribed() {
					t.Fatal("recentSubscribed started a second worker")
				}
				out, _, next = ts.finishRecent(first, now, out, &c)
			}
			if next != tt.want {
				t.Fatalf("next %v, want %v", next, tt.want)
			}
			e := idTrade("e", 5)
			out, _ = ts.live(&e, now, out, &c) // the new connection's feed: buffered
			if got := render(out); got != "Ta Tb" {
				t.Fatalf("emitted %q before the second answer", got)
			}
			second := []Event{idTrade("b", 2), idTrade("c", 3), idTrade("d", 4), idTrade("e", 5)}
			var short bool
			out, short, next = ts.finishRecent(second, now, out, &c)
			if next != recentDone || short || ts.repairing || ts.recent {
				t.Fatalf("next %v, short %v, repairing %v, recent %v: want the repair done", next, short, ts.repairing, ts.recent)
			}
			if got := render(out); got != "Ta Tb Tc Td Te" {
				t.Fatalf("emitted %q", got)
			}
			if got := c.duplicates.Load(); got != 1 { // e, live after its backfill
				t.Fatalf("duplicates %d, want 1", got)
			}
		})
	}
}

// TestTradeSyncRecentCanceled: a joining connection that fails to
// subscribe leaves a running worker to finish the repair; without a
// worker the repair ends and the buffered trades are replayed.
func TestTradeSyncRecentCanceled(t *testing.T) {
	ts := newTestTradeSync(t, true, 0)
	var c symbolCounters
	now := time.Unix(1, 0)
	a := idTrade("a", 1)
	out, _ := ts.live(&a, now, nil, &c)
	ts.startRecent()
	ts.recentSubscribed()
	ts.startRecent()
	b := idTrade("b", 2)
	out, _ = ts.live(&b, now, out, &c)
	out = ts.recentCanceled(now, out, &c)
	if got := render(out); got != "Ta" || !ts.repairing {
		t.Fatalf("emitted %q, repairing %v: the worker must finish the repair", got, ts.repairing)
	}
	out, _, next := ts.finishRecent(nil, now, out, &c)
	if next != recentDone || render(out) != "Ta Tb" {
		t.Fatalf("next %v, emitted %q", next, render(out))
	}

	ts.startRecent()
	ts.recentSubscribed()
	ts.startRecent()
	out, next = ts.abortRecent(now, out, &c) // the worker hands over
	if next != recentHandOver {
		t.Fatalf("next %v, want recentHandOver", next)
	}
	d := idTrade("d", 3)
	out, _ = ts.live(&d, now, out, &c)
	out = ts.recentCanceled(now, out, &c)
	if got := render(out); got != "Ta Tb Td" || ts.repairing || ts.recent {
		t.Fatalf("emitted %q, repairing %v: the repair must end", got, ts.repairing)
	}
}
