package bench

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the three phases end to end with a tiny message count and
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
	for i, ph := range []*Phase{rep.Raw, rep.Ceiling, rep.Bridge} {
		if ph == nil {
			t.Fatalf("missing phase %s", phaseNames[i])
		}
		if ph.Name != phaseNames[i] {
			t.Errorf("phase %d is named %q, want %q", i, ph.Name, phaseNames[i])
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
		// One publishing connection, a fresh stream, no retransmission:
		// every message pairs with its socket write.
		if ph.ToWire == nil || ph.ToWire.Samples != int(ph.Acked) {
			t.Errorf("%s: create_to_wire %+v, want %d samples", ph.Name, ph.ToWire, ph.Acked)
		}
		if ph.MsgsPerSec <= 0 || ph.BodyBytes == 0 {
			t.Errorf("%s: msgs/s %v body %d", ph.Name, ph.MsgsPerSec, ph.BodyBytes)
		}
		if want := ph.MsgsPerSec * float64(ph.BodyBytes) / 1e6; ph.BodyMBPerSec != want {
			t.Errorf("%s: body MB/s %v, want %v", ph.Name, ph.BodyMBPerSec, want)
		}
	}
	if st := rep.Bridge.Stages; st == nil || st.ToReceive.Samples != int(rep.Bridge.Acked) || st.ReceiveToAck.Samples != int(rep.Bridge.Acked) ||
		st.ReceiveToWire == nil || st.ReceiveToWire.Samples != int(rep.Bridge.Acked) {
		t.Errorf("bridge stages: %+v", st)
	}
	if rep.Raw.Stages != nil || rep.Ceiling.Stages != nil {
		t.Errorf("raw or ceiling phase has stages")
	}
	if bc := rep.Bridge.Bridge; bc == nil || bc.Emitted != rep.Bridge.Messages || bc.Duplicates != 0 || bc.Gaps != 0 {
		t.Errorf("bridge counters: %+v", bc)
	}
	if rep.Ratio <= 0 || rep.CeilingRatio != rep.Bridge.MsgsPerSec/rep.Ceiling.MsgsPerSec {
		t.Errorf("ratio %v, ceiling ratio %v", rep.Ratio, rep.CeilingRatio)
	}
	var out strings.Builder
	printReport(&out, rep)
	for _, want := range []string{"ceiling", "bridge/ceiling throughput:", "bridge/raw throughput:", "body MB/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"raw", "ceiling", "bridge", "ceiling_ratio"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
}

// TestRunPhaseSubset: -phases runs exactly the phases named, in Run's
// order whatever the order given, and a comparison needs both its phases.
func TestRunPhaseSubset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{Messages: 500, Storage: 1, Phases: "bridge,ceiling", NoCPUSplit: true})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Raw != nil || rep.Ceiling == nil || rep.Bridge == nil {
		t.Fatalf("phases raw %v ceiling %v bridge %v, want ceiling and bridge only", rep.Raw != nil, rep.Ceiling != nil, rep.Bridge != nil)
	}
	if !rep.Ceiling.Complete || rep.Ceiling.Acked != 500 || rep.Ceiling.Name != "ceiling" {
		t.Errorf("ceiling %+v", rep.Ceiling)
	}
	if rep.CeilingRatio <= 0 || rep.Ratio != 0 {
		t.Errorf("ceiling ratio %v, raw ratio %v (want only the first)", rep.CeilingRatio, rep.Ratio)
	}
	rep, err = Run(ctx, Config{Messages: 300, Storage: 1, Phases: "ceiling", NoCPUSplit: true})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Raw != nil || rep.Bridge != nil || rep.Ceiling == nil || !rep.Ceiling.Complete || rep.CeilingRatio != 0 {
		t.Errorf("ceiling only: %+v", rep)
	}
}

// TestScaleSmall runs the scale mode with 20 symbols and checks the
// report's structure: everything connected, no rate-limit error, a steady
// window with CPU and memory figures (no timing assertions).
func TestScaleSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Scale(ctx, ScaleConfig{
		Symbols: 20, Rate: 200, Window: time.Second, SyncWait: 20 * time.Second,
		BookDepth: 100, WeightPerMinute: 6000, Storage: 1,
	})
	if err != nil {
		t.Fatalf("Scale: %v", err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("%s", b)
	if rep.Topics != 40 || rep.Connections < 1 || rep.ConnectedSeconds <= 0 {
		t.Errorf("topics %d connections %d connected after %v s", rep.Topics, rep.Connections, rep.ConnectedSeconds)
	}
	if rep.BooksSynced != 20 || rep.BooksSyncedSeconds <= 0 {
		t.Errorf("books synced %d after %v s", rep.BooksSynced, rep.BooksSyncedSeconds)
	}
	if rep.RateLimits.Total != 0 || rep.RateLimits.RESTRequests < 20 {
		t.Errorf("rate limits %+v", rep.RateLimits)
	}
	st := rep.Steady
	if st.Seconds <= 0 || st.CPUPercent <= 0 || st.RSS == 0 || st.Goroutines == 0 || st.GoroutineSplit[compBridge] == 0 || st.GoroutineSplit[compSim] == 0 {
		t.Errorf("steady %+v", st)
	}
}

// TestScaleRemoteSim runs the scale mode against a simulator reached
// through its admin API (as with `mdbridge bench -scale -sim-process`):
// the report is complete and no simulator goroutine runs in the bridge's
// accounting.
func TestScaleRemoteSim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	urls := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- ServeSim(sctx, 10, 100, slog.New(slog.DiscardHandler), func(u string) { urls <- u }) }()
	var url string
	select {
	case url = <-urls:
	case err := <-served:
		t.Fatalf("ServeSim: %v", err)
	}
	rep, err := Scale(ctx, ScaleConfig{
		Symbols: 10, Rate: 100, Window: time.Second, SyncWait: 20 * time.Second,
		BookDepth: 100, WeightPerMinute: 6000, Storage: 1, SimURL: url,
	})
	stop()
	if err != nil {
		t.Fatalf("Scale: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeSim: %v", err)
	}
	if rep.Topics != 20 || rep.BooksSynced != 10 || rep.RateLimits.Total != 0 || rep.RateLimits.RESTRequests < 10 {
		t.Errorf("topics %d, books synced %d, rate limits %+v", rep.Topics, rep.BooksSynced, rep.RateLimits)
	}
	if !strings.Contains(rep.Env.Layout, "simulator runs in another process") {
		t.Errorf("layout %q", rep.Env.Layout)
	}
	if _, err := Scale(ctx, ScaleConfig{Symbols: 1, SimURL: "ws://127.0.0.1:1"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad simulator URL: %v", err)
	}
}
