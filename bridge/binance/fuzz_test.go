package binance

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// FuzzBinanceDecode: Decode never panics; it either fails with
// ErrMalformed leaving dst unchanged, or accepts valid JSON and emits
// events whose fields satisfy the Event contract. Seeds: testdata/fuzz.
func FuzzBinanceDecode(f *testing.F) {
	for _, s := range []string{tradeCombined, tradeRaw, depthCombined,
		`{"result":null,"id":1}`, `{"error":{"code":2,"msg":"x"},"id":null}`,
		`{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}`} {
		f.Add([]byte(s))
	}
	a := newTest(f, Config{MaxFrameBytes: 64 << 10})
	f.Fuzz(func(t *testing.T, frame []byte) {
		prefix := []bridge.Event{{ID: "keep"}}
		got, fr, err := a.Decode(frame, 1, prefix)
		if err != nil {
			if !errors.Is(err, bridge.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if len(got) != 1 || got[0].ID != "keep" {
				t.Fatalf("dst changed on error")
			}
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}
		if fr.Kind == bridge.FrameError && !errors.Is(fr.Err, bridge.ErrExchange) {
			t.Fatalf("FrameError without ErrExchange: %v", fr.Err)
		}
		if fr.Kind != bridge.FrameData && len(got) != 1 {
			t.Fatalf("kind %d with events", fr.Kind)
		}
		for _, ev := range got[1:] {
			checkEvent(t, ev)
		}
	})
}

func checkEvent(t *testing.T, ev bridge.Event) {
	t.Helper()
	if ev.Exchange != Name || bridge.ValidateIdent(ev.Symbol) != nil {
		t.Fatalf("bad exchange/symbol %q/%q", ev.Exchange, ev.Symbol)
	}
	if ev.TS < 0 {
		t.Fatalf("negative TS %d", ev.TS)
	}
	switch ev.Type {
	case bridge.EventTrade:
		if n, err := strconv.ParseInt(ev.ID, 10, 64); err != nil || n != ev.Seq || n < 0 {
			t.Fatalf("ID %q / Seq %d", ev.ID, ev.Seq)
		}
		if !jscan.IsDecimal(ev.Price) || !jscan.IsDecimal(ev.Qty) {
			t.Fatalf("price %q qty %q", ev.Price, ev.Qty)
		}
		if ev.Side != bridge.SideBuy && ev.Side != bridge.SideSell {
			t.Fatalf("side %v", ev.Side)
		}
	case bridge.EventBookDelta:
		if ev.FirstID > ev.LastID || ev.FirstID < 0 {
			t.Fatalf("U %d u %d", ev.FirstID, ev.LastID)
		}
		for _, l := range append(append([]bridge.Level(nil), ev.Bids...), ev.Asks...) {
			if !jscan.IsDecimal(l[0]) || !jscan.IsDecimal(l[1]) {
				t.Fatalf("level %q", l)
			}
		}
	default:
		t.Fatalf("unexpected event type %v", ev.Type)
	}
	// The event must encode to valid JSON on the wire.
	if b := ev.AppendJSON(nil); !json.Valid(b) {
		t.Fatalf("AppendJSON produced invalid JSON: %s", b)
	}
}
