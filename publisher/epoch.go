package publisher

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/resilience"
)

const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// link is the pump's view of the NATS connection: how to write to it, its
// reconnect count (the epoch every attempt is tagged with), whether it is
// connected, and how to force a reconnect. The functions are set before the
// pump starts and never change; epoch and lost are guarded by JetStream.mu.
type link struct {
	pub       func(*nats.Msg) error
	count     func() uint64 // the connection's reconnect count; takes its lock
	connected func() bool
	reconnect func() // forces a reconnect

	epoch uint64 // the reconnect count at the last send
	lost  int    // attempts timed out in a row (since the last ack)
}

// newLink returns a link to no connection: writes fail, it is never
// connected and its epoch never changes.
func newLink() link {
	return link{
		pub:       func(*nats.Msg) error { return nats.ErrConnectionClosed },
		count:     func() uint64 { return 0 },
		connected: func() bool { return false },
		reconnect: func() {},
	}
}

// attach links to nc.
func (l *link) attach(nc *nats.Conn) {
	l.pub = nc.PublishMsg
	l.count = func() uint64 { return nc.Stats().Reconnects }
	l.connected = nc.IsConnected
	l.reconnect = func() { _ = nc.ForceReconnect() }
}

// advance records the reconnect count n (read without JetStream.mu) and
// reports whether the connection was replaced since the last call.
func (l *link) advance(n uint64) bool {
	if n == l.epoch {
		return false
	}
	l.epoch = n
	return true
}

// timedOut counts an attempt whose ack never came.
func (l *link) timedOut() { l.lost++ }

// acked resets the count of lost acks.
func (l *link) acked() { l.lost = 0 }

// tooManyLost reports, and then resets, more than limit lost acks in a row:
// the reply subscription or the connection is broken without a status
// change, and the caller forces a reconnect.
func (l *link) tooManyLost(limit int) (int, bool) {
	n := l.lost
	if n <= limit {
		return n, false
	}
	l.lost = 0
	return n, true
}

// retryState is the failing/backoff state machine of the pump: a failure
// stops sending until every in-flight attempt is resolved; then a retry
// pass starts after a backoff that doubles per failed pass (minBackoff to
// maxBackoff) and resets with the next ack. The backoff is the resilience
// package's policy (ReconnectionManager's ceiling: exponential, no jitter,
// since one pump retries one ordered queue). Guarded by JetStream.mu.
type retryState struct {
	failing  bool
	failures uint64 // failures since the last successful ack
	lastErr  error
	at       time.Time                       // the retry pass starts no earlier
	passes   *resilience.ReconnectionManager // failed passes since the last ack
}

// newBackoff returns the exponential backoff of min doubling to max, as
// resilience.ReconnectionManager computes it (its Ceiling: no jitter).
func newBackoff(min, max time.Duration) *resilience.ReconnectionManager {
	rm, err := resilience.NewReconnectionManager(resilience.ReconnectConfig{InitialDelay: min, MaxDelay: max, BackoffFactor: 2})
	if err != nil {
		panic(err) // constant, valid arguments
	}
	return rm
}

// fail records a failed attempt and enters the failing state.
func (r *retryState) fail(err error) {
	r.failing = true
	r.failures++
	r.lastErr = err
}

// conflict enters the failing state for a publish that met another
// publisher's copy of the same message in process: the retry pass runs as
// after a failure, but it is not counted as one.
func (r *retryState) conflict(err error) {
	r.failing = true
	r.lastErr = err
}

// begin leaves the failing state and schedules the retry pass. With the
// connection already back after a disconnect it retries (almost) at once.
func (r *retryState) begin(now time.Time, connected bool) {
	r.failing = false
	if r.passes == nil {
		r.passes = newBackoff(minBackoff, maxBackoff)
	}
	if connected && isDisconnect(r.lastErr) {
		r.passes.Reset()
	}
	r.passes.RecordFailure()
	r.at = now.Add(r.passes.Ceiling())
}

// now makes a scheduled retry pass start at once (the connection is back).
func (r *retryState) now() { r.at = time.Time{} }

// waiting reports whether a retry pass is scheduled after now.
func (r *retryState) waiting(now time.Time) bool { return now.Before(r.at) }

// acked records a successful ack: the backoff resets. It returns the
// failures since the previous success when publishing has resumed (0 while
// still failing, or when nothing had failed), resetting that count.
func (r *retryState) acked() uint64 {
	if r.passes != nil {
		r.passes.Reset()
	}
	if r.failures == 0 || r.failing {
		return 0
	}
	n := r.failures
	r.failures = 0
	return n
}
