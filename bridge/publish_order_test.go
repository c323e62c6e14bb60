package bridge_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
)

// TestDeliverPublishesBeforeReturning: producers delivering to one shard at
// once (connections and repair workers do) each find their own events handed
// to the publisher by the time deliver returns, every event exactly once,
// and the publisher is never called concurrently, while some producers wait
// for another's publish (the publisher yields mid-call). Run with -race.
func TestDeliverPublishesBeforeReturning(t *testing.T) {
	ex, err := binance.New(binance.Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	published := map[string]int{}
	inside := 0
	pub := bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		mu.Lock()
		inside++
		if inside != 1 {
			t.Errorf("publisher called concurrently (%d)", inside)
		}
		for _, ev := range evs {
			published[ev.ID]++
		}
		mu.Unlock()
		runtime.Gosched() // let other producers queue behind this publish
		mu.Lock()
		inside--
		mu.Unlock()
		return nil
	})
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT"}}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := bridge.NewHotPath(s)
	const producers, rounds = 4, 500
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for r := range rounds {
				id := strconv.Itoa(p) + "-" + strconv.Itoa(r)
				h.Events([]bridge.Event{{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1, RecvTS: 1,
					ID: id, Price: "1", Qty: "1", Side: bridge.SideBuy}})
				mu.Lock()
				n := published[id]
				mu.Unlock()
				if n != 1 {
					t.Errorf("event %s published %d times when deliver returned, want 1", id, n)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(published) != producers*rounds {
		t.Errorf("%d events published, want %d", len(published), producers*rounds)
	}
}
