package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/qldata/mdbridge/internal/chaos"
)

// cmdChaos is `mdbridge chaos`: the soak harness (internal/chaos) with the
// report on stdout and progress on stderr. Exit 0 when every guarantee
// held, 1 when the report lists a failure or the harness could not run.
func cmdChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("chaos", "[--duration 10m] [--seed N] [--json] [--log FILE]", stderr)
	duration := fs.Duration("duration", chaos.DefaultDuration, "how long faults are injected")
	seed := fs.Uint64("seed", 0, "seed of the fault plan and the market data (default: random, printed in the report)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	warmup := fs.Duration("warmup", chaos.DefaultWarmup, "fault-free run before the faults")
	settle := fs.Duration("settle", chaos.DefaultSettle, "fault-free run after the faults, before generation stops")
	every := fs.Duration("fault-every", chaos.DefaultFaultEvery, "mean interval between fault starts")
	heartbeat := fs.Duration("heartbeat", chaos.DefaultHeartbeatTimeout, "the bridge's heartbeat timeout (stall detection)")
	rotation := fs.Duration("rotation-age", chaos.DefaultRotationAge, "connection age of the bridge's make-before-break rotation (negative: venue default)")
	kinds := fs.String("kinds", "", "comma list of fault kinds to inject (default: all)")
	natsPort := fs.Int("nats-port", 0, "port of the embedded NATS server (0: any free port)")
	bybitDepth := fs.Int("bybit-depth", chaos.DefaultBybitDepth, "Bybit orderbook depth the replicas subscribe and the soak compares: 1, 50, 200 or 1000 (MDB_BYBIT_BOOK_DEPTH)")
	snapshotEvery := fs.Duration("snapshot-every", chaos.DefaultSnapshotEvery, "period of the snapshot requests on the control subject during the faults, one per market (negative: none)")
	dir := fs.String("dir", "", "keep the JetStream store in this directory for inspection (default: a temporary directory, removed)")
	heapProfile := fs.String("heap-profile", "", "write a heap profile taken after the faults to this file (investigating resource growth)")
	logPath := fs.String("log", "", "write the simulator's, NATS's and the bridges' logs to this file")
	logLevel := fs.String("log-level", "info", "level of --log: debug, info, warn, error")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mdbridge chaos: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		*seed = rand.Uint64()
	}
	if _, err := parseLevel(*logLevel); err != nil {
		fmt.Fprintf(stderr, "mdbridge chaos: --log-level: %v\n", err)
		return exitUsage
	}
	cfg := chaos.Config{
		Duration: *duration, Seed: *seed, Warmup: *warmup, Settle: *settle, FaultEvery: *every,
		HeartbeatTimeout: *heartbeat, RotationAge: *rotation, NATSPort: *natsPort, Dir: *dir,
		HeapProfile: *heapProfile, BybitDepth: *bybitDepth, SnapshotEvery: *snapshotEvery,
	}
	for k := range strings.SplitSeq(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.Kinds = append(cfg.Kinds, chaos.FaultKind(k))
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "mdbridge chaos: %v\n", err)
		return exitUsage
	}
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintf(stderr, "mdbridge chaos: --log: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		cfg.ComponentLogger = newLogger(f, *logLevel, "text")
	}
	progress := newLogger(stderr, "info", "text")
	progress.Info("mdbridge chaos starting", "duration", cfg.Duration, "seed", cfg.Seed)
	rep, err := chaos.Run(ctx, cfg, progress)
	if rep != nil {
		var werr error
		if *jsonOut {
			werr = rep.WriteJSON(stdout)
		} else {
			werr = rep.WriteText(stdout)
		}
		if werr != nil {
			fmt.Fprintf(stderr, "mdbridge chaos: writing the report: %v\n", werr)
			return exitFailure
		}
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, chaos.ErrSoakFailed):
		fmt.Fprintf(stderr, "mdbridge chaos: FAIL (seed %d): see the report's FAILURES\n", cfg.Seed)
	default:
		fmt.Fprintf(stderr, "mdbridge chaos: %v (seed %d)\n", err, cfg.Seed)
	}
	return exitFailure
}
