package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// The whole publishing path: an embedded NATS server, a connection, the
// JetStream publisher, and the stream it fills.
func ExampleJetStream() {
	dir, _ := os.MkdirTemp("", "mdbridge-example")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(ctx)
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{srv.ClientURL()}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	pub, err := publisher.NewJetStream(ctx, nc, publisher.Config{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var events []bridge.Event
	for i := range 3 {
		events = append(events, bridge.Event{
			Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT",
			ID: strconv.Itoa(100 + i), Price: "50000.10", Qty: "0.001", Side: bridge.SideBuy,
		})
	}
	_ = pub.Publish(ctx, events)
	_ = pub.Publish(ctx, events) // a replay: JetStream drops the copies
	if err := pub.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st := pub.Stats()
	fmt.Println("acked", st.Acked, "duplicates", st.Duplicates)

	js, _ := jetstream.New(nc)
	s, _ := js.Stream(ctx, "MD")
	info, _ := s.Info(ctx)
	fmt.Println("stream MD holds", info.State.Msgs, "messages")
	// Output:
	// acked 6 duplicates 3
	// stream MD holds 3 messages
}

func ExampleConfig_Validate() {
	err := publisher.Config{SubjectPrefix: "md.*", BufferMessages: 10, MaxInFlight: 20}.Validate()
	fmt.Println(errors.Is(err, publisher.ErrConfig))
	fmt.Println(err)
	// Output:
	// true
	// publisher: invalid configuration: Config.SubjectPrefix: "md.*" has '*'; subject tokens allow letters, digits, '_' and '-'
	// publisher: invalid configuration: Config.MaxInFlight: 20 exceeds BufferMessages 10
}

func ExampleStateKey() {
	key, _ := publisher.StateKey("binance", "BTCUSDT", "bridge-0.prod")
	fmt.Println(key)
	// Output: binance.BTCUSDT.bridge-0_prod
}

func ExampleParseDropPolicy() {
	p, _ := publisher.ParseDropPolicy("drop-oldest")
	fmt.Println(p)
	// Output: drop-oldest
}
