package resilience

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestHeartbeatConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   HeartbeatConfig
		field string
		want  HeartbeatConfig
	}{
		{name: "zero value", want: HeartbeatConfig{Timeout: 30 * time.Second, PingInterval: 10 * time.Second}},
		{name: "short timeout derives ping", cfg: HeartbeatConfig{Timeout: 6 * time.Second},
			want: HeartbeatConfig{Timeout: 6 * time.Second, PingInterval: 2 * time.Second}},
		{name: "explicit", cfg: HeartbeatConfig{Timeout: time.Minute, PingInterval: 20 * time.Second},
			want: HeartbeatConfig{Timeout: time.Minute, PingInterval: 20 * time.Second}},
		{name: "negative timeout", cfg: HeartbeatConfig{Timeout: -1}, field: "Timeout"},
		{name: "negative ping", cfg: HeartbeatConfig{PingInterval: -1}, field: "PingInterval"},
		{name: "ping not shorter than timeout", cfg: HeartbeatConfig{Timeout: 10 * time.Second, PingInterval: 10 * time.Second}, field: "PingInterval"},
		{name: "seed's swapped table values", cfg: HeartbeatConfig{Timeout: 10 * time.Second, PingInterval: 30 * time.Second}, field: "PingInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewHeartbeatMonitor(tt.cfg)
			if tt.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "HeartbeatConfig."+tt.field) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Config() != tt.want || m.Timeout() != tt.want.Timeout || m.PingInterval() != tt.want.PingInterval {
				t.Fatalf("Config() = %+v, want %+v", m.Config(), tt.want)
			}
		})
	}
}

func TestHeartbeatIsAliveBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := NewHeartbeatMonitor(HeartbeatConfig{Timeout: 30 * time.Second})
		created := time.Now()
		if !m.IsAlive() || !m.LastHeartbeat().Equal(created) {
			t.Fatalf("new monitor: alive %v, last %v", m.IsAlive(), m.LastHeartbeat())
		}
		time.Sleep(30*time.Second - time.Nanosecond)
		if !m.IsAlive() {
			t.Fatal("dead 1ns before the timeout")
		}
		time.Sleep(time.Nanosecond)
		if m.IsAlive() {
			t.Fatal("alive at exactly the timeout")
		}
		m.RecordHeartbeat()
		if !m.IsAlive() || !m.LastHeartbeat().Equal(time.Now()) || m.SinceLastHeartbeat() != 0 {
			t.Fatalf("after RecordHeartbeat: alive %v, last %v, since %s", m.IsAlive(), m.LastHeartbeat(), m.SinceLastHeartbeat())
		}
		old := time.Now().Add(-time.Minute)
		m.RecordHeartbeatAt(old)
		if m.IsAlive() || !m.LastHeartbeat().Equal(old) {
			t.Fatalf("RecordHeartbeatAt(1m ago): alive %v, last %v", m.IsAlive(), m.LastHeartbeat())
		}
		m.Reset()
		if !m.IsAlive() {
			t.Fatal("Reset did not revive")
		}
	})
}

func TestHeartbeatStale(t *testing.T) {
	tests := []struct {
		name       string
		beats      []time.Duration // heartbeat offsets from start
		wantStale  time.Duration   // when Stale closes
		cancelAt   time.Duration   // cancel ctx at; 0 = never
		wantClosed bool
	}{
		{name: "silence", wantStale: 10 * time.Second, wantClosed: true},
		{name: "traffic postpones", beats: []time.Duration{3 * time.Second, 9 * time.Second}, wantStale: 19 * time.Second, wantClosed: true},
		{name: "steady traffic then silence", beats: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, wantStale: 22 * time.Second, wantClosed: true},
		{name: "cancel before stale", cancelAt: 5 * time.Second, wantClosed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := NewHeartbeatMonitor(HeartbeatConfig{Timeout: 10 * time.Second})
				start := time.Now()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				stale := m.Stale(ctx)
				for _, b := range tt.beats {
					if b < time.Second {
						b *= time.Second
					}
					time.Sleep(start.Add(b).Sub(time.Now()))
					m.RecordHeartbeat()
				}
				if tt.cancelAt > 0 {
					time.Sleep(tt.cancelAt)
					cancel()
					synctest.Wait() // the watcher must have exited: synctest.Test reports leaks as deadlock
					time.Sleep(time.Hour)
					select {
					case <-stale:
						t.Fatal("Stale closed after ctx was cancelled")
					default:
					}
					return
				}
				<-stale
				if got := time.Since(start); got != tt.wantStale {
					t.Fatalf("stale after %s, want %s", got, tt.wantStale)
				}
			})
		})
	}
}

// The watcher goroutine of every Stale call ends with its context, whether
// or not the channel closed: synctest.Test fails with a deadlock if a
// goroutine of the bubble is still blocked when the test function returns.
func TestHeartbeatStaleNoLeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := NewHeartbeatMonitor(HeartbeatConfig{Timeout: time.Second})
		var cancels []context.CancelFunc
		for range 100 {
			ctx, cancel := context.WithCancel(t.Context())
			cancels = append(cancels, cancel)
			m.Stale(ctx)
		}
		time.Sleep(500 * time.Millisecond)
		for _, c := range cancels {
			c()
		}
		synctest.Wait()
	})
}

func TestHeartbeatRecordNoAlloc(t *testing.T) {
	m, _ := NewHeartbeatMonitor(HeartbeatConfig{})
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { m.RecordHeartbeat(); m.RecordHeartbeatAt(now) }); n != 0 {
		t.Fatalf("RecordHeartbeat allocates %v per call", n)
	}
}

func TestHeartbeatConcurrent(t *testing.T) {
	m, _ := NewHeartbeatMonitor(HeartbeatConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stale := m.Stale(ctx)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				m.RecordHeartbeat()
				_ = m.IsAlive()
				_ = m.LastHeartbeat()
			}
		})
	}
	wg.Wait()
	select {
	case <-stale:
		t.Fatal("stale while receiving heartbeats")
	default:
	}
}
