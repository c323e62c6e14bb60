//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// streamReader reads the MD stream from the start with an ordered consumer
// and tallies what it holds: every Nats-Msg-Id and every trade id per
// market. sim may be nil when there is no ground truth to compare with
// (then waitComplete and checkExactlyOnce must not be used).
type streamReader struct {
	t    testing.TB
	js   jetstream.JetStream
	cons jetstream.Consumer
	seq  uint64 // last stream sequence read

	msgs      int
	byType    map[string]int
	msgIDs    map[string]int
	trades    map[market]map[string]int
	books     map[market]*bridge.BookBuilder // consumer books over the stream
	bookGaps  map[market]int                 // book deltas that skipped updates
	bad       []string                       // undecodable bodies, header/body mismatches
	outOfSeq  map[market]int
	lastTrade map[market]int64
	sim       *simClient
	failures  int // checks failed (errorf)
}

// errorf reports a failed check (t.Errorf) and counts it, so that a
// caller can tell whether its checks passed when t had failed before.
func (r *streamReader) errorf(format string, args ...any) {
	r.t.Helper()
	r.failures++
	r.t.Errorf(format, args...)
}

func newStreamReader(t *testing.T, js jetstream.JetStream, sim *simClient) *streamReader {
	t.Helper()
	r := newTally(t, sim)
	r.js = js
	waitFor(t, 60*time.Second, "ordered consumer on MD", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "MD")
		if err != nil {
			return err
		}
		r.cons, err = st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"md.>"}, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err
	})
	return r
}

// newTally returns a streamReader with empty tallies and no stream.
func newTally(t testing.TB, sim *simClient) *streamReader {
	return &streamReader{
		t: t, sim: sim,
		byType: map[string]int{}, msgIDs: map[string]int{},
		trades: map[market]map[string]int{}, books: map[market]*bridge.BookBuilder{}, bookGaps: map[market]int{}, outOfSeq: map[market]int{}, lastTrade: map[market]int64{},
	}
}

