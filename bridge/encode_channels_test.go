package bridge_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

// channelEvents are one event of each channel type, as the adapters
// produce them.
func channelEvents() map[string]bridge.Event {
	bbo := bridge.Event{Type: bridge.EventBBO, Exchange: "binance", Symbol: "BTCUSDT", TS: 1, RecvTS: 2}
	bbo.SetBBO(bridge.BBO{BidPrice: "97012.54000000", BidQty: "1.20000000", AskPrice: "97012.56000000", AskQty: "0.50000000", UpdateID: 61025})
	kline := bridge.Event{Type: bridge.EventKline, Exchange: "binance", Symbol: "BTCUSDT", TS: 1732400059999000000, RecvTS: 2}
	kline.SetBar(bridge.Bar{Interval: bridge.Interval1m, OpenTime: 1732400000000000000, CloseTime: 1732400059999000000,
		Open: "97000.00", High: "97100.50", Low: "96990.00", Close: "97050.00", Volume: "12.50000", QuoteVolume: "1212500.25", Trades: 812, Closed: true})
	ticker := bridge.Event{Type: bridge.EventTicker, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1, RecvTS: 2}
	ticker.SetTicker(bridge.Ticker{LastPrice: "97000", MarkPrice: "97001.5", IndexPrice: "96999", FundingRate: "-0.000212",
		OpenInterest: "68744.761", NextFundingTime: 1732406400000000000, Seq: 24987956059})
	liq := bridge.Event{Type: bridge.EventLiquidation, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1, RecvTS: 2,
		Side: bridge.SideSell, Price: "94666.30", Qty: "0.003", Seq: 1}
	return map[string]bridge.Event{"bbo": bbo, "kline": kline, "ticker": ticker, "liquidation": liq}
}

// TestChannelEncodeRoundTrip: every channel body is valid JSON that
// DecodeJSON turns back into the same event, and its msg ID and subject
// follow the contract.
func TestChannelEncodeRoundTrip(t *testing.T) {
	subjects := map[string]string{"bbo": "md.binance.BTCUSDT.bbo", "kline": "md.binance.BTCUSDT.kline.1m",
		"ticker": "md.bybit-linear.BTCUSDT.ticker", "liquidation": "md.bybit-linear.BTCUSDT.liquidation"}
	ids := map[string]string{"bbo": "binance:BTCUSDT:bbo:61025", "kline": "binance:BTCUSDT:kline:1m:1732400000000000000",
		"ticker": "bybit-linear:BTCUSDT:ticker:1:24987956059", "liquidation": "bybit-linear:BTCUSDT:liquidation:1:sell:94666.30:0.003:1"}
	for name, ev := range channelEvents() {
		body := ev.AppendJSON(nil)
		if !json.Valid(body) {
			t.Fatalf("%s: invalid JSON %s", name, body)
		}
		got, err := bridge.DecodeJSON(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", name, got, ev)
		}
		if s := string(ev.AppendSubject(nil, "md")); s != subjects[name] {
			t.Errorf("%s: subject %q, want %q", name, s, subjects[name])
		}
		if id := ev.MsgID(); id != ids[name] {
			t.Errorf("%s: msg id %q, want %q", name, id, ids[name])
		}
	}
}

// BenchmarkAppendJSONChannels: the channel bodies and msg IDs are encoded
// without allocating, like the trade body.
func BenchmarkAppendJSONChannels(b *testing.B) {
	for name, ev := range channelEvents() {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			id := make([]byte, 0, 128)
			b.ReportAllocs()
			for b.Loop() {
				buf = ev.AppendJSON(buf[:0])
				id = ev.AppendMsgID(id[:0])
			}
		})
	}
}
