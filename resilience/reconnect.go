package resilience

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Reconnect defaults, from the seed.
const (
	DefaultMaxAttempts   = 10
	DefaultInitialDelay  = time.Second
	DefaultMaxDelay      = 60 * time.Second
	DefaultBackoffFactor = 2.0
)

// ReconnectConfig configures a ReconnectionManager. The seed's two spellings
// (max_retries/base_delay and max_attempts/initial_delay) name the same
// knobs. Zero durations and a zero BackoffFactor mean the defaults.
type ReconnectConfig struct {
	// MaxAttempts is the number of consecutive failures after which
	// ShouldReconnect reports false. 0 means retry forever. Default 10 (see
	// DefaultReconnectConfig; the zero value means infinite).
	MaxAttempts int
	// InitialDelay is the backoff ceiling after the first failure. Default 1s.
	InitialDelay time.Duration
	// MaxDelay caps every delay. Default 60s.
	MaxDelay time.Duration
	// BackoffFactor multiplies the ceiling after each further failure;
	// must be >= 1. Default 2.
	BackoffFactor float64
}

// DefaultReconnectConfig returns the seed's defaults: 10 attempts, 1s
// initial delay, 60s cap, factor 2.
func DefaultReconnectConfig() ReconnectConfig {
	return ReconnectConfig{
		MaxAttempts:   DefaultMaxAttempts,
		InitialDelay:  DefaultInitialDelay,
		MaxDelay:      DefaultMaxDelay,
		BackoffFactor: DefaultBackoffFactor,
	}
}

// withDefaults fills zero fields and validates. Errors wrap ErrInvalidConfig.
func (c ReconnectConfig) withDefaults() (ReconnectConfig, error) {
	switch {
	case c.MaxAttempts < 0:
		return c, configError("ReconnectConfig.MaxAttempts", "must not be negative (got %d; 0 means infinite)", c.MaxAttempts)
	case c.InitialDelay < 0:
		return c, configError("ReconnectConfig.InitialDelay", "must not be negative (got %s)", c.InitialDelay)
	case c.MaxDelay < 0:
		return c, configError("ReconnectConfig.MaxDelay", "must not be negative (got %s)", c.MaxDelay)
	case math.IsNaN(c.BackoffFactor) || math.IsInf(c.BackoffFactor, 0) || c.BackoffFactor < 0 || (c.BackoffFactor != 0 && c.BackoffFactor < 1):
		return c, configError("ReconnectConfig.BackoffFactor", "must be a finite number >= 1 (got %v)", c.BackoffFactor)
	}
	if c.InitialDelay == 0 {
		c.InitialDelay = DefaultInitialDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.BackoffFactor == 0 {
		c.BackoffFactor = DefaultBackoffFactor
	}
	if c.InitialDelay > c.MaxDelay {
		return c, configError("ReconnectConfig.InitialDelay", "must not exceed MaxDelay (%s > %s)", c.InitialDelay, c.MaxDelay)
	}
	return c, nil
}

// ReconnectionManager decides whether and when to reconnect: exponential
// backoff with full jitter, capped at MaxDelay, for at most MaxAttempts
// consecutive failures.
//
// Jitter: after n consecutive failures the ceiling is
// min(MaxDelay, InitialDelay * BackoffFactor^(n-1)) and Delay returns a
// uniformly random duration in [0, ceiling] ("full jitter", AWS
// Architecture Blog, "Exponential Backoff And Jitter"). Full jitter spreads
// the reconnects of many connections cut at the same moment (an exchange
// restart) over the whole window instead of synchronising them, and keeps
// Delay a pure function of the attempt count, so calling it twice does not
// advance the backoff. Use Ceiling for the un-jittered bound (logs,
// metrics).
//
// The attempt counter saturates at math.MaxInt and the ceiling is computed
// in floating point and clamped, so neither overflows at huge attempt
// counts. A ReconnectionManager is safe for concurrent use.
type ReconnectionManager struct {
	cfg ReconnectConfig
	// int64n returns a uniform value in [0, n); tests replace it.
	int64n func(n int64) int64

	mu       sync.Mutex
	attempts int
}

// NewReconnectionManager validates cfg (zero fields take the defaults) and
// returns a manager with no recorded failures. Errors wrap ErrInvalidConfig
// and name the field.
func NewReconnectionManager(cfg ReconnectConfig) (*ReconnectionManager, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &ReconnectionManager{cfg: c, int64n: rand.Int64N}, nil
}

// Config returns the effective configuration, defaults filled in.
func (m *ReconnectionManager) Config() ReconnectConfig { return m.cfg }

// ShouldReconnect reports whether another attempt is allowed: always when
// MaxAttempts is 0, otherwise while fewer than MaxAttempts consecutive
// failures have been recorded.
func (m *ReconnectionManager) ShouldReconnect() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.MaxAttempts == 0 || m.attempts < m.cfg.MaxAttempts
}

// RecordSuccess records a successful connection: the failure count returns
// to zero, so the next outage starts again from InitialDelay.
func (m *ReconnectionManager) RecordSuccess() { m.Reset() }

// RecordFailure records one failed attempt (or the loss of a connection).
func (m *ReconnectionManager) RecordFailure() {
	m.mu.Lock()
	if m.attempts < math.MaxInt {
		m.attempts++
	}
	m.mu.Unlock()
}

// Reset forgets all recorded failures.
func (m *ReconnectionManager) Reset() {
	m.mu.Lock()
	m.attempts = 0
	m.mu.Unlock()
}

// Attempts returns the number of consecutive failures recorded since the
// last success or Reset.
func (m *ReconnectionManager) Attempts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// Ceiling returns the un-jittered upper bound of the next Delay:
// min(MaxDelay, InitialDelay * BackoffFactor^(n-1)) for n recorded
// failures (n = 0 counts as 1).
func (m *ReconnectionManager) Ceiling() time.Duration {
	return m.ceiling(m.Attempts())
}

func (m *ReconnectionManager) ceiling(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(m.cfg.InitialDelay) * math.Pow(m.cfg.BackoffFactor, float64(n-1))
	if math.IsNaN(d) || d >= float64(m.cfg.MaxDelay) {
		return m.cfg.MaxDelay
	}
	return time.Duration(d)
}

// Delay returns the time to wait before the next attempt: uniformly random
// in [0, Ceiling()] (full jitter). It does not change the manager's state.
func (m *ReconnectionManager) Delay() time.Duration {
	c := m.Ceiling()
	if c <= 0 {
		return 0
	}
	n := int64(c)
	if n < math.MaxInt64 {
		n++ // inclusive upper bound
	}
	return time.Duration(m.int64n(n))
}

// Wait sleeps for Delay() and returns nil, or returns ctx.Err() as soon as
// ctx is done. It does not consult ShouldReconnect.
func (m *ReconnectionManager) Wait(ctx context.Context) error {
	return Sleep(ctx, m.Delay())
}

// Sleep sleeps for d or until ctx is done, whichever is first: it returns
// nil after d, or ctx.Err() (at once if ctx is already done).
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
