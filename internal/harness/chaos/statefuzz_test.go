package chaos

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// FuzzStateValue writes arbitrary values into an md_state key and reads the
// bucket back as `mdbridge status` does (publisher.ReadStates): a value
// that is not a state document must come back as an entry with Err set
// (and marked stale), never a panic or a silently zero state; a valid one
// must decode to what was written.
func FuzzStateValue(f *testing.F) {
	good, _ := json.Marshal(bridge.SymbolState{Exchange: "binance", Symbol: "BTCUSDT", Instance: "a", State: "CONNECTED", Updated: time.Now()})
	for _, v := range [][]byte{good, []byte(`{}`), []byte(`{"state":1}`), []byte(`{"updated":"0001-01-01T00:00:00Z"}`),
		[]byte(`{"updated":"9999-12-31T23:59:59Z","messages":-1}`), []byte(`null`), []byte(`[`), []byte("\xff\xfe"), nil} {
		f.Add(v)
	}
	cs := startControlService(f, publisher.Config{Storage: jetstream.MemoryStorage}, &fakeSource{symbols: map[string]bool{}})
	js, err := jetstream.New(cs.cli)
	if err != nil {
		f.Fatal(err)
	}
	kv, err := publisher.EnsureStateBucket(context.Background(), js, publisher.Config{Storage: jetstream.MemoryStorage})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		const key = "binance.BTCUSDT.fuzz"
		if _, err := kv.Put(ctx, key, value); err != nil {
			return // e.g. over the server's payload limit
		}
		entries, err := publisher.ReadStates(ctx, kv)
		if err != nil {
			t.Fatalf("ReadStates: %v", err)
		}
		if len(entries) != 1 || entries[0].Key != key {
			t.Fatalf("entries %+v", entries)
		}
		e := entries[0]
		var want bridge.SymbolState
		if json.Unmarshal(value, &want) != nil {
			if e.Err == nil || !e.Stale {
				t.Fatalf("value %q read without an error: %+v", value, e)
			}
			return
		}
		if e.Err != nil {
			t.Fatalf("valid value %q: %v", value, e.Err)
		}
		if e.State.State != want.State || e.State.Messages != want.Messages || !e.State.Updated.Equal(want.Updated) {
			t.Fatalf("value %q decoded as %+v", value, e.State)
		}
	})
}
