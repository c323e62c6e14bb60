package exsim

import (
	"encoding/json"
	"testing"

	"github.com/gorilla/websocket"
)

// fakeConn is a connection without a socket: replies stay in its queue.
func fakeConn(s *Server, v Venue) *conn {
	return &conn{
		id: 1, srv: s, venue: v, connID: "test",
		q: make(chan outFrame, 4096), ctrl: make(chan ctrlMsg, 4), done: make(chan struct{}),
		applied: map[uint64]bool{},
		rec:     &connRecord{ID: 1, Venue: v, delivered: map[*series]*rangeSet{}},
	}
}

func drain(c *conn) [][]byte {
	var out [][]byte
	for {
		select {
		case f := <-c.q:
			out = append(out, f.b)
		default:
			return out
		}
	}
}

var controlSeeds = []string{
	`{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}`,
	`{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":"x"}`,
	`{"method":"LIST_SUBSCRIPTIONS","id":3}`,
	`{"method":"SET_PROPERTY","params":["combined",true],"id":4}`,
	`{"method":"GET_PROPERTY","params":["combined"],"id":5}`,
	`{"req_id":"1","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.50.BTCUSDT"]}`,
	`{"op":"unsubscribe","args":["orderbook.50.BTCUSDT"]}`,
	`{"op":"ping"}`, `{`, `[]`, `null`, `"x"`, `{"id":1e99}`,
}

// FuzzBinanceControl: every client text frame gets exactly one reply, and
// it is valid JSON.
func FuzzBinanceControl(f *testing.F) {
	for _, s := range controlSeeds {
		f.Add([]byte(s))
	}
	s, err := New(Config{Markets: idleMarkets()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	c := fakeConn(s, Binance)
	f.Fuzz(func(t *testing.T, data []byte) {
		s.binanceRead(c, websocket.TextMessage, data)
		out := drain(c)
		if len(out) != 1 {
			t.Fatalf("%q: %d replies", data, len(out))
		}
		if !json.Valid(out[0]) {
			t.Fatalf("%q: invalid reply %s", data, out[0])
		}
	})
}

// FuzzBybitControl: every client frame gets a valid JSON reply first
// (subscriptions may add snapshots after it).
func FuzzBybitControl(f *testing.F) {
	for _, s := range controlSeeds {
		f.Add([]byte(s))
	}
	s, err := New(Config{Markets: idleMarkets()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	c := fakeConn(s, BybitSpot)
	f.Fuzz(func(t *testing.T, data []byte) {
		s.bybitRead(c, websocket.TextMessage, data)
		out := drain(c)
		if len(out) == 0 {
			t.Fatalf("%q: no reply", data)
		}
		for _, b := range out {
			if !json.Valid(b) {
				t.Fatalf("%q: invalid frame %s", data, b)
			}
		}
		var ack struct {
			Success *bool  `json:"success"`
			ConnID  string `json:"conn_id"`
		}
		if json.Unmarshal(out[0], &ack) != nil || ack.Success == nil || ack.ConnID != "test" {
			t.Fatalf("%q: first frame %s is not a reply", data, out[0])
		}
	})
}
