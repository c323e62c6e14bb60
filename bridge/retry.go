package bridge

import (
	"context"
	"errors"
	"sync"
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
// the backoff's, or the venue's Retry-After (a RateLimitError) or the
// requester's retry delay (a RetryDelayer) when err carries a longer one.
func (r retrier) fail(err error) time.Duration {
	r.rm.RecordFailure()
	return max(r.rm.Delay(), retryAfter(err))
}

// retryAfter returns the delay err asks for before the next attempt: a
// RateLimitError's RetryAfter, a RetryDelayer's RetryDelay, else 0.
func retryAfter(err error) time.Duration {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	var rd RetryDelayer
	if errors.As(err, &rd) {
		return rd.RetryDelay()
	}
	return 0
}

// busyLogEvery is how often a stream logs the snapshot requests refused
// as busy (with their count since); each refusal is logged at Debug.
const busyLogEvery = 10 * time.Second

// busyLog summarizes busy refusals: at start thousands of book syncs may
// queue on the snapshot service, and a line per refusal would drown the log.
// A summary line counts the refusals since the previous one and the total.
type busyLog struct {
	mu    sync.Mutex
	last  time.Time // of the last summary line
	n     uint64    // refusals since
	total uint64    // refusals since the stream started
}

// refused counts one refusal at now; when a summary is due it returns the
// count to log (the refusals since the last summary, this one included)
// and the stream's total so far, else 0, 0.
func (b *busyLog) refused(now time.Time) (n, total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	b.total++
	if !b.last.IsZero() && now.Sub(b.last) < busyLogEvery {
		return 0, 0
	}
	n = b.n
	b.last, b.n = now, 0
	return n, b.total
}

// wait records a failure and sleeps for its delay; it returns ctx's error
// if ctx ends first.
func (r retrier) wait(ctx context.Context, err error) error {
	return resilience.Sleep(ctx, r.fail(err))
}
