package publisher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// Bounds of TradeResumer.LastTradeIDs.
const (
	// ResumeBatchFirstSlice is the newest time slice LastTradeIDs reads
	// for symbols whose last message is not a trade; each further slice
	// reaches twice as far back, up to ResumeWindow.
	ResumeBatchFirstSlice = 2 * time.Second

	resumeBatchFetch = 5000 // messages per pull request
	// resumeBatchShare is the share of the time left to the caller's
	// deadline that LastTradeIDs uses, leaving the rest for per-symbol
	// queries of the symbols it could not answer.
	resumeBatchShare = 0.8
	// resumeBatchMaxFilters: up to this many symbols still pending, a
	// time slice reads only their subjects, else the exchange's wildcard.
	resumeBatchMaxFilters = 256
)

var _ bridge.BatchTradeResumer = (*TradeResumer)(nil)

// LastTradeIDs answers LastTradeID for many symbols of one exchange with a
// few consumers over <prefix>.<exchange>.> instead of a few per symbol:
//
//  1. one headers-only consumer delivering the last message of every
//     subject (DeliverLastPerSubject) tells which symbols have messages at
//     all, and the trade id of those whose last message is a trade;
//  2. for the symbols whose last message is not a trade (a book update),
//     headers-only consumers of their subjects (of the exchange's
//     wildcard beyond resumeBatchMaxFilters symbols) read absolute time
//     slices newest-first: the
//     last ResumeBatchFirstSlice before the newest message's time T0, then
//     slices reaching 4, 8, 16, 32 s and ResumeWindow back, until every
//     such symbol has a trade. Its answer is the highest trade id of the
//     newest slice holding one of its trades.
//
// The map has an entry per answered symbol: the highest trade id, or 0
// for a symbol that has no message at all (LastTradeID's ok=false). A
// symbol is left out when the batch could not tell: a symbol with messages
// but no trade within ResumeWindow of T0 (LastTradeID also searches
// ResumeWideWindow before its own last message), or one not reached in
// time. The answer is never a false "no trade": 0 is given only for
// symbols absent from a complete pass over the last messages, since a
// false "no trade" would start the symbol from the live trades and leave a
// hole. The answer may be lower than LastTradeID's when the stored trades
// are out of order (a gap repaired after later live trades: the last
// stored trade is not the highest), which only
// makes the bridge re-publish trades that the stream's msg-ID duplicate
// window absorbs.
//
// The work stops at about 4/5 of the time left before ctx's deadline
// (ResumeTimeout when ctx has none). Cut short, it returns the symbols
// answered so far, a symbol whose newest trades were being read getting
// the highest id read (again never lower than a stored trade, so at worst
// extras re-published), together with an error wrapping ErrNoStream and
// the context's error. Other errors wrap ErrConfig (bad names, nothing
// queried) or ErrNoStream (with the symbols answered before the failure).
func (r *TradeResumer) LastTradeIDs(ctx context.Context, exchange string, symbols []string) (map[string]int64, error) {
	if err := bridge.ValidateIdent(exchange); err != nil {
		return nil, fmt.Errorf("%w: trade resume: %w", ErrConfig, err)
	}
	for _, s := range symbols {
		if err := bridge.ValidateIdent(s); err != nil {
			return nil, fmt.Errorf("%w: trade resume: %w", ErrConfig, err)
		}
	}
	left := ResumeTimeout
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(float64(left)*resumeBatchShare))
	defer cancel()
	b := &batchResume{
		r: r, prefix: r.cfg.SubjectPrefix + "." + exchange + ".",
		want: make(map[string]bool, len(symbols)), ids: make(map[string]int64, len(symbols)),
	}
	for _, s := range symbols {
		b.want[s] = true
	}
	start := time.Now()
	err := b.run(ctx)
	deleted := make(chan struct{})
	go func() { b.deletes.Wait(); close(deleted) }()
	select {
	case <-deleted:
	case <-ctx.Done(): // the server removes them after their InactiveThreshold
	}
	if err != nil {
		return b.ids, fmt.Errorf("%w (in %s after %s: %d messages read, %d symbols answered, %d of them waiting for a trade)",
			err, b.phase, time.Since(start).Round(time.Millisecond), b.read, len(b.ids), len(b.pending))
	}
	return b.ids, nil
}

// batchResume is the state of one LastTradeIDs call.
type batchResume struct {
	r      *TradeResumer
	prefix string          // <prefix>.<exchange>.
	want   map[string]bool // symbols asked
	ids    map[string]int64

	// pending: symbols asked whose last message is not a trade, with the
	// highest trade id read so far in the slice being read (0 = none).
	pending map[string]int64

	phase string // what run is doing, for errors
	read  int    // messages read

	deletes sync.WaitGroup // consumer deletions under way
}

func (b *batchResume) run(ctx context.Context) error {
	st, err := b.r.js.Stream(ctx, b.r.cfg.Stream)
	if err != nil {
		return fmt.Errorf("%w: trade resume: stream %s: %w", ErrNoStream, b.r.cfg.Stream, err)
	}
	b.phase = "the last messages"
	t0, lastSeq, err := b.lastPerSubject(ctx, st)
	if err != nil {
		return err
	}
	// Slices newest-first: [t0-2s, end], [t0-4s, t0-2s), ... back to
	// t0-ResumeWindow. A symbol leaves pending with the newest slice that
	// holds one of its trades.
	end := time.Time{} // the first slice reads to lastSeq
	for back := ResumeBatchFirstSlice; len(b.pending) > 0; back *= 2 {
		back = min(back, b.r.window)
		start := t0.Add(-back)
		b.phase = fmt.Sprintf("the slice %s back", back)
		if err := b.slice(ctx, st, start, end, lastSeq); err != nil {
			return err
		}
		for s, id := range b.pending {
			if id > 0 {
				b.ids[s] = id
				delete(b.pending, s)
			}
		}
		if back >= b.r.window {
			break // the rest: no trade within the window; LastTradeID decides
		}
		end = start
	}
	return nil
}

