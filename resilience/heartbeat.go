package resilience

import (
	"context"
	"sync/atomic"
	"time"
)

// Heartbeat defaults, from the seed.
const (
	DefaultHeartbeatTimeout      = 30 * time.Second
	DefaultHeartbeatPingInterval = 10 * time.Second
)

// HeartbeatConfig configures a HeartbeatMonitor. Zero durations mean the
// defaults.
type HeartbeatConfig struct {
	// Timeout is how long the connection may be silent before it counts as
	// dead. Default 30s.
	Timeout time.Duration
	// PingInterval is how often the runner should send a ping (or expect
	// the server's); it must be shorter than Timeout so that a quiet but
	// healthy connection produces traffic before the timeout. Default 10s.
	// The monitor itself only reports it.
	PingInterval time.Duration
}

// DefaultHeartbeatConfig returns the seed's defaults: 30s timeout, 10s ping
// interval.
func DefaultHeartbeatConfig() HeartbeatConfig {
	return HeartbeatConfig{Timeout: DefaultHeartbeatTimeout, PingInterval: DefaultHeartbeatPingInterval}
}

func (c HeartbeatConfig) withDefaults() (HeartbeatConfig, error) {
	switch {
	case c.Timeout < 0:
		return c, configError("HeartbeatConfig.Timeout", "must not be negative (got %s)", c.Timeout)
	case c.PingInterval < 0:
		return c, configError("HeartbeatConfig.PingInterval", "must not be negative (got %s)", c.PingInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultHeartbeatTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = min(DefaultHeartbeatPingInterval, c.Timeout/3)
	}
	if c.PingInterval >= c.Timeout {
		return c, configError("HeartbeatConfig.PingInterval", "must be shorter than Timeout (%s >= %s)", c.PingInterval, c.Timeout)
	}
	return c, nil
}

// HeartbeatMonitor tracks connection liveness. Any inbound frame (data,
// pong, control reply) should be recorded as a heartbeat: silence, not the
// absence of pongs, is what kills a feed.
//
// The monitor is created alive: construction (and Reset) count as a
// heartbeat, giving a new connection one Timeout to produce traffic. It is
// alive while less than Timeout has passed since the last heartbeat, and
// stale from exactly Timeout on.
//
// Times are kept as monotonic offsets from the monitor's creation, so wall
// clock steps (NTP) neither kill nor resurrect a connection.
// RecordHeartbeat and RecordHeartbeatAt are a single atomic store: no lock,
// no allocation; all methods are safe for concurrent use.
type HeartbeatMonitor struct {
	cfg  HeartbeatConfig
	base time.Time    // creation time, with monotonic reading
	last atomic.Int64 // last heartbeat, ns since base
}

// NewHeartbeatMonitor validates cfg (zero fields take the defaults) and
// returns a monitor whose last heartbeat is now. Errors wrap
// ErrInvalidConfig and name the field.
func NewHeartbeatMonitor(cfg HeartbeatConfig) (*HeartbeatMonitor, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &HeartbeatMonitor{cfg: c, base: time.Now()}, nil
}

// Config returns the effective configuration, defaults filled in.
func (m *HeartbeatMonitor) Config() HeartbeatConfig { return m.cfg }

// Timeout returns the configured silence timeout.
func (m *HeartbeatMonitor) Timeout() time.Duration { return m.cfg.Timeout }

// PingInterval returns the configured ping interval.
func (m *HeartbeatMonitor) PingInterval() time.Duration { return m.cfg.PingInterval }

// RecordHeartbeat records a sign of life now. It is meant for the
// per-frame hot path: one clock read and one atomic store.
func (m *HeartbeatMonitor) RecordHeartbeat() { m.last.Store(int64(time.Since(m.base))) }

// RecordHeartbeatAt records a sign of life at t, typically the receive time
// already taken for the frame. An earlier t than the last recorded one
// moves the heartbeat back; callers pass receive times in order.
func (m *HeartbeatMonitor) RecordHeartbeatAt(t time.Time) { m.last.Store(int64(t.Sub(m.base))) }

// Reset records a heartbeat now; use it when a new connection is opened.
func (m *HeartbeatMonitor) Reset() { m.RecordHeartbeat() }

// LastHeartbeat returns the time of the last heartbeat (creation time if
// none was recorded).
func (m *HeartbeatMonitor) LastHeartbeat() time.Time {
	return m.base.Add(time.Duration(m.last.Load()))
}

// SinceLastHeartbeat returns how long the connection has been silent.
func (m *HeartbeatMonitor) SinceLastHeartbeat() time.Duration {
	return time.Since(m.base) - time.Duration(m.last.Load())
}

// IsAlive reports whether the last heartbeat is less than Timeout old.
func (m *HeartbeatMonitor) IsAlive() bool { return m.SinceLastHeartbeat() < m.cfg.Timeout }

// Stale returns a channel that is closed once, when the connection has
// been silent for Timeout. The watching goroutine sleeps until the
// earliest moment the timeout could expire, re-reads the last heartbeat,
// and goes back to sleep if traffic arrived meanwhile, so it costs one
// timer, not a poll per frame. It exits when the channel is closed or when
// ctx is done; in the latter case the channel is never closed, so callers
// select on both. Call Stale once per connection with that connection's
// context.
func (m *HeartbeatMonitor) Stale(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	go m.watch(ctx, ch)
	return ch
}

func (m *HeartbeatMonitor) watch(ctx context.Context, ch chan<- struct{}) {
	t := time.NewTimer(m.cfg.Timeout - m.SinceLastHeartbeat())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			left := m.cfg.Timeout - m.SinceLastHeartbeat()
			if left <= 0 {
				close(ch)
				return
			}
			t.Reset(left)
		}
	}
}
