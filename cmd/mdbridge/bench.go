package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/qldata/mdbridge/internal/bench"
	"github.com/qldata/mdbridge/publisher"
)

// cmdBench is `mdbridge bench`: the bridge's throughput and latency against
// raw JetStream publishing on this machine (internal/bench), a rate sweep
// with an SVG chart, or the 1000-symbol scale test.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", "[flags]   (e.g. -messages 1000000; -rates 10000,25000,50000 -chart perf.svg; -scale)", stderr)
	messages := fs.Int("messages", bench.DefaultMessages, "messages per phase (0 with -duration: unlimited)")
	duration := fs.Duration("duration", 0, "run each phase this long instead of -messages (with -scale: the steady window, default 30s)")
	size := fs.Int("size", 0, "target message body size in bytes (0: natural, ~190; grows by padding symbol names)")
	symbols := fs.Int("symbols", 1, "symbols the load is spread over (with -scale: default 1000)")
	conns := fs.Int("connections", 1, "WebSocket connections of the bridge (with -scale: 0 = the bridge's plan)")
	storage := fs.String("storage", "file", "stream storage: file or memory")
	natsURL := fs.String("nats", "", "external NATS URL (nats://host:port); default an embedded server on a random port")
	natsProc := fs.Bool("nats-process", false, "run the embedded NATS server in a child process (as in production: NATS does not share the bridge's heap and GC); its CPU is counted")
	serveNATS := fs.String("serve-nats", "", "internal: serve an embedded NATS with this store directory for -nats-process, print its URL, exit when stdin closes")
	pin := fs.Bool("pin", false, "with -nats-process: pin the NATS child to the last CPU and this process (simulator, bridge, raw publisher) to the others, GOMAXPROCS set to match (Linux, 2+ CPUs)")
	simProc := fs.Bool("sim-process", false, "scale: run the simulator in a child process, so that the memory and CPU measured are the bridge's alone")
	serveSim := fs.Bool("serve-sim", false, "internal: serve the scale test's simulator (-symbols, -rate) for -sim-process, print its URL, exit when stdin closes")
	rate := fs.Float64("rate", 0, "fixed offered load in msgs/s (0: saturation; with -scale: default 5000)")
	rates := fs.String("rates", "", "sweep: comma-separated offered loads, e.g. 10000,25000,50000 (each point runs -duration, default 10s, or -messages)")
	chart := fs.String("chart", "", "sweep: write an SVG chart of throughput and latency vs offered load to this file")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	from := fs.String("from", "", "sweep: do not measure; read a sweep's -json output from this file and print its table (and -chart)")
	scale := fs.Bool("scale", false, "scale mode: 1000 symbols (trades + books), cold start, rate limits, CPU and memory")
	bookDepth := fs.Int("book-depth", 0, "scale: Binance REST snapshot depth (0: the adapter default, as `run` uses)")
	weight := fs.Int("weight-per-minute", 0, "scale: Binance REST weight budget per minute (0: the seed's 1200, like MDB_BINANCE_WEIGHT_PER_MINUTE)")
	bookBuffer := fs.Int("book-buffer", 0, "scale: deltas buffered per book while it waits for a snapshot (0: the bridge's default)")
	syncWait := fs.Duration("sync-wait", bench.DefaultScaleSyncWait, "scale: how long to wait for every book's first snapshot before the steady window")
	inFlight := fs.Int("in-flight", 0, "publishes awaiting an ack, raw and bridge alike (0: the publisher default)")
	phases := fs.String("phases", "", "run only one phase: raw or bridge")
	cpuProfile := fs.String("cpuprofile", "", "write the bridge phase's CPU profile (pprof) to this file (with -scale: the steady window's)")
	memProfile := fs.String("memprofile", "", "write an allocation profile taken after the bridge phase (with -scale: a heap profile at the end of the window) to this file")
	noSplit := fs.Bool("no-cpu-split", false, "do not profile to split CPU time by component")
	logLevel := fs.String("log-level", "error", "log level of the components (logs go to stderr)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mdbridge bench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *serveNATS != "" {
		return serveBenchNATS(ctx, *serveNATS, os.Stdin, stdout, stderr)
	}
	if *serveSim {
		return serveBenchSim(ctx, *symbols, *rate, os.Stdin, stdout, stderr, newLogger(stderr, *logLevel, "text"))
	}
	if *simProc && !*scale {
		fmt.Fprintln(stderr, "mdbridge bench: -sim-process works with -scale only (the throughput phases drive an in-process simulator)")
		return exitUsage
	}
	st, err := publisher.ParseStorage(*storage)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench: -storage: %v\n", err)
		return exitUsage
	}
	bar := newProgressBar(stderr)
	logger := newLogger(stderr, *logLevel, "text")
	var (
		extCPU   func() time.Duration
		natsDesc string
	)
	if *natsProc {
		if *natsURL != "" {
			fmt.Fprintln(stderr, "mdbridge bench: -nats-process and -nats exclude each other")
			return exitUsage
		}
		natsCPU := -1
		if *pin {
			if natsCPU = runtime.NumCPU() - 1; natsCPU < 1 || !pinSupported {
				fmt.Fprintln(stderr, "mdbridge bench: -pin needs Linux and at least 2 CPUs")
				return exitUsage
			}
		}
		child, err := startNATSProcess(ctx, natsCPU, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "mdbridge bench: -nats-process: %v\n", err)
			return exitFailure
		}
		defer child.stop()
		*natsURL, extCPU = child.url, child.cpu
		natsDesc = "embedded, in a child process"
		if *pin {
			cpus := make([]int, natsCPU)
			for i := range cpus {
				cpus[i] = i
			}
			if err := pinSelf(cpus); err != nil {
				fmt.Fprintf(stderr, "mdbridge bench: -pin: %v\n", err)
				return exitFailure
			}
			natsDesc = fmt.Sprintf("embedded, in a child process pinned to CPU %d; this process pinned to CPUs 0-%d", natsCPU, natsCPU-1)
		}
	} else if *pin {
		fmt.Fprintln(stderr, "mdbridge bench: -pin needs -nats-process")
		return exitUsage
	}
	cpuF, err := createFlagFile("cpuprofile", *cpuProfile)
	var memF *os.File
	if err == nil {
		memF, err = createFlagFile("memprofile", *memProfile)
	}
	defer cpuF.Close() // nil-safe
	defer memF.Close()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench: %v\n", err)
		return exitUsage
	}

	if *scale {
		sc := bench.ScaleConfig{
			Rate: *rate, Window: *duration, BookDepth: *bookDepth, SyncWait: *syncWait,
			WeightPerMinute: *weight, BookBufferLimit: *bookBuffer, ExternalCPU: extCPU, NATSDesc: natsDesc, NoCPUSplit: *noSplit,
			Storage: st, NATSURL: *natsURL, Progress: bar.update, Logger: logger,
		}
		if set["symbols"] {
			sc.Symbols = *symbols
		}
		if *simProc {
			child, err := startSimProcess(ctx, sc.Symbols, sc.Rate, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "mdbridge bench: -sim-process: %v\n", err)
				return exitFailure
			}
			defer child.stop()
			sc.SimURL = child.url
		}
		if set["connections"] {
			sc.Connections = *conns
		}
		if memF != nil {
			sc.HeapProfile = memF
		}
		if cpuF != nil {
			sc.CPUProfile = cpuF
		}
		rep, err := bench.Scale(ctx, sc)
		bar.done()
		if rep != nil {
			if *asJSON {
				writeJSON(stdout, rep)
			} else {
				printScale(stdout, rep)
			}
		}
		return benchExit(stderr, err)
	}

	cfg := bench.Config{
		Messages: *messages, Duration: *duration, Rate: *rate, Symbols: *symbols, Connections: *conns,
		Size: *size, Storage: st, NATSURL: *natsURL, MaxInFlight: *inFlight, Phases: *phases,
		NoCPUSplit: *noSplit, Progress: bar.update, Logger: logger, ExternalCPU: extCPU, NATSDesc: natsDesc,
	}
	if set["duration"] && !set["messages"] {
		cfg.Messages = 0
	}
	if cpuF != nil {
		cfg.CPUProfile = cpuF
	}
	if memF != nil {
		cfg.MemProfile = memF
	}

	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			fmt.Fprintf(stderr, "mdbridge bench: -from: %v\n", err)
			return exitUsage
		}
		var sr bench.SweepReport
		if err := json.Unmarshal(b, &sr); err != nil || len(sr.Points) == 0 {
			fmt.Fprintf(stderr, "mdbridge bench: -from %s: not the -json output of a sweep (%v)\n", *from, err)
			return exitUsage
		}
		printSweep(stdout, &sr)
		if *chart != "" {
			if err := writeChartFile(*chart, &sr); err != nil {
				fmt.Fprintf(stderr, "mdbridge bench: -chart: %v\n", err)
				return exitFailure
			}
		}
		return exitOK
	}
	if *rates != "" {
		rs, err := parseRates(*rates)
		if err != nil {
			fmt.Fprintf(stderr, "mdbridge bench: -rates: %v\n", err)
			return exitUsage
		}
		if !set["messages"] {
			cfg.Messages = 0 // each point runs -duration (default 10s)
		}
		sr, err := bench.Sweep(ctx, cfg, rs)
		bar.done()
		if sr != nil && len(sr.Points) > 0 {
			if *asJSON {
				writeJSON(stdout, sr)
			} else {
				printSweep(stdout, sr)
			}
			if *chart != "" {
				if cerr := writeChartFile(*chart, sr); cerr != nil {
					fmt.Fprintf(stderr, "mdbridge bench: -chart: %v\n", cerr)
					return exitFailure
				}
				if !*asJSON {
					fmt.Fprintf(stdout, "\nchart written to %s\n", *chart)
				}
			}
		}
		return benchExit(stderr, err)
	}
	if *chart != "" {
		fmt.Fprintln(stderr, "mdbridge bench: -chart needs a sweep (-rates)")
		return exitUsage
	}
	rep, err := bench.Run(ctx, cfg)
	bar.done()
	if rep != nil {
		if *asJSON {
			writeJSON(stdout, rep)
		} else {
			printReport(stdout, rep)
		}
	}
	return benchExit(stderr, err)
}

