package bybit

import (
	"encoding/json"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

const oneTrade = `{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[` +
	`{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}`

func BenchmarkDecodeTrade(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	adaptertest.BenchDecode(b, a, oneTrade)
}

func BenchmarkDecodeDepth(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	adaptertest.BenchDecode(b, a, bookDelta)
}

// general is the general decoder alone (no fast path), as Decode was
// before the fast paths.
type general struct{ *Adapter }

func (g general) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	return g.decode(frame, recvTS, dst)
}

// BenchmarkDecodeDepthGeneral is BenchmarkDecodeDepth through the general
// decoder, the path every book frame took before fastBook (and still
// takes when the fast path refuses it).
func BenchmarkDecodeDepthGeneral(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	adaptertest.BenchDecode(b, general{a}, bookDelta)
}

// BenchmarkDecodeDepthStdlib is the encoding/json reference for
// BenchmarkDecodeDepth (no validation of decimals or symbols).
func BenchmarkDecodeDepthStdlib(b *testing.B) {
	frame := []byte(bookDelta)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		var w stdBook
		if err := json.Unmarshal(frame, &w); err != nil || len(w.Data.B) != 3 {
			b.Fatal(err)
		}
	}
	stop()
}

// stdTrades declares the keys of a publicTrade frame for encoding/json.
type stdTrades struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	TS    int64  `json:"ts"`
	Data  []struct {
		T  int64  `json:"T"`
		S  string `json:"s"`
		Sd string `json:"S"`
		V  string `json:"v"`
		P  string `json:"p"`
		L  string `json:"L"`
		I  string `json:"i"`
		BT bool   `json:"BT"`
	} `json:"data"`
}

// BenchmarkDecodeTradeStdlib is the encoding/json reference for
// BenchmarkDecodeTrade (no validation of decimals, ids or symbols).
func BenchmarkDecodeTradeStdlib(b *testing.B) {
	frame := []byte(oneTrade)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		var w stdTrades
		if err := json.Unmarshal(frame, &w); err != nil || len(w.Data) != 1 {
			b.Fatal(err)
		}
	}
	stop()
}
