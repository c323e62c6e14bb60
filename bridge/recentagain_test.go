package bridge_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/exsim"
)

// holdRecent is an http.RoundTripper that, once armed, lets the next
// recent-trades request reach the venue (the answer is taken then) and
// holds its answer until released: a slow REST answer.
type holdRecent struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when the held answer was taken at the venue
	release chan struct{} // closed by the test to deliver it
}

func newHoldRecent() *holdRecent {
	return &holdRecent{held: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdRecent) arm() {
	h.mu.Lock()
	h.armed = true
	h.mu.Unlock()
}

func (h *holdRecent) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	hold := h.armed && strings.HasSuffix(r.URL.Path, "/recent-trade")
	if hold {
		h.armed = false
	}
	h.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if !hold || err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	close(h.held)
	select {
	case <-h.release:
		return resp, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// TestBybitReconnectDuringRecentRepair is issue 15/20's silent trade loss:
// a connection opens while the previous connection's recent-trades repair
// waits for its REST answer, which the venue took before the new
// connection's feed began. The trades the venue sent in between (here to
// a muted connection) are in neither; the new connection used to get no
// repair of its own (one was running), and they vanished without a count.
// The running repair must fetch again once the new connection is
// subscribed: every trade arrives exactly once, in order.
func TestBybitReconnectDuringRecentRepair(t *testing.T) {
	t.Parallel()
	sim := startSim(t, exsim.Config{Markets: []exsim.MarketConfig{market(exsim.BybitSpot, "BTCUSDT", 0, 0)}})
	hold := newHoldRecent()
	t.Cleanup(func() {
		select {
		case <-hold.release:
		default:
			close(hold.release)
		}
	})
	ex := newBybit(bybit.MarketSpot)(t, sim, &http.Client{Transport: hold})
	col := newCollector()
	s, err := bridge.NewStream(testStreamConfig(ex, bridge.ChannelTrade, "BTCUSDT"), col, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	subscribed := func(not map[uint64]bool) uint64 {
		t.Helper()
		var id uint64
		eventually(t, 10*time.Second, "a new connection subscribed", func() bool {
			for _, c := range sim.Conns() {
				if c.Open && len(c.Subscriptions) > 0 && !not[c.ID] {
					id = c.ID
					return true
				}
			}
			return false
		})
		return id
	}
	generate := func(n int) {
		t.Helper()
		if err := sim.Generate(exsim.BybitSpot, "BTCUSDT", n, 0); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]bool{}
	first := subscribed(seen)
	seen[first] = true
	generate(3)
	eventually(t, 10*time.Second, "the first trades", func() bool { return len(col.tradesOf("bybit", "BTCUSDT")) == 3 })

	// The reconnect's repair takes its answer and waits for it.
	hold.arm()
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Conn: first}); err != nil {
		t.Fatal(err)
	}
	second := subscribed(seen)
	seen[second] = true
	<-hold.held

	// Trades the venue sends only now, to a connection that loses them.
	mute, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultMute, Conn: second})
	if err != nil {
		t.Fatal(err)
	}
	generate(5)
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Conn: second}); err != nil {
		t.Fatal(err)
	}
	if err := sim.ClearFault(mute); err != nil {
		t.Fatal(err)
	}
	subscribed(seen)
	generate(2) // live on the third connection, buffered by the repair
	close(hold.release)

	gen := quiesce(t, sim, col, "bybit", exsim.BybitSpot, "BTCUSDT")
	ords := tradeOrdinals(t, sim, exsim.BybitSpot, "BTCUSDT", col.tradesOf("bybit", "BTCUSDT"))
	assertTradesExactlyOnce(t, ords, gen.Last)
	if st := s.Stats(); st.Backfilled < 5 || st.Missing != 0 {
		t.Fatalf("backfilled %d, missing %d: want at least 5 and 0", st.Backfilled, st.Missing)
	}
}