// childProcess is this binary serving a part of the benchmark in a child
// process (`mdbridge bench -serve-nats <dir>` or `-serve-sim`): it prints
// its URL on the first line of stdout and exits when its stdin closes.
type childProcess struct {
	what  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
	dir   string // removed at stop, if set
}

// startNATSProcess starts an embedded NATS server in a child process,
// pinned to CPU pin if pin >= 0.
func startNATSProcess(ctx context.Context, pin int, stderr io.Writer) (*childProcess, error) {
	dir, err := os.MkdirTemp("", "mdbridge-bench-nats-")
	if err != nil {
		return nil, err
	}
	return startChild(ctx, "NATS server", "nats://", dir, pin, stderr, "-serve-nats", dir)
}

// startSimProcess starts the scale test's simulator in a child process.
func startSimProcess(ctx context.Context, symbols int, rate float64, stderr io.Writer) (*childProcess, error) {
	return startChild(ctx, "simulator", "http://", "", -1, stderr, "-serve-sim",
		"-symbols", strconv.Itoa(symbols), "-rate", strconv.FormatFloat(rate, 'f', -1, 64))
}

// startChild runs `<this binary> bench args...` (on CPU pin only, if pin
// >= 0) and waits for the URL it prints (which must start with prefix).
func startChild(ctx context.Context, what, prefix, dir string, pin int, stderr io.Writer, args ...string) (*childProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &childProcess{what: what, dir: dir, cmd: exec.Command(exe, append([]string{"bench"}, args...)...)}
	p.cmd.Stderr = stderr
	out, err := p.cmd.StdoutPipe()
	if err == nil {
		p.stdin, err = p.cmd.StdinPipe()
	}
	if err == nil {
		if pin >= 0 {
			err = startPinned(p.cmd, pin)
		} else {
			err = p.cmd.Start()
		}
	}
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() { // drain
		}
	}()
	select {
	case u, ok := <-line:
		if ok && strings.HasPrefix(u, prefix) {
			p.url = u
			return p, nil
		}
		err = fmt.Errorf("child %s did not start (first line %q)", what, u)
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("child %s did not report its URL within 30s", what)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.stop()
	return nil, err
}

