package bybit

import (
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
