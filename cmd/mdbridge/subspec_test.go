package main

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/okx"
)

func TestParseSubscriptions(t *testing.T) {
	tb := bridge.ChannelTrade | bridge.ChannelBook
	tests := []struct {
		spec    string
		want    []Subscription
		wantErr string
	}{
		{spec: "binance:trade,book:BTCUSDT,ETHUSDT;bybit:trade:BTCUSDT", want: []Subscription{
			{Exchange: "binance", Channels: tb, Symbols: []string{"BTCUSDT", "ETHUSDT"}},
			{Exchange: "bybit", Channels: bridge.ChannelTrade, Symbols: []string{"BTCUSDT"}},
		}},
		{spec: " binance : trade : btcusdt , ethusdt ; ", want: []Subscription{
			{Exchange: "binance", Channels: bridge.ChannelTrade, Symbols: []string{"BTCUSDT", "ETHUSDT"}},
		}},
		// Groups for the same exchange merge per symbol.
		{spec: "binance:trade:BTCUSDT;binance:book:BTCUSDT,SOLUSDT", want: []Subscription{
			{Exchange: "binance", Channels: tb, Symbols: []string{"BTCUSDT"}},
			{Exchange: "binance", Channels: bridge.ChannelBook, Symbols: []string{"SOLUSDT"}},
		}},
		{spec: "bybit-linear:book:BTCUSDT", want: []Subscription{
			{Exchange: "bybit-linear", Channels: bridge.ChannelBook, Symbols: []string{"BTCUSDT"}},
		}},
		{spec: "binance-usdm:trade,book:BTCUSDT", want: []Subscription{
			{Exchange: "binance-usdm", Channels: tb, Symbols: []string{"BTCUSDT"}},
		}},
		{spec: "okx:trade:btc-usdt;okx-swap:book:BTC-USDT-SWAP", want: []Subscription{
			{Exchange: "okx", Channels: bridge.ChannelTrade, Symbols: []string{"BTC-USDT"}},
			{Exchange: "okx-swap", Channels: bridge.ChannelBook, Symbols: []string{"BTC-USDT-SWAP"}},
		}},
		{spec: "", wantErr: "empty"},
		{spec: ";;", wantErr: "empty"},
		{spec: "kraken:trade:BTCUSD", wantErr: `unknown exchange "kraken"`},
		{spec: "binance:trades,quotes:BTCUSDT", wantErr: `unknown channel "quotes"`},
		{spec: "binance:trade", wantErr: "must be <exchange>:<channels>:<symbols>"},
		{spec: "binance:trade:BTC:USDT", wantErr: "must be <exchange>:<channels>:<symbols>"},
		{spec: "binance:trade:", wantErr: "lists no symbols"},
		{spec: "binance:trade:BTC.USDT", wantErr: "invalid identifier"},
		{spec: "binance:trade:*.USDT", wantErr: "invalid identifier"},
		{spec: "okx:trade:*-USDT", wantErr: "universes are supported on binance, bybit, bybit-linear"},
		{spec: "binance:trade:*USDT;binance:book:*USDT;bybit-linear:trade:*", want: []Subscription{
			{Exchange: "binance", Channels: tb, Symbols: []string{"*USDT"}},
			{Exchange: "bybit-linear", Channels: bridge.ChannelTrade, Symbols: []string{"*"}},
		}},
		{spec: "binance:trade:>", wantErr: "invalid identifier"},
		{spec: "binance:trade:" + strings.Repeat("A", 65), wantErr: "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseSubscriptions(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSubscriptions(%q) error = %v, want containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSubscriptions(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseSubscriptions(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestSubscriptionStringRoundTrip(t *testing.T) {
	spec := "binance:trade,book:BTCUSDT,ETHUSDT;bybit:trade:BTCUSDT"
	subs, err := ParseSubscriptions(spec)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, s := range subs {
		parts = append(parts, s.String())
	}
	if got := strings.Join(parts, ";"); got != spec {
		t.Fatalf("round trip = %q, want %q", got, spec)
	}
}

// FuzzParseSubscriptions checks that any input either fails cleanly or yields
// subscriptions whose every exchange and symbol is safe in a NATS subject.
func FuzzParseSubscriptions(f *testing.F) {
	for _, s := range []string{"binance:trade,book:BTCUSDT", "bybit:trade:a;bybit-linear:book:b", "x:y:z", ";:;:", "binance:trade:BTC.>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		subs, err := ParseSubscriptions(spec)
		if err != nil {
			return
		}
		if len(subs) == 0 {
			t.Fatal("no error and no subscriptions")
		}
		for _, s := range subs {
			if err := bridge.ValidateIdent(s.Exchange); err != nil {
				t.Fatalf("exchange %q: %v", s.Exchange, err)
			}
			if s.Channels == 0 || len(s.Symbols) == 0 {
				t.Fatalf("empty subscription %+v", s)
			}
			for _, sym := range s.Symbols {
				if err := bridge.ValidateIdent(sym); err != nil {
					t.Fatalf("symbol %q: %v", sym, err)
				}
			}
		}
	})
}

func TestParseSubscriptionsChannels(t *testing.T) {
	subs, err := ParseSubscriptions("binance:trade,book,bbo,kline.1m,kline.1h+open:BTCUSDT;bybit-linear:ticker,liquidation,kline.1M:BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	want := bridge.ChannelTrade | bridge.ChannelBook | bridge.ChannelBBO | bridge.KlineChannel(bridge.Interval1m) | bridge.KlineOpenChannel(bridge.Interval1h)
	if len(subs) != 2 || subs[0].Channels != want {
		t.Fatalf("got %+v", subs)
	}
	if got := subs[0].String(); got != "binance:trade,book,bbo,kline.1m,kline.1h+open:BTCUSDT" {
		t.Fatalf("String = %q", got)
	}
	if subs[1].Channels != bridge.ChannelTicker|bridge.ChannelLiquidation|bridge.KlineChannel(bridge.Interval1M) {
		t.Fatalf("bybit-linear channels %v", subs[1].Channels)
	}
	for _, bad := range []string{"binance:kline.7m:BTCUSDT", "binance:candles:BTCUSDT", "binance:kline:BTCUSDT", "binance:kline.1m+closed:BTCUSDT"} {
		if _, err := ParseSubscriptions(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestSubscribeChannelsOfUSDM: every channel MDB_SUBSCRIBE can name for
// binance-usdm (bbo, klines without 1s, ticker, liquidation) is one its
// adapter carries, so the stream accepts it; 1s klines, and Spot's ticker,
// are not.
func TestSubscribeChannelsOfUSDM(t *testing.T) {
	var subs []Subscription
	for _, spec := range []string{"binance-usdm:trade,book,bbo,kline.1m+open,kline.1M,ticker,liquidation:BTCUSDT", "binance:ticker:BTCUSDT", "binance-usdm:kline.1s:BTCUSDT"} {
		s, err := ParseSubscriptions(spec)
		if err != nil || len(s) != 1 {
			t.Fatalf("%s: %+v, %v", spec, s, err)
		}
		subs = append(subs, s[0])
	}
	usdm, err := binance.New(binance.Config{Market: binance.MarketUSDM, WSURL: "ws://x", RESTURL: "http://x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spot, err := binance.New(binance.Config{WSURL: "ws://x", RESTURL: "http://x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, ex := range []bridge.ChannelProvider{usdm, spot, usdm} {
		has := subs[i].Channels&^ex.Channels() == 0
		if has != (i == 0) {
			t.Errorf("%s: carried %v (adapter channels %v)", subs[i], has, ex.Channels())
		}
	}
	if got, want := bridge.DescribeChannels(usdm), "trade, book, bbo, ticker, liquidation, kline.<1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M>[+open]"; got != want {
		t.Fatalf("binance-usdm channels %q, want %q", got, want)
	}
}

// TestSubscriptionsOKXChannels: the spec takes every OKX channel, and a
// stream is built for them; ticker and liquidation on okx spot (and bars
// OKX lacks) fail when the stream is built, with the bridge's error naming
// the market and what it has, as node.Start reports it for MDB_SUBSCRIBE.
func TestSubscriptionsOKXChannels(t *testing.T) {
	build := func(sub Subscription) error {
		market := okx.MarketSpot
		if sub.Exchange == okx.NameSwap {
			market = okx.MarketSwap
		}
		ex, err := okx.New(okx.Config{Market: market}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: sub.Symbols, Channels: sub.Channels}, nopPublisher{}, nil)
		return err
	}
	subs, err := ParseSubscriptions("okx:trade,book,bbo,kline.1m,kline.1w+open,kline.1M:BTC-USDT;" +
		"okx-swap:trade,book,bbo,ticker,liquidation,kline.1h+open,kline.1d:BTC-USDT-SWAP")
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[1].Channels != bridge.ChannelTrade|bridge.ChannelBook|bridge.ChannelBBO|bridge.ChannelTicker|
		bridge.ChannelLiquidation|bridge.KlineOpenChannel(bridge.Interval1h)|bridge.KlineChannel(bridge.Interval1d) {
		t.Fatalf("%+v", subs)
	}
	for _, s := range subs {
		if err := build(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	const okxHas = "trade, book, bbo, kline.<1m|3m|5m|15m|30m|1h|2h|4h|6h|12h|1d|1w|1M>[+open]"
	for spec, want := range map[string]string{
		"okx:trade,ticker:BTC-USDT": "bridge: invalid configuration: market okx does not have channel ticker (allowed: " + okxHas + ")",
		"okx:liquidation:BTC-USDT":  "bridge: invalid configuration: market okx does not have channel liquidation (allowed: " + okxHas + ")",
		"okx-swap:kline.8h:BTC-USDT-SWAP": "bridge: invalid configuration: market okx-swap does not have channel kline.8h (allowed: " +
			"trade, book, bbo, ticker, liquidation, kline.<1m|3m|5m|15m|30m|1h|2h|4h|6h|12h|1d|1w|1M>[+open])",
	} {
		subs, err := ParseSubscriptions(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if err := build(subs[0]); err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", spec, err, want)
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []bridge.Event) error { return nil }
