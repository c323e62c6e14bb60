package chaos

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/exsim"
)

// TestProxyDeliversWhatTheSimulatorWroteBeforeItClosed is issue 15's
// harness loss: a bridge whose reader is behind when the simulator closes
// its connection, and which then writes (its ping), through the replica's
// proxy. The proxy has already read (and acknowledged) what the simulator
// wrote; its forwarding of the ping to the closed simulator fails, and the
// proxy used to close the bridge's side at once, discarding what it had
// not passed on yet. The simulator counts those trades as written to a
// live replica's connection (they were not in flight at the close: the
// proxy had them), the bridge never saw them: the soak's reconciliation
// reported them lost by the bridge. Every trade written and not in flight
// at the close must reach the client through the proxy.
func TestProxyDeliversWhatTheSimulatorWroteBeforeItClosed(t *testing.T) {
	sim, err := exsim.New(exsim.Config{Markets: []exsim.MarketConfig{{Venue: exsim.BybitSpot, Symbol: "BTCUSDT"}},
		Seed: 15, ClosedConns: -1, InboundLimit: -1}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	p, err := newProxy(sim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	p.setOwner(func() string { return "T#1" })
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+p.Addr()+"/v5/public/spot", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","args":["publicTrade.BTCUSDT"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil { // the ack
		t.Fatal(err)
	}
	var conn uint64
	waitFor(t, 10*time.Second, "the connection subscribed", func() bool {
		for _, c := range sim.Conns() {
			if c.Open && len(c.Subscriptions) > 0 {
				conn = c.ID
				return true
			}
		}
		return false
	})
	written := func() (n int64) {
		tr, err := sim.Truth(exsim.BybitSpot, "BTCUSDT")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range tr.Get(exsim.SeriesTrade).PerConn[conn] {
			n += r.Len()
		}
		return n
	}
	// More than the client's socket buffers hold while it does not read,
	// not more than the proxy's side absorbs: the simulator's kernel has
	// passed everything on when it closes.
	const trades = 3000
	if err := sim.Generate(exsim.BybitSpot, "BTCUSDT", trades, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "every trade written", func() bool { return written() == trades })
	if _, err := sim.InjectFault(exsim.Fault{Kind: exsim.FaultClose, Conn: conn}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the connection closed", func() bool {
		for _, c := range sim.Conns() {
			if c.ID == conn {
				return !c.Open
			}
		}
		return false
	})
	// The client's keep-alives after the close, as a bridge's pinger sends
	// them while its reader is busy.
	for range 200 {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)); err != nil {
			break
		}
		time.Sleep(time.Millisecond) // pacing the pings, not synchronization
	}
	got := map[int64]bool{}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			break
		}
		var f struct {
			Topic string `json:"topic"`
			Data  []struct {
				I string `json:"i"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &f) != nil || f.Topic != "publicTrade.BTCUSDT" {
			continue
		}
		for _, d := range f.Data {
			ord, ok := sim.BybitTradeOrdinal(exsim.BybitSpot, "BTCUSDT", d.I)
			if !ok {
				t.Fatalf("unknown trade id %q", d.I)
			}
			got[ord] = true
		}
	}
	tr, err := sim.Truth(exsim.BybitSpot, "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	st := tr.Get(exsim.SeriesTrade)
	var lost, flying int64
	for _, r := range st.PerConn[conn] {
		for id := r.First; id <= r.Last; id++ {
			switch {
			case got[id]:
			case rangesContain(st.InFlight[conn], id):
				flying++
			default:
				lost++
			}
		}
	}
	t.Logf("written %d, received %d, not received and in flight at the close %d, lost %d", written(), len(got), flying, lost)
	if lost > 0 {
		t.Fatalf("%d trades written to the connection (not in flight at the close) never reached the client through the proxy", lost)
	}
}
