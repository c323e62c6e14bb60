package resilience

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultStaleThreshold is the DataQualityMonitor default, from the seed's
// production example.
const DefaultStaleThreshold = 10 * time.Second

// DataQualityConfig configures a DataQualityMonitor. Zero means the
// default.
type DataQualityConfig struct {
	// StaleThreshold is how old the newest data may get before the stream
	// counts as stale. Default 10s.
	StaleThreshold time.Duration
}

// DataQualityMonitor detects stale data: the stream is stale when the
// newest recorded message timestamp is StaleThreshold or more in the past.
// Unlike HeartbeatMonitor (silence of the connection), it measures the
// data's own timestamps, so it also catches a connection that is alive but
// delivering old or no market data.
//
// Until a message is recorded, the creation time counts as the newest
// message. RecordMessage and IsStale are atomic operations; safe for
// concurrent use.
type DataQualityMonitor struct {
	threshold time.Duration
	newest    atomic.Int64 // Unix ns
}

// NewDataQualityMonitor validates cfg and returns a monitor that is fresh
// for one StaleThreshold. Errors wrap ErrInvalidConfig and name the field.
func NewDataQualityMonitor(cfg DataQualityConfig) (*DataQualityMonitor, error) {
	if cfg.StaleThreshold < 0 {
		return nil, configError("DataQualityConfig.StaleThreshold", "must not be negative (got %s)", cfg.StaleThreshold)
	}
	if cfg.StaleThreshold == 0 {
		cfg.StaleThreshold = DefaultStaleThreshold
	}
	m := &DataQualityMonitor{threshold: cfg.StaleThreshold}
	m.newest.Store(time.Now().UnixNano())
	return m, nil
}

// StaleThreshold returns the configured threshold.
func (m *DataQualityMonitor) StaleThreshold() time.Duration { return m.threshold }

// RecordMessage records a message timestamped t (its exchange event time,
// or receive time). Older timestamps than the newest recorded are ignored.
func (m *DataQualityMonitor) RecordMessage(t time.Time) {
	ns := t.UnixNano()
	for {
		cur := m.newest.Load()
		if ns <= cur || m.newest.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// LastMessage returns the newest recorded message time.
func (m *DataQualityMonitor) LastMessage() time.Time { return time.Unix(0, m.newest.Load()) }

// Age returns how old the newest data is.
func (m *DataQualityMonitor) Age() time.Duration {
	return time.Duration(time.Now().UnixNano() - m.newest.Load())
}

// IsStale reports whether the newest data is StaleThreshold or more old.
func (m *DataQualityMonitor) IsStale() bool { return m.Age() >= m.threshold }

// AlertManager turns a stale/fresh signal into edge-triggered alerts:
// OnStaleData callbacks run when the signal goes from fresh to stale,
// OnRecovered callbacks when it goes back, never twice in a row for the
// same edge. It starts fresh.
//
// Callbacks run outside the manager's lock, one at a time, in edge order;
// a callback may call CheckStaleData. Safe for concurrent use.
type AlertManager struct {
	mu        sync.Mutex
	stale     bool
	alerts    uint64
	onStale   []func()
	onRecover []func()
	d         dispatcher
}

// NewAlertManager returns an AlertManager in the fresh state.
func NewAlertManager() *AlertManager { return &AlertManager{} }

// OnStaleData registers f to be called when data becomes stale.
func (a *AlertManager) OnStaleData(f func()) {
	if f == nil {
		return
	}
	a.mu.Lock()
	a.onStale = append(a.onStale, f)
	a.mu.Unlock()
}

// OnRecovered registers f to be called when stale data becomes fresh again.
func (a *AlertManager) OnRecovered(f func()) {
	if f == nil {
		return
	}
	a.mu.Lock()
	a.onRecover = append(a.onRecover, f)
	a.mu.Unlock()
}

// CheckStaleData feeds the current signal (typically
// DataQualityMonitor.IsStale()) and fires callbacks on an edge.
func (a *AlertManager) CheckStaleData(stale bool) {
	a.mu.Lock()
	if stale == a.stale {
		a.mu.Unlock()
		return
	}
	a.stale = stale
	fs := a.onRecover
	if stale {
		a.alerts++
		fs = a.onStale
	}
	var mustRun bool
	if len(fs) > 0 {
		mustRun = a.d.enqueue(func() {
			for _, f := range fs {
				f()
			}
		})
	}
	a.mu.Unlock()
	if mustRun {
		a.d.run()
	}
}

// Stale reports whether the last signal was stale (an alert is active).
func (a *AlertManager) Stale() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stale
}

// Alerts returns how many stale edges have been seen.
func (a *AlertManager) Alerts() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.alerts
}
