package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Time sync defaults.
const (
	DefaultTimeSyncSamples  = 5
	DefaultTimeSyncInterval = 5 * time.Minute
	// DefaultTimeSyncWarnOffset is the clock offset from which Run logs
	// a warning.
	DefaultTimeSyncWarnOffset = time.Second
)

// TimeSource is anything that can tell the exchange's current time, such as
// a bridge.Exchange (its REST server-time endpoint).
type TimeSource interface {
	ServerTime(ctx context.Context) (time.Time, error)
}

// TimeSyncConfig configures a TimeSyncManager. Zero fields mean the
// defaults.
type TimeSyncConfig struct {
	// Samples is the number of server-time requests per Sync; the one with
	// the shortest round trip wins. Default 5.
	Samples int
	// Interval is the resync period of Run. Default 5m.
	Interval time.Duration
	// WarnOffset: Run logs a warning at every sync whose offset (either
	// sign) is at least this, and an Info line when the offset is back
	// below it. Default 1s; negative never warns.
	WarnOffset time.Duration
}

func (c TimeSyncConfig) withDefaults() (TimeSyncConfig, error) {
	switch {
	case c.Samples < 0:
		return c, configError("TimeSyncConfig.Samples", "must not be negative (got %d)", c.Samples)
	case c.Interval < 0:
		return c, configError("TimeSyncConfig.Interval", "must not be negative (got %s)", c.Interval)
	}
	if c.Samples == 0 {
		c.Samples = DefaultTimeSyncSamples
	}
	if c.Interval == 0 {
		c.Interval = DefaultTimeSyncInterval
	}
	if c.WarnOffset == 0 {
		c.WarnOffset = DefaultTimeSyncWarnOffset
	}
	return c, nil
}

// TimeSyncManager estimates the offset of the exchange's clock from the
// local clock, Offset = server - local, NTP-style: each sample notes the
// local send time t0 and round trip rtt, and assumes the server read its
// clock half-way, so offset = server - (t0 + rtt/2). Of several samples the
// one with the smallest round trip wins, since its midpoint assumption has
// the smallest error bound (±rtt/2).
//
// Before the first successful Sync the offset is 0. Readers (Offset,
// ServerNow, ToLocal, RTT) are lock-free atomic loads; Sync and Run may run
// concurrently with them. A failed Sync keeps the last good offset.
type TimeSyncManager struct {
	cfg TimeSyncConfig
	log *slog.Logger

	cur atomic.Pointer[syncResult] // nil before the first successful Sync
}

// syncResult is one successful Sync, published atomically as a whole.
type syncResult struct {
	offset time.Duration
	rtt    time.Duration // of the winning sample
	at     time.Time     // when the Sync completed
}

// NewTimeSyncManager validates cfg (zero fields take the defaults) and
// returns a manager with offset 0 that reports Run's failures to logger
// (nil discards). Errors wrap ErrInvalidConfig and name the field.
func NewTimeSyncManager(cfg TimeSyncConfig, logger *slog.Logger) (*TimeSyncManager, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &TimeSyncManager{cfg: c, log: logger}, nil
}

// Config returns the effective configuration, defaults filled in.
func (m *TimeSyncManager) Config() TimeSyncConfig { return m.cfg }

// Sync takes Samples readings from src and adopts the offset of the one
// with the shortest round trip. Failed readings are skipped; if none
// succeeds it returns an error wrapping ErrTimeSync and the last failure,
// and keeps the previous offset. It returns ctx.Err() if ctx ends.
func (m *TimeSyncManager) Sync(ctx context.Context, src TimeSource) error {
	var (
		best    time.Duration = -1
		offset  time.Duration
		lastErr error
	)
	for range m.cfg.Samples {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		server, err := src.ServerTime(ctx)
		rtt := time.Since(t0)
		if err != nil {
			lastErr = err
			continue
		}
		if best < 0 || rtt < best {
			best = rtt
			offset = server.Sub(t0.Add(rtt / 2))
		}
	}
	if best < 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %d samples failed, last: %w", ErrTimeSync, m.cfg.Samples, lastErr)
	}
	m.cur.Store(&syncResult{offset: offset, rtt: best, at: time.Now()})
	return nil
}

// Run calls Sync at once and then every Interval until ctx ends. Failures
// are logged at Warn and the last good offset stays in use. The first
// offset is logged at Info; an offset of WarnOffset or more is logged at
// Warn at every sync (the exchange's and the local clock disagree: event
// and receive times compare badly), and its return below WarnOffset at
// Info.
func (m *TimeSyncManager) Run(ctx context.Context, src TimeSource) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	first, skewed := true, false
	for {
		if err := m.Sync(ctx, src); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("time sync failed; keeping previous offset", "err", err, "offset", m.Offset())
		} else {
			off := m.Offset()
			over := m.cfg.WarnOffset > 0 && (off >= m.cfg.WarnOffset || off <= -m.cfg.WarnOffset)
			switch {
			case over:
				m.log.Warn("exchange clock differs from the local clock; check the host's NTP (times stay the exchange's, receive ages are corrected by the offset)",
					"offset", off, "rtt", m.RTT(), "warn_at", m.cfg.WarnOffset, "next_sync", m.cfg.Interval)
			case skewed:
				m.log.Info("exchange clock agrees with the local clock again", "offset", off, "rtt", m.RTT())
			case first:
				m.log.Info("clock offset measured", "offset", off, "rtt", m.RTT(), "next_sync", m.cfg.Interval)
			default:
				m.log.Debug("time synced", "offset", off, "rtt", m.RTT())
			}
			first, skewed = false, over
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Offset returns server time minus local time (positive when the exchange
// clock is ahead).
func (m *TimeSyncManager) Offset() time.Duration {
	if r := m.cur.Load(); r != nil {
		return r.offset
	}
	return 0
}

// RTT returns the round trip of the sample the offset came from (0 before
// the first successful Sync); the offset is exact to within ±RTT/2.
func (m *TimeSyncManager) RTT() time.Duration {
	if r := m.cur.Load(); r != nil {
		return r.rtt
	}
	return 0
}

// LastSync returns when the offset was last updated (zero if never).
func (m *TimeSyncManager) LastSync() time.Time {
	if r := m.cur.Load(); r != nil {
		return r.at
	}
	return time.Time{}
}

// Synced reports whether a Sync has succeeded.
func (m *TimeSyncManager) Synced() bool { return m.cur.Load() != nil }

// ToLocal converts an exchange timestamp to the local clock.
func (m *TimeSyncManager) ToLocal(server time.Time) time.Time { return server.Add(-m.Offset()) }

// ToServer converts a local timestamp to the exchange clock.
func (m *TimeSyncManager) ToServer(local time.Time) time.Time { return local.Add(m.Offset()) }

// ServerNow returns the exchange's estimated current time.
func (m *TimeSyncManager) ServerNow() time.Time { return time.Now().Add(m.Offset()) }
