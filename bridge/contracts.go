package bridge

import (
	"context"
	"time"
)

// Publisher receives normalized events from the runner, in order per symbol.
//
// Publish blocks while the publisher's buffer is full (backpressure on
// ingestion) and returns an error only when ctx ends or the publisher is
// closed. It must not retain the events slice after returning; the strings
// and level slices inside the events are immutable and may be kept.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// StateSink receives connection state for each subscribed symbol: on every
// state transition and periodically. PutState must not block ingestion
// (implementations queue or coalesce) and must not retain st's pointer
// fields beyond the call.
type StateSink interface {
	PutState(st SymbolState)
}

// SnapshotRequester asks for a fresh order-book snapshot of one symbol to be
// fetched and published into the stream ahead of any further delta. It
// returns the published snapshot's last update id. The publisher wires it to
// the control subject mdctl.snapshot.<exchange>.<symbol>, so a gap seen by one
// replica is repaired once. Without one, the runner fetches the snapshot
// itself and emits it as an event.
//
// An error that has a RetryDelayer in its chain (errors.As) is a refusal
// for load, not a failure: the book repair waits at least its RetryDelay
// before requesting again, counts it (Stats.SnapshotBusy) and logs such
// refusals in a Warn at most once per 10 s per stream (each at Debug).
type SnapshotRequester interface {
	RequestSnapshot(ctx context.Context, exchange, symbol string) (lastID int64, err error)
}

// RetryDelayer is an error that says how long to wait before asking again
// (publisher.BusyError: the snapshot service's retry_after_ms). Find it with
// errors.As on an interface variable.
type RetryDelayer interface {
	error
	RetryDelay() time.Duration
}

// Counters are the per-symbol totals reported in md_state.
type Counters struct {
	Messages   uint64 `json:"messages"`   // events emitted
	Duplicates uint64 `json:"duplicates"` // events dropped as duplicates
	Gaps       uint64 `json:"gaps"`       // sequence gaps detected
	Snapshots  uint64 `json:"snapshots"`  // book snapshots emitted or requested
	Reconnects uint64 `json:"reconnects"` // reconnects of the symbol's connection
	Backfilled uint64 `json:"backfilled"` // trades recovered from REST
	Dropped    uint64 `json:"dropped"`    // malformed or unrecoverable input dropped
	Missing    uint64 `json:"missing"`    // trades known missed and not recoverable
	// PublishDropped counts the symbol's events the publisher did not
	// store (dropped under the drop-oldest policy, rejected by JetStream,
	// abandoned at shutdown); set by the state writer, not the bridge.
	PublishDropped uint64 `json:"publish_dropped"`
}

// SymbolState is the state of one subscribed symbol on this instance, the
// value schema of the md_state KV bucket (DESIGN.md).
type SymbolState struct {
	Exchange      string    `json:"exchange"`
	Symbol        string    `json:"symbol"`
	Instance      string    `json:"instance"`
	State         string    `json:"state"` // DISCONNECTED, CONNECTING, CONNECTED, RECONNECTING, FAILED
	Since         time.Time `json:"since"`
	Updated       time.Time `json:"updated"`
	Connection    string    `json:"connection"`
	Attempt       int       `json:"attempt"`
	LastError     string    `json:"last_error,omitempty"`
	LastMessageTS int64     `json:"last_message_ts"` // Unix ns of the last event received, 0 if none
	ClockOffsetNS int64     `json:"clock_offset_ns"` // exchange clock minus local clock
	Counters
	// Channels is the data age of each subscribed channel, keyed by the
	// channel's name ("trade", "book"): StreamConfig.Stale.
	Channels map[string]ChannelState `json:"channels,omitempty"`
}
