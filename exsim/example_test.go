package exsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/exsim"
)

// Example runs the simulator inside a test, as a consumer's own test would:
// an idle Binance market, a client subscribed to its trade stream exactly
// as to the real exchange, trades generated on demand (the seed makes them
// reproducible), then the ground truth of what was sent.
func Example() {
	sim, err := exsim.New(exsim.Config{
		Seed:    7,
		Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT"}}, // idle: rates 0
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	ws, _, err := websocket.DefaultDialer.Dial(sim.BinanceWSURL()+"/ws/btcusdt@trade", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close()
	// The subscription is in place once the connection is listed.
	for len(sim.Conns()) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := sim.Generate(exsim.Binance, "BTCUSDT", 3, 0); err != nil {
		log.Fatal(err)
	}
	gen, _ := sim.Generated(exsim.Binance, "BTCUSDT", exsim.SeriesTrade)
	for range gen.Last - gen.First + 1 {
		// A map keeps Binance's keys apart: "e" and "E", "t" and "T" differ
		// only by case, which encoding/json's struct fields ignore.
		var trade map[string]json.RawMessage
		if err := ws.ReadJSON(&trade); err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(trade["e"]), string(trade["t"]), string(trade["p"]))
	}
	truth, _ := sim.Truth(exsim.Binance, "BTCUSDT")
	b, _ := json.Marshal(truth.Get(exsim.SeriesTrade).Undelivered)
	fmt.Println("never delivered:", string(b))
	// Output:
	// "trade" 2230996892 "64999.99000000"
	// "trade" 2230996893 "65000.00000000"
	// "trade" 2230996894 "65000.00000000"
	// never delivered: []
}
