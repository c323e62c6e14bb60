package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// Retry delays of the repair workers and rotations. Every retry site of the
// bridge waits through a retrier: the resilience package's exponential
// backoff with full jitter (ReconnectionManager), so retries of many
// symbols spread out instead of arriving in lockstep, and the venue's
// Retry-After, when it sent one, as the lower bound.
const (
	restRetryInitial     = 200 * time.Millisecond // a failed REST call
	restRetryMax         = 5 * time.Second
	staleRetryInitial    = 50 * time.Millisecond // a snapshot older than the buffered deltas, a venue behind the stream
	staleRetryMax        = time.Second
	rotationRetryInitial = time.Second // a replacement connection that failed
	rotationRetryMax     = 30 * time.Second
)

// retrier counts the failures of one retry loop and waits before the next
// attempt. Not safe for concurrent use.
type retrier struct {
	rm *resilience.ReconnectionManager
}

// newRetrier returns a retrier whose delay ceiling starts at initial and
// doubles per failure up to max.
func newRetrier(initial, max time.Duration) retrier {
	rm, err := resilience.NewReconnectionManager(resilience.ReconnectConfig{InitialDelay: initial, MaxDelay: max, BackoffFactor: 2})
	if err != nil {
		panic(err) // the constants above are valid
	}
	return retrier{rm}
}

// failures returns the failures recorded since the last reset.
func (r retrier) failures() int { return r.rm.Attempts() }

// reset forgets the failures (after a success).
func (r retrier) reset() { r.rm.Reset() }

// fail records a failure and returns the delay before the next attempt:
// the backoff's, or the venue's Retry-After when err carries a longer one.
func (r retrier) fail(err error) time.Duration {
	r.rm.RecordFailure()
	d := r.rm.Delay()
	var rl *RateLimitError
	if errors.As(err, &rl) && rl.RetryAfter > d {
		d = rl.RetryAfter
	}
	return d
}

// wait records a failure and sleeps for its delay; it returns ctx's error
// if ctx ends first.
func (r retrier) wait(ctx context.Context, err error) error {
	return resilience.Sleep(ctx, r.fail(err))
}
