package bybit

import (
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

const oneTrade = `{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[` +
	`{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}`

func BenchmarkDecodeTrade(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	frame := []byte(oneTrade)
	dst := make([]bridge.Event, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, _, err = a.Decode(frame, 1, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDepth(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	frame := []byte(bookDelta)
	dst := make([]bridge.Event, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, _, err = a.Decode(frame, 1, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
