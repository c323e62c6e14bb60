// Package node builds, runs and stops one bridge replica: the wiring that
// `mdbridge run` (and `mdbridge demo`) and the chaos soak's in-process
// replicas share.
//
// A replica is one NATS connection and, on it, the JetStream publisher
// (after provisioning the stream and the md_state bucket), the md_state
// writer, the snapshot requester and the snapshot control service (routed
// by bridge.Streams), a trade resumer, one REST limiter per venue and one
// bridge.Stream per subscription with the Binance or Bybit adapter.
//
// Life cycle: New validates the configuration and builds the exchange
// adapters without touching the network, so a bad subscription fails
// before anything starts; Start provisions and starts everything on a
// NATS connection the caller dialed and runs the streams; Shutdown stops
// in order (streams stop, snapshot service drains, publisher flushes and
// waits for acks, final DISCONNECTED states, NATS drain); Close stops at
// once, as when the process dies (no flush, no final state).
//
// The set of subscriptions may change at run time (Config.Runtime: a KV
// key holds the spec, every replica follows it) and may name universes
// (symbol patterns such as "*USDT", resolved from the venues' instrument
// lists and refreshed every Config.UniverseRefresh). In either case, and
// in cluster mode, the streams are built by a unit runner that starts
// streams for units added, stops the units removed (deleting their
// md_state entries) and replaces a stream make-before-break when it keeps
// some of its units; Hooks.Source does not apply there.
//
// Concurrency: New, Start, Shutdown and Close are called by one goroutine
// (Close after Shutdown does nothing). The accessors (Conn, Streams,
// Publisher, ...) may be called from any goroutine once Start has
// returned; what they return stays valid, for its Stats, after Close.
package node
