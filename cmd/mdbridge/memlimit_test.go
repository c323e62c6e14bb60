package main

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: 90% of a numeric cgroup limit becomes the Go soft
// memory limit; "max", a missing file or GOMEMLIMIT leave it alone.
func TestSetMemoryLimit(t *testing.T) {
	old := cgroupMemoryMax
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { cgroupMemoryMax = old; debug.SetMemoryLimit(prev) })
	dir := t.TempDir()
	cgroupMemoryMax = filepath.Join(dir, "memory.max")
	log := slog.New(slog.DiscardHandler)
	t.Setenv("GOMEMLIMIT", "")

	if got := setMemoryLimit(log); got != 0 {
		t.Errorf("no file: limit %d", got)
	}
	if err := os.WriteFile(cgroupMemoryMax, []byte("max\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := setMemoryLimit(log); got != 0 {
		t.Errorf("max: limit %d", got)
	}
	if err := os.WriteFile(cgroupMemoryMax, []byte("536870912\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := int64(536870912 * 9 / 10)
	if got := setMemoryLimit(log); got != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("512 MiB: limit %d (runtime %d), want %d", got, debug.SetMemoryLimit(-1), want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "300MiB")
	if got := setMemoryLimit(log); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: limit %d", got)
	}
}
