package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunSmall runs both phases end to end with a tiny message count and
// checks the report's structure and that every message was acknowledged
// exactly once (no timing assertions).
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var steps []Progress
	rep, err := Run(ctx, Config{
		Messages: 2000, Symbols: 2, Connections: 2, Storage: 1, // memory storage: fast
		Progress: func(p Progress) { steps = append(steps, p) },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("%s", b)
	for _, ph := range []*Phase{rep.Raw, rep.Bridge} {
		if ph == nil {
			t.Fatal("missing phase")
		}
		if !ph.Complete || ph.Acked != ph.Messages || ph.Messages < 2000 {
			t.Errorf("%s: messages %d acked %d complete %v", ph.Name, ph.Messages, ph.Acked, ph.Complete)
		}
		if ph.Latency.Samples != int(ph.Acked) || ph.Latency.Unmatched != 0 {
			t.Errorf("%s: latency samples %d unmatched %d, want %d and 0", ph.Name, ph.Latency.Samples, ph.Latency.Unmatched, ph.Acked)
		}
		if !(ph.Latency.P50 <= ph.Latency.P90 && ph.Latency.P90 <= ph.Latency.P99 && ph.Latency.P99 <= ph.Latency.P999 && ph.Latency.P999 <= ph.Latency.Max) {
			t.Errorf("%s: percentiles not ordered: %+v", ph.Name, ph.Latency)
		}
		if ph.MsgsPerSec <= 0 || ph.BodyBytes == 0 {
			t.Errorf("%s: msgs/s %v body %d", ph.Name, ph.MsgsPerSec, ph.BodyBytes)
		}
	}
	if bc := rep.Bridge.Bridge; bc == nil || bc.Emitted != rep.Bridge.Messages || bc.Duplicates != 0 || bc.Gaps != 0 {
		t.Errorf("bridge counters: %+v", bc)
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio %v", rep.Ratio)
	}
}
