package resilience

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestDataQualityMonitor(t *testing.T) {
	if _, err := NewDataQualityMonitor(DataQualityConfig{StaleThreshold: -1}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "DataQualityConfig.StaleThreshold") {
		t.Fatalf("err = %v", err)
	}
	if m, _ := NewDataQualityMonitor(DataQualityConfig{}); m.StaleThreshold() != DefaultStaleThreshold {
		t.Fatalf("default threshold %s", m.StaleThreshold())
	}
	synctest.Test(t, func(t *testing.T) {
		m, _ := NewDataQualityMonitor(DataQualityConfig{StaleThreshold: 10 * time.Second})
		if m.IsStale() {
			t.Fatal("stale at creation")
		}
		time.Sleep(10*time.Second - 1)
		if m.IsStale() {
			t.Fatal("stale 1ns before the threshold")
		}
		time.Sleep(1)
		if !m.IsStale() {
			t.Fatal("fresh at exactly the threshold without data")
		}
		m.RecordMessage(time.Now().Add(-2 * time.Second)) // data 2s old
		if m.IsStale() || m.Age() != 2*time.Second {
			t.Fatalf("stale %v age %s", m.IsStale(), m.Age())
		}
		m.RecordMessage(time.Now().Add(-time.Hour)) // older than newest: ignored
		if !m.LastMessage().Equal(time.Now().Add(-2 * time.Second)) {
			t.Fatalf("LastMessage moved back to %v", m.LastMessage())
		}
		time.Sleep(8 * time.Second)
		if !m.IsStale() {
			t.Fatal("fresh with 10s old data")
		}
	})
}

func TestAlertManagerEdges(t *testing.T) {
	tests := []struct {
		signals []bool
		want    string
	}{
		{signals: []bool{false, false}, want: ""},
		{signals: []bool{true}, want: "S"},
		{signals: []bool{true, true, true}, want: "S"},
		{signals: []bool{true, false}, want: "SR"},
		{signals: []bool{false, true, true, false, false, true}, want: "SRS"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.signals), func(t *testing.T) {
			a := NewAlertManager()
			var got strings.Builder
			a.OnStaleData(func() { got.WriteString("S") })
			a.OnRecovered(func() { got.WriteString("R") })
			a.OnStaleData(nil)
			for _, s := range tt.signals {
				a.CheckStaleData(s)
			}
			if got.String() != tt.want {
				t.Fatalf("got %q, want %q", got.String(), tt.want)
			}
			if a.Stale() != tt.signals[len(tt.signals)-1] {
				t.Fatalf("Stale() = %v", a.Stale())
			}
			if want := uint64(strings.Count(tt.want, "S")); a.Alerts() != want {
				t.Fatalf("Alerts = %d, want %d", a.Alerts(), want)
			}
		})
	}
}

func TestAlertManagerReentrantAndConcurrent(t *testing.T) {
	a := NewAlertManager()
	var mu sync.Mutex
	var got []string
	a.OnStaleData(func() {
		mu.Lock()
		got = append(got, "S")
		mu.Unlock()
		a.CheckStaleData(false) // re-entrant: must not deadlock
	})
	a.OnRecovered(func() {
		mu.Lock()
		got = append(got, "R")
		mu.Unlock()
	})
	a.CheckStaleData(true)
	if fmt.Sprint(got) != "[S R]" || a.Stale() {
		t.Fatalf("got %v, stale %v", got, a.Stale())
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 500 {
				a.CheckStaleData((i+j)%2 == 0)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("edge %d repeated: %v", i, got[i-3:i+1])
		}
	}
}
