package bybit

import (
	"context"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

const (
	bboFrame = `{"topic":"orderbook.1.BTCUSDT","ts":1672304484978,"type":"snapshot","data":{"s":"BTCUSDT",` +
		`"b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],"u":18521288,"seq":7961638724},"cts":1672304484976}`
	tickerSnapshot = `{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","tickDirection":"PlusTick","price24hPcnt":"0.017103",` +
		`"lastPrice":"17216.00","prevPrice24h":"16926.50","highPrice24h":"17281.50","lowPrice24h":"16915.00","prevPrice1h":"17238.00",` +
		`"markPrice":"17217.33","indexPrice":"17227.36","openInterest":"68744.761","openInterestValue":"1183601235.91","turnover24h":"1570383121.943499",` +
		`"volume24h":"91705.276","nextFundingTime":"1673280000000","fundingRate":"-0.000212","bid1Price":"17215.50","bid1Size":"84.489",` +
		`"ask1Price":"17216.00","ask1Size":"83.020"},"cs":24987956059,"ts":1673272861686}`
	tickerDelta = `{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"17218.10","openInterest":"68745.000"},"cs":24987956060,"ts":1673272861786}`
	klineFrame  = `{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677",` +
		`"high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}`
	liqFrame = `{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,"s":"BTCUSDT","S":"Sell","v":"0.003","p":"94666.30"},` +
		`{"T":1739502302929,"s":"BTCUSDT","S":"Sell","v":"0.003","p":"94666.30"},{"T":1739502302930,"s":"BTCUSDT","S":"Buy","v":"0.1","p":"94600"}]}`
)

func TestDecodeChannels(t *testing.T) {
	a := newTest(t, Config{Market: MarketLinear})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBBO}})
	bbo := bridge.Event{Type: bridge.EventBBO, Exchange: NameLinear, Symbol: "BTCUSDT", TS: 1672304484978e6, RecvTS: 7}
	bbo.SetBBO(bridge.BBO{BidPrice: "16493.50", BidQty: "0.006", AskPrice: "16611.00", AskQty: "0.029", UpdateID: 18521288})
	adaptertest.DecodeData(t, a, bboFrame, 7, bbo)

	tk := bridge.Event{Type: bridge.EventTicker, Exchange: NameLinear, Symbol: "BTCUSDT", TS: 1673272861686e6, RecvTS: 7}
	tk.SetTicker(bridge.Ticker{LastPrice: "17216.00", MarkPrice: "17217.33", IndexPrice: "17227.36", FundingRate: "-0.000212",
		OpenInterest: "68744.761", NextFundingTime: 1673280000000e6, Seq: 24987956059})
	adaptertest.DecodeData(t, a, tickerSnapshot, 7, tk)
	got, _, err := a.Decode([]byte(tickerDelta), 7, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("delta: %v %+v", err, got)
	}
	if d := got[0]; d.Flags != bridge.FlagDelta|bridge.HasMark|bridge.HasOpenInterest || d.More[0] != "17218.10" || d.ID != "68745.000" || d.LastID != 24987956060 {
		t.Fatalf("delta %+v", d)
	}

	k := bridge.Event{Type: bridge.EventKline, Exchange: NameLinear, Symbol: "BTCUSDT", TS: 1672324988882e6, RecvTS: 7}
	k.SetBar(bridge.Bar{Interval: bridge.Interval5m, OpenTime: 1672324800000e6, CloseTime: 1672325099999e6,
		Open: "16649.5", High: "16677", Low: "16608", Close: "16677", Volume: "2.081", QuoteVolume: "34666.4005", Trades: -1})
	adaptertest.DecodeData(t, a, klineFrame, 7, k)

	got, _, err = a.Decode([]byte(liqFrame), 7, nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("liquidations: %v %+v", err, got)
	}
	ids := []string{
		"bybit-linear:BTCUSDT:liquidation:1739502302929000000:buy:94666.30:0.003:0",
		"bybit-linear:BTCUSDT:liquidation:1739502302929000000:buy:94666.30:0.003:1",
		"bybit-linear:BTCUSDT:liquidation:1739502302930000000:sell:94600:0.1:0",
	}
	for i, ev := range got {
		if id := ev.MsgID(); id != ids[i] {
			t.Fatalf("liquidation %d: id %q, want %q", i, id, ids[i])
		}
	}
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"ticker bad type", `{"topic":"tickers.BTCUSDT","type":"x","data":{"symbol":"BTCUSDT"},"cs":1,"ts":1}`},
		{"ticker other symbol", `{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"ETHUSDT"},"cs":1,"ts":1}`},
		{"ticker bad decimal", `{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"1e5"},"cs":1,"ts":1}`},
		{"kline missing confirm", `{"topic":"kline.5.BTCUSDT","data":[{"start":1,"end":2,"interval":"5","open":"1","close":"1","high":"1","low":"1","volume":"1","turnover":"1","timestamp":1}],"ts":1,"type":"snapshot"}`},
		{"kline interval differs", `{"topic":"kline.5.BTCUSDT","data":[{"start":1,"end":2,"interval":"1","open":"1","close":"1","high":"1","low":"1","volume":"1","turnover":"1","confirm":true,"timestamp":1}],"ts":1,"type":"snapshot"}`},
		{"liquidation bad side", `{"topic":"allLiquidation.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Long","v":"1","p":"1"}]}`},
		{"bbo bad level", `{"topic":"orderbook.1.BTCUSDT","ts":1,"type":"snapshot","data":{"s":"BTCUSDT","b":[["1"]],"a":[],"u":1,"seq":1}}`},
	})
}

