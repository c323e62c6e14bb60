package exsim_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/internal/exsim"
)

// Example starts an idle simulator, reads the trades it generates on
// demand, and asks the ground truth whether anything was not delivered.
func Example() {
	sim, err := exsim.New(exsim.Config{
		Seed:    42,
		Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}, // rates 0: idle
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	ws, _, err := websocket.DefaultDialer.Dial(sim.BinanceWSURL()+"/ws/btcusdt@trade", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close()
	for len(sim.Conns()) == 0 || len(sim.Conns()[0].Subscriptions) == 0 {
		time.Sleep(time.Millisecond) // the subscription lands just after the handshake
	}

	_ = sim.Generate(exsim.Binance, "BTCUSDT", 10, 0)
	gen, _ := sim.Generated(exsim.Binance, "BTCUSDT", exsim.SeriesTrade)
	for range gen.Len() {
		if _, _, err := ws.ReadMessage(); err != nil {
			log.Fatal(err)
		}
	}
	truth, _ := sim.Truth(exsim.Binance, "BTCUSDT")
	trades := truth.Get(exsim.SeriesTrade)
	fmt.Println("consecutive ids:", trades.Generated.Len() == gen.Last-gen.First+1)
	fmt.Println("undelivered:", trades.Undelivered)
	// Output:
	// consecutive ids: true
	// undelivered: []
}
