package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/qldata/mdbridge/internal/cli"
)

// Main is the command `mdbridge chaos`: the soak (Run) with the report on
// stdout and progress on stderr. args are the flags after the command
// name. It returns the exit code: 0 when every guarantee held, 1 when the
// report lists a failure or the soak could not run, 2 for a bad command
// line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("chaos", "[--duration 10m] [--seed N] [--json] [--log FILE]", stderr)
	duration := fs.Duration("duration", DefaultDuration, "how long faults are injected")
	seed := fs.Uint64("seed", 0, "seed of the fault plan and the market data (default: random, printed in the report)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	warmup := fs.Duration("warmup", DefaultWarmup, "fault-free run before the faults")
	settle := fs.Duration("settle", DefaultSettle, "fault-free run after the faults, before generation stops")
	every := fs.Duration("fault-every", DefaultFaultEvery, "mean interval between fault starts")
	heartbeat := fs.Duration("heartbeat", DefaultHeartbeatTimeout, "the bridge's heartbeat timeout (stall detection)")
	rotation := fs.Duration("rotation-age", DefaultRotationAge, "connection age of the bridge's make-before-break rotation (negative: venue default)")
	kinds := fs.String("kinds", "", "comma list of fault kinds to inject (default: all)")
	natsPort := fs.Int("nats-port", 0, "port of the embedded NATS server (0: any free port)")
	bybitDepth := fs.Int("bybit-depth", DefaultBybitDepth, "Bybit orderbook depth the replicas subscribe and the soak compares: 1, 50, 200 or 1000 (MDB_BYBIT_BOOK_DEPTH)")
	snapshotEvery := fs.Duration("snapshot-every", DefaultSnapshotEvery, "period of the snapshot requests on the control subject during the faults, one per market (negative: none)")
	replicas := fs.Int("replicas", DefaultReplicas, fmt.Sprintf("bridge replicas started in cluster mode (1 to %d; a replica_add fault starts one more)", MaxReplicas))
	redundancy := fs.Int("redundancy", DefaultRedundancy, "replicas carrying each (exchange, symbol) unit, MDB_REDUNDANCY (1 to --replicas)")
	dir := fs.String("dir", "", "keep the JetStream store in this directory for inspection (default: a temporary directory, removed)")
	heapProfile := fs.String("heap-profile", "", "write a heap profile taken after the faults to this file (investigating resource growth)")
	logPath := fs.String("log", "", "write the simulator's, NATS's and the bridges' logs to this file")
	logLevel := fs.String("log-level", "info", "level of --log: debug, info, warn, error")
	if code := cli.Parse(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mdbridge chaos: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cli.ExitUsage
	}
	if !cli.Given(fs)["seed"] {
		*seed = rand.Uint64()
	}
	if *replicas < 1 || *replicas > MaxReplicas {
		fmt.Fprintf(stderr, "mdbridge chaos: --replicas %d: want 1 to %d\n", *replicas, MaxReplicas)
		return cli.ExitUsage
	}
	if !cli.Given(fs)["redundancy"] {
		*redundancy = min(*redundancy, *replicas)
	}
	if *redundancy < 1 || *redundancy > *replicas {
		fmt.Fprintf(stderr, "mdbridge chaos: --redundancy %d: want 1 to --replicas (%d)\n", *redundancy, *replicas)
		return cli.ExitUsage
	}
	if _, err := cli.ParseLevel(*logLevel); err != nil {
		fmt.Fprintf(stderr, "mdbridge chaos: --log-level: %v\n", err)
		return cli.ExitUsage
	}
	cfg := Config{
		Duration: *duration, Seed: *seed, Warmup: *warmup, Settle: *settle, FaultEvery: *every,
		HeartbeatTimeout: *heartbeat, RotationAge: *rotation, NATSPort: *natsPort, Dir: *dir,
		HeapProfile: *heapProfile, BybitDepth: *bybitDepth, SnapshotEvery: *snapshotEvery,
		Replicas: *replicas, Redundancy: *redundancy,
	}
	for k := range strings.SplitSeq(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.Kinds = append(cfg.Kinds, FaultKind(k))
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "mdbridge chaos: %v\n", err)
		return cli.ExitUsage
	}
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintf(stderr, "mdbridge chaos: --log: %v\n", err)
			return cli.ExitUsage
		}
		defer f.Close()
		cfg.ComponentLogger = cli.NewLogger(f, *logLevel, "text")
	}
	progress := cli.NewLogger(stderr, "info", "text")
	progress.Info("mdbridge chaos starting", "duration", cfg.Duration, "seed", cfg.Seed)
	rep, err := Run(ctx, cfg, progress)
	if rep != nil {
		var werr error
		if *jsonOut {
			werr = rep.WriteJSON(stdout)
		} else {
			werr = rep.WriteText(stdout)
		}
		if werr != nil {
			fmt.Fprintf(stderr, "mdbridge chaos: writing the report: %v\n", werr)
			return cli.ExitFailure
		}
	}
	switch {
	case err == nil:
		return cli.ExitOK
	case errors.Is(err, ErrSoakFailed):
		fmt.Fprintf(stderr, "mdbridge chaos: FAIL (seed %d): see the report's FAILURES\n", cfg.Seed)
	default:
		fmt.Fprintf(stderr, "mdbridge chaos: %v (seed %d)\n", err, cfg.Seed)
	}
	return cli.ExitFailure
}
