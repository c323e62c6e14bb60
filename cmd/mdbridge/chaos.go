package main

import (
	"context"
	"io"

	"github.com/qldata/mdbridge/internal/harness/chaos"
)

// cmdChaos is `mdbridge chaos`: the soak harness, whose command lives in
// internal/harness/chaos.
func cmdChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return chaos.Main(ctx, args, stdout, stderr)
}
