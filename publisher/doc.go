// Package publisher connects mdbridge to NATS JetStream: it provisions the
// MD stream, publishes normalized events with message-ID deduplication and
// retry until acknowledged, keeps per-symbol connection state in the md_state
// KV bucket, serves the snapshot control subject, and can run an embedded
// nats-server when no external NATS is configured.
//
// # Components
//
//   - [Connect] dials NATS with the configured URLs, credentials and TLS and
//     reconnects forever. Secrets never appear in logs or errors.
//   - [EnsureStream] creates or updates the stream idempotently.
//   - [JetStream] implements bridge.Publisher: a bounded, ordered buffer in
//     front of JetStream async publishing.
//   - [StateWriter] implements bridge.StateSink; [ReadStates] and
//     [WatchStates] read the bucket back for the CLI.
//   - [SnapshotService] answers requests on <prefix>.snapshot.<exchange>.<symbol>;
//     [SnapshotRequester] implements bridge.SnapshotRequester on top of it.
//   - [StartEmbedded] runs nats-server with JetStream in process.
//
// # Delivery and ordering guarantees of JetStream
//
// Every event passed to Publish is held in the publisher's buffer until
// JetStream acknowledges it; it is republished with the same Nats-Msg-Id
// after a disconnect, an ack timeout or a retryable server error, so the
// stream's duplicate window removes copies. Nothing leaves the buffer
// unacknowledged except (a) with DropOldest when the buffer is full, (b) a
// message the server rejects permanently (e.g. larger than max_payload),
// (c) Close or a Shutdown whose context ends first. Each case is counted in
// [Stats] and logged.
//
// Messages are sent in Publish order. When any publish fails, the publisher
// stops sending, waits until every in-flight publish is resolved (acked,
// failed or timed out), then republishes everything unacknowledged in the
// original order before sending anything new. nats.go's reconnect buffer is
// disabled on the publisher's connection (see [ConnConfig]) so that no
// message written during an outage can overtake a retried one. Therefore the
// order per subject (and in fact the order of the whole publish sequence) is
// preserved across disconnects, NATS restarts and ack timeouts of a whole
// window.
//
// Residual case: if the server rejects or loses one message (an error reply
// or a missing ack) while it stores a later message of the same subject that
// was already in flight, the retried message lands after that later one.
// This needs a per-message failure without a disconnect (e.g. a clustered
// stream changing leader, or a transient storage error), and it can only
// reorder messages that were in flight together (at most Config.MaxInFlight
// apart). The publisher detects it: such a retry that JetStream stores as new
// (not a duplicate) increments Stats.Reordered and logs a warning.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. Publish may be called
// from many goroutines; events of one Publish call keep their order, and
// calls from one goroutine keep theirs. PutState never blocks. Library
// callbacks never block on the publisher's locks.
package publisher
