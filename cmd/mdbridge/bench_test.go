package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
