package resilience

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestReconnectConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   ReconnectConfig
		field string // "" = valid
		want  ReconnectConfig
	}{
		{name: "zero value takes defaults, infinite attempts", cfg: ReconnectConfig{},
			want: ReconnectConfig{MaxAttempts: 0, InitialDelay: time.Second, MaxDelay: time.Minute, BackoffFactor: 2}},
		{name: "defaults", cfg: DefaultReconnectConfig(), want: DefaultReconnectConfig()},
		{name: "factor exactly 1", cfg: ReconnectConfig{BackoffFactor: 1},
			want: ReconnectConfig{InitialDelay: time.Second, MaxDelay: time.Minute, BackoffFactor: 1}},
		{name: "negative attempts", cfg: ReconnectConfig{MaxAttempts: -1}, field: "MaxAttempts"},
		{name: "negative initial", cfg: ReconnectConfig{InitialDelay: -time.Second}, field: "InitialDelay"},
		{name: "negative max", cfg: ReconnectConfig{MaxDelay: -1}, field: "MaxDelay"},
		{name: "factor below 1", cfg: ReconnectConfig{BackoffFactor: 0.5}, field: "BackoffFactor"},
		{name: "negative factor", cfg: ReconnectConfig{BackoffFactor: -2}, field: "BackoffFactor"},
		{name: "NaN factor", cfg: ReconnectConfig{BackoffFactor: math.NaN()}, field: "BackoffFactor"},
		{name: "infinite factor", cfg: ReconnectConfig{BackoffFactor: math.Inf(1)}, field: "BackoffFactor"},
		{name: "initial above max", cfg: ReconnectConfig{InitialDelay: 2 * time.Minute}, field: "InitialDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewReconnectionManager(tt.cfg)
			if tt.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "ReconnectConfig."+tt.field) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Config(); got != tt.want {
				t.Fatalf("Config() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReconnectMaxAttempts(t *testing.T) {
	tests := []struct {
		max      int
		failures int
		want     bool
	}{
		{max: 10, failures: 0, want: true},
		{max: 10, failures: 9, want: true},
		{max: 10, failures: 10, want: false},
		{max: 10, failures: 11, want: false},
		{max: 1, failures: 1, want: false},
		{max: 0, failures: 1_000_000, want: true}, // infinite
	}
	for _, tt := range tests {
		m, err := NewReconnectionManager(ReconnectConfig{MaxAttempts: tt.max})
		if err != nil {
			t.Fatal(err)
		}
		for range tt.failures {
			m.RecordFailure()
		}
		if got := m.ShouldReconnect(); got != tt.want {
			t.Errorf("max %d after %d failures: ShouldReconnect = %v, want %v", tt.max, tt.failures, got, tt.want)
		}
		if m.Attempts() != tt.failures {
			t.Errorf("Attempts = %d, want %d", m.Attempts(), tt.failures)
		}
		m.RecordSuccess()
		if !m.ShouldReconnect() || m.Attempts() != 0 {
			t.Errorf("after RecordSuccess: ShouldReconnect %v, Attempts %d", m.ShouldReconnect(), m.Attempts())
		}
	}
}

func TestReconnectCeiling(t *testing.T) {
	m, err := NewReconnectionManager(DefaultReconnectConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{1, 1, 2, 4, 8, 16, 32, 60, 60, 60} // seconds, for attempts 0..9
	for n, w := range want {
		if got := m.ceiling(n); got != w*time.Second {
			t.Errorf("ceiling(%d) = %s, want %s", n, got, w*time.Second)
		}
	}
	for _, n := range []int{64, 1023, 1024, 1 << 20, math.MaxInt} {
		if got := m.ceiling(n); got != time.Minute {
			t.Errorf("ceiling(%d) = %s, want the 60s cap", n, got)
		}
	}
	// Factor 1: constant delay.
	m1, _ := NewReconnectionManager(ReconnectConfig{BackoffFactor: 1, InitialDelay: 3 * time.Second})
	if got := m1.ceiling(math.MaxInt); got != 3*time.Second {
		t.Errorf("factor 1 ceiling = %s", got)
	}
	// Cap at the largest Duration: no overflow in the +1 of the jitter range.
	mx, _ := NewReconnectionManager(ReconnectConfig{MaxDelay: math.MaxInt64, BackoffFactor: 10})
	mx.attempts = math.MaxInt
	if got := mx.Ceiling(); got != math.MaxInt64 {
		t.Errorf("ceiling = %d", got)
	}
	if d := mx.Delay(); d < 0 {
		t.Errorf("Delay = %d, want >= 0", d)
	}
}

func TestReconnectAttemptCounterSaturates(t *testing.T) {
	m, _ := NewReconnectionManager(ReconnectConfig{})
	m.attempts = math.MaxInt - 1
	m.RecordFailure()
	m.RecordFailure()
	if m.Attempts() != math.MaxInt {
		t.Fatalf("Attempts = %d, want MaxInt (saturated)", m.Attempts())
	}
	if !m.ShouldReconnect() {
		t.Fatal("infinite attempts must keep reconnecting")
	}
	if d := m.Delay(); d < 0 || d > time.Minute {
		t.Fatalf("Delay = %s, want within [0, 60s]", d)
	}
}

func TestReconnectDelayFullJitter(t *testing.T) {
	m, _ := NewReconnectionManager(DefaultReconnectConfig())
	// Deterministic source: the extremes of the range.
	m.int64n = func(n int64) int64 { return n - 1 }
	m.RecordFailure()
	m.RecordFailure()
	m.RecordFailure() // ceiling 4s
	if got := m.Delay(); got != 4*time.Second {
		t.Errorf("max jitter Delay = %s, want 4s (inclusive upper bound)", got)
	}
	m.int64n = func(int64) int64 { return 0 }
	if got := m.Delay(); got != 0 {
		t.Errorf("min jitter Delay = %s, want 0", got)
	}
	if m.Attempts() != 3 {
		t.Errorf("Delay changed the attempt count to %d", m.Attempts())
	}

	// Real source: always within [0, ceiling], and actually spread out.
	r, _ := NewReconnectionManager(DefaultReconnectConfig())
	for range 5 {
		r.RecordFailure()
	} // ceiling 16s
	var lo, hi bool
	for range 1000 {
		d := r.Delay()
		if d < 0 || d > 16*time.Second {
			t.Fatalf("Delay = %s outside [0, 16s]", d)
		}
		lo = lo || d < 4*time.Second
		hi = hi || d > 12*time.Second
	}
	if !lo || !hi {
		t.Errorf("1000 delays not spread over the range (low seen %v, high seen %v)", lo, hi)
	}
}

func TestReconnectWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := NewReconnectionManager(DefaultReconnectConfig())
		m.int64n = func(n int64) int64 { return n - 1 } // delay == ceiling
		m.RecordFailure()
		m.RecordFailure() // 2s
		start := time.Now()
		if err := m.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Fatalf("Wait slept %s, want 2s", got)
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.Wait(ctx) }()
		time.Sleep(time.Second)
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait = %v, want context.Canceled", err)
			}
		default:
			t.Fatal("Wait did not return on cancel")
		}
		if err := m.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait on a done ctx = %v", err)
		}
	})
}

func TestReconnectConcurrent(t *testing.T) {
	m, _ := NewReconnectionManager(ReconnectConfig{})
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				m.RecordFailure()
				_ = m.Delay()
				_ = m.ShouldReconnect()
			}
		}()
	}
	for range 4 {
		<-done
	}
	if m.Attempts() != 4000 {
		t.Fatalf("Attempts = %d, want 4000", m.Attempts())
	}
}
