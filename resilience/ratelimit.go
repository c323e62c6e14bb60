package resilience

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimitConfig configures a RateLimitManager.
type RateLimitConfig struct {
	// RequestsPerMinute is the request weight allowed per minute (Binance
	// 1200, Bybit 120; see ExchangeDefaults). Required: there is no
	// exchange-independent default.
	RequestsPerMinute int
	// Burst is the most weight that may be spent at once after an idle
	// period. 0 means RequestsPerMinute/12, at least 1 (the seed's 1200/100
	// ratio). Must not exceed RequestsPerMinute.
	Burst int
}

func (c RateLimitConfig) withDefaults() (RateLimitConfig, error) {
	switch {
	case c.RequestsPerMinute <= 0:
		return c, configError("RateLimitConfig.RequestsPerMinute", "must be positive (got %d)", c.RequestsPerMinute)
	case c.Burst < 0:
		return c, configError("RateLimitConfig.Burst", "must not be negative (got %d)", c.Burst)
	case c.Burst > c.RequestsPerMinute:
		return c, configError("RateLimitConfig.Burst", "must not exceed RequestsPerMinute (%d > %d)", c.Burst, c.RequestsPerMinute)
	}
	if c.Burst == 0 {
		c.Burst = max(1, c.RequestsPerMinute/12)
	}
	return c, nil
}

// RateLimitManager paces requests against an exchange's weight limit so
// that the exchange never has to refuse them.
//
// Three mechanisms combine, and an acquirer passes all three:
//
//   - a token bucket (golang.org/x/time/rate) refilled at
//     RequestsPerMinute/60 per second with capacity Burst, which spreads
//     requests evenly;
//   - a fixed one-minute window aligned to the clock's minutes, as the
//     exchanges count (Binance X-MBX-USED-WEIGHT-1M): the weight acquired in
//     the current minute, raised by UpdateUsedWeight to what the exchange
//     reports, never exceeds RequestsPerMinute; an acquirer that would
//     exceed it waits for the next minute;
//   - Pause, for a 429/418 Retry-After: nobody acquires before the pause
//     ends.
//
// Weights larger than Burst are acquired Burst tokens at a time, so
// AcquireN never fails or deadlocks because of a large weight; it just
// waits longer. A single weight larger than RequestsPerMinute is let
// through at the start of an otherwise empty minute window.
//
// Safe for concurrent use.
type RateLimitManager struct {
	cfg RateLimitConfig
	lim *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time
	window      time.Time // start of the current minute window
	used        int       // weight used in window, local or as reported
}

// NewRateLimitManager validates cfg and returns a manager with a full
// bucket and an empty window. Errors wrap ErrInvalidConfig and name the
// field.
func NewRateLimitManager(cfg RateLimitConfig) (*RateLimitManager, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &RateLimitManager{
		cfg: c,
		lim: rate.NewLimiter(rate.Limit(float64(c.RequestsPerMinute)/60), c.Burst),
	}, nil
}

// Config returns the effective configuration, defaults filled in.
func (m *RateLimitManager) Config() RateLimitConfig { return m.cfg }

// Acquire waits for permission to send one request of weight 1. See
// AcquireN.
func (m *RateLimitManager) Acquire(ctx context.Context) error { return m.AcquireN(ctx, 1) }

// AcquireN waits until a request of the given weight may be sent: after
// any pause, once the token bucket has the weight, and once the current
// minute window has room for it. It returns nil, or ctx.Err() if ctx ends
// first (tokens already taken are then not returned: erring on the side of
// sending less). If the wait for tokens would outlast ctx's deadline it
// returns at once with an error wrapping context.DeadlineExceeded. A
// weight <= 0 returns at once.
func (m *RateLimitManager) AcquireN(ctx context.Context, weight int) error {
	if weight <= 0 {
		return ctx.Err()
	}
	if err := m.waitPause(ctx); err != nil {
		return err
	}
	for left := weight; left > 0; {
		n := min(left, m.cfg.Burst)
		if err := m.lim.WaitN(ctx, n); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			// WaitN refuses waits that would outlast ctx's deadline.
			return fmt.Errorf("resilience: rate limit wait would exceed the deadline: %w (%v)", context.DeadlineExceeded, err)
		}
		left -= n
	}
	for {
		m.mu.Lock()
		now := time.Now()
		m.roll(now)
		if m.used == 0 || m.used+weight <= m.cfg.RequestsPerMinute {
			m.used += weight
			m.mu.Unlock()
			break
		}
		next := m.window.Add(time.Minute)
		m.mu.Unlock()
		if err := Sleep(ctx, next.Sub(now)); err != nil {
			return err
		}
	}
	// A pause may have begun while we waited for tokens.
	return m.waitPause(ctx)
}

