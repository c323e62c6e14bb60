package bridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
)

func TestStreamsRouteBySymbol(t *testing.T) {
	bn, err := binance.New(binance.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	by, err := bybit.New(bybit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nop := bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil })
	sBN, err := bridge.NewStream(bridge.StreamConfig{Exchange: bn, Symbols: []string{"BTCUSDT", "ETHUSDT"}, Channels: bridge.ChannelBook}, nop, nil)
	if err != nil {
		t.Fatal(err)
	}
	sBY, err := bridge.NewStream(bridge.StreamConfig{Exchange: by, Symbols: []string{"BTCUSDT"}, Channels: bridge.ChannelBook}, nop, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := bridge.Streams{sBN, sBY}
	for _, tt := range []struct {
		ex, sym string
		want    *bridge.Stream
	}{
		{"binance", "ETHUSDT", sBN}, {"bybit", "BTCUSDT", sBY}, {"binance", "BTCUSDT", sBN},
		{"bybit", "ETHUSDT", nil}, {"bybit-linear", "BTCUSDT", nil}, {"kraken", "BTCUSDT", nil},
	} {
		if got := ss.Find(tt.ex, tt.sym); got != tt.want {
			t.Errorf("Find(%s, %s) = %p, want %p", tt.ex, tt.sym, got, tt.want)
		}
		if got := ss.Serves(tt.ex, tt.sym); got != (tt.want != nil) {
			t.Errorf("Serves(%s, %s) = %v", tt.ex, tt.sym, got)
		}
	}
	if _, err := ss.Snapshot(context.Background(), "bybit", "ETHUSDT"); !errors.Is(err, bridge.ErrUnknownSymbol) {
		t.Fatalf("Snapshot of an unserved symbol: %v, want ErrUnknownSymbol", err)
	}
}
