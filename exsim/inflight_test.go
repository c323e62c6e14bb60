package exsim

import (
	"encoding/json"
	"testing"
)

// TestWrittenButResetAtCloseIsInFlight is the ground truth of issue 15: a
// client whose reader is behind (it has not read what the simulator
// wrote) when the simulator closes the connection abruptly, and which
// then writes (its ping), makes the simulator's kernel reset the
// connection and discard what was still in its send buffer. Those trades
// count as written to the connection, yet the client can never read them:
// a soak called such a trade "written to a live replica and lost by the
// bridge". The truth must mark them in flight at the close, and every
// trade written and not in flight must reach the client.
func TestWrittenButResetAtCloseIsInFlight(t *testing.T) {
	s := startServer(t, Config{Seed: 15, Markets: []MarketConfig{{Venue: BybitSpot, Symbol: "BTCUSDT"}}})
	ws := dial(t, s.BybitWSURL()+"/v5/public/spot")
	send(t, ws, `{"op":"subscribe","args":["publicTrade.BTCUSDT"]}`)
	readObj(t, ws) // the ack
	ids := connIDs(s, BybitSpot)
	if len(ids) != 1 {
		t.Fatalf("connections %v", ids)
	}
	conn := ids[0]
	// Far more than the socket buffers hold while the client does not read.
	if err := s.Generate(BybitSpot, "BTCUSDT", 20000, 0); err != nil {
		t.Fatal(err)
	}
	written := func() int64 {
		tr, err := s.Truth(BybitSpot, "BTCUSDT")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, r := range tr.Get(SeriesTrade).PerConn[conn] {
			n += r.Len()
		}
		return n
	}
	waitFor(t, "1000 trades written", func() bool { return written() >= 1000 })
	inject(t, s, Fault{Kind: FaultClose, Conn: conn})
	// The client's keep-alive after the close: the kernel answers with a
	// reset (the write that sees it fails).
	for range 1000 {
		if err := ws.WriteMessage(1, []byte(`{"op":"ping"}`)); err != nil {
			break
		}
	}
	got := map[int64]bool{}
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
			ord, ok := s.BybitTradeOrdinal(BybitSpot, "BTCUSDT", d.I)
			if !ok {
				t.Fatalf("unknown trade id %q", d.I)
			}
			got[ord] = true
		}
	}
	waitFor(t, "the connection's writer finished", func() bool {
		s.mu.Lock()
		r := s.recs[conn]
		s.mu.Unlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.ended
	})
	tr, err := s.Truth(BybitSpot, "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	st := tr.Get(SeriesTrade)
	inFlight := st.InFlight[conn]
	var lost, flying, notReceivedInFlight int64
	for _, r := range st.PerConn[conn] {
		for id := r.First; id <= r.Last; id++ {
			in := rangesHave(inFlight, id)
			if in {
				flying++
			}
			switch {
			case got[id]:
			case in:
				notReceivedInFlight++
			default:
				lost++
			}
		}
	}
	t.Logf("written %d, received %d, in flight at the close %d (%d of them not received)", written(), len(got), flying, notReceivedInFlight)
	if notReceivedInFlight == 0 && lost == 0 {
		t.Fatalf("the client received everything written: the reset discarded nothing (test setup)")
	}
	if lost > 0 {
		t.Fatalf("%d trades recorded as written, not in flight at the close, and never received by the client", lost)
	}
}

func rangesHave(rs []Range, id int64) bool {
	for _, r := range rs {
		if r.Contains(id) {
			return true
		}
	}
	return false
}