// cpu returns the child's CPU time so far (Linux /proc; 0 elsewhere).
func (p *childProcess) cpu() time.Duration { return procCPU(p.cmd.Process.Pid) }

// stop closes the child's stdin (it shuts down and exits), waits for it,
// and removes its store.
func (p *childProcess) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// procCPU reads a process's user + system CPU time from /proc/<pid>/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// serveBenchNATS is the child side of -nats-process: an embedded NATS
// server on a random loopback port until stdin closes or ctx ends.
func serveBenchNATS(ctx context.Context, dir string, stdin io.Reader, stdout, stderr io.Writer) int {
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Host: "127.0.0.1", Port: -1, StoreDir: dir}, nil)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench -serve-nats: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, srv.ClientURL())
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return exitOK
}

// serveBenchSim is the child side of -sim-process: the scale test's
// simulator on a random loopback port until stdin closes or ctx ends.
func serveBenchSim(ctx context.Context, symbols int, rate float64, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, stdin); cancel() }()
	err := bench.ServeSim(ctx, symbols, rate, log, func(url string) { fmt.Fprintln(stdout, url) })
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench -serve-sim: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func benchExit(stderr io.Writer, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, bench.ErrConfig):
		fmt.Fprintf(stderr, "mdbridge bench: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "mdbridge bench: %v\n", err)
		return exitFailure
	}
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, p := range splitList(s) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.ToLower(p), "k"), 64)
		if err != nil || !(v > 0) {
			return nil, fmt.Errorf("%q is not a positive rate", p)
		}
		if strings.HasSuffix(strings.ToLower(p), "k") {
			v *= 1000
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	return out, nil
}

