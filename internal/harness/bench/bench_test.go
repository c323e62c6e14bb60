package bench

import (
	"context"
	"testing"
)

// benchPhase runs one phase with b.N messages (at least 1000) and reports
// the harness's figures; ns/op includes set-up, so read msgs/s instead.
// Example: go test -run '^$' -bench . -benchtime 200000x ./internal/harness/bench
func benchPhase(b *testing.B, phase string) {
	rep, err := Run(context.Background(), Config{Messages: max(b.N, 1000), Phases: phase, NoCPUSplit: true})
	if err != nil {
		b.Fatal(err)
	}
	ph := rep.Raw
	if phase == "bridge" {
		ph = rep.Bridge
	}
	b.ReportMetric(ph.MsgsPerSec, "msgs/s")
	b.ReportMetric(ph.Latency.P99, "p99-µs")
	b.ReportMetric(ph.CPUPerMillion, "cpu-s/1M")
}

// BenchmarkRaw measures raw JetStream publishing of the bridge's messages.
func BenchmarkRaw(b *testing.B) { benchPhase(b, "raw") }

// BenchmarkBridge measures simulator -> bridge -> JetStream.
func BenchmarkBridge(b *testing.B) { benchPhase(b, "bridge") }
