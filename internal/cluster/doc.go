// Package cluster spreads the work of a bridge over its replicas: each
// replica announces itself in the NATS KV bucket md_members, every replica
// computes from the live members which (market, symbol) units it carries
// (rendezvous hashing, R owners per unit), and a Coordinator starts the
// units it gains and releases the units it loses make-before-break: a lost
// unit keeps running until its new owners report it CONNECTED in md_state,
// or until a bounded timeout.
//
// Liveness: each replica rewrites its md_members entry every Heartbeat
// (default 1 s); the bucket's TTL (Expiry, default 3 s) removes entries
// nobody rewrites, and every replica considers a member gone once it has
// not seen it rewritten for Expiry while its own watch of the bucket
// worked (the watch delivered the replica's own entry more than Expiry
// after the member's last one), or saw its key deleted, as a graceful
// stop does. A dead replica therefore drops out of every view within
// Expiry plus one Heartbeat and one reconcile tick (default 4.5 s), and
// its units are started on their new owners at that moment. A replica whose watch falls silent (cut off from NATS)
// expires nobody; when its own entry comes through again after such a
// silence, every member gets a fresh Expiry to show up, as their entries
// may follow its own.
//
// Disagreeing views (a member seen by some replicas and not yet by others)
// only ever produce extra copies: a unit is stopped by a replica only once
// its other owners carry it, and JetStream's msg-ID dedup removes the
// copies. A replica that cannot refresh its own entry (cut off from NATS)
// freezes: it keeps what it carries and takes nothing new until it can
// write again.
//
// The units may change at run time (SetUnits: runtime subscriptions,
// universe refreshes): units dropped stop at once on every replica
// carrying them (nobody is to carry them, so there is no handover), new
// units are assigned like the others.
//
// The package knows nothing of streams: the Coordinator drives a Runner
// (internal/node implements it with bridge.Streams). Concurrency: a
// Coordinator's methods may be called from any goroutine; Run is called
// once.
package cluster