// lastPerSubject reads the last message of every subject of the exchange:
// symbols asked without a message get 0, those whose last message is a
// trade its id, the others go to pending. It returns the newest message's
// time and the highest stream sequence seen.
//
// The consumer delivers the last message of each subject in stream order,
// then every new message: the pass ends at the first message past the
// stream's last sequence taken after the consumer was created (every
// subject's last message at creation is at or below it), or when nothing
// is pending.
func (b *batchResume) lastPerSubject(ctx context.Context, st jetstream.Stream) (time.Time, uint64, error) {
	var t0 time.Time
	var lastSeq, endSeq uint64
	seen := make(map[string]bool, len(b.want))
	b.pending = map[string]int64{}
	created := func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		endSeq = info.State.LastSeq
		return nil
	}
	err := b.readAll(ctx, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy}, created, func(m jetstream.Msg, md *jetstream.MsgMetadata) bool {
		if md.Sequence.Stream > endSeq {
			return false
		}
		if md.Timestamp.After(t0) {
			t0 = md.Timestamp
		}
		lastSeq = max(lastSeq, md.Sequence.Stream)
		sym, ok := strings.CutPrefix(m.Subject(), b.prefix)
		if !ok || !b.want[sym] {
			return true
		}
		seen[sym] = true
		if id, ok := tradeIDOf(m.Headers()); ok {
			b.ids[sym] = max(b.ids[sym], id)
			delete(b.pending, sym)
		} else if _, ok := b.ids[sym]; !ok {
			b.pending[sym] = 0
		}
		return true
	})
	if err != nil {
		// Only the symbols whose last trade was read are answered: an
		// unseen symbol may have messages not delivered yet.
		return t0, lastSeq, err
	}
	for s := range b.want {
		if !seen[s] {
			b.ids[s] = 0 // no message at all
		}
	}
	return t0, lastSeq, nil
}

// slice reads the exchange's messages stored from start up to end (zero:
// up to stream sequence lastSeq), raising the trade ids of the pending
// symbols. Cut short, the ids read so far are kept in b.ids.
func (b *batchResume) slice(ctx context.Context, st jetstream.Stream, start, end time.Time, lastSeq uint64) error {
	cfg := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start}
	if len(b.pending) <= resumeBatchMaxFilters {
		// Only the pending symbols' subjects: the books of the answered
		// ones are most of the volume.
		for sym := range b.pending {
			cfg.FilterSubjects = append(cfg.FilterSubjects, b.prefix+sym)
		}
		slices.Sort(cfg.FilterSubjects)
	}
	err := b.readAll(ctx, st, cfg, nil, func(m jetstream.Msg, md *jetstream.MsgMetadata) bool {
		if !end.IsZero() && !md.Timestamp.Before(end) {
			return false // the newer slice read the rest
		}
		sym, ok := strings.CutPrefix(m.Subject(), b.prefix)
		if !ok {
			return true
		}
		id, ok := tradeIDOf(m.Headers())
		if !ok {
			return true
		}
		if cur, ok := b.pending[sym]; ok && id > cur {
			b.pending[sym] = id
		}
		return !end.IsZero() || md.Sequence.Stream < lastSeq
	})
	if err != nil {
		// Cut short: the newer slices held no trade of these symbols, so
		// the ids read in this one are the best known (possibly lower
		// than the last stored one, never a false "no trade").
		for s, id := range b.pending {
			if id > 0 {
				b.ids[s] = id
			}
		}
	}
	return err
}

// readAll creates a headers-only consumer of cfg over the exchange's subjects,
// calls created (if set) once it exists, and hands each message to fn
// until fn returns false or nothing is pending. A consumer that delivers
// nothing although messages are pending (seen on a cluster right after
// creating it) is waited for until ctx ends: an empty read is never taken
// for "no message".
func (b *batchResume) readAll(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, created func() error, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) error {
	what := b.prefix + ">"
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubject = what
	} else {
		what = fmt.Sprintf("%d subjects of %s", len(cfg.FilterSubjects), what)
	}
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.HeadersOnly = true
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = 30 * time.Second // removed by the server if the delete below fails
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: trade resume: consumer on %s: %w", ErrNoStream, what, b.cause(ctx, err))
	}
	// Deleted in the background: on a busy server a delete waits in the
	// JetStream API queue like a create, and the next slice need not wait
	// for it. LastTradeIDs waits for the deletes within its own deadline.
	defer b.deletes.Go(func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = st.DeleteConsumer(dctx, cons.CachedInfo().Name)
	})
	if created != nil {
		if err := created(); err != nil {
			return fmt.Errorf("%w: trade resume: stream %s: %w", ErrNoStream, b.r.cfg.Stream, b.cause(ctx, err))
		}
	}
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return nil
	}
	// A pipelined pull (the next request goes out while a batch is read)
	// rather than one Fetch after another.
	it, err := cons.Messages(jetstream.PullMaxMessages(resumeBatchFetch))
	if err != nil {
		return fmt.Errorf("%w: trade resume: reading %s: %w", ErrNoStream, what, b.cause(ctx, err))
	}
	defer it.Stop()
	for pending > 0 {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("%w: trade resume: reading %s: %w", ErrNoStream, what, b.cause(ctx, err))
		}
		b.read++
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		pending = md.NumPending
		if !fn(m, md) {
			break
		}
	}
	return nil
}

// cause prefers the context's error (the deadline of LastTradeIDs) to the
// request's.
func (b *batchResume) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	return err
}
