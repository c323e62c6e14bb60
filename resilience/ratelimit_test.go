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

func TestRateLimitConfigValidation(t *testing.T) {
	tests := []struct {
		name      string
		cfg       RateLimitConfig
		field     string
		wantBurst int
	}{
		{name: "binance seed", cfg: RateLimitConfig{RequestsPerMinute: 1200, Burst: 100}, wantBurst: 100},
		{name: "default burst", cfg: RateLimitConfig{RequestsPerMinute: 1200}, wantBurst: 100},
		{name: "default burst bybit", cfg: RateLimitConfig{RequestsPerMinute: 120}, wantBurst: 10},
		{name: "default burst at least 1", cfg: RateLimitConfig{RequestsPerMinute: 5}, wantBurst: 1},
		{name: "zero rate", cfg: RateLimitConfig{}, field: "RequestsPerMinute"},
		{name: "negative rate", cfg: RateLimitConfig{RequestsPerMinute: -1}, field: "RequestsPerMinute"},
		{name: "negative burst", cfg: RateLimitConfig{RequestsPerMinute: 10, Burst: -1}, field: "Burst"},
		{name: "burst above rate", cfg: RateLimitConfig{RequestsPerMinute: 10, Burst: 11}, field: "Burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewRateLimitManager(tt.cfg)
			if tt.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "RateLimitConfig."+tt.field) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Config().Burst != tt.wantBurst {
				t.Fatalf("Burst = %d, want %d", m.Config().Burst, tt.wantBurst)
			}
		})
	}
}

func newLimiter(t *testing.T, rpm, burst int) *RateLimitManager {
	t.Helper()
	m, err := NewRateLimitManager(RateLimitConfig{RequestsPerMinute: rpm, Burst: burst})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// acquireAt acquires weight and returns the time it took.
func acquireAt(t *testing.T, m *RateLimitManager, weight int) time.Duration {
	t.Helper()
	start := time.Now()
	if err := m.AcquireN(t.Context(), weight); err != nil {
		t.Fatalf("AcquireN(%d): %v", weight, err)
	}
	return time.Since(start)
}

func TestRateLimitPacing(t *testing.T) {
	tests := []struct {
		name       string
		rpm, burst int
		weights    []int
		want       []time.Duration // wait of each acquire
	}{
		{name: "burst then one per second", rpm: 60, burst: 5,
			weights: []int{1, 1, 1, 1, 1, 1, 1},
			want:    []time.Duration{0, 0, 0, 0, 0, time.Second, time.Second}},
		{name: "weight above burst is chunked, no deadlock", rpm: 60, burst: 5,
			weights: []int{12},
			want:    []time.Duration{7 * time.Second}},
		{name: "weighted", rpm: 600, burst: 50,
			weights: []int{50, 10, 20},
			want:    []time.Duration{0, time.Second, 2 * time.Second}},
		{name: "minute window full waits for the next minute", rpm: 10, burst: 10,
			weights: []int{10, 1},
			want:    []time.Duration{0, time.Minute}},
		{name: "weight above the whole minute passes in an empty window", rpm: 10, burst: 5,
			weights: []int{25, 1},
			want:    []time.Duration{2 * time.Minute, time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newLimiter(t, tt.rpm, tt.burst)
				for i, w := range tt.weights {
					if got := acquireAt(t, m, w); got != tt.want[i] {
						t.Fatalf("acquire %d (weight %d) waited %s, want %s", i, w, got, tt.want[i])
					}
				}
			})
		})
	}
}

func TestRateLimitPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newLimiter(t, 1200, 100)
		start := time.Now()
		m.Pause(start.Add(30 * time.Second))
		m.Pause(start.Add(10 * time.Second)) // never shortens
		if !m.PausedUntil().Equal(start.Add(30 * time.Second)) {
			t.Fatalf("PausedUntil = %v", m.PausedUntil())
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if got := acquireAt(t, m, 1); got != 30*time.Second {
					t.Errorf("acquire during pause waited %s, want 30s", got)
				}
			})
		}
		time.Sleep(20 * time.Second)
		m.Pause(time.Now().Add(10 * time.Second)) // 30s: same end
		wg.Wait()
		if got := acquireAt(t, m, 1); got != 0 {
			t.Fatalf("after the pause: waited %s", got)
		}
	})
}

func TestRateLimitPauseWhileWaitingForTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newLimiter(t, 60, 1)
		acquireAt(t, m, 1) // empty the bucket
		done := make(chan time.Duration)
		go func() { done <- acquireAt(t, m, 1) }() // token in 1s
		time.Sleep(500 * time.Millisecond)
		m.Pause(time.Now().Add(10 * time.Second))
		if got := <-done; got != 10500*time.Millisecond {
			t.Fatalf("waited %s, want 10.5s (pause begun while waiting)", got)
		}
	})
}

