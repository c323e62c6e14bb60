package main

import (
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

// TestPrintEventLatencySign: a receive time before the event time (the
// exchange's clock ahead) prints as "-4.99s", not "+-4.99s".
func TestPrintEventLatencySign(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	for _, tt := range []struct {
		recv time.Duration
		want string
	}{
		{-4990 * time.Millisecond, "(recv -4.99s)"},
		{2 * time.Millisecond, "(recv +2ms)"},
		{0, "(recv +0s)"},
	} {
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: ts, RecvTS: ts + int64(tt.recv),
			ID: "1", Price: "1.5", Qty: "2", Side: bridge.SideBuy}
		var b strings.Builder
		printEvent(&b, nil, ev.AppendJSON(nil))
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("recv %s: %q does not contain %q", tt.recv, b.String(), tt.want)
		}
	}
}
