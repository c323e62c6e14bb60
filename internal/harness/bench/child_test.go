package bench

import (
	"bufio"
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
)

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
		return serveNATSChild(context.Background(), t.TempDir(), in, out, io.Discard)
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
		return serveSimChild(context.Background(), 3, 30, 0, in, out, io.Discard, slog.New(slog.DiscardHandler))
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
