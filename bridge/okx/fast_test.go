package okx

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// stdTradesAll declares every key of a trades or trades-all push for
// encoding/json.
type stdTradesAll struct {
	Arg struct {
		Channel string `json:"channel"`
		InstID  string `json:"instId"`
	} `json:"arg"`
	Data []struct {
		InstID  string `json:"instId"`
		TradeID string `json:"tradeId"`
		Px      string `json:"px"`
		Sz      string `json:"sz"`
		Side    string `json:"side"`
		Source  string `json:"source"`
		TS      string `json:"ts"`
		Count   string `json:"count"`
		SeqID   int64  `json:"seqId"`
	} `json:"data"`
}

const tradeAllTwo = `{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","source":"0","ts":"1630048897897"},` +
	`{"instId":"BTC-USDT","tradeId":"130639475","px":"42219.8","sz":"1","side":"sell","ts":"1630048897898"}]}`

// TestFastTradesTaken: trades and trades-all pushes as OKX sends them (one
// or several trades, with and without "source", "count", "seqId") take the fast path, with the general
// decoder's events; frames of another shape do not.
func TestFastTradesTaken(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	for _, frame := range []string{tradeAllFrame, tradeAllTwo, tradesFrame,
		strings.Replace(tradesFrame, `,"count":"3","source":"0","seqId":1234`, "", 1)} {
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
		strings.Replace(tradesFrame, `"channel":"trades"`, `"channel":"trades-alll"`, 1),
		strings.Replace(tradesFrame, `"seqId":1234`, `"seqId":-1`, 1),
		`{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[]}`,
		strings.Replace(tradeAllFrame, `"side":"buy"`, `"side":"Buy"`, 1),
		strings.Replace(tradeAllFrame, `"data":[{"instId":"BTC-USDT"`, `"data":[{"instId":"ETH-USDT"`, 1),
		strings.Replace(tradeAllFrame, `"ts":"1630048897897"`, `"ts":"+1630048897897"`, 1),
		strings.Replace(tradeAllFrame, `"px":"42219.9"`, `"px":"4221\u0039.9"`, 1),
		tradeAllFrame + "\n",
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
	for _, s := range []string{tradeAllFrame, tradeAllTwo, tradesFrame, bookUpdFrame,
		`{"arg":{"channel":"trades-all","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"0042","px":"0.5","sz":"10","side":"sell","source":"1","ts":"9223372036854"}]}`,
	} {
		f.Add([]byte(s))
	}
	a := newTestAdapter(f, MarketSpot)
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
		var std stdTradesAll
		if err := json.Unmarshal(frame, &std); err != nil || len(std.Data) != len(got) || std.Arg.Channel != chanTradesAll && std.Arg.Channel != chanTrades {
			t.Fatalf("fast path accepted %q; encoding/json: %v, %d trades", frame, err, len(std.Data))
		}
		for i := range want {
			adaptertest.AssertEvent(t, got[i], want[i])
			adaptertest.CheckEvent(t, got[i], a.core.Name)
			s := std.Data[i]
			ms, err := strconv.ParseInt(s.TS, 10, 64)
			if err != nil || got[i].TS != ms*1_000_000 || got[i].Symbol != s.InstID || got[i].Side.String() != s.Side ||
				got[i].Qty != s.Sz || got[i].Price != s.Px || got[i].ID != s.TradeID {
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

// BenchmarkDecodeTradeAllStdlib is the encoding/json reference for
// BenchmarkDecodeTradeAll (no validation of decimals, ids or symbols).
func BenchmarkDecodeTradeAllStdlib(b *testing.B) {
	frame := []byte(tradeAllFrame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		var w stdTradesAll
		if err := json.Unmarshal(frame, &w); err != nil || len(w.Data) != 1 {
			b.Fatal(err)
		}
	}
	stop()
}

// BenchmarkDecodeTrades is BenchmarkDecodeTradeAll for the aggregated
// trades channel (count, source, seqId).
func BenchmarkDecodeTrades(b *testing.B) {
	adaptertest.BenchDecode(b, newTestAdapter(b, MarketSpot), tradesFrame)
}

// generalOnly decodes with the general decoder alone (no fast path).
type generalOnly struct{ a *Adapter }

func (g generalOnly) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	return g.a.decode(frame, recvTS, dst)
}

// BenchmarkDecodeTradesGeneral is BenchmarkDecodeTrades through the
// general decoder: what the fast path saves, in the same run.
func BenchmarkDecodeTradesGeneral(b *testing.B) {
	adaptertest.BenchDecode(b, generalOnly{newTestAdapter(b, MarketSpot)}, tradesFrame)
}