func TestChannelsByMarket(t *testing.T) {
	spot := newTest(t, Config{})
	if spot.Channels()&(bridge.ChannelTicker|bridge.ChannelLiquidation) != 0 {
		t.Fatal("spot reports derivatives channels")
	}
	lin := newTest(t, Config{Market: MarketLinear})
	for c, want := range map[bridge.Channel]string{
		bridge.ChannelBBO: "orderbook.1.BTCUSDT", bridge.ChannelTicker: "tickers.BTCUSDT", bridge.ChannelLiquidation: "allLiquidation.BTCUSDT",
		bridge.KlineChannel(bridge.Interval1h): "kline.60.BTCUSDT", bridge.KlineChannel(bridge.Interval1d): "kline.D.BTCUSDT",
		bridge.KlineChannel(bridge.Interval1s): "",
	} {
		if got := lin.TopicArg(bridge.Topic{Symbol: "BTCUSDT", Channel: c}); got != want {
			t.Errorf("%v: %q, want %q", c, got, want)
		}
	}
}

func fuzzLinear(f *testing.F, seeds ...string) {
	adaptertest.FuzzDecode(f, newTest(f, Config{Market: MarketLinear, MaxFrameBytes: 64 << 10}), NameLinear, seeds, checkEvent)
}

func FuzzBybitBBO(f *testing.F)         { fuzzLinear(f, bboFrame) }
func FuzzBybitTicker(f *testing.F)      { fuzzLinear(f, tickerSnapshot, tickerDelta) }
func FuzzBybitKline(f *testing.F)       { fuzzLinear(f, klineFrame) }
func FuzzBybitLiquidation(f *testing.F) { fuzzLinear(f, liqFrame) }

func benchLinear(b *testing.B, c bridge.Channel, frame string) {
	a := newTest(b, Config{Market: MarketLinear})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: c}})
	adaptertest.BenchDecode(b, a, frame)
}

func BenchmarkDecodeBBO(b *testing.B)    { benchLinear(b, bridge.ChannelBBO, bboFrame) }
func BenchmarkDecodeTicker(b *testing.B) { benchLinear(b, bridge.ChannelTicker, tickerDelta) }
func BenchmarkDecodeTickerSnapshot(b *testing.B) {
	benchLinear(b, bridge.ChannelTicker, tickerSnapshot)
}
func BenchmarkDecodeKline(b *testing.B) {
	benchLinear(b, bridge.KlineChannel(bridge.Interval5m), klineFrame)
}
func BenchmarkDecodeLiquidation(b *testing.B) {
	benchLinear(b, bridge.ChannelLiquidation, liqFrame)
}

func TestKlinesREST(t *testing.T) {
	// Newest first, as Bybit answers; the third row is outside the asked range.
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, ok(`{"category":"linear","symbol":"BTCUSDT","list":[`+
		`["1672325100000","16677","16680","16670","16675","1.5","25000.5"],`+
		`["1672324800000","16649.5","16677","16608","16677","2.081","34666.4005"],`+
		`["1672324500000","1","1","1","1","1","1"]]}`)))
	a := newServed(t, f, Config{Market: MarketLinear})
	from, to := int64(1672324800000e6), int64(1672325399999e6)
	got, err := a.Klines(context.Background(), "BTCUSDT", bridge.Interval5m, from, to, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/v5/market/kline?category=linear&end=1672325399999&interval=5&limit=1000&start=1672324800000&symbol=BTCUSDT"; f.Last() != want {
		t.Errorf("request %q, want %q", f.Last(), want)
	}
	if len(got) != 2 || got[0].FirstID != from || got[1].FirstID != from+int64(5*time.Minute) {
		t.Fatalf("bars %+v", got)
	}
	b := got[0].Bar()
	if !b.Closed || b.Open != "16649.5" || b.QuoteVolume != "34666.4005" || b.CloseTime != from+int64(5*time.Minute)-1e6 || b.Trades != -1 || got[0].TS != b.CloseTime {
		t.Fatalf("bar %+v", b)
	}
	// A long range is asked one window of limit bars at a time, oldest first.
	if _, err := a.Klines(context.Background(), "BTCUSDT", bridge.Interval1m, 0, int64(24*time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if want := "/v5/market/kline?category=linear&end=599999&interval=1&limit=10&start=0&symbol=BTCUSDT"; f.Last() != want {
		t.Errorf("request %q, want %q", f.Last(), want)
	}
}
