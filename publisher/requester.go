package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/bridge"
)

var _ bridge.SnapshotRequester = (*SnapshotRequester)(nil)

// SnapshotRequester implements bridge.SnapshotRequester with a NATS request
// on <ControlPrefix>.snapshot.<exchange>.<symbol>, served by whichever
// replica's SnapshotService the queue group picks.
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
// ErrSnapshot; invalid names wrap bridge.ErrBadIdent.
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
func (r *SnapshotRequester) Request(ctx context.Context, exchange, symbol, reason string) (SnapshotReply, error) {
	if err := errors.Join(bridge.ValidateIdent(exchange), bridge.ValidateIdent(symbol)); err != nil {
		return SnapshotReply{}, err
	}
	subject := r.cfg.ControlPrefix + ".snapshot." + exchange + "." + symbol
	body, _ := json.Marshal(SnapshotRequest{Requester: r.instance, Reason: reason})
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	m, err := r.nc.RequestWithContext(ctx, subject, body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return SnapshotReply{}, fmt.Errorf("%w: %s", ErrNoResponders, subject)
	case err != nil:
		return SnapshotReply{}, fmt.Errorf("%w: %s: %w", ErrSnapshot, subject, err)
	}
	var rep SnapshotReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return SnapshotReply{}, fmt.Errorf("%w: %s: malformed reply: %v", ErrSnapshot, subject, err)
	}
	if rep.Error != "" {
		kind := ErrSnapshot
		switch rep.Code {
		case CodeBusy:
			kind = ErrBusy
		case CodeUnknownSymbol:
			kind = ErrUnknownSymbol
		}
		return rep, fmt.Errorf("%w: %s: %s", kind, subject, rep.Error)
	}
	return rep, nil
}
