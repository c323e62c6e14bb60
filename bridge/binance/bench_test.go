package binance

import (
	"encoding/json"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// depthFrame20 is a depth update with 10 bids and 10 asks.
const depthFrame20 = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BTCUSDT","U":40011287452,"u":40011287470,` +
	`"b":[["16850.10000000","0.01200000"],["16850.09000000","0.00000000"],["16850.00000000","1.20000000"],["16849.98000000","0.50000000"],["16849.50000000","0.00000000"],` +
	`["16849.10000000","2.00000000"],["16848.00000000","0.10000000"],["16847.55000000","0.00000000"],["16847.00000000","3.10000000"],["16846.20000000","0.40000000"]],` +
	`"a":[["16850.11000000","0.50000000"],["16850.20000000","0.00000000"],["16850.30000000","1.00000000"],["16850.45000000","0.25000000"],["16851.00000000","0.00000000"],` +
	`["16851.10000000","4.00000000"],["16852.00000000","0.10000000"],["16852.50000000","0.00000000"],["16853.00000000","2.20000000"],["16854.00000000","0.70000000"]]}}`

func BenchmarkDecodeTrade(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	adaptertest.BenchDecode(b, a, tradeCombined)
}

func BenchmarkDecodeDepth(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	adaptertest.BenchDecode(b, a, depthFrame20)
}

// BenchmarkDecodeTradeStdlib is the encoding/json baseline (every key
// declared, so the result is right; no validation of decimals or symbols).
func BenchmarkDecodeTradeStdlib(b *testing.B) {
	frame := []byte(tradeCombined)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		if _, err := decodeTradeStdlib(frame); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

type stdDepth struct {
	Stream string `json:"stream"`
	Data   struct {
		LowerE string         `json:"e"`
		UpperE int64          `json:"E"`
		S      string         `json:"s"`
		UpperU int64          `json:"U"`
		LowerU int64          `json:"u"`
		B      []bridge.Level `json:"b"`
		A      []bridge.Level `json:"a"`
	} `json:"data"`
}

// BenchmarkDecodeDepthStdlib is the encoding/json baseline for depth.
func BenchmarkDecodeDepthStdlib(b *testing.B) {
	frame := []byte(depthFrame20)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		var w stdDepth
		if err := json.Unmarshal(frame, &w); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
