package bridge

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestSharedConnectGate: two streams of one venue sharing a ConnectGate
// (as internal/node wires them) draw from one connect budget, which is
// what the venue's per-IP limit is; with a gate each, they would make
// twice the attempts.
func TestSharedConnectGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 connects per minute, burst 1: one attempt every 6 s.
		g, err := NewConnectGate(Limits{ConnectsPerWindow: 10, ConnectWindow: time.Minute}, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var at []time.Duration
		for range 2 { // two streams, two attempts each
			wg.Go(func() {
				for range 2 {
					if err := g.wait(context.Background()); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					at = append(at, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(at) != 4 {
			t.Fatalf("%d attempts, want 4", len(at))
		}
		// Fake time: the fourth attempt waits for three refills of 6 s.
		if last := at[3]; last < 17*time.Second {
			t.Fatalf("4 attempts through one gate took %s of fake time, want >= 18s (one budget)", last)
		}
	})
}

func TestNewConnectGateDefaults(t *testing.T) {
	g, err := NewConnectGate(Limits{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.spacing != DefaultConnectSpacing || g.rl != nil {
		t.Fatalf("spacing %s bucket %v, want the default spacing and no bucket", g.spacing, g.rl != nil)
	}
}
