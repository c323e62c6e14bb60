package chaos

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/publisher"
)

// SnapshotRequests is the accounting of the snapshot requests the harness
// sent on the control subject for one market, as a consumer does with
// `nats req mdctl.snapshot.<exchange>.<symbol> ”` or `mdbridge snapshot`.
// The snapshots they produce are judged by the book replay (a snapshot of
// another update-id series than the deltas freezes or corrupts a
// consumer's book).
type SnapshotRequests struct {
	Exchange string `json:"exchange"`
	Symbol   string `json:"symbol"`
	Sent     int    `json:"sent"`
	// Served got a reply naming a snapshot in the stream; Duplicate of them
	// named one the stream already held.
	Served    int `json:"served"`
	Duplicate int `json:"duplicate"`
	// Busy were refused for load, Failed got another error reply or none
	// (NATS down, no replica up, a fetch that failed under a fault).
	Busy   int `json:"busy"`
	Failed int `json:"failed"`
	// Unknown of the Failed got unknown_symbol (in cluster mode only the
	// unit's owners subscribe its subject: expected 0).
	Unknown int `json:"unknown_symbol"`
	// LastIDs are the last_id of the first served replies (bounded).
	LastIDs []int64 `json:"last_ids,omitempty"`
	// Errors are the first error texts (bounded).
	Errors []string `json:"errors,omitempty"`
}

// snapshotRequester sends control-subject snapshot requests (core NATS
// request/reply, as `mdbridge snapshot` does) and counts the replies per
// market. It is safe for concurrent use.
type snapshotRequester struct {
	req     *publisher.SnapshotRequester
	timeout time.Duration

	mu  sync.Mutex
	per map[string]*SnapshotRequests
	ord []string
}

// newSnapshotRequester requests on nc with the default control prefix;
// each request waits at most timeout.
func newSnapshotRequester(nc *nats.Conn, timeout time.Duration) (*snapshotRequester, error) {
	req, err := publisher.NewSnapshotRequester(nc, publisher.Config{RequestTimeout: timeout}, "chaos-consumer")
	if err != nil {
		return nil, err
	}
	return &snapshotRequester{req: req, timeout: timeout, per: map[string]*SnapshotRequests{}}, nil
}

// round requests a snapshot of every market at once and waits for every
// reply (or its timeout).
func (s *snapshotRequester) round(ctx context.Context, markets []marketKey) {
	var wg sync.WaitGroup
	for _, m := range markets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.one(ctx, m.exchange, m.symbol)
		}()
	}
	wg.Wait()
}

// one sends one request and records its outcome.
func (s *snapshotRequester) one(ctx context.Context, exchange, symbol string) {
	rep, err := s.req.Request(ctx, exchange, symbol, "chaos consumer")
	s.mu.Lock()
	defer s.mu.Unlock()
	k := exchange + "." + symbol
	r := s.per[k]
	if r == nil {
		r = &SnapshotRequests{Exchange: exchange, Symbol: symbol}
		s.per[k] = r
		s.ord = append(s.ord, k)
	}
	r.Sent++
	switch {
	case err == nil:
		r.Served++
		if rep.Duplicate {
			r.Duplicate++
		}
		if len(r.LastIDs) < 8 {
			r.LastIDs = append(r.LastIDs, rep.LastID)
		}
		return
	case errors.Is(err, publisher.ErrBusy):
		r.Busy++
	case errors.Is(err, publisher.ErrUnknownSymbol):
		r.Failed++
		r.Unknown++
	default:
		r.Failed++
	}
	if len(r.Errors) < 4 {
		r.Errors = append(r.Errors, err.Error())
	}
}

// results returns the accounting, markets in the order first requested.
func (s *snapshotRequester) results() []SnapshotRequests {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SnapshotRequests, 0, len(s.ord))
	for _, k := range s.ord {
		out = append(out, *s.per[k])
	}
	return out
}

// marketKey names one market.
type marketKey struct{ exchange, symbol string }