// catchUp reads until it has seen the stream's last message as of now.
func (r *streamReader) catchUp(ctx context.Context) error {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := r.js.Stream(ictx, "MD")
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = st.Info(ictx)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	target := info.State.LastSeq
	for r.seq < target {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := r.cons.Fetch(2000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			r.seq = meta.Sequence.Stream
			r.add(msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return nil
}

func (r *streamReader) add(msg jetstream.Msg) {
	r.addRaw(msg.Subject(), msg.Headers().Get(jetstream.MsgIDHeader), msg.Data())
}

// addRaw tallies one stored message: its subject, Nats-Msg-Id and body.
func (r *streamReader) addRaw(subject, id string, body []byte) {
	r.msgs++
	r.msgIDs[id]++
	ev, err := bridge.DecodeJSON(body)
	if err != nil {
		r.badf("seq %d: %v", r.seq, err)
		return
	}
	r.byType[ev.Type.String()]++
	if want := ev.MsgID(); id != want {
		r.badf("seq %d: Nats-Msg-Id %q, body says %q", r.seq, id, want)
	}
	if subj := "md." + ev.Exchange + "." + ev.Symbol; subject != subj {
		r.badf("seq %d: subject %s, body says %s", r.seq, subject, subj)
	}
	m := market{exsim.Venue(ev.Exchange), ev.Symbol}
	if ev.Type == bridge.EventBookSnapshot || ev.Type == bridge.EventBookDelta {
		b := r.books[m]
		if b == nil {
			b = bridge.NewBookBuilder(0)
			r.books[m] = b
		}
		if b.Apply(ev) == bridge.BookGap {
			r.bookGaps[m]++
		}
		return
	}
	if ev.Type != bridge.EventTrade {
		return
	}
	if r.trades[m] == nil {
		r.trades[m] = map[string]int{}
	}
	r.trades[m][ev.ID]++
	if r.sim == nil {
		return
	}
	if ord, ok := r.sim.ordinal(m, ev.ID); ok {
		if ord < r.lastTrade[m] {
			r.outOfSeq[m]++
		}
		r.lastTrade[m] = max(r.lastTrade[m], ord)
	}
}

func (r *streamReader) badf(format string, args ...any) {
	if len(r.bad) < 20 {
		r.bad = append(r.bad, fmt.Sprintf(format, args...))
	}
}

// waitComplete reads the stream until it holds the last generated trade of
// every market in last, or fails the test after timeout.
func (r *streamReader) waitComplete(last map[market]exsim.Range, timeout time.Duration) {
	r.t.Helper()
	start := time.Now()
	waitFor(r.t, timeout, "stream holds every market's last generated trade", func() error {
		ctx, cancel := context.WithTimeout(r.t.Context(), 20*time.Second)
		defer cancel()
		if err := r.catchUp(ctx); err != nil {
			return err
		}
		for m, g := range last {
			if g.Empty() {
				continue
			}
			if got := r.lastTrade[m]; got < g.Last {
				return fmt.Errorf("%s: newest trade in the stream %d, last generated %d (%d messages read)", m, got, g.Last, r.msgs)
			}
		}
		return nil
	})
	r.t.Logf("stream caught up in %s: %d messages read (%v)", time.Since(start).Round(100*time.Millisecond), r.msgs, r.byType)
}

// checkExactlyOnce verifies the tally against the ground truth:
//   - every Nats-Msg-Id in the stream is unique and matches its body;
//   - per market, every trade generated from the first one in the stream
//     up to the last generated (gen) is in the stream exactly once, and
//     nothing else is;
//   - the window covers the fault: it starts at or before faultAt (the
//     last trade generated when the fault began) and ends at least minAfter
//     trades after it.
//
// It returns the number of trades checked.
func (r *streamReader) checkExactlyOnce(gen, faultAt map[market]exsim.Range, minAfter int64) int64 {
	r.t.Helper()
	r.checkWellFormed()
	var total int64
	for _, m := range sortedMarkets(gen) {
		g, f := gen[m], faultAt[m]
		ids := r.trades[m]
		if len(ids) == 0 {
			r.errorf("%s: no trades in the stream", m)
			continue
		}
		count := map[int64]int{}
		first := int64(-1)
		for id, n := range ids {
			ord, ok := r.sim.ordinal(m, id)
			if !ok {
				r.errorf("%s: trade id %q was never generated by the simulator", m, id)
				continue
			}
			count[ord] += n
			if first < 0 || ord < first {
				first = ord
			}
		}
		if first > f.Last {
			r.errorf("%s: first trade in the stream %d is after the fault began (last generated then: %d): the window does not cover the fault", m, first, f.Last)
		}
		if g.Last < f.Last+minAfter {
			r.errorf("%s: only %d trades generated after the fault began (want at least %d)", m, g.Last-f.Last, minAfter)
		}
		var missing, duplicated []int64
		for id := first; id <= g.Last; id++ {
			switch n := count[id]; {
			case n == 0:
				missing = append(missing, id)
			case n > 1:
				duplicated = append(duplicated, id)
			}
		}
		var outside []int64
		for id := range count {
			if id < first || id > g.Last {
				outside = append(outside, id)
			}
		}
		checked := g.Last - first + 1
		total += checked
		r.t.Logf("%s: checked %d trades (ids %d..%d, fault at %d): missing %d, duplicated %d, beyond the ground truth %d, out of order %d",
			m, checked, first, g.Last, f.Last, len(missing), len(duplicated), len(outside), r.outOfSeq[m])
		if len(missing) > 0 {
			r.errorf("%s: %d trades missing from the stream: %s", m, len(missing), ranges(missing))
		}
		if len(duplicated) > 0 {
			r.errorf("%s: %d trades in the stream more than once: %s", m, len(duplicated), ranges(duplicated))
		}
		if len(outside) > 0 {
			r.errorf("%s: %d trades not generated by the simulator in the window: %s", m, len(outside), ranges(outside))
		}
	}
	r.t.Logf("exactly-once check: %d trades over %d markets, %d messages (%d distinct ids) in stream MD", total, len(gen), r.msgs, len(r.msgIDs))
	return total
}

// sortedMarkets returns the markets of m in order.
func sortedMarkets[V any](m map[market]V) []market {
	out := make([]market, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// bookDepth is a subscribed book's depth: the levels a consumer book over
// the stream holds per side (0: all of them).
type bookDepth struct {
	market
	depth int
}

// waitBooks reads the stream until every consumer book of books equals the
// simulator's (call it once the simulator stopped generating): valid, at
// the simulator's last update id (Bybit: the u of its depth's last push),
// and with the same levels (Bybit: the simulator's best depth levels). It
// fails the test after timeout, and for any book delta in the stream that
// skipped updates. It returns the number of books checked.
func (r *streamReader) waitBooks(books []bookDepth, timeout time.Duration) int {
	r.t.Helper()
	waitFor(r.t, timeout, "every consumer book equal to the simulator's", func() error {
		ctx, cancel := context.WithTimeout(r.t.Context(), 20*time.Second)
		defer cancel()
		if err := r.catchUp(ctx); err != nil {
			return err
		}
		var errs []error
		for _, bd := range books {
			want, err := r.sim.book(ctx, bd.market)
			if err != nil {
				return err
			}
			if d := diffBook(r.books[bd.market], want, bd.depth); d != "" {
				errs = append(errs, fmt.Errorf("%s: %s", bd.market, d))
			}
		}
		return errors.Join(errs...)
	})
	for _, bd := range books {
		if n := r.bookGaps[bd.market]; n > 0 {
			r.errorf("%s: %d book deltas in the stream skipped updates", bd.market, n)
		}
	}
	r.t.Logf("books: %d consumer books equal to the simulator's, no gap", len(books))
	return len(books)
}

// diffBook compares a consumer book with the simulator's; depth > 0 keeps
// the simulator's best depth levels per side (a Bybit orderbook.<depth>
// book). It returns "" when they are equal.
func diffBook(b *bridge.BookBuilder, want exsim.BookSnapshot, depth int) string {
	if b == nil || !b.Valid() {
		return "no valid book"
	}
	last := want.LastUpdateID
	if depth > 0 {
		last = want.BybitU[depth]
	}
	if b.LastID() != last {
		return fmt.Sprintf("book at update %d, simulator at %d", b.LastID(), last)
	}
	for i, got := range [][]bridge.Level{b.Bids(), b.Asks()} {
		w := [][][2]string{want.Bids, want.Asks}[i]
		if depth > 0 {
			w = w[:min(depth, len(w))]
		}
		if len(got) != len(w) {
			return fmt.Sprintf("side %d: %d levels, simulator %d", i, len(got), len(w))
		}
		for j := range got {
			if bridge.CompareDecimal(got[j][0], w[j][0]) != 0 || bridge.CompareDecimal(got[j][1], w[j][1]) != 0 {
				return fmt.Sprintf("side %d level %d: %s@%s, simulator %s@%s", i, j, got[j][1], got[j][0], w[j][1], w[j][0])
			}
		}
	}
	return ""
}

// checkWellFormed fails the test for undecodable messages, header/body
// mismatches and any Nats-Msg-Id stored more than once. It returns the
// number of messages checked.
func (r *streamReader) checkWellFormed() int {
	r.t.Helper()
	for _, b := range r.bad {
		r.errorf("bad message: %s", b)
	}
	dups := 0
	for id, n := range r.msgIDs {
		if n > 1 {
			if dups < 10 {
				r.errorf("Nats-Msg-Id %s is in the stream %d times", id, n)
			}
			dups++
		}
	}
	if dups > 0 {
		r.errorf("%d message ids are in the stream more than once", dups)
	}
	return r.msgs
}

// ranges formats sorted ids as compact ranges, at most 20 of them.
func ranges(ids []int64) string {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	n := 0
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if n == 20 {
			b.WriteString(" ...")
			break
		}
		if n > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", ids[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", ids[i], ids[j])
		}
		n++
		i = j + 1
	}
	return b.String()
}
