package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/internal/cli"
	"github.com/qldata/mdbridge/publisher"
)

// session is what the measuring modes share once the flags are checked:
// where NATS is, the profile files, the output and its progress line.
type session struct {
	o              *options
	stdout, stderr io.Writer
	storage        jetstream.StorageType
	bar            *progressBar
	logger         *slog.Logger
	natsURL        string
	natsDesc       string
	extCPU         func() time.Duration
	cpuF, memF     *os.File // nil when not asked for
}

// run runs the mode the flags select and returns the exit code. stdin is
// read by the child modes (-serve-nats, -serve-sim) until it closes.
func (o *options) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	if o.serveNATS != "" {
		return serveNATSChild(ctx, o.serveNATS, stdin, stdout, stderr)
	}
	if o.serveSim {
		return serveSimChild(ctx, o.symbols, o.rate, o.simWeight, stdin, stdout, stderr, cli.NewLogger(stderr, o.logLevel, "text"))
	}
	if o.set["replicas"] || o.set["redundancy"] || o.set["handover-wait"] || o.set["log-dir"] {
		if !o.scale || o.natsURL != "" || o.pin {
			fmt.Fprintln(stderr, "mdbridge bench: -replicas, -redundancy, -handover-wait and -log-dir work with -scale only, and run NATS in a child process themselves (no -nats, -pin)")
			return exitUsage
		}
		s := &session{o: o, stdout: stdout, stderr: stderr, bar: newProgressBar(stderr), logger: cli.NewLogger(stderr, o.logLevel, "text")}
		return s.runReplicas(ctx)
	}
	if o.simProc && !o.scale {
		fmt.Fprintln(stderr, "mdbridge bench: -sim-process works with -scale only (the throughput phases drive an in-process simulator)")
		return exitUsage
	}
	st, err := publisher.ParseStorage(o.storage)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench: -storage: %v\n", err)
		return exitUsage
	}
	s := &session{o: o, stdout: stdout, stderr: stderr, storage: st, natsURL: o.natsURL,
		bar: newProgressBar(stderr), logger: cli.NewLogger(stderr, o.logLevel, "text")}
	stopNATS, code := s.startNATSProcess(ctx)
	if code >= 0 {
		return code
	}
	defer stopNATS()
	err = s.createProfiles()
	defer s.cpuF.Close() // nil-safe
	defer s.memF.Close()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench: %v\n", err)
		return exitUsage
	}
	switch {
	case o.scale:
		return s.runScale(ctx)
	case o.from != "":
		return s.redrawSweep()
	case o.rates != "":
		return s.runSweep(ctx)
	case o.chart != "":
		fmt.Fprintln(stderr, "mdbridge bench: -chart needs a sweep (-rates)")
		return exitUsage
	}
	return s.runOnce(ctx)
}

// startNATSProcess starts the NATS child of -nats-process (pinned with
// -pin) and points the session at it. It returns the function that stops
// it, and the exit code to end with, or -1 to go on.
func (s *session) startNATSProcess(ctx context.Context) (stop func(), code int) {
	o, stderr := s.o, s.stderr
	if !o.natsProc {
		if o.pin {
			fmt.Fprintln(stderr, "mdbridge bench: -pin needs -nats-process")
			return nil, exitUsage
		}
		return func() {}, -1
	}
	if o.natsURL != "" {
		fmt.Fprintln(stderr, "mdbridge bench: -nats-process and -nats exclude each other")
		return nil, exitUsage
	}
	natsCPU := -1
	if o.pin {
		if natsCPU = runtime.NumCPU() - 1; natsCPU < 1 || !pinSupported {
			fmt.Fprintln(stderr, "mdbridge bench: -pin needs Linux and at least 2 CPUs")
			return nil, exitUsage
		}
	}
	child, err := startNATSChild(ctx, natsCPU, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge bench: -nats-process: %v\n", err)
		return nil, exitFailure
	}
	s.natsURL, s.extCPU = child.url, child.cpu
	s.natsDesc = "embedded, in a child process"
	if o.pin {
		cpus := make([]int, natsCPU)
		for i := range cpus {
			cpus[i] = i
		}
		if err := pinSelf(cpus); err != nil {
			child.stop()
			fmt.Fprintf(stderr, "mdbridge bench: -pin: %v\n", err)
			return nil, exitFailure
		}
		s.natsDesc = fmt.Sprintf("embedded, in a child process pinned to CPU %d; this process pinned to CPUs 0-%d", natsCPU, natsCPU-1)
	}
	return child.stop, -1
}

