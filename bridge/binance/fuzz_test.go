package binance

import (
	"strconv"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// FuzzBinanceDecode: Decode never panics; it either fails with
// ErrMalformed leaving dst unchanged, or accepts valid JSON and emits
// events whose fields satisfy the Event contract (adaptertest.FuzzDecode)
// and Binance's rules (checkEvent). Seeds: testdata/fuzz.
func FuzzBinanceDecode(f *testing.F) {
	seeds := []string{tradeCombined, tradeRaw, depthCombined,
		`{"result":null,"id":1}`, `{"error":{"code":2,"msg":"x"},"id":null}`,
		`{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}`}
	adaptertest.FuzzDecode(f, newTest(f, Config{MaxFrameBytes: 64 << 10}), Name, seeds, checkEvent)
}

// checkEvent: trade ids are the decimal Seq; the stream carries only
// deltas, each with U <= u.
func checkEvent(t *testing.T, ev bridge.Event) {
	t.Helper()
	switch ev.Type {
	case bridge.EventTrade:
		if n, err := strconv.ParseInt(ev.ID, 10, 64); err != nil || n != ev.Seq || n < 0 {
			t.Fatalf("ID %q / Seq %d", ev.ID, ev.Seq)
		}
	case bridge.EventBookDelta:
		if ev.FirstID > ev.LastID || ev.FirstID < 0 {
			t.Fatalf("U %d u %d", ev.FirstID, ev.LastID)
		}
	case bridge.EventBBO, bridge.EventKline:
	default:
		t.Fatalf("unexpected event type %v", ev.Type)
	}
}
