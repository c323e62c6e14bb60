package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/internal/bench"
)

// TestBenchCommand runs `mdbridge bench` end to end with a tiny message
// count and checks the JSON report's structure and that every message of
// both phases was acknowledged (no timing assertions).
func TestBenchCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := cmdBench(ctx, []string{"-messages", "2000", "-symbols", "2", "-connections", "2", "-json"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if rep.Raw == nil || rep.Bridge == nil {
		t.Fatalf("missing phase: %s", out.String())
	}
	for _, ph := range []*bench.Phase{rep.Raw, rep.Bridge} {
		if !ph.Complete || ph.Messages < 2000 || ph.Acked != ph.Messages || ph.Duplicates != 0 || ph.Errors != 0 {
			t.Errorf("%s: offered %d acked %d duplicates %d errors %d complete %v", ph.Name, ph.Messages, ph.Acked, ph.Duplicates, ph.Errors, ph.Complete)
		}
		if ph.Latency.Samples != int(ph.Acked) || ph.Latency.P99 < ph.Latency.P50 || ph.Latency.Max < ph.Latency.P999 {
			t.Errorf("%s: latency %+v", ph.Name, ph.Latency)
		}
	}
	if rep.Settings.Symbols != 2 || rep.Settings.Connections != 2 || rep.Settings.Storage != "file" || rep.Env.NATS != "embedded" {
		t.Errorf("settings/env: %+v %+v", rep.Settings, rep.Env)
	}
	if c := rep.Bridge.Bridge; c == nil || c.Emitted != rep.Bridge.Messages || c.Gaps != 0 || c.Duplicates != 0 {
		t.Errorf("bridge counters: %+v", c)
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio %v", rep.Ratio)
	}
}

// TestBenchSweepChart runs a two-point sweep with the table output and
// checks the table rows and the SVG chart.
func TestBenchSweepChart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	chart := filepath.Join(t.TempDir(), "perf.svg")
	var out, errb bytes.Buffer
	code := cmdBench(ctx, []string{"-messages", "500", "-rates", "5000,10k", "-storage", "memory", "-chart", chart}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"OFFERED", "5000", "10.0k", "chart written to"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	svg, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(strings.TrimSpace(s), "</svg>") || strings.Count(s, "<polyline") != 7 {
		t.Errorf("chart: %d bytes, %d polylines", len(s), strings.Count(s, "<polyline"))
	}
}

func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"storage", []string{"-storage", "tape"}, "-storage"},
		{"chart without sweep", []string{"-chart", "x.svg"}, "needs a sweep"},
		{"bad rates", []string{"-rates", "10,abc"}, "-rates"},
		{"zero rate", []string{"-rates", "0"}, "-rates"},
		{"size out of reach", []string{"-size", "5000"}, "Size"},
		{"connections over symbols", []string{"-connections", "3"}, "Connections"},
		{"phase", []string{"-phases", "both"}, "Phases"},
		{"argument", []string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := cmdBench(context.Background(), tt.args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.want)
			}
		})
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("10000, 25k,50000")
	if err != nil || len(got) != 3 || got[0] != 10000 || got[1] != 25000 || got[2] != 50000 {
		t.Fatalf("parseRates = %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "-5", "0", "NaN"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) succeeded", bad)
		}
	}
}
