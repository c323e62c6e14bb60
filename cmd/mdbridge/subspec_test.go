package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
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
