package node

import (
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/okx"
)

// okx and okx-swap get their adapters from one OKX venue: one REST
// limiter, the configured endpoints.
func TestBuildOKXExchanges(t *testing.T) {
	subs := []Subscription{
		{Exchange: "okx", Channels: bridge.ChannelTrade, Symbols: []string{"BTC-USDT"}},
		{Exchange: "okx-swap", Channels: bridge.ChannelBook, Symbols: []string{"BTC-USDT-SWAP"}},
	}
	exs, err := buildExchanges(subs, newAdapterSet(Venues{OKXWSURL: "ws://127.0.0.1:1", OKXRESTURL: "http://127.0.0.1:1"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	spot, swap := exs[0].(*okx.Adapter), exs[1].(*okx.Adapter)
	if spot.Name() != "okx" || swap.Name() != "okx-swap" || spot.Limiter() != swap.Limiter() {
		t.Fatalf("names %s, %s; shared limiter %v", spot.Name(), swap.Name(), spot.Limiter() == swap.Limiter())
	}
	if u := spot.URL([]bridge.Topic{{Symbol: "BTC-USDT", Channel: bridge.ChannelTrade}}); u != "ws://127.0.0.1:1/ws/v5/business" {
		t.Fatal(u)
	}
	if venueOf("okx-swap") != "okx" {
		t.Fatal("okx-swap is not of venue okx")
	}
}