func TestRateLimitUsedWeight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The synctest clock starts at a minute boundary.
		m := newLimiter(t, 1200, 100)
		acquireAt(t, m, 10)
		if m.UsedWeight() != 10 {
			t.Fatalf("UsedWeight = %d, want 10", m.UsedWeight())
		}
		m.UpdateUsedWeight(5, time.Now()) // lower than local: local view wins
		if m.UsedWeight() != 10 {
			t.Fatalf("UsedWeight = %d after a lower report", m.UsedWeight())
		}
		// The exchange counts 150 (another client on our IP): 140 more,
		// of which a bucket's depth (100) is taken from the 90 tokens left:
		// 10 in debt, so the next request waits for 11 tokens at 20/s.
		m.UpdateUsedWeight(150, time.Now())
		if m.UsedWeight() != 150 {
			t.Fatalf("UsedWeight = %d, want 150", m.UsedWeight())
		}
		if got := acquireAt(t, m, 1); got != 550*time.Millisecond {
			t.Fatalf("waited %s, want 0.55s", got)
		}
		// A report for the previous minute is ignored.
		time.Sleep(time.Minute)
		m.UpdateUsedWeight(1200, time.Now().Add(-time.Minute))
		if m.UsedWeight() != 0 || !m.PausedUntil().IsZero() {
			t.Fatalf("stale report applied: used %d, paused until %v", m.UsedWeight(), m.PausedUntil())
		}
		// The exchange says the minute is used up: pause until it rolls.
		time.Sleep(30 * time.Second)
		m.UpdateUsedWeight(1200, time.Now())
		next := time.Now().Truncate(time.Minute).Add(time.Minute)
		if !m.PausedUntil().Equal(next) {
			t.Fatalf("PausedUntil = %v, want %v", m.PausedUntil(), next)
		}
		want := time.Until(next) // 29.45s
		if got := acquireAt(t, m, 1); got != want {
			t.Fatalf("waited %s, want %s (until the next minute)", got, want)
		}
		if m.UsedWeight() != 1 {
			t.Fatalf("new minute UsedWeight = %d, want 1", m.UsedWeight())
		}
	})
}

func TestRateLimitCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newLimiter(t, 60, 1)
		acquireAt(t, m, 1)

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.AcquireN(ctx, 1) }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}

		dctx, dcancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer dcancel()
		if err := m.AcquireN(dctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}

		m.Pause(time.Now().Add(time.Hour))
		pctx, pcancel := context.WithTimeout(t.Context(), time.Second)
		defer pcancel()
		if err := m.Acquire(pctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err during pause = %v, want DeadlineExceeded", err)
		}
		if err := m.AcquireN(t.Context(), 0); err != nil {
			t.Fatalf("weight 0: %v", err)
		}
	})
}

func TestRateLimitConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newLimiter(t, 600, 10) // 10/s
		start := time.Now()
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				for range 10 {
					if err := m.Acquire(t.Context()); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		// 50 tokens: 10 at once, 40 more at 10/s.
		if got := time.Since(start); got != 4*time.Second {
			t.Fatalf("50 acquires took %s, want 4s", got)
		}
		if m.UsedWeight() != 50 {
			t.Fatalf("UsedWeight = %d", m.UsedWeight())
		}
	})
}

func TestExchangeDefaults(t *testing.T) {
	tests := []struct {
		name string
		want ExchangeLimits
		ok   bool
	}{
		{"binance", ExchangeLimits{1200, 5}, true},
		{"Binance", ExchangeLimits{1200, 5}, true},
		{"bybit", ExchangeLimits{120, 20}, true},
		{"bybit-linear", ExchangeLimits{120, 20}, true},
		{"kraken", ExchangeLimits{}, false},
		{"", ExchangeLimits{}, false},
	}
	for _, tt := range tests {
		got, ok := ExchangeDefaults(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ExchangeDefaults(%q) = %+v, %v", tt.name, got, ok)
		}
	}
	table := ExchangeLimitTable{"binance": {RequestsPerMinute: 6000, WSConnectionsPerIP: 5}, "kraken": {RequestsPerMinute: 60}}
	if l, _ := table.Lookup("BINANCE"); l.RequestsPerMinute != 6000 {
		t.Errorf("override not used: %+v", l)
	}
	if l, ok := table.Lookup("bybit"); !ok || l.RequestsPerMinute != 120 {
		t.Errorf("fallback to defaults: %+v %v", l, ok)
	}
	if l, ok := table.Lookup("kraken"); !ok || l.RequestsPerMinute != 60 {
		t.Errorf("added entry: %+v %v", l, ok)
	}
	var none ExchangeLimitTable
	if _, ok := none.Lookup("binance"); !ok {
		t.Error("nil table must fall back to defaults")
	}
	if c := (ExchangeLimits{RequestsPerMinute: 1200}).RateLimitConfig(); c != (RateLimitConfig{RequestsPerMinute: 1200}) {
		t.Errorf("RateLimitConfig = %+v", c)
	}
}
