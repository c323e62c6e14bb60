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
//     front of JetStream, publishing asynchronously and reading the acks
//     itself. It is the one writer into the stream: [JetStream.PublishWait]
//     sends one event through the same path and waits for its ack.
//   - [StateWriter] implements bridge.StateSink; [ReadStates] and
//     [WatchStates] read the bucket back for the CLI.
//   - [SnapshotService] answers requests on <prefix>.snapshot.<exchange>.<symbol>,
//     publishing the snapshots through the process's [JetStream]
//     ([NewSnapshotService]); [SnapshotRequester] implements
//     bridge.SnapshotRequester on top of it.
//   - [TradeResumer] implements bridge.TradeResumer: the last trade id
//     stored per symbol, read back from the stream (bounded work).
//   - [StartEmbedded] runs nats-server with JetStream in process.
//
// # Delivery and ordering guarantees of JetStream
//
// Every event passed to Publish (or PublishWait) is held in the
// publisher's buffer until JetStream acknowledges it; it is republished
// with the same Nats-Msg-Id after a disconnect, an ack timeout
// (Config.AckTimeout) or a retryable server error, so the stream's
// duplicate window removes copies. Nothing
// leaves the buffer unacknowledged except:
//
//   - with DropOldest, when the buffer is full (Stats.Dropped);
//   - a message that can never be stored: larger than the server's
//     max_payload, an invalid exchange or symbol, an unknown event type or a
//     trade without id (its msg ID would collide), or one the server rejects
//     with a client error ten times in a row (Stats.Rejected);
//   - Close, or a Shutdown whose context ends first (Stats.Abandoned);
//   - with Block, a Publish whose context ends while it waits for room: the
//     events it did not buffer (Stats.Abandoned; a stream shut down with a
//     deadline cancels its pending Publish this way).
//
// Each case is counted and logged (rate-limited).
//
// Order: messages are written to NATS in Publish order. When any attempt
// fails, the publisher stops writing, waits until every in-flight attempt is
// resolved (acked, failed, or past its ack deadline), then republishes every
// unacknowledged message in the original order before writing anything new.
// nats.go's reconnect buffer is disabled on connections from Connect, so no
// message written during an outage can be flushed ahead of a retried one.
// When a connection breaks, the server has stored a prefix of what it sent
// (one connection's messages are processed in order); the unacknowledged
// rest is resent in order, and messages that were stored but whose ack was
// lost come back as duplicates and keep their original place. So the order
// per subject (indeed of the whole publish sequence) is preserved across
// disconnects, NATS restarts and ack timeouts. With several replicas
// publishing the same events, the first copy of each msg ID wins, which keeps
// per-subject order as long as every replica publishes its events in order.
//
// # Outages longer than the duplicate window
//
// Msg-ID deduplication spans only the stream's duplicate window
// (Config.DuplicateWindow), counted from when the first copy was stored.
// A message that waits in the buffer longer than that (this replica cut off
// from NATS while another replica kept publishing the same events; or an
// earlier attempt stored with its ack lost) would be stored again by its
// re-send. So before the pump sends a message queued (or last checked) more
// than 3/4 of the window ago, it reads the headers of the stream's messages
// on the message's subject stored since shortly before it was queued (one
// short-lived consumer per check, bounded work), and does not send the
// messages whose msg ID it finds: they are acknowledged as duplicates with
// the stored copy's sequence and counted in Stats.AlreadyStored. The others
// are sent; a copy stored after the check is within the window of that send.
// The check runs only over a live connection. If the stream cannot be read
// (no permission to create consumers, a timeout), the messages are sent
// anyway, counted in Stats.Unverified and logged at ERROR: the stream may
// then hold them twice.
//
// The guarantee: with any number of replicas publishing the same events,
// each msg ID is stored once, whatever the length of an outage, provided
// that (a) another replica stored its copy no earlier than 1/4 of the
// window before this replica queued the message (replicas receive the
// same exchange event at about the same time; a replica that receives an
// event much later, e.g. a REST backfill of trades older than the window,
// is not covered), (b) a checked message's send takes less than 1/4 of the
// window, and (c) the check can read the stream (otherwise
// Stats.Unverified counts the exceptions).
//
// Residual case: if the server rejects or loses one message (an error reply
// or no ack) without a disconnect while it stores a later message of the
// same subject that was already in flight, the retried message lands after
// that later one. This needs a per-message failure (e.g. a clustered stream
// changing leader, a transient storage error) and can only reorder messages
// that were in flight together (at most Config.MaxInFlight apart). The
// publisher detects it: such a retry that JetStream stores as new (not a
// duplicate) increments Stats.Reordered and logs a warning.
//
// # Acknowledgements
//
// Each attempt is written with core NATS (PUB with the wire contract's
// headers) and its own reply subject, <inbox>.<attempt id>; JetStream's
// replies arrive on one channel subscription to <inbox>.* that the
// publisher's pump goroutine reads directly. nats.go's PublishMsgAsync does
// the same through a future per message, a map of reply tokens, a JSON
// decoder and a callback goroutine; doing it here saves an allocation-heavy
// bookkeeping path and a goroutine hand-off per message (at 1000 symbols
// and 5k msgs/s those were a fifth of the bridge's CPU). A reply is matched
// to the attempt still in flight under its id; replies to attempts that are
// no longer in flight are ignored, so every attempt is resolved at most once.
//
// Ack deadlines are enforced by the publisher, not by a timer per message:
// an attempt past its deadline is retried (its late reply is ignored). When
// the connection breaks, attempts written to it fail at once: on the
// RECONNECTING status, and in any case before anything is written to the
// new connection (the connection's reconnect count is recorded per attempt
// and read before every batch). Writes of a batch during which the
// connection was replaced count as the new connection's: those lost wait
// for their deadline. If more than 4 × MaxInFlight attempts in a row time
// out, the publisher forces a NATS reconnect, which also renews its reply
// subscription.
//
// # Allocations
//
// In the steady state JetStream allocates nothing per event
// (BenchmarkPublishPath): buffered entries with their body and header
// buffers are recycled, and the message written, its header map and reply
// subject are the pump's own, reused for every write. What an event still
// costs is nats.go's: the header encoding in PublishMsg and the received
// reply (message and payload copy); 19–20 allocations per event for the
// whole process with an embedded server (BenchmarkPublisher), 32–33 with
// PublishMsgAsync.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. Publish may be called
// from many goroutines; events of one Publish call keep their order, and
// calls from one goroutine keep theirs. PutState never blocks. nats.go's
// read loop never blocks on the publisher: a reply it cannot hand over at
// once (channel full) is dropped and its attempt retried after the ack
// timeout.
package publisher
