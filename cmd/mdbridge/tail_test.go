package main

import (
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

// TestPrintEventLatencySign: a receive time before the event time (the
// exchange's clock ahead) prints as "-4.99s", not "+-4.99s".
func TestPrintEventLatencySign(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	for _, tt := range []struct {
		recv time.Duration
		want string
	}{
		{-4990 * time.Millisecond, "(recv -4.99s)"},
		{2 * time.Millisecond, "(recv +2ms)"},
		{0, "(recv +0s)"},
	} {
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: ts, RecvTS: ts + int64(tt.recv),
			ID: "1", Price: "1.5", Qty: "2", Side: bridge.SideBuy}
		var b strings.Builder
		printEvent(&b, nil, ev.AppendJSON(nil))
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("recv %s: %q does not contain %q", tt.recv, b.String(), tt.want)
		}
	}
}

// TestPrintChannelEvents: tail prints bbo, kline, ticker and liquidation
// bodies readably.
func TestPrintChannelEvents(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	base := bridge.Event{Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: ts, RecvTS: ts}
	bbo := base
	bbo.Type = bridge.EventBBO
	bbo.SetBBO(bridge.BBO{BidPrice: "1.5", BidQty: "2", AskPrice: "1.6", AskQty: "3", UpdateID: 9})
	kline := base
	kline.Type = bridge.EventKline
	kline.SetBar(bridge.Bar{Interval: bridge.Interval1m, OpenTime: ts, CloseTime: ts + 59_999e6, Open: "1", High: "2", Low: "0.5",
		Close: "1.5", Volume: "10", QuoteVolume: "15", Trades: -1, Closed: true})
	ticker := base
	ticker.Type = bridge.EventTicker
	ticker.SetTicker(bridge.Ticker{MarkPrice: "1.51", FundingRate: "-0.0001", Seq: 77})
	liq := base
	liq.Type, liq.Side, liq.Price, liq.Qty = bridge.EventLiquidation, bridge.SideSell, "1.4", "0.3"
	for _, tt := range []struct {
		ev   bridge.Event
		want string
	}{
		{bbo, "bbo 9 bid 1.5 x 2 ask 1.6 x 3"},
		{kline, "kline 1m 2026-01-02T03:04:05Z CLOSED O 1 H 2 L 0.5 C 1.5 V 10 QV 15\n"},
		{ticker, "ticker seq 77 last - mark 1.51 index - funding -0.0001 (next -) oi -"},
		{liq, "LIQUIDATION sell 0.3 @ 1.4"},
	} {
		var b strings.Builder
		printEvent(&b, nil, tt.ev.AppendJSON(nil))
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("%q does not contain %q", b.String(), tt.want)
		}
	}
}