// roll starts a new window if now is past the current one. m.mu held.
func (m *RateLimitManager) roll(now time.Time) {
	if w := now.Truncate(time.Minute); w.After(m.window) {
		m.window, m.used = w, 0
	}
}

func (m *RateLimitManager) waitPause(ctx context.Context) error {
	for {
		m.mu.Lock()
		d := time.Until(m.pausedUntil)
		m.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		if err := Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Pause stops all acquirers until the given time, e.g. now + Retry-After
// after an HTTP 429 or 418. A pause is never shortened: an earlier until
// than the current pause is ignored.
func (m *RateLimitManager) Pause(until time.Time) {
	m.mu.Lock()
	if until.After(m.pausedUntil) {
		m.pausedUntil = until
	}
	m.mu.Unlock()
}

// PausedUntil returns the end of the current or last pause (zero if none).
func (m *RateLimitManager) PausedUntil() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pausedUntil
}

// UpdateUsedWeight folds in the exchange's own count of the weight used in
// the minute window containing at (Binance X-MBX-USED-WEIGHT-1M, read from
// a response received at at). If the exchange counts more than the local
// view (other clients on the same IP, requests made before a restart), the
// window's count is raised to the exchange's, so the local view never
// undercounts and acquirers never push the minute past
// RequestsPerMinute; if the window is full, acquirers are paused until the
// next minute. The difference is also taken from the token bucket, up to
// Burst tokens (the bucket's own depth): someone else is spending our
// budget, so no burst follows, but the bucket does not go into a debt that
// would outlast the window the exchange counts in. Reports for an earlier
// window than the current one are ignored.
func (m *RateLimitManager) UpdateUsedWeight(used int, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(time.Now())
	w := at.Truncate(time.Minute)
	switch {
	case w.Before(m.window):
		return
	case w.After(m.window):
		m.window, m.used = w, 0
	}
	if used <= m.used {
		return
	}
	extra := used - m.used
	m.used = used
	// ReserveN with n <= Burst is always granted; tokens may go negative.
	m.lim.ReserveN(time.Now(), min(extra, m.cfg.Burst))
	if m.used >= m.cfg.RequestsPerMinute {
		if end := m.window.Add(time.Minute); end.After(m.pausedUntil) {
			m.pausedUntil = end
		}
	}
}

// UsedWeight returns the weight counted in the current minute window: the
// larger of what was acquired locally and what the exchange reported.
func (m *RateLimitManager) UsedWeight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(time.Now())
	return m.used
}

// ExchangeLimits are an exchange's published limits, from the seed's table.
type ExchangeLimits struct {
	RequestsPerMinute  int // REST request weight per minute
	WSConnectionsPerIP int // concurrent WebSocket connections per IP
}

// RateLimitConfig returns a RateLimitConfig for these limits with the
// default burst.
func (l ExchangeLimits) RateLimitConfig() RateLimitConfig {
	return RateLimitConfig{RequestsPerMinute: l.RequestsPerMinute}
}

// ExchangeDefaults returns the seed's limits for an exchange id
// (case-insensitive): "binance" 1200/min and 5 WebSocket connections per
// IP; "bybit" and "bybit-linear" 120/min and 20 per IP. ok is false for an
// unknown exchange. Override entries with an ExchangeLimitTable.
func ExchangeDefaults(exchange string) (limits ExchangeLimits, ok bool) {
	switch strings.ToLower(exchange) {
	case "binance":
		return ExchangeLimits{RequestsPerMinute: 1200, WSConnectionsPerIP: 5}, true
	case "bybit", "bybit-linear":
		return ExchangeLimits{RequestsPerMinute: 120, WSConnectionsPerIP: 20}, true
	}
	return ExchangeLimits{}, false
}

// ExchangeLimitTable overrides ExchangeDefaults per exchange id (keys
// lower-case). A nil table is valid and holds no overrides.
type ExchangeLimitTable map[string]ExchangeLimits

// Lookup returns the table's entry for exchange, or ExchangeDefaults.
func (t ExchangeLimitTable) Lookup(exchange string) (ExchangeLimits, bool) {
	if l, ok := t[strings.ToLower(exchange)]; ok {
		return l, true
	}
	return ExchangeDefaults(exchange)
}
