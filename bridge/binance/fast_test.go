package binance

import (
	"fmt"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// TestDecodeOwnsStrings: events and Frames never refer to the frame buffer,
// which the runner reuses for the next frame, whether the frame went the
// fast path (read in place, strings copied to an arena) or the general one.
func TestDecodeOwnsStrings(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}, {Symbol: "BNBBTC", Channel: bridge.ChannelBook}})
	frames := []string{tradeCombined, tradeRaw, depthCombined, depthFrame20,
		`{"result":null,"id":"abc"}`, `{"error":{"code":2,"msg":"bad thing"},"id":"q7"}`,
		// An unregistered symbol is copied by the symbol table.
		`{"stream":"x@trade","data":{"e":"trade","E":1,"s":"ETHBTC","t":1,"p":"1","q":"1","T":1,"m":false,"M":true}}`}
	for i := range 50 { // enough trades to fill more than one arena chunk
		frames = append(frames, fmt.Sprintf(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":%d,"p":"1.%d","q":"2.%d","T":1,"m":true,"M":true}}`, 1000+i, i, i*7))
	}
	adaptertest.DecodeOwns(t, a, frames...)
}

// TestFastTradeTaken: Binance's own trade layout goes the fast path, and
// gives what the general decoder gives.
func TestFastTradeTaken(t *testing.T) {
	a := newTest(t, Config{})
	for _, f := range []string{tradeCombined,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":0,"s":"BTCUSDT","t":0,"p":"0.1","q":"100","T":0,"m":false,"M":false}}`} {
		got, ok := a.fastTrade([]byte(f), 5, nil)
		if !ok {
			t.Fatalf("fast path refused %s", f)
		}
		want, fr, err := a.decode([]byte(f), 5, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 {
			t.Fatalf("general decoder: %v %v %d", err, fr.Kind, len(want))
		}
		adaptertest.AssertEvent(t, got[0], want[0])
	}
	for _, f := range []string{tradeRaw, depthCombined,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"","t":1,"p":"1","q":"1","T":1,"m":false,"M":true}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":01,"p":"1","q":"1","T":1,"m":false,"M":true}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":false,"M":true}} `,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTC\u0055SDT","t":1,"p":"1","q":"1","T":1,"m":false,"M":true}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.","q":"1","T":1,"m":false,"M":true}}`,
	} {
		if _, ok := a.fastTrade([]byte(f), 5, nil); ok {
			t.Errorf("fast path took %s", f)
		}
	}
}

// FuzzFastTrade: whenever the fast path accepts a frame, the general
// decoder accepts it too with the same event, and the event does not change
// when the frame buffer is overwritten; when it refuses, dst is unchanged.
func FuzzFastTrade(f *testing.F) {
	for _, s := range []string{tradeCombined, tradeRaw, depthCombined,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":100000000000,"p":"16850.10000000","q":"0.01200000","T":1672515782134,"m":true,"M":true}}`,
		`{"stream":"a","data":{"e":"trade","E":9223372036854775807,"s":"ETHBTC","t":9223372036854775807,"p":"0","q":"0","T":9223372036854,"m":false,"M":false}}`,
	} {
		f.Add([]byte(s))
	}
	a := newTest(f, Config{MaxFrameBytes: 64 << 10})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	keep := bridge.Event{ID: "keep"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := a.fastTrade(frame, 5, []bridge.Event{keep})
		if !ok {
			if len(got) != 1 || got[0].ID != keep.ID {
				t.Fatalf("dst changed on refusal: %+v", got)
			}
			return
		}
		want, fr, err := a.decode(frame, 5, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 || len(got) != 2 {
			t.Fatalf("fast path accepted %q: %d events; general: %v kind %d, %d events", frame, len(got)-1, err, fr.Kind, len(want))
		}
		adaptertest.AssertEvent(t, got[1], want[0])
		adaptertest.CheckEvent(t, got[1], Name)
		checkEvent(t, got[1])
		w := got[1]
		id, price, qty := string([]byte(w.ID)), string([]byte(w.Price)), string([]byte(w.Qty))
		for i := range frame {
			frame[i] = '#'
		}
		if got[1].ID != id || got[1].Price != price || got[1].Qty != qty {
			t.Fatalf("event changed with the frame buffer: %+v", got[1])
		}
	})
}

// FuzzFastTradeMatchesEncodingJSON: every frame the fast path accepts is
// one encoding/json decodes (every key declared) to the same event, field
// for field; so the fast path never gives a value a standard decoder would
// not.
func FuzzFastTradeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{tradeCombined,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":100000000000,"p":"16850.10000000","q":"0.01200000","T":1672515782134,"m":true,"M":true}}`,
		`{"stream":"a","data":{"e":"trade","E":922337203685477580,"s":"ETHBTC","t":922337203685477580,"p":"0","q":"0.5","T":9223372036854,"m":false,"M":false}}`,
	} {
		f.Add([]byte(s))
	}
	a := newTest(f, Config{MaxFrameBytes: 64 << 10})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := a.fastTrade(frame, 0, nil)
		if !ok {
			return
		}
		want, err := decodeTradeStdlib(frame)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", frame, err)
		}
		adaptertest.AssertEvent(t, got[0], want)
	})
}

// TestFastTradeReusedSlot: the fast path writes its event in dst's next
// slot, which the runner's reused decode buffer fills with an earlier
// frame's event: nothing of that one survives (every field of it is set
// here, a book delta's and a kline's included).
func TestFastTradeReusedSlot(t *testing.T) {
	a := newTest(t, Config{})
	old := bridge.Event{Type: bridge.EventKline, Interval: bridge.Interval1h, Flags: 0xff, Side: bridge.SideSell, Exchange: "x", Symbol: "Y",
		TS: 1, RecvTS: 2, ID: "old", Seq: 3, Price: "4", Qty: "5", FirstID: 6, LastID: 7, Depth: 8, PrevID: 9,
		Bids: []bridge.Level{{"1", "2"}}, Asks: []bridge.Level{{"3", "4"}}, More: [3]string{"a", "b", "c"}}
	buf := []bridge.Event{{ID: "keep"}, old}
	got, ok := a.fastTrade([]byte(tradeCombined), 5, buf[:1])
	if !ok || len(got) != 2 || &got[1] != &buf[1] {
		t.Fatalf("fast path refused %s or did not use the free slot", tradeCombined)
	}
	want, _, err := a.decode([]byte(tradeCombined), 5, nil)
	if err != nil || len(want) != 1 {
		t.Fatal(err)
	}
	if fmt.Sprintf("%#v", got[1]) != fmt.Sprintf("%#v", want[0]) || got[0].ID != "keep" {
		t.Fatalf("event %#v, want %#v", got[1], want[0])
	}
}