// createFlagFile creates the file a flag names; nil (and no error) when
// path is empty. Close on a nil *os.File is harmless.
func createFlagFile(flagName, path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-%s: %w", flagName, err)
	}
	return f, nil
}

func writeChartFile(path string, sr *bench.SweepReport) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := bench.WriteChart(f, sr); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// printReport prints a Run report as a table.
func printReport(w io.Writer, r *bench.Report) {
	s := r.Settings
	load := "saturation"
	if s.Rate > 0 {
		load = fmt.Sprintf("offered %s msgs/s", fmtCount(s.Rate))
	}
	fmt.Fprintf(w, "mdbridge bench: %s, %s, %d symbol(s), %d connection(s), %s storage, NATS %s\n",
		runLength(s), load, s.Symbols, s.Connections, s.Storage, r.Env.NATS)
	fmt.Fprintf(w, "%s %s/%s, %d CPUs, GOMAXPROCS %d; %s\n\n", r.Env.GoVersion, r.Env.OS, r.Env.Arch, r.Env.NumCPU, r.Env.GOMAXPROCS, r.Env.Layout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	phases := []*bench.Phase{r.Raw, r.Bridge}
	row := func(name string, f func(p *bench.Phase) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, p := range phases {
			if p == nil {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t", f(p))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "\traw JetStream\tbridge\t")
	row("msgs/s", func(p *bench.Phase) string { return fmtCount(p.MsgsPerSec) })
	row("acked / offered", func(p *bench.Phase) string { return fmt.Sprintf("%d/%d", p.Acked, p.Messages) })
	row("complete", func(p *bench.Phase) string { return strconv.FormatBool(p.Complete) })
	row("seconds", func(p *bench.Phase) string { return fmt.Sprintf("%.2f", p.Seconds) })
	row("offered msgs/s", func(p *bench.Phase) string { return fmtCount(p.Offered) })
	row("latency p50", func(p *bench.Phase) string { return fmtMicros(p.Latency.P50) })
	row("latency p90", func(p *bench.Phase) string { return fmtMicros(p.Latency.P90) })
	row("latency p99", func(p *bench.Phase) string { return fmtMicros(p.Latency.P99) })
	row("latency p99.9", func(p *bench.Phase) string { return fmtMicros(p.Latency.P999) })
	row("latency max", func(p *bench.Phase) string { return fmtMicros(p.Latency.Max) })
	row("sim -> bridge p50/p99", func(p *bench.Phase) string {
		if p.Stages == nil {
			return "-"
		}
		return fmtMicros(p.Stages.ToReceive.P50) + " / " + fmtMicros(p.Stages.ToReceive.P99)
	})
	row("bridge -> ack p50/p99", func(p *bench.Phase) string {
		if p.Stages == nil {
			return "-"
		}
		return fmtMicros(p.Stages.ReceiveToAck.P50) + " / " + fmtMicros(p.Stages.ReceiveToAck.P99)
	})
	row("bridge -> NATS socket p50/p99", func(p *bench.Phase) string {
		if p.Stages == nil || p.Stages.ReceiveToWire == nil {
			return "-"
		}
		return fmtMicros(p.Stages.ReceiveToWire.P50) + " / " + fmtMicros(p.Stages.ReceiveToWire.P99)
	})
	row("to NATS socket p50/p99", func(p *bench.Phase) string {
		if p.ToWire == nil {
			return "-"
		}
		return fmtMicros(p.ToWire.P50) + " / " + fmtMicros(p.ToWire.P99)
	})
	row("CPU s / 1M msgs", func(p *bench.Phase) string { return fmt.Sprintf("%.2f", p.CPUPerMillion) })
	row("CPU split", func(p *bench.Phase) string { return fmtSplit(p.CPUSplit) })
	row("peak RSS", func(p *bench.Phase) string { return fmtBytes(p.PeakRSS) })
	row("body bytes", func(p *bench.Phase) string { return strconv.Itoa(p.BodyBytes) })
	tw.Flush()
	if r.Raw != nil && r.Bridge != nil {
		fmt.Fprintf(w, "\nbridge/raw throughput: %.3f   bridge-added p99: %s", r.Ratio, fmtMicros(r.AddedP99))
		if r.Raw.ToWire != nil && r.Bridge.ToWire != nil {
			fmt.Fprintf(w, " (to the NATS socket: %s)", fmtMicros(r.AddedP99ToWire))
		}
		fmt.Fprintln(w)
	}
	if b := r.Bridge; b != nil && b.Bridge != nil {
		c := b.Bridge
		fmt.Fprintf(w, "bridge: frames %d, emitted %d, duplicates %d, gaps %d, reconnects %d; publisher retries %d, failures %d, dropped %d\n",
			c.Frames, c.Emitted, c.Duplicates, c.Gaps, c.Reconnects, c.Retries, c.Failures, c.Dropped)
	}
	fmt.Fprintln(w, "latency: message creation (raw: harness clock; bridge: simulator trade time, µs) to its JetStream ack read off the publishing connection;")
	fmt.Fprintln(w, "         the bridge's is split at its receive time (recv_ts): sim -> bridge, bridge -> ack;")
	fmt.Fprintln(w, "         to NATS socket: creation to the message's bytes handed to the publishing connection's socket (no server time)")
}

func runLength(s bench.Settings) string {
	switch {
	case s.Messages > 0 && s.DurationSec > 0:
		return fmt.Sprintf("%d msgs or %gs per phase", s.Messages, s.DurationSec)
	case s.DurationSec > 0:
		return fmt.Sprintf("%gs per phase", s.DurationSec)
	default:
		return fmt.Sprintf("%d msgs per phase", s.Messages)
	}
}

// printSweep prints one row per offered load.
func printSweep(w io.Writer, sr *bench.SweepReport) {
	e := sr.Env
	fmt.Fprintf(w, "mdbridge bench sweep: NATS %s, %s %s/%s, %d CPUs, GOMAXPROCS %d\n\n", e.NATS, e.GoVersion, e.OS, e.Arch, e.NumCPU, e.GOMAXPROCS)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OFFERED\tRAW MSG/S\tBRIDGE MSG/S\tRATIO\tRAW P50\tRAW P99\tBRIDGE P50\tBRIDGE P99\tBRIDGE P99.9\tADDED P99\tADDED P99 TO SOCKET\tCPU S/1M RAW\tCPU S/1M BRIDGE\t")
	for _, p := range sr.Points {
		raw, br := p.Raw, p.Bridge
		if raw == nil || br == nil {
			continue
		}
		toSocket := "-"
		if raw.ToWire != nil && br.ToWire != nil {
			toSocket = fmtMicros(p.AddedP99ToWire)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", fmtCount(p.Settings.Rate),
			fmtCount(raw.MsgsPerSec), fmtCount(br.MsgsPerSec), p.Ratio,
			fmtMicros(raw.Latency.P50), fmtMicros(raw.Latency.P99), fmtMicros(br.Latency.P50), fmtMicros(br.Latency.P99),
			fmtMicros(br.Latency.P999), fmtMicros(p.AddedP99), toSocket, raw.CPUPerMillion, br.CPUPerMillion)
	}
	tw.Flush()
}

// printScale prints a Scale report.
func printScale(w io.Writer, r *bench.ScaleReport) {
	e := r.Env
	fmt.Fprintf(w, "mdbridge bench -scale: %d Binance symbols (%d topics: trades + books) over %d connection(s), offered %s msgs/s\n",
		r.Symbols, r.Topics, r.Connections, fmtCount(r.Offered))
	fmt.Fprintf(w, "Binance REST: book depth %d, %d weight/minute; book buffer %d deltas\n", r.BookDepth, r.WeightPerMinute, r.BookBufferLimit)
	fmt.Fprintf(w, "%s %s/%s, %d CPUs, GOMAXPROCS %d, NATS %s; %s\n\n", e.GoVersion, e.OS, e.Arch, e.NumCPU, e.GOMAXPROCS, e.NATS, e.Layout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	st := r.Steady
	fmt.Fprintf(tw, "cold start to all CONNECTED\t%.2f s\n", r.ConnectedSeconds)
	synced := fmt.Sprintf("%d/%d", r.BooksSynced, r.Symbols)
	if r.BooksSyncedSeconds > 0 {
		synced += fmt.Sprintf(" after %.1f s", r.BooksSyncedSeconds)
	}
	fmt.Fprintf(tw, "order books synced\t%s\n", synced)
	rl := r.RateLimits
	fmt.Fprintf(tw, "rate-limit errors\t%d (REST 429: %d, 418: %d, 403: %d of %d requests; WS rate disconnects: %d)\n",
		rl.Total, rl.REST429, rl.REST418, rl.REST403, rl.RESTRequests, rl.WSRateDisconnects)
	fmt.Fprintf(tw, "reconnects / slow-consumer cuts\t%d / %d\n", rl.Reconnects, rl.SlowDisconnects)
	fmt.Fprintf(tw, "steady window\t%.1f s at %s acked msgs/s\n", st.Seconds, fmtCount(st.MsgsPerSec))
	if st.ProcessCPUPercent != st.CPUPercent {
		fmt.Fprintf(tw, "CPU (this process / with NATS)\t%.1f%% / %.1f%% of one core\n", st.ProcessCPUPercent, st.CPUPercent)
	} else {
		fmt.Fprintf(tw, "CPU (whole process)\t%.1f%% of one core\n", st.CPUPercent)
	}
	if len(st.CPUSplit) > 0 {
		fmt.Fprintf(tw, "CPU by component\t%s\n", fmtPercents(st.CPUSplit))
	}
	fmt.Fprintf(tw, "RSS now / peak\t%s / %s (heap in use %s)\n", fmtBytes(st.RSS), fmtBytes(st.PeakRSS), fmtBytes(st.HeapInuse))
	gs := fmt.Sprint(st.Goroutines)
	if len(st.GoroutineSplit) > 0 {
		var parts []string
		for _, k := range sortedKeys(st.GoroutineSplit) {
			parts = append(parts, fmt.Sprintf("%s %d", k, st.GoroutineSplit[k]))
		}
		gs += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(tw, "goroutines\t%s\n", gs)
	tw.Flush()
}

func fmtCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtMicros(us float64) string {
	neg := us < 0
	if neg {
		us = -us
	}
	var s string
	switch {
	case us >= 1e6:
		s = fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		s = fmt.Sprintf("%.2fms", us/1e3)
	default:
		s = fmt.Sprintf("%.0fµs", us)
	}
	if neg {
		return "-" + s
	}
	return s
}

func fmtBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}

// fmtSplit shows CPU seconds by component as shares of their sum.
func fmtSplit(split map[string]float64) string {
	if len(split) == 0 {
		return "-"
	}
	sum := 0.0
	for _, v := range split {
		sum += v
	}
	var parts []string
	for _, k := range sortedKeys(split) {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*split[k]/sum))
	}
	return strings.Join(parts, " ")
}

func fmtPercents(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// sortedKeys returns m's keys by decreasing value.
func sortedKeys[V int | float64](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}

// progressBar renders bench.Progress on stderr: a redrawn line on a
// terminal, a line every few seconds otherwise.
type progressBar struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	last   time.Time
	phase  string
	drawn  bool
	width  int
	lastLn int
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, tty: isTerminal(w), width: 30}
}

func (b *progressBar) update(p bench.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	newPhase := p.Phase+p.Step != b.phase
	if !b.tty && !newPhase && now.Sub(b.last) < 5*time.Second {
		return
	}
	b.phase, b.last = p.Phase+p.Step, now
	frac := -1.0
	switch {
	case p.Total > 0:
		frac = min(float64(p.Done)/float64(p.Total), 1)
	case p.Left > 0 && p.Elapsed > 0:
		frac = float64(p.Elapsed) / float64(p.Elapsed+p.Left)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-14s %-8s ", p.Phase, p.Step)
	if frac >= 0 {
		n := int(frac * float64(b.width))
		sb.WriteString("[" + strings.Repeat("#", n) + strings.Repeat(".", b.width-n) + "]")
		fmt.Fprintf(&sb, " %3.0f%%", 100*frac)
	}
	if p.Total > 0 {
		fmt.Fprintf(&sb, " %d/%d", p.Done, p.Total)
	} else if p.Done > 0 {
		fmt.Fprintf(&sb, " %d", p.Done)
	}
	if p.Rate > 0 {
		fmt.Fprintf(&sb, " %s/s", fmtCount(p.Rate))
	}
	if p.Elapsed > 0 {
		fmt.Fprintf(&sb, " %s", p.Elapsed.Round(100*time.Millisecond))
	}
	line := sb.String()
	if b.tty {
		pad := ""
		if len(line) < b.lastLn {
			pad = strings.Repeat(" ", b.lastLn-len(line))
		}
		fmt.Fprintf(b.w, "\r%s%s", line, pad)
		b.lastLn = len(line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

// done ends the progress line.
func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty && b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
