package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/bridge"
)

var _ bridge.SnapshotRequester = (*SnapshotRequester)(nil)

// SnapshotRequester implements bridge.SnapshotRequester with a NATS request
// on <ControlPrefix>.snapshot.<exchange>.<symbol>, served by whichever
// replica's SnapshotService the queue group picks (in cluster mode: one of
// the replicas carrying the symbol).
type SnapshotRequester struct {
	nc       *nats.Conn
	cfg      Config
	instance string
}

// NewSnapshotRequester returns a requester on nc. instance names this
// bridge in the request body, for the serving replica's logs.
func NewSnapshotRequester(nc *nats.Conn, cfg Config, instance string) (*SnapshotRequester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SnapshotRequester{nc: nc, cfg: cfg.withDefaults(), instance: instance}, nil
}

// RequestSnapshot asks for a snapshot to be fetched and published and
// returns its last update id. It waits at most Config.RequestTimeout (or
// until ctx ends). Errors wrap ErrBusy, ErrUnknownSymbol, ErrNoResponders or
// ErrSnapshot; invalid names wrap bridge.ErrBadIdent. A busy refusal is a
// *BusyError carrying the service's retry_after_ms (a bridge.RetryDelayer:
// the bridge's book repair waits that long before asking again).
func (r *SnapshotRequester) RequestSnapshot(ctx context.Context, exchange, symbol string) (int64, error) {
	rep, err := r.Request(ctx, exchange, symbol, "gap")
	if err != nil {
		return 0, err
	}
	return rep.LastID, nil
}

// Request is RequestSnapshot returning the whole reply (stream sequence,
// duplicate flag); reason is logged by the serving replica. The CLI's
// `snapshot` command uses it.
//
// NATS "no responders" (no replica carries the symbol right now: in
// cluster mode only its owners subscribe its subject, and a unit moving
// between replicas may briefly have none) and an "unavailable" reply (the
// replica is releasing the unit or shutting down) are retried, with a
// backoff from 50 ms to 1 s, until the timeout; the last error is
// returned then.
func (r *SnapshotRequester) Request(ctx context.Context, exchange, symbol, reason string) (SnapshotReply, error) {
	if err := errors.Join(bridge.ValidateIdent(exchange), bridge.ValidateIdent(symbol)); err != nil {
		return SnapshotReply{}, err
	}
	subject := r.cfg.ControlPrefix + ".snapshot." + exchange + "." + symbol
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	backoff := requestRetryInitial
	for attempt := 1; ; attempt++ {
		rep, retry, err := r.request(ctx, subject, reason)
		if !retry {
			return rep, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return rep, fmt.Errorf("%w (%d attempts)", err, attempt)
		}
		backoff = min(2*backoff, requestRetryMax)
	}
}

// BusyError is a "busy" reply of the snapshot service: SnapshotMaxWaiters
// requests were waiting. It wraps ErrBusy. RetryAfter is the reply's
// retry_after_ms, the service's estimate of when its queue has room (zero
// if the reply had none); get it with errors.As:
//
//	var busy *publisher.BusyError
//	if errors.As(err, &busy) { wait(busy.RetryAfter) }
//
// It implements bridge.RetryDelayer, so the bridge's book repair waits at
// least RetryAfter before requesting the snapshot again.
type BusyError struct {
	Subject    string        // the control subject requested
	Message    string        // the reply's error text
	RetryAfter time.Duration // when to ask again
}

var _ bridge.RetryDelayer = (*BusyError)(nil)

// Error describes the refusal and the delay asked for.
func (e *BusyError) Error() string {
	return fmt.Sprintf("%v: %s: %s (retry after %s)", ErrBusy, e.Subject, e.Message, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Unwrap() error { return ErrBusy }

// RetryDelay returns RetryAfter (bridge.RetryDelayer).
func (e *BusyError) RetryDelay() time.Duration { return e.RetryAfter }

// The backoff of Request's retries.
const (
	requestRetryInitial = 50 * time.Millisecond
	requestRetryMax     = time.Second
)

// request sends one request; retry tells whether another attempt may
// reach a replica that serves it.
func (r *SnapshotRequester) request(ctx context.Context, subject, reason string) (rep SnapshotReply, retry bool, err error) {
	req := SnapshotRequest{Requester: r.instance, Reason: reason}
	if d, ok := ctx.Deadline(); ok {
		req.TimeoutMS = max(time.Until(d).Milliseconds(), 1)
	}
	body, _ := json.Marshal(req)
	m, err := r.nc.RequestWithContext(ctx, subject, body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return SnapshotReply{}, true, fmt.Errorf("%w: %s", ErrNoResponders, subject)
	case err != nil:
		return SnapshotReply{}, false, fmt.Errorf("%w: %s: %w", ErrSnapshot, subject, err)
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return SnapshotReply{}, false, fmt.Errorf("%w: %s: malformed reply: %v", ErrSnapshot, subject, err)
	}
	if rep.Error != "" {
		kind := ErrSnapshot
		switch rep.Code {
		case CodeBusy:
			return rep, false, &BusyError{Subject: subject, Message: rep.Error, RetryAfter: time.Duration(rep.RetryAfterMS) * time.Millisecond}
		case CodeUnknownSymbol:
			kind = ErrUnknownSymbol
		}
		return rep, rep.Code == CodeUnavailable, fmt.Errorf("%w: %s: %s", kind, subject, rep.Error)
	}
	return rep, false, nil
}
