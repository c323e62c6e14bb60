package bridge

import (
	"sync/atomic"
	"time"
)

// symbolCounters are one symbol's running totals. They are written under the
// shard lock and read lock-free by Stats and the state reporter.
type symbolCounters struct {
	received   atomic.Uint64 // events decoded for the symbol
	emitted    atomic.Uint64 // events handed to the publisher
	duplicates atomic.Uint64 // events dropped as already emitted
	gaps       atomic.Uint64 // sequence gaps detected
	snapshots  atomic.Uint64 // book snapshots emitted or requested
	backfilled atomic.Uint64 // trades recovered from REST
	dropped    atomic.Uint64 // unrecoverable input dropped (buffer overflow of non-recoverable data)
	missing    atomic.Uint64 // trades known missed and not recoverable
	lastMsgNS  atomic.Int64  // recv time of the last event received, Unix ns
}

func (c *symbolCounters) counters() Counters {
	return Counters{
		Messages:   c.emitted.Load(),
		Duplicates: c.duplicates.Load(),
		Gaps:       c.gaps.Load(),
		Snapshots:  c.snapshots.Load(),
		Backfilled: c.backfilled.Load(),
		Dropped:    c.dropped.Load(),
		Missing:    c.missing.Load(),
	}
}

// connCounters are one shard's (connection slot's) totals.
type connCounters struct {
	frames      atomic.Uint64 // inbound frames
	malformed   atomic.Uint64 // frames dropped as malformed (or over the read limit)
	reconnects  atomic.Uint64 // connection losses followed by a reconnect
	rotations   atomic.Uint64 // make-before-break rotations completed
	silence     atomic.Uint64 // silence probes run (StreamConfig.SilenceCheck)
	silent      atomic.Uint64 // connections replaced because the feed was silent
	superseded  atomic.Uint64 // events of a connection already replaced, not processed
	staleAlerts atomic.Uint64 // symbol channels gone stale (StreamConfig.Stale)
	// snapshotBusy: snapshot requests the SnapshotRequester refused for load
	snapshotBusy atomic.Uint64
}

// Stats are a stream's totals since NewStream, for metrics. All counters
// only grow.
type Stats struct {
	Frames     uint64 // inbound WebSocket frames
	Received   uint64 // events decoded from frames
	Emitted    uint64 // events handed to the handler/publisher (including backfilled trades and snapshots)
	Duplicates uint64 // events dropped as duplicates (duplicate frames, rotation and reconnect overlap)
	Gaps       uint64 // sequence gaps detected (trades and books)
	Snapshots  uint64 // book snapshots emitted or requested through the SnapshotRequester
	Backfilled uint64 // trades recovered from REST
	Missing    uint64 // trades known missed and not recoverable (logged at Error)
	Dropped    uint64 // events dropped because a buffer overflowed with unrecoverable data
	Malformed  uint64 // frames dropped as malformed, oversized or unexpected
	Reconnects uint64 // connection losses followed by a reconnect
	Rotations  uint64 // make-before-break rotations completed
	// SilenceProbes counts the venue checks of connections that delivered
	// no data for SilenceCheck; SilentFeeds those that found the venue had
	// moved on (the connection was replaced).
	SilenceProbes uint64
	SilentFeeds   uint64
	// Superseded counts the events a connection delivered after it was
	// replaced (the old connection of a rotation, an abandoned
	// replacement): its replacement carries the same data, so they are
	// not processed. Every other event received is processed.
	Superseded uint64
	// StaleAlerts counts the times a symbol's channel went stale: no live
	// message for its StreamConfig.Stale threshold (one per edge; the
	// channel counts again only after it was fresh).
	StaleAlerts uint64
	// SnapshotBusy counts the snapshot requests the SnapshotRequester
	// refused for load (a RetryDelayer error: the snapshot service had
	// SnapshotMaxWaiters requests waiting); each was asked again after the
	// delay the refusal named.
	SnapshotBusy uint64
	// Connections is the state of each connection slot, in plan order.
	Connections []ConnStats
}

// ConnStats describes one connection slot (shard) of a stream.
type ConnStats struct {
	Shard      int       // index in the connection plan
	Connection string    // current connection id, "<exchange>-<shard>.<n>"
	State      string    // DISCONNECTED, CONNECTING, CONNECTED, RECONNECTING, FAILED
	Since      time.Time // time of the last state transition
	Attempt    int       // consecutive failed connection attempts
	Topics     int       // topics (symbol x channel) carried
	Symbols    int       // symbols carried
	LastError  string    // last connection error, if any
}
