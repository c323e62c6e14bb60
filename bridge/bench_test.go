package bridge_test

import (
	"context"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// tradeFrame is a Binance combined-stream trade frame whose 12-digit trade
// id starts at tradeIDAt.
const tradeFrame = `{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":100000000000,"p":"16850.10000000","q":"0.01200000","T":1672515782134,"m":true,"M":true}}`

var tradeIDAt = len(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":`)

// incDigits increments the decimal number in b in place.
func incDigits(b []byte) {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return
		}
		b[i] = '0'
	}
}

// BenchmarkHotPathTrade measures the per-trade path: decode one Binance
// trade frame, dedup and sequence-check it, hand it to the publisher, which
// encodes the wire body (AppendJSON) and msg ID into reused buffers.
func BenchmarkHotPathTrade(b *testing.B) {
	ex, err := binance.New(binance.Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var body, id []byte
	published := 0
	pub := bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		for i := range evs {
			body = evs[i].AppendJSON(body[:0])
			id = evs[i].AppendMsgID(id[:0])
		}
		published += len(evs)
		return nil
	})
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}}, pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	ex.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	h := bridge.NewHotPath(s)
	frame := []byte(tradeFrame)
	digits := frame[tradeIDAt : tradeIDAt+12]
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		incDigits(digits)
		if err := h.Frame(frame, 1672515782140000000); err != nil {
			b.Fatal(err)
		}
	}
	stop()
	b.StopTimer()
	if published != b.N {
		b.Fatalf("published %d of %d trades", published, b.N)
	}
}

// BenchmarkProcessTrade is the runner's share of the hot path, without the
// adapter's decode: dedup, sequence check, hand-over and AppendJSON of one
// already decoded trade.
func BenchmarkProcessTrade(b *testing.B) {
	ex, err := binance.New(binance.Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var body []byte
	pub := bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		for i := range evs {
			body = evs[i].AppendJSON(body[:0])
			body = evs[i].AppendMsgID(body)
		}
		return nil
	})
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}}, pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := bridge.NewHotPath(s)
	evs := []bridge.Event{{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1672515782134000000,
		RecvTS: 1672515782140000000, ID: "100000000000", Seq: 100000000000, Price: "16850.10000000", Qty: "0.01200000", Side: bridge.SideSell}}
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		evs[0].Seq++
		h.Events(evs)
	}
	stop()
}
