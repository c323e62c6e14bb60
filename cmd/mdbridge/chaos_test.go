package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestChaosFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"-h"}, exitOK, "Usage: mdbridge chaos"},
		{"unknown flag", []string{"--no-such-flag"}, exitUsage, "flag provided but not defined"},
		{"stray argument", []string{"now"}, exitUsage, `unexpected argument "now"`},
		{"unknown fault kind", []string{"--kinds", "upstream_close,meteor"}, exitUsage, `unknown fault kind "meteor"`},
		{"negative duration", []string{"--duration", "-1m"}, exitUsage, "Duration must not be negative"},
		{"bad log level", []string{"--log-level", "loud"}, exitUsage, "--log-level"},
		{"bad port", []string{"--nats-port", "99999"}, exitUsage, "NATSPort"},
		{"bad bybit depth", []string{"--bybit-depth", "25"}, exitUsage, "BybitDepth 25"},
		{"no replicas", []string{"--replicas", "0"}, exitUsage, "--replicas 0: want 1 to"},
		{"redundancy above replicas", []string{"--replicas", "2", "--redundancy", "3"}, exitUsage, "--redundancy 3: want 1 to --replicas (2)"},
		{"zero redundancy", []string{"--redundancy", "0"}, exitUsage, "--redundancy 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cmdChaos(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("code %d, stderr %q; want %d containing %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Fatalf("a refused command printed a report: %q", stdout.String())
			}
		})
	}
}

// TestChaosCommandReport runs a tiny soak through the command (MDB_SOAK=1:
// it takes about 40 s) and checks the JSON report carries the seed and a
// verdict matching the exit code, and that the soak passed: a failed soak
// fails the test.
func TestChaosCommandReport(t *testing.T) {
	if os.Getenv("MDB_SOAK") == "" {
		t.Skip("set MDB_SOAK=1 to run a short soak through the command")
	}
	var stdout, stderr bytes.Buffer
	code := cmdChaos(context.Background(), []string{"--duration", "10s", "--seed", "99", "--warmup", "3s", "--settle", "5s",
		"--kinds", "upstream_close,duplicate_flood,rest_5xx", "--json"}, &stdout, &stderr)
	var rep struct {
		Seed     uint64   `json:"seed"`
		Pass     bool     `json:"pass"`
		Failures []string `json:"failures"`
		Markets  []struct {
			Trades struct {
				Generated int64 `json:"generated"`
				InStream  int64 `json:"in_stream"`
			} `json:"trades"`
		} `json:"markets"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if rep.Seed != 99 || len(rep.Markets) == 0 || rep.Markets[0].Trades.Generated == 0 {
		t.Fatalf("report %+v", rep)
	}
	if (code == exitOK) != rep.Pass {
		t.Fatalf("exit code %d with pass=%v (failures %v)", code, rep.Pass, rep.Failures)
	}
	if !rep.Pass || code != exitOK || len(rep.Failures) != 0 {
		t.Fatalf("the soak failed: exit code %d, pass=%v, failures %v\nstderr: %s", code, rep.Pass, rep.Failures, stderr.String())
	}
	t.Logf("exit %d, soak passed", code)
}
