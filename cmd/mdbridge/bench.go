package main

import (
	"context"
	"io"

	"github.com/qldata/mdbridge/internal/harness/bench"
)

// cmdBench is `mdbridge bench`: the bridge's throughput and latency against
// raw JetStream publishing on this machine, a rate sweep with an SVG chart,
// or the 1000-symbol scale test. Flags, modes, output and exit codes are
// internal/harness/bench's (bench.Main), which also re-runs this binary as
// `mdbridge bench -serve-nats|-serve-sim` for -nats-process and
// -sim-process.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return bench.Main(ctx, args, stdout, stderr)
}
