package publisher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/resilience"
)

// Bounds of TradeResumer.LastTradeID.
const (
	// ResumeWindow is how far before the subject's last message the stream
	// is searched for trades; ResumeWideWindow is the one wider search made
	// when that window holds none (a symbol whose book moves but which
	// trades rarely).
	ResumeWindow     = 60 * time.Second
	ResumeWideWindow = 10 * time.Minute
	// ResumeMaxMessages caps the messages read per symbol and search.
	ResumeMaxMessages = 200_000
	// ResumeTimeout bounds one LastTradeID call.
	ResumeTimeout = 10 * time.Second

	resumeBatch = 1000
)

// TradeResumer implements bridge.TradeResumer by reading the JetStream
// stream: a restarting bridge continues each symbol's trades after the last
// trade stored (by any replica) instead of after its first live trade, so
// trades published while no replica ran are backfilled. It is safe for
// concurrent use.
type TradeResumer struct {
	js  jetstream.JetStream
	cfg Config

	window, wide time.Duration
	maxMsgs      int
}

var _ bridge.TradeResumer = (*TradeResumer)(nil)

// NewTradeResumer returns a TradeResumer for the stream and subject prefix
// of cfg (defaults applied). The connection needs permission to look up the
// stream, get messages and create and delete consumers on it.
func NewTradeResumer(js jetstream.JetStream, cfg Config) *TradeResumer {
	return &TradeResumer{js: js, cfg: cfg.withDefaults(), window: ResumeWindow, wide: ResumeWideWindow, maxMsgs: ResumeMaxMessages}
}

// LastTradeID returns the highest consecutive trade id stored on
// <prefix>.<exchange>.<symbol>: the subject's last message gives the time
// T, and the messages from T - ResumeWindow (once more from T -
// ResumeWideWindow if that finds no trade) up to it are read, headers only,
// taking the max id of those whose Md-Type is trade. ok is false when the
// subject holds no message or no trade with a numeric id in the window.
// The work is bounded by ResumeMaxMessages per search and ResumeTimeout.
// Errors wrap ErrConfig (bad names) or ErrNoStream.
func (r *TradeResumer) LastTradeID(ctx context.Context, exchange, symbol string) (int64, bool, error) {
	for _, n := range []string{exchange, symbol} {
		if err := bridge.ValidateIdent(n); err != nil {
			return 0, false, fmt.Errorf("%w: trade resume: %w", ErrConfig, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, ResumeTimeout)
	defer cancel()
	for tries := 0; ; tries++ {
		id, ok, err := r.lastTradeID(ctx, exchange, symbol)
		// "No responders": a stream or consumer request that reached no
		// server yet (a cluster electing, a consumer just created); ask
		// again within ResumeTimeout.
		if err == nil || !errors.Is(err, nats.ErrNoResponders) || tries >= resumeFetchRetries || resilience.Sleep(ctx, resumeFetchPause) != nil {
			return id, ok, err
		}
	}
}

func (r *TradeResumer) lastTradeID(ctx context.Context, exchange, symbol string) (int64, bool, error) {
	st, err := r.js.Stream(ctx, r.cfg.Stream)
	if err != nil {
		return 0, false, fmt.Errorf("%w: trade resume: stream %s: %w", ErrNoStream, r.cfg.Stream, err)
	}
	subject := r.cfg.SubjectPrefix + "." + exchange + "." + symbol
	last, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: trade resume: last message of %s: %w", ErrNoStream, subject, err)
	}
	for _, w := range []time.Duration{r.window, r.wide} {
		id, ok, err := r.scan(ctx, st, subject, last.Time.Add(-w), last.Sequence)
		if err != nil || ok {
			return id, ok, err
		}
	}
	return 0, false, nil
}

// scan reads subject's messages from start up to stream sequence lastSeq
// (headers only, at most maxMsgs) through a short-lived consumer and
// returns the highest trade id among them.
func (r *TradeResumer) scan(ctx context.Context, st jetstream.Stream, subject string, start time.Time, lastSeq uint64) (int64, bool, error) {
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		FilterSubject:     subject,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		InactiveThreshold: 30 * time.Second, // removed by the server if the delete below fails
	})
	if err != nil {
		return 0, false, fmt.Errorf("%w: trade resume: consumer on %s: %w", ErrNoStream, subject, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = st.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var best int64
	found := false
	// The window holds at least the subject's last message (lastSeq), so
	// an empty first batch or "no responders" means the consumer is not
	// reachable yet (seen on a 3-node cluster right after creating it),
	// never "no trade": ask again for a while, then fail rather than
	// report no trade (a resumer told "no trade" starts from the live
	// trades and leaves a hole).
	retries := 0
	for read := 0; read < r.maxMsgs; {
		batch, err := cons.FetchNoWait(min(resumeBatch, r.maxMsgs-read))
		if err != nil {
			if errors.Is(err, nats.ErrNoResponders) && retries < resumeFetchRetries && resilience.Sleep(ctx, resumeFetchPause) == nil {
				retries++
				continue
			}
			return 0, false, fmt.Errorf("%w: trade resume: reading %s: %w", ErrNoStream, subject, err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			if id, ok := tradeIDOf(m.Headers()); ok && (!found || id > best) {
				best, found = id, true
			}
			if md, err := m.Metadata(); err == nil && (md.Sequence.Stream >= lastSeq || md.NumPending == 0) {
				done = true
			}
		}
		berr := batch.Error()
		if berr != nil && !errors.Is(berr, jetstream.ErrNoMessages) && !errors.Is(berr, nats.ErrNoResponders) {
			return 0, false, fmt.Errorf("%w: trade resume: reading %s: %w", ErrNoStream, subject, berr)
		}
		if err := ctx.Err(); err != nil {
			return 0, false, fmt.Errorf("%w: trade resume: reading %s: %w", ErrNoStream, subject, context.Cause(ctx))
		}
		if read == 0 && n == 0 {
			if retries < resumeFetchRetries && resilience.Sleep(ctx, resumeFetchPause) == nil {
				retries++
				continue
			}
			return 0, false, fmt.Errorf("%w: trade resume: reading %s: no message delivered from a window holding sequence %d (%v)", ErrNoStream, subject, lastSeq, berr)
		}
		read += n
		if done || n == 0 {
			break
		}
	}
	return best, found, nil
}

// tradeIDOf returns the numeric trade id of a trade message's headers
// (Md-Type trade, Nats-Msg-Id "<exchange>:<symbol>:trade:<id>"); ok is false
// for other messages and non-numeric ids.
func tradeIDOf(h nats.Header) (int64, bool) {
	if h.Get(HeaderType) != bridge.EventTrade.String() {
		return 0, false
	}
	id := h.Get(HeaderMsgID)
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// How often, and how long apart, scan asks again when the consumer it has
// just created delivers nothing yet.
const (
	resumeFetchRetries = 40
	resumeFetchPause   = 50 * time.Millisecond
)
