package publisher

import (
	"testing"
	"testing/synctest"
)

// TestStateWriterReportsDrops: with a drop counter (node wires
// JetStream.SymbolDropped), every state written carries the symbol's
// publisher drops, so md_state shows them per symbol and instance.
func TestStateWriterReportsDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.SetDropCounter(func(exchange, symbol string) uint64 {
			if exchange == "binance" && symbol == "BTCUSDT" {
				return 7
			}
			return 0
		})
		w.PutState(sym("BTCUSDT", "CONNECTED", 1))
		w.PutState(sym("ETHUSDT", "CONNECTED", 1))
		synctest.Wait()
		kv.mu.Lock()
		defer kv.mu.Unlock()
		got := map[string]uint64{}
		for _, p := range kv.puts {
			got[p.st.Symbol] = p.st.PublishDropped
		}
		if got["BTCUSDT"] != 7 || got["ETHUSDT"] != 0 || len(got) != 2 {
			t.Fatalf("publish_dropped written %v, want BTCUSDT 7, ETHUSDT 0", got)
		}
	})
}

func TestSubjectDrops(t *testing.T) {
	p := &JetStream{cfg: Config{SubjectPrefix: "md"}}
	if p.drops.get("md.binance.BTCUSDT") != 0 {
		t.Fatal("zero value counts something")
	}
	p.drops.add("md.binance.BTCUSDT", 2)
	p.drops.add("md.binance.BTCUSDT", 1)
	p.drops.add("md.bybit.BTCUSDT", 1)
	if got := p.SymbolDropped("binance", "BTCUSDT"); got != 3 {
		t.Fatalf("SymbolDropped = %d, want 3", got)
	}
}
