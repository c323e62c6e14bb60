// Package resilience is a toolkit for hardening exchange market-data
// clients: the Go form of the seed's Python qldata.resilience API.
//
// Components, one per file:
//
//   - ReconnectionManager: exponential backoff with full jitter, a cap, and
//     a maximum number of attempts (0 = infinite).
//   - HeartbeatMonitor: liveness from inbound traffic, with a stale signal
//     for the connection runner.
//   - MessageDeduplicator: bounded (window size and TTL), O(1),
//     allocation-free duplicate detection over any comparable key.
//   - RateLimitManager: request-weight pacing on golang.org/x/time/rate, with
//     Retry-After pauses and the exchange's used-weight header.
//   - SequenceTracker: gap, duplicate and late detection over int64
//     sequences, with gaps kept as bounded ranges.
//   - TimeSyncManager: offset to the exchange clock from the minimum
//     round-trip sample.
//   - ConnectionStateManager: the seed's five connection states and exactly
//     its eight transitions, with callbacks and bounded history.
//   - ResilienceConfig: the seed's switches, loadable with envconfig.
//   - DataQualityMonitor and AlertManager: stale-data detection and
//     edge-triggered alerts.
//
// The package does no network I/O and has no global state. Time-dependent
// components read the clock through time.Now and time timers, so tests run
// them inside testing/synctest bubbles; the per-message hot paths also have
// *At variants (RecordHeartbeatAt, RecordAt) that take a caller-supplied
// time so one time.Now can serve a whole frame.
//
// # Concurrency
//
// Every type is safe for concurrent use by multiple goroutines unless its
// documentation says otherwise. Hot-path methods are cheap:
// HeartbeatMonitor.RecordHeartbeat is a single atomic store,
// TimeSyncManager readers are atomic loads, MessageDeduplicator and
// SequenceTracker take one uncontended mutex and never allocate in steady
// state. Callbacks (ConnectionStateManager, AlertManager) run outside the
// component's lock, one at a time, in event order, and may call back into
// the component without deadlocking.
package resilience
