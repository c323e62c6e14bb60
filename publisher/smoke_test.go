package publisher

import (
	"context"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

func TestSmoke(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	p := newPublisher(t, nc, Config{})
	ctx := context.Background()
	var evs []bridge.Event
	for i := 0; i < 1000; i++ {
		evs = append(evs, trade("binance", "BTCUSDT", i))
	}
	if err := p.Publish(ctx, evs); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", p.Stats())
	msgs := readStream(t, nc, "MD")
	if len(msgs) != 1000 {
		t.Fatalf("got %d", len(msgs))
	}
	t.Log(msgs[0])
}