// createProfiles creates the files of -cpuprofile and -memprofile.
func (s *session) createProfiles() error {
	var err error
	if s.cpuF, err = createFlagFile("cpuprofile", s.o.cpuProfile); err != nil {
		return err
	}
	s.memF, err = createFlagFile("memprofile", s.o.memProfile)
	return err
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

// config is the Config of a run or sweep.
func (s *session) config() Config {
	o := s.o
	cfg := Config{
		Messages: o.messages, Duration: o.duration, Rate: o.rate, Symbols: o.symbols, Connections: o.conns,
		Size: o.size, Storage: s.storage, NATSURL: s.natsURL, MaxInFlight: o.inFlight, Phases: o.phases,
		NoCPUSplit: o.noSplit, Progress: s.bar.update, Logger: s.logger, ExternalCPU: s.extCPU, NATSDesc: s.natsDesc,
	}
	if o.set["duration"] && !o.set["messages"] {
		cfg.Messages = 0
	}
	if s.cpuF != nil { // no typed nil in the interface
		cfg.CPUProfile = s.cpuF
	}
	if s.memF != nil {
		cfg.MemProfile = s.memF
	}
	return cfg
}

// runOnce is the default mode: Run, one report.
func (s *session) runOnce(ctx context.Context) int {
	rep, err := Run(ctx, s.config())
	s.bar.done()
	if rep != nil {
		if s.o.asJSON {
			writeJSON(s.stdout, rep)
		} else {
			printReport(s.stdout, rep)
		}
	}
	return s.exit(err)
}

// runSweep is -rates: Sweep, its table or JSON, and -chart.
func (s *session) runSweep(ctx context.Context) int {
	rs, err := parseRates(s.o.rates)
	if err != nil {
		fmt.Fprintf(s.stderr, "mdbridge bench: -rates: %v\n", err)
		return exitUsage
	}
	cfg := s.config()
	if !s.o.set["messages"] {
		cfg.Messages = 0 // each point runs -duration (default 10s)
	}
	sr, err := Sweep(ctx, cfg, rs)
	s.bar.done()
	if sr != nil && len(sr.Points) > 0 {
		if s.o.asJSON {
			writeJSON(s.stdout, sr)
		} else {
			printSweep(s.stdout, sr)
		}
		if s.o.chart != "" {
			if cerr := writeChartFile(s.o.chart, sr); cerr != nil {
				fmt.Fprintf(s.stderr, "mdbridge bench: -chart: %v\n", cerr)
				return exitFailure
			}
			if !s.o.asJSON {
				fmt.Fprintf(s.stdout, "\nchart written to %s\n", s.o.chart)
			}
		}
	}
	return s.exit(err)
}

// redrawSweep is -from: a saved sweep's table, and -chart.
func (s *session) redrawSweep() int {
	from := s.o.from
	b, err := os.ReadFile(from)
	if err != nil {
		fmt.Fprintf(s.stderr, "mdbridge bench: -from: %v\n", err)
		return exitUsage
	}
	var sr SweepReport
	if err := json.Unmarshal(b, &sr); err != nil || len(sr.Points) == 0 {
		fmt.Fprintf(s.stderr, "mdbridge bench: -from %s: not the -json output of a sweep (%v)\n", from, err)
		return exitUsage
	}
	printSweep(s.stdout, &sr)
	if s.o.chart != "" {
		if err := writeChartFile(s.o.chart, &sr); err != nil {
			fmt.Fprintf(s.stderr, "mdbridge bench: -chart: %v\n", err)
			return exitFailure
		}
	}
	return exitOK
}

// runScale is -scale: Scale (with the simulator in a child process with
// -sim-process), its table or JSON.
func (s *session) runScale(ctx context.Context) int {
	o := s.o
	sc := ScaleConfig{
		Rate: o.rate, Window: o.duration, BookDepth: o.bookDepth, SyncWait: o.syncWait,
		WeightPerMinute: o.weight, BookBufferLimit: o.bookBuffer, ExternalCPU: s.extCPU, NATSDesc: s.natsDesc, NoCPUSplit: o.noSplit,
		Storage: s.storage, NATSURL: s.natsURL, Progress: s.bar.update, Logger: s.logger,
	}
	if o.set["symbols"] {
		sc.Symbols = o.symbols
	}
	if o.simProc {
		child, err := startSimChild(ctx, sc.Symbols, sc.Rate, s.stderr)
		if err != nil {
			fmt.Fprintf(s.stderr, "mdbridge bench: -sim-process: %v\n", err)
			return exitFailure
		}
		defer child.stop()
		sc.SimURL = child.url
	}
	if o.set["connections"] {
		sc.Connections = o.conns
	}
	if s.memF != nil { // no typed nil in the interface
		sc.HeapProfile = s.memF
	}
	if s.cpuF != nil {
		sc.CPUProfile = s.cpuF
	}
	rep, err := Scale(ctx, sc)
	s.bar.done()
	if rep != nil {
		if o.asJSON {
			writeJSON(s.stdout, rep)
		} else {
			printScale(s.stdout, rep)
		}
	}
	return s.exit(err)
}

// runReplicas is -scale -replicas: Replicas, its table or JSON.
func (s *session) runReplicas(ctx context.Context) int {
	o := s.o
	st, err := publisher.ParseStorage(o.storage)
	if err != nil {
		fmt.Fprintf(s.stderr, "mdbridge bench: -storage: %v\n", err)
		return exitUsage
	}
	rc := ReplicasConfig{
		Replicas: o.replicas, Redundancy: o.redundancy, Rate: o.rate, Window: o.duration,
		SyncWait: o.syncWait, HandoverWait: o.handover, BookDepth: o.bookDepth, WeightPerMinute: o.weight,
		Storage: st, LogDir: o.logDir, Progress: s.bar.update, Logger: s.logger,
	}
	if o.set["symbols"] {
		rc.Symbols = o.symbols
	}
	if o.replicas < 1 {
		fmt.Fprintln(s.stderr, "mdbridge bench: -replicas: want at least 1")
		return exitUsage
	}
	rep, err := Replicas(ctx, rc)
	s.bar.done()
	if rep != nil {
		if o.asJSON {
			writeJSON(s.stdout, rep)
		} else {
			printReplicas(s.stdout, rep)
		}
	}
	return s.exit(err)
}

// exit reports err, if any, and returns its exit code: 2 for ErrConfig,
// 1 for any other error.
func (s *session) exit(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, ErrConfig):
		fmt.Fprintf(s.stderr, "mdbridge bench: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(s.stderr, "mdbridge bench: %v\n", err)
		return exitFailure
	}
}

// parseRates parses -rates: positive numbers, comma separated, each with
// an optional k (thousands).
func parseRates(s string) ([]float64, error) {
	var out []float64
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
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

func writeChartFile(path string, sr *SweepReport) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteChart(f, sr); err != nil {
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
