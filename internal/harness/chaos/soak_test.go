package chaos

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSoak runs a short soak with a fixed seed and fails on any violated
// guarantee (lost or duplicated events, a diverged book, resource growth).
// It needs MDB_SOAK=1 (about 2.5 minutes with the defaults below);
// MDB_SOAK_DURATION (e.g. 10m), MDB_SOAK_SEED and MDB_SOAK_REPORT (a file
// for the JSON report) adjust it. The
// report, with the seed that reproduces it, is logged.
func TestSoak(t *testing.T) {
	if os.Getenv("MDB_SOAK") == "" {
		t.Skip("set MDB_SOAK=1 to run the chaos soak (about 2.5 minutes)")
	}
	cfg := Config{Duration: 100 * time.Second, Seed: 20261124, Warmup: 10 * time.Second, Settle: 20 * time.Second}
	if v := os.Getenv("MDB_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MDB_SOAK_DURATION: %v", err)
		}
		cfg.Duration = d
	}
	if v := os.Getenv("MDB_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MDB_SOAK_SEED: %v", err)
		}
		cfg.Seed = s
	}
	if os.Getenv("MDB_TEST_LOG") != "" {
		cfg.ComponentLogger = testLogger(t)
	}
	progress := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := Run(context.Background(), cfg, progress)
	if rep != nil {
		var b strings.Builder
		_ = rep.WriteText(&b)
		t.Log("\n" + b.String())
		if path := os.Getenv("MDB_SOAK_REPORT"); path != "" {
			f, ferr := os.Create(path)
			if ferr == nil {
				_ = rep.WriteJSON(f)
				f.Close()
			}
		}
	}
	switch {
	case errors.Is(err, ErrSoakFailed):
		t.Fatalf("soak failed (reproduce: MDB_SOAK=1 MDB_SOAK_SEED=%d MDB_SOAK_DURATION=%s go test -run TestSoak ./internal/harness/chaos/, or mdbridge chaos --duration %s --seed %d): %v",
			cfg.Seed, cfg.Duration, cfg.Duration, cfg.Seed, err)
	case err != nil:
		t.Fatalf("soak could not run (seed %d): %v", cfg.Seed, err)
	}
}
