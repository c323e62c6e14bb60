package publisher

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// forgetKV is a fakeKV that records deletes too.
type forgetKV struct {
	fakeKV
	deleted []string
}

func (f *forgetKV) Delete(_ context.Context, key string, _ ...jetstream.KVDeleteOpt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, key)
	return nil
}

// TestStateWriterForget: a forgotten key is deleted, no longer refreshed,
// not in WriteFinal, and a later state for it starts it again.
func TestStateWriterForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &forgetKV{}
		w, err := NewStateWriter(kv, Config{StateRefresh: 5 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.PutState(sym("BTCUSDT", "CONNECTED", 1))
		w.PutState(sym("ETHUSDT", "CONNECTED", 1))
		synctest.Wait()
		if err := w.Forget(context.Background(), "binance", "BTCUSDT", "pod-1"); err != nil {
			t.Fatal(err)
		}
		if len(kv.deleted) != 1 || kv.deleted[0] != "binance.BTCUSDT.pod-1" {
			t.Fatalf("deleted %v", kv.deleted)
		}
		time.Sleep(11 * time.Second) // two refresh periods (synctest's fake clock)
		synctest.Wait()
		if got := kv.states("binance.BTCUSDT.pod-1"); len(got) != 1 {
			t.Errorf("BTCUSDT written %v after Forget, want only the first write", got)
		}
		if got := kv.states("binance.ETHUSDT.pod-1"); len(got) < 3 {
			t.Errorf("ETHUSDT refreshed %d times, want refreshes", len(got))
		}
		if err := w.WriteFinal(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := kv.states("binance.BTCUSDT.pod-1"); len(got) != 1 {
			t.Errorf("WriteFinal wrote the forgotten key: %v", got)
		}
		if st := w.Stats(); st.Keys != 1 {
			t.Errorf("keys %d, want 1", st.Keys)
		}
	})
}
