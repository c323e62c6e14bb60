package bybit

import (
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// FuzzBybitDecode: Decode never panics; it either fails with ErrMalformed
// leaving dst unchanged, or accepts valid JSON and emits events whose
// fields satisfy the Event contract (adaptertest.FuzzDecode) and Bybit's
// rules (checkEvent). Seeds: testdata/fuzz.
func FuzzBybitDecode(f *testing.F) {
	seeds := []string{tradeFrame, bookSnapshot, bookDelta,
		`{"success":true,"ret_msg":"pong","conn_id":"x","req_id":"1","op":"ping"}`,
		`{"success":false,"ret_msg":"error:handler not found","conn_id":"x","req_id":"2","op":"subscribe"}`,
		`{"req_id":"3","op":"pong","args":["1672916271846"],"conn_id":"y"}`}
	adaptertest.FuzzDecode(f, newTest(f, Config{MaxFrameBytes: 64 << 10}), NameSpot, seeds, checkEvent)
}

// checkEvent: trade ids are valid execIds without a Seq; a delta's
// FirstID is its u.
func checkEvent(t *testing.T, ev bridge.Event) {
	t.Helper()
	switch ev.Type {
	case bridge.EventTrade:
		if !validTradeID(ev.ID) || ev.Seq != 0 {
			t.Fatalf("ID %q Seq %d", ev.ID, ev.Seq)
		}
	case bridge.EventBookDelta, bridge.EventBookSnapshot:
		if ev.LastID < 0 || ev.Type == bridge.EventBookDelta && ev.FirstID != ev.LastID {
			t.Fatalf("first %d last %d", ev.FirstID, ev.LastID)
		}
	}
}
