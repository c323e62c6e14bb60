package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchCommand runs `mdbridge bench` end to end with a tiny message
// count and checks the JSON report's structure and that every message of
// both phases was acknowledged (no timing assertions).
func TestBenchCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"-messages", "2000", "-symbols", "2", "-connections", "2", "-json"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if rep.Raw == nil || rep.Bridge == nil {
		t.Fatalf("missing phase: %s", out.String())
	}
	for _, ph := range []*Phase{rep.Raw, rep.Bridge} {
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
	code := Main(ctx, []string{"-messages", "500", "-rates", "5000,10k", "-storage", "memory", "-chart", chart}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	// The same sweep as JSON, redrawn with -from.
	var js bytes.Buffer
	if code := Main(ctx, []string{"-messages", "500", "-rates", "5000", "-storage", "memory", "-json"}, &js, &errb); code != exitOK {
		t.Fatalf("json sweep: exit %d; stderr:\n%s", code, errb.String())
	}
	saved := filepath.Join(t.TempDir(), "sweep.json")
	if err := os.WriteFile(saved, js.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var redrawn bytes.Buffer
	chart2 := filepath.Join(t.TempDir(), "again.svg")
	if code := Main(ctx, []string{"-from", saved, "-chart", chart2}, &redrawn, &errb); code != exitOK || !strings.Contains(redrawn.String(), "OFFERED") {
		t.Fatalf("-from: exit %d, output %q, stderr %s", code, redrawn.String(), errb.String())
	}
	if _, err := os.Stat(chart2); err != nil {
		t.Errorf("-from -chart: %v", err)
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
		{"from missing", []string{"-from", "/nonexistent/sweep.json"}, "-from"},
		{"unknown flag", []string{"-frobnicate"}, "flag provided but not defined"},
		{"sim-process without scale", []string{"-sim-process"}, "-scale only"},
		{"pin without nats-process", []string{"-pin"}, "-pin needs -nats-process"},
		{"nats-process and nats", []string{"-nats-process", "-nats", "nats://127.0.0.1:1"}, "exclude each other"},
		{"profile not writable", []string{"-cpuprofile", "/nonexistent/cpu.pprof"}, "-cpuprofile"},
		{"replicas without scale", []string{"-replicas", "2"}, "-scale only"},
		{"replicas with external nats", []string{"-scale", "-replicas", "2", "-nats", "nats://127.0.0.1:1"}, "-scale only"},
		{"zero replicas", []string{"-scale", "-replicas", "0"}, "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Main(context.Background(), tt.args, &out, &errb); code != exitUsage {
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

// TestBenchHelp checks that -h exits 0 and prints the usage line and the
// flags on stderr.
func TestBenchHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"-h"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q", out.String())
	}
	for _, want := range []string{"Usage: mdbridge bench [flags]", "-messages int", "(default 1000000)", "-sync-wait duration", "-log-level string"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, errb.String())
		}
	}
}

// TestPrintReportOnePhase prints a report with the raw phase only: the
// bridge column shows "-" and the comparison line is left out.
func TestPrintReportOnePhase(t *testing.T) {
	rep := &Report{
		Env:      Env{NATS: "embedded", GoVersion: "go1.x", OS: "linux", Arch: "amd64", NumCPU: 2, GOMAXPROCS: 2, Layout: "one process"},
		Settings: Settings{Messages: 1000, Symbols: 1, Connections: 1, Storage: "memory"},
		Raw: &Phase{Name: "raw", Messages: 1000, Acked: 1000, Complete: true, MsgsPerSec: 25400,
			Latency: Latency{P50: 750, P99: 2500, Max: 1.5e6}, ToWire: &Latency{P50: 10, P99: 20}, PeakRSS: 3 << 20, BodyBytes: 192},
	}
	var b bytes.Buffer
	printReport(&b, rep)
	out := b.String()
	for _, want := range []string{
		"mdbridge bench: 1000 msgs per phase, saturation, 1 symbol(s), 1 connection(s), memory storage, NATS embedded\n",
		"25.4k", "1000/1000", "750µs", "2.50ms", "1.50s", "10µs / 20µs", "3.0 MiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bridge/raw throughput") || strings.Contains(out, "bridge: frames") {
		t.Errorf("one-phase report compares phases:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "latency p50") && !strings.HasSuffix(strings.TrimSpace(line), "-") {
			t.Errorf("bridge column of %q is not -", line)
		}
	}
}
