package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/bridge/okx"
	"github.com/qldata/mdbridge/resilience"
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
// limits (at least 1); IPShare 0 or 1 leaves them. What the gate then
// admits is measured by TestIPShareConnectAdmission.
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

// TestIPShareConnectAdmission: the connect gate a replica builds
// (Venues.connectGate) admits a quarter of the connection attempts per
// window with IPShare 4 of what it admits with IPShare 1, measured through
// the real gate: a Binance stream of 40 one-symbol connections, each
// failing its handshake at once (HTTP 503 from a server outside the
// bubble, which counts the attempts) and retrying after 10 ms, runs for
// one fake minute (testing/synctest). Binance allows 300 attempts per
// 5 min per IP: the gate's bucket is 60 a minute with a burst of 30,
// 15 a minute with a burst of 7 at IPShare 4.
func TestIPShareConnectAdmission(t *testing.T) {
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		// Closed at once: an idle keep-alive connection would leave a
		// reader goroutine in the bubble that is never durably blocked.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	syms := make([]string, 40)
	for i := range syms {
		syms[i] = fmt.Sprintf("S%dUSDT", i)
	}
	admitted := func(share int) int64 {
		attempts.Store(0)
		synctest.Test(t, func(t *testing.T) {
			ex, err := binance.New(binance.Config{WSURL: "ws" + strings.TrimPrefix(srv.URL, "http"), RESTURL: srv.URL}, nil)
			if err != nil {
				t.Fatal(err)
			}
			gate, err := Venues{IPShare: share}.connectGate(ex, 0)
			if err != nil {
				t.Fatal(err)
			}
			res := resilience.DefaultResilienceConfig()
			res.ReconnectDelay, res.ReconnectDelayMax, res.MaxReconnectAttempts = 10*time.Millisecond, 10*time.Millisecond, 0
			res.TimeSyncEnabled = false
			st, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: syms, Channels: bridge.ChannelTrade, Resilience: &res,
				ConnectGate: gate, MaxTopicsPerConn: 1, MaxConnections: -1},
				bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil }), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = st.Run(ctx)
			_ = st.Close()
		})
		return attempts.Load()
	}
	one, four := admitted(1), admitted(4)
	t.Logf("connection attempts admitted in a minute: share 1 %d, share 4 %d", one, four)
	if one < 60 || one > 60+30+1 {
		t.Fatalf("share 1: %d attempts, want 60 a minute plus at most the burst of 30", one)
	}
	if four < 15 || four > 15+7+1 {
		t.Fatalf("share 4: %d attempts, want 15 a minute plus at most the burst of 7 (a quarter of the unshared %d)", four, one)
	}
}
