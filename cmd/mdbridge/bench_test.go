package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/internal/harness/bench"
)

// TestBenchWiring checks that `mdbridge bench` reaches internal/harness/bench with
// the command's exit codes (the command itself is tested there).
func TestBenchWiring(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"bench", "-h"}, &out, &errb); code != exitOK {
		t.Fatalf("bench -h: exit %d", code)
	}
	if !strings.Contains(errb.String(), "Usage: mdbridge bench") || !strings.Contains(errb.String(), "-nats-process") {
		t.Errorf("bench -h:\n%s", errb.String())
	}
	errb.Reset()
	if code := dispatch(context.Background(), []string{"bench", "-chart", "x.svg"}, &out, &errb); code != exitUsage {
		t.Fatalf("bench -chart without -rates: exit %d, want %d; stderr %s", code, exitUsage, errb.String())
	}
}

// TestBenchScaleReplicas runs `mdbridge bench -scale -replicas 2
// -redundancy 1` small (20 units) with the built binary: two `mdbridge
// run` replica processes in cluster mode, NATS and the simulator in child
// processes. It checks the report's invariants: every unit reached its
// owner, every owner's book synced, the cluster carried each unit exactly
// R times in the steady window (per-replica units sum to units × R), both
// replicas measured, one replica killed and every unit back on a live
// owner, the survivors' views observed dropping it, and no rate-limit
// error.
func TestBenchScaleReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 5 processes")
	}
	bin := buildBinary(t)
	const units, r = 20, 1
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "-scale", "-replicas", "2", "-redundancy", strconv.Itoa(r),
		"-symbols", strconv.Itoa(units), "-rate", "200", "-duration", "2s", "-handover-wait", "2m", "-json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench -scale -replicas: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), tail(errb.String(), 4000))
	}
	var rep bench.ReplicasReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if rep.Target != r || rep.UnitsCarried != units || rep.CarriedSeconds <= 0 {
		t.Errorf("cold start: target %d, %d/%d units carried after %.2f s", rep.Target, rep.UnitsCarried, units, rep.CarriedSeconds)
	}
	if rep.BooksWanted != units*r || rep.BooksSynced < rep.BooksWanted || rep.BooksSyncedSeconds <= 0 {
		t.Errorf("books: %d/%d synced after %.2f s", rep.BooksSynced, rep.BooksWanted, rep.BooksSyncedSeconds)
	}
	if len(rep.PerReplica) != 2 {
		t.Fatalf("per replica: %+v", rep.PerReplica)
	}
	sum := 0
	for _, p := range rep.PerReplica {
		sum += p.Units
		if p.PeakRSS == 0 || p.CPUPercent <= 0 || p.REST == 0 {
			t.Errorf("%s: peak RSS %d, CPU %.1f%%, %d REST requests", p.Instance, p.PeakRSS, p.CPUPercent, p.REST)
		}
	}
	if sum != units*r {
		t.Errorf("units carried in the window: %d (per replica %+v), want %d × %d", sum, rep.PerReplica, units, r)
	}
	h := rep.Handover
	if h == nil || !h.Restored || h.UnitsAffected == 0 || h.RestoredSeconds <= 0 || h.MemberGoneSeconds <= 0 {
		t.Errorf("handover: %+v", h)
	}
	if rep.RateLimits.Total != 0 || rep.RateLimits.RESTRequests == 0 {
		t.Errorf("rate limits: %+v", rep.RateLimits)
	}
	t.Logf("carried %.1f s, books %.1f s, handover %.1f s after the kill (member gone %.1f s)",
		rep.CarriedSeconds, rep.BooksSyncedSeconds, h.RestoredSeconds, h.MemberGoneSeconds)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
