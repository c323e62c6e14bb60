// Package chaos is mdbridge's soak harness: it runs the exchange simulator
// (exsim), an embedded NATS JetStream server and several bridge replicas in
// cluster mode (Config.Replicas, default 3, each unit carried by
// Config.Redundancy of them, default R=2) in one process on loopback, injects overlapping faults from
// a seeded schedule for a configured duration, and then reconciles the MD
// stream against the simulator's ground truth.
//
// # What a run does
//
//  1. Start the simulator (several Binance and Bybit markets, trades and
//     books; OKX BTC-USDT trades only, i.e. trades-all, and BTC-USDT-SWAP
//     books only: a venue whose markets all have BookRate 0 (TradeRate 0)
//     is subscribed without books (trades)), the embedded NATS server with a store directory, on a port
//     the system picks (kept across restarts, so it can be stopped and
//     restarted in place), one loopback
//     TCP proxy per replica (so every simulator connection can be traced to
//     the replica and replica generation that opened it; when the
//     simulator closes, it passes on every byte and half-closes, so that a
//     bridge behind in reading loses nothing to a reset), and the replicas
//     built by internal/node, as `mdbridge run` is in cluster mode (a
//     membership bucket, rendezvous assignment of the (exchange, symbol)
//     units, make-before-break handover; short heartbeat and expiry so
//     that units move within the soak): their own NATS
//     connection, publisher.JetStream, StateWriter, snapshot service and
//     requester, trade resumer, one bridge.Stream per exchange.
//  2. Warm up, then execute the fault plan (Plan, derived from the seed
//     only): upstream closes and stalls, duplicate floods, depth gaps,
//     malformed and oversized frames, REST 429/418/403 and 5xx, clock skew
//     jumps, shortened connection age limits, serverShutdown (OKX: the
//     64008 notice), OKX books seqId resets (maintenance), NATS server
//     restarts, abrupt replica kills followed by restarts, and
//     membership churn: the kills and restarts move units between
//     replicas, and a replica_add at the middle of the fault phase starts
//     one more replica that stays (units hand over to it). Faults
//     overlap. Every second, the owner counts of every unit are sampled
//     (the live replicas whose coordinator runs it, and of them those
//     whose stream reports it CONNECTED); a unit without any owner for
//     longer than ZeroOwnersBound fails the soak, and after settling
//     every unit must be back at R owners.
//  3. During the faults, ask for book snapshots on the control subject
//     (mdctl.snapshot.<exchange>.<symbol>, core NATS request/reply, as a
//     consumer or `mdbridge snapshot` does) for every market every
//     SnapshotEvery, overlapping the faults.
//  4. Clear every fault, let the system settle, stop generation
//     (exsim SetRates 0) and wait until the publishers are drained.
//  5. Read the whole stream and reconcile (Reconcile): duplicates by
//     Nats-Msg-Id, trade id and update id; for every market, the trades
//     the simulator wrote to each bridge connection against the stream (a
//     trade written to a live replica and absent from the stream is a loss
//     (in cluster mode a connection carries only its replica's units, so
//     "written to" means "owned by a live replica that was connected");
//     one the bridge did not count as missing or dropped fails the soak);
//     Binance and OKX trades-all trades missing (consecutive ids, backfilled
//     by id: any missing one fails); every book replayed by the README's consumer
//     rule (BookReplay, which reads each event's update-id series, "depth",
//     from the stored body itself, and bridge.BookBuilder as a cross-check)
//     and compared with the simulator's book at the configured Bybit depth
//     (OKX: 400 levels, at the final seqId);
//     gaps detected vs injected; snapshots; reconnects; time to recover per
//     fault kind; goroutines and memory sampled over time and checked
//     against a stated bound.
//
// The Report carries the seed: the same seed gives the same fault plan and
// the same market data (timing on a loaded machine still varies).
//
// # Concurrency
//
// Run blocks until the soak ends; it is safe to run several soaks in one
// process only with distinct NATS ports (the default, NATSPort 0, lets the
// system pick one). Report and its helpers are plain
// values. Reconcile and BookReplay are pure functions of their input.
package chaos
