package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/bridge/okx"
)

// TestIPShareOKXBudget: the OKX REST limiter of a replica with
// IPShare 4 admits a quarter of what an unshared one admits in one
// minute (fake time: testing/synctest, the limiter's own clock).
func TestIPShareOKXBudget(t *testing.T) {
	admitted := func(share int) int {
		n := 0
		synctest.Test(t, func(t *testing.T) {
			set := newAdapterSet(Venues{IPShare: share}, nil)
			set.mu.Lock()
			l, err := set.limiter("okx")
			set.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for l.AcquireN(ctx, 1) == nil {
				n++
			}
		})
		return n
	}
	one, four := admitted(1), admitted(4)
	t.Logf("requests admitted in a minute: share 1 %d, share 4 %d", one, four)
	// The limiter admits its per-minute budget plus at most one burst in a
	// minute; a shared one, a quarter of both.
	if one < okx.RequestsPerMinute-okx.RequestBurst || one > okx.RequestsPerMinute+okx.RequestBurst {
		t.Fatalf("share 1: %d admitted, want %d±%d", one, okx.RequestsPerMinute, okx.RequestBurst)
	}
	if want := okx.RequestsPerMinute / 4; four < want-okx.RequestBurst/4 || four > want+okx.RequestBurst/4 {
		t.Fatalf("share 4: %d admitted, want %d±%d (a quarter of the unshared %d)", four, want, okx.RequestBurst/4, one)
	}
}

// TestIPShareConnectLimits: the connect gate and the connection cap of a
// replica with IPShare 3 get a third of each venue's per-IP connection
// limits (at least 1); IPShare 0 or 1 leaves them.
func TestIPShareConnectLimits(t *testing.T) {
	bn, err := binance.New(binance.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	by, err := bybit.New(bybit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ox, err := okx.New(okx.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, share := range []int{0, 1, 3} {
		v := Venues{IPShare: share}
		div := max(share, 1)
		for _, ex := range []bridge.Exchange{bn, by, ox} {
			full, got := ex.Limits(), v.shareLimits(ex.Limits())
			wantConnects, wantConns := full.ConnectsPerWindow, full.MaxConnectionsPerIP
			if div > 1 {
				wantConnects = max(full.ConnectsPerWindow/div, 1)
				if full.MaxConnectionsPerIP > 0 {
					wantConns = max(full.MaxConnectionsPerIP/div, 1)
				}
			}
			if full.ConnectsPerWindow == 0 || got.ConnectsPerWindow != wantConnects || got.MaxConnectionsPerIP != wantConns {
				t.Errorf("%s share %d: connects %d (want %d of %d), connections %d (want %d of %d)", ex.Name(), share,
					got.ConnectsPerWindow, wantConnects, full.ConnectsPerWindow, got.MaxConnectionsPerIP, wantConns, full.MaxConnectionsPerIP)
			}
			if _, err := v.connectGate(ex, 0); err != nil {
				t.Fatalf("%s share %d: gate: %v", ex.Name(), share, err)
			}
		}
	}
}
