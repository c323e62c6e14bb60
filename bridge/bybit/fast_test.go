package bybit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// TestFastTradesTaken: the publicTrade frames Bybit sends (one or several
// trades, with and without "RPI" and "seq") take the fast path, with the
// general decoder's events; frames of another shape do not.
func TestFastTradesTaken(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	for _, frame := range []string{tradeFrame, oneTrade, strings.ReplaceAll(tradeFrame, `,"seq":1783284617`, "")} {
		got, ok := a.fastTrades([]byte(frame), 7, nil)
		if !ok {
			t.Fatalf("fast path refused %s", frame)
		}
		want, fr, err := a.decode([]byte(frame), 7, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(got) != len(want) {
			t.Fatalf("%s: fast %d events, general %d (%v)", frame, len(got), len(want), err)
		}
		for i := range want {
			adaptertest.AssertEvent(t, got[i], want[i])
		}
	}
	for _, frame := range []string{
		`{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}`,                         // no trade
		strings.Replace(tradeFrame, `"S":"Buy"`, `"S":"buy"`, 1),                                     // side
		strings.Replace(tradeFrame, `"s":"BTCUSDT","S":"Sell"`, `"s":"ETHUSDT","S":"Sell"`, 1),       // symbol differs
		strings.Replace(tradeFrame, `"v":"0.001"`, `"v":"0.001 "`, 1),                                // not a decimal
		strings.Replace(tradeFrame, `"i":"2100000000007764263"`, `"i":"21000000000077642\u0033"`, 1), // escaped
		strings.Replace(tradeFrame, `"BT":false,"seq"`, `"BT":false,"x":1,"seq"`, 1),                 // another key
		tradeFrame + " ",
	} {
		if got, ok := a.fastTrades([]byte(frame), 7, []bridge.Event{{ID: "keep"}}); ok || len(got) != 1 || got[0].ID != "keep" {
			t.Errorf("fast path took %s (or changed dst: %d events)", frame, len(got))
		}
	}
}

// FuzzFastTrades: whenever the fast path accepts a frame, the general
// decoder accepts it too with the same events, and encoding/json decodes it
// to the same trades; the events do not change when the frame buffer is
// overwritten; when it refuses, dst is unchanged.
func FuzzFastTrades(f *testing.F) {
	for _, s := range []string{tradeFrame, oneTrade, bookDelta,
		strings.ReplaceAll(tradeFrame, `,"seq":1783284617`, ""),
		`{"topic":"publicTrade.ETHUSDT","type":"snapshot","ts":1,"data":[{"T":9223372036854,"s":"ETHUSDT","S":"Sell","v":"1","p":"2.5","L":"ZeroPlusTick","i":"a_b.c-9","BT":true,"RPI":true}]}`,
	} {
		f.Add([]byte(s))
	}
	a := newTest(f, Config{MaxFrameBytes: 64 << 10})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	keep := bridge.Event{ID: "keep"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := a.fastTrades(frame, 5, []bridge.Event{keep})
		if !ok {
			if len(got) != 1 || got[0].ID != keep.ID {
				t.Fatalf("dst changed on refusal: %+v", got)
			}
			return
		}
		got = got[1:]
		want, fr, err := a.decode(frame, 5, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != len(got) {
			t.Fatalf("fast path accepted %q: %d events; general: %v kind %d, %d events", frame, len(got), err, fr.Kind, len(want))
		}
		var std stdTrades
		if err := json.Unmarshal(frame, &std); err != nil || len(std.Data) != len(got) {
			t.Fatalf("fast path accepted %q; encoding/json: %v, %d trades", frame, err, len(std.Data))
		}
		for i := range want {
			adaptertest.AssertEvent(t, got[i], want[i])
			adaptertest.CheckEvent(t, got[i], a.core.Name)
			checkEvent(t, got[i])
			s := std.Data[i]
			if got[i].TS != s.T*1_000_000 || got[i].Symbol != s.S || got[i].Side.String() != strings.ToLower(s.Sd) ||
				got[i].Qty != s.V || got[i].Price != s.P || got[i].ID != s.I {
				t.Fatalf("trade %d of %q: %+v; encoding/json %+v", i, frame, got[i], s)
			}
		}
		kept := make([]string, len(got))
		for i := range got {
			kept[i] = strings.Clone(got[i].ID + "|" + got[i].Price + "|" + got[i].Qty)
		}
		for i := range frame {
			frame[i] = '#'
		}
		for i := range got {
			if got[i].ID+"|"+got[i].Price+"|"+got[i].Qty != kept[i] {
				t.Fatalf("event %d changed with the frame buffer: %+v", i, got[i])
			}
		}
	})
}
