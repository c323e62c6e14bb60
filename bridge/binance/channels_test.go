package binance

import (
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

const (
	bookTickerCombined = `{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}`
	bookTickerRaw      = `{"u":400900218,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}`
	klineCombined      = `{"stream":"bnbusdt@kline_1m","data":{"e":"kline","E":1672515782136,"s":"BNBUSDT","k":{"t":1672515780000,"T":1672515839999,` +
		`"s":"BNBUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}}`
	klineClosed = `{"e":"kline","E":1672515840001,"s":"BNBUSDT","k":{"t":1672515780000,"T":1672515839999,` +
		`"s":"BNBUSDT","i":"1m","f":100,"L":201,"o":"0.0010","c":"0.0021","h":"0.0025","l":"0.0015","v":"1001","n":101,"x":true,"q":"1.0010","V":"500","Q":"0.500","B":"0"}}`
)

func TestDecodeChannels(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BNBUSDT", Channel: bridge.ChannelBBO}, {Symbol: "BNBUSDT", Channel: bridge.KlineChannel(bridge.Interval1m)}})
	bbo := bridge.Event{Type: bridge.EventBBO, Exchange: Name, Symbol: "BNBUSDT", TS: 7, RecvTS: 7}
	bbo.SetBBO(bridge.BBO{BidPrice: "25.35190000", BidQty: "31.21000000", AskPrice: "25.36520000", AskQty: "40.66000000", UpdateID: 400900217})
	adaptertest.DecodeData(t, a, bookTickerCombined, 7, bbo)
	bbo.LastID = 400900218
	adaptertest.DecodeData(t, a, bookTickerRaw, 7, bbo)

	k := bridge.Event{Type: bridge.EventKline, Exchange: Name, Symbol: "BNBUSDT", TS: 1672515782136e6, RecvTS: 7}
	k.SetBar(bridge.Bar{Interval: bridge.Interval1m, OpenTime: 1672515780000e6, CloseTime: 1672515839999e6,
		Open: "0.0010", High: "0.0025", Low: "0.0015", Close: "0.0020", Volume: "1000", QuoteVolume: "1.0000", Trades: 100})
	adaptertest.DecodeData(t, a, klineCombined, 7, k)
	got, _, err := a.Decode([]byte(klineClosed), 7, nil)
	if err != nil || len(got) != 1 || !got[0].Bar().Closed || got[0].Bar().Trades != 101 {
		t.Fatalf("closed kline: %v %+v", err, got)
	}
	if id := got[0].MsgID(); id != "binance:BNBUSDT:kline:1m:1672515780000000000" {
		t.Fatalf("msg id %q", id)
	}
	if id := k.MsgID(); id != "binance:BNBUSDT:kline:1m:1672515780000000000:open:1672515782136000000" {
		t.Fatalf("open-bar msg id %q", id)
	}

	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"bookTicker without A", `{"u":1,"s":"BNBUSDT","b":"1","B":"1","a":"1"}`},
		{"bookTicker bad price", `{"u":1,"s":"BNBUSDT","b":"x","B":"1","a":"1","A":"1"}`},
		{"kline bad interval", `{"e":"kline","E":1,"s":"BNBUSDT","k":{"t":1,"T":2,"i":"7m","o":"1","c":"1","h":"1","l":"1","v":"1","n":1,"x":true,"q":"1"}}`},
		{"kline k not object", `{"e":"kline","E":1,"s":"BNBUSDT","k":[]}`},
		{"kline missing x", `{"e":"kline","E":1,"s":"BNBUSDT","k":{"t":1,"T":2,"i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1","n":1,"q":"1"}}`},
	})
}

func TestStreamNamesChannels(t *testing.T) {
	a := newTest(t, Config{})
	for c, want := range map[bridge.Channel]string{
		bridge.ChannelBBO: "btcusdt@bookTicker", bridge.KlineChannel(bridge.Interval1h): "btcusdt@kline_1h",
		bridge.KlineChannel(bridge.Interval1M): "btcusdt@kline_1M", bridge.ChannelTicker: "",
	} {
		if got := a.StreamName(bridge.Topic{Symbol: "BTCUSDT", Channel: c}); got != want {
			t.Errorf("%v: %q, want %q", c, got, want)
		}
	}
	if a.Channels()&(bridge.ChannelTicker|bridge.ChannelLiquidation) != 0 {
		t.Fatal("spot reports derivatives channels")
	}
}

func FuzzBinanceBookTicker(f *testing.F) {
	adaptertest.FuzzDecode(f, newTest(f, Config{MaxFrameBytes: 64 << 10}), Name,
		[]string{bookTickerCombined, bookTickerRaw}, checkEvent)
}

func FuzzBinanceKline(f *testing.F) {
	adaptertest.FuzzDecode(f, newTest(f, Config{MaxFrameBytes: 64 << 10}), Name,
		[]string{klineCombined, klineClosed}, checkEvent)
}

func BenchmarkDecodeBookTicker(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BNBUSDT", Channel: bridge.ChannelBBO}})
	adaptertest.BenchDecode(b, a, bookTickerCombined)
}

func BenchmarkDecodeKline(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BNBUSDT", Channel: bridge.KlineChannel(bridge.Interval1m)}})
	adaptertest.BenchDecode(b, a, klineCombined)
}
