package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
	// The same sweep as JSON, redrawn with -from.
	var js bytes.Buffer
	if code := cmdBench(ctx, []string{"-messages", "500", "-rates", "5000", "-storage", "memory", "-json"}, &js, &errb); code != exitOK {
		t.Fatalf("json sweep: exit %d; stderr:\n%s", code, errb.String())
	}
	saved := filepath.Join(t.TempDir(), "sweep.json")
	if err := os.WriteFile(saved, js.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var redrawn bytes.Buffer
	chart2 := filepath.Join(t.TempDir(), "again.svg")
	if code := cmdBench(ctx, []string{"-from", saved, "-chart", chart2}, &redrawn, &errb); code != exitOK || !strings.Contains(redrawn.String(), "OFFERED") {
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

// serveChild runs the child side of -nats-process or -sim-process in
// process, checks that its first line starts with prefix and returns that
// URL and a function that closes its stdin and waits for its exit code.
func serveChild(t *testing.T, prefix string, serve func(stdin io.Reader, stdout io.Writer) int) (url string, stop func()) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- serve(inR, outW) }()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Fatalf("first line %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	return strings.TrimSpace(line), func() {
		t.Helper()
		inW.Close()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("exit %d", code)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("did not stop after stdin closed")
		}
	}
}

// TestServeBenchNATS runs the child side of -nats-process in process: it
// prints a NATS URL that accepts connections and stops when stdin closes.
func TestServeBenchNATS(t *testing.T) {
	url, stop := serveChild(t, "nats://127.0.0.1:", func(in io.Reader, out io.Writer) int {
		return serveBenchNATS(context.Background(), t.TempDir(), in, out, io.Discard)
	})
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	nc.Close()
	stop()
}

// TestServeBenchSim runs the child side of -sim-process in process: it
// prints the simulator's URL, serves the scale markets there and stops
// when stdin closes.
func TestServeBenchSim(t *testing.T) {
	url, stop := serveChild(t, "http://127.0.0.1:", func(in io.Reader, out io.Writer) int {
		return serveBenchSim(context.Background(), 3, 30, in, out, io.Discard, slog.New(slog.DiscardHandler))
	})
	resp, err := http.Get(url + "/admin/markets")
	if err != nil {
		t.Fatalf("GET /admin/markets: %v", err)
	}
	var markets []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&markets)
	resp.Body.Close()
	if err != nil || len(markets) != 3 {
		t.Fatalf("markets %v, %v", markets, err)
	}
	stop()
}

// TestProcCPU compares procCPU (utime + stime from /proc/<pid>/stat, in
// 10 ms ticks) with the nanosecond CPU time of the process's threads in
// /proc/self/task/*/schedstat.
func TestProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	sched := func() time.Duration { // sum over the process's threads
		dirs, err := filepath.Glob("/proc/self/task/*/schedstat")
		if err != nil || len(dirs) == 0 {
			t.Skipf("no schedstat: %v", err)
		}
		var sum time.Duration
		for _, d := range dirs {
			b, err := os.ReadFile(d)
			if err != nil {
				continue // the thread exited
			}
			ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", d, b, err)
			}
			sum += time.Duration(ns)
		}
		return sum
	}
	for sched() < 100*time.Millisecond { // spin: use some CPU
	}
	before := sched()
	got := procCPU(os.Getpid())
	after := sched()
	if got < before-60*time.Millisecond || got > after+60*time.Millisecond {
		t.Errorf("procCPU(self) = %v, schedstat %v..%v", got, before, after)
	}
	if d := procCPU(-1); d != 0 {
		t.Errorf("procCPU(-1) = %v", d)
	}
}
