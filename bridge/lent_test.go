package bridge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
)

// TestDeliverLentTrade: a one-trade frame reaches the publisher in the
// connection's own decode buffer (no copy), published before deliver
// returns; duplicates are not published; a multi-event frame still goes
// through the shard's own batch buffers; and the decode buffer never
// becomes one of them, so no later batch can overwrite a frame being
// decoded.
func TestDeliverLentTrade(t *testing.T) {
	ex, err := binance.New(binance.Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var lent, batches int
	var h *bridge.HotPath
	pub := bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		batches++
		if len(evs) == 1 && &evs[0] == h.DecodeBuf() {
			lent++
		}
		for i := range evs {
			got = append(got, evs[i].ID)
		}
		return nil
	})
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	ex.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	h = bridge.NewHotPath(s)
	frame := []byte(tradeFrame)
	digits := frame[tradeIDAt : tradeIDAt+12]
	var want []string
	for i := range 20 {
		incDigits(digits)
		id := string(digits)
		if err := h.Frame(frame, 1); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
		if i%3 == 0 { // the same frame again: a duplicate, not published
			if err := h.Frame(frame, 2); err != nil {
				t.Fatal(err)
			}
		}
		if i%5 == 4 { // two trades in one frame: the shard's own batch
			var two []bridge.Event
			for range 2 {
				incDigits(digits)
				if two, _, err = ex.Decode(frame, 3, two); err != nil {
					t.Fatal(err)
				}
				want = append(want, string(digits))
			}
			h.Events(two)
		}
		if msg := h.Settled(); msg != "" {
			t.Fatalf("after frame %d: %s", i, msg)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published %v\nwant %v", got, want)
	}
	if lent != 20 || batches != 24 {
		t.Fatalf("%d of %d batches in the decode buffer, want 20 of 24", lent, batches)
	}
}
