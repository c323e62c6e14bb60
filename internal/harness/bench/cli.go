package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/qldata/mdbridge/internal/cli"
)

// Exit codes of Main, the same as every mdbridge command's.
const (
	exitOK      = cli.ExitOK
	exitFailure = cli.ExitFailure // the benchmark failed or could not run
	exitUsage   = cli.ExitUsage   // bad command line (ErrConfig from the harness too)
)

// command is how `mdbridge bench` is invoked: in messages and to run this
// command again in a child process (-nats-process, -sim-process).
const command = "bench"

// Main is the command `mdbridge bench`: it parses args (the flags after
// "bench"; -h lists them), runs the mode they select and prints the report
// on stdout (a table, or JSON with -json), progress and errors on stderr.
// The modes: a raw-versus-bridge run (Run), a rate sweep with an optional
// SVG chart (-rates, Sweep, WriteChart), a redraw of a saved sweep (-from),
// the many-symbol scale test (-scale, Scale), and the internal child modes
// -serve-nats and -serve-sim, which serve until stdin closes. With
// -nats-process or -sim-process it starts those children by running the
// current executable (os.Executable) with "bench" and the child flag.
//
// It returns the process exit code: 0 on success, 2 for a bad command line
// or an ErrConfig from the harness, 1 for any other failure. Main blocks
// until the benchmark ends or ctx is done; run one at a time (see the
// package documentation).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseArgs(args, stderr)
	if code >= 0 {
		return code
	}
	return o.run(ctx, os.Stdin, stdout, stderr)
}

// options are the flags of `mdbridge bench`.
type options struct {
	messages   int
	duration   time.Duration
	size       int
	symbols    int
	conns      int
	storage    string
	natsURL    string
	natsProc   bool
	serveNATS  string
	pin        bool
	simProc    bool
	serveSim   bool
	rate       float64
	rates      string
	chart      string
	asJSON     bool
	from       string
	scale      bool
	bookDepth  int
	weight     int
	bookBuffer int
	syncWait   time.Duration
	inFlight   int
	phases     string
	cpuProfile string
	memProfile string
	noSplit    bool
	logLevel   string
	replicas   int
	redundancy int
	simWeight  int
	handover   time.Duration
	logDir     string

	set map[string]bool // the flags given on the command line
}

// parseArgs parses the command line. It returns the exit code to end with
// (help, or a usage error already reported on stderr), or -1 to go on.
func parseArgs(args []string, stderr io.Writer) (*options, int) {
	fs := cli.NewFlags(command, "[flags]   (e.g. -messages 1000000; -rates 10000,25000,50000 -chart perf.svg; -scale)", stderr)
	o := defineFlags(fs)
	if code := cli.Parse(fs, args); code >= 0 {
		return nil, code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mdbridge bench: unexpected argument %q\n", fs.Arg(0))
		return nil, exitUsage
	}
	o.set = cli.Given(fs)
	return o, -1
}

// defineFlags defines the flags on fs, with their defaults and help.
func defineFlags(fs *flag.FlagSet) *options {
	o := &options{}
	fs.IntVar(&o.messages, "messages", DefaultMessages, "messages per phase (0 with -duration: unlimited)")
	fs.DurationVar(&o.duration, "duration", 0, "run each phase this long instead of -messages (with -scale: the steady window, default 30s)")
	fs.IntVar(&o.size, "size", 0, "target message body size in bytes (0: natural, ~190; grows by padding symbol names)")
	fs.IntVar(&o.symbols, "symbols", 1, "symbols the load is spread over (with -scale: default 1000)")
	fs.IntVar(&o.conns, "connections", 1, "WebSocket connections of the bridge (with -scale: 0 = the bridge's plan)")
	fs.StringVar(&o.storage, "storage", "file", "stream storage: file or memory")
	fs.StringVar(&o.natsURL, "nats", "", "external NATS URL (nats://host:port); default an embedded server on a random port")
	fs.BoolVar(&o.natsProc, "nats-process", false, "run the embedded NATS server in a child process (as in production: NATS does not share the bridge's heap and GC); its CPU is counted")
	fs.StringVar(&o.serveNATS, "serve-nats", "", "internal: serve an embedded NATS with this store directory for -nats-process, print its URL, exit when stdin closes")
	fs.BoolVar(&o.pin, "pin", false, "with -nats-process: pin the NATS child to the last CPU and this process (simulator, bridge, raw publisher) to the others, GOMAXPROCS set to match (Linux, 2+ CPUs)")
	fs.BoolVar(&o.simProc, "sim-process", false, "scale: run the simulator in a child process, so that the memory and CPU measured are the bridge's alone")
	fs.BoolVar(&o.serveSim, "serve-sim", false, "internal: serve the scale test's simulator (-symbols, -rate) for -sim-process, print its URL, exit when stdin closes")
	fs.Float64Var(&o.rate, "rate", 0, "fixed offered load in msgs/s (0: saturation; with -scale: default 5000)")
	fs.StringVar(&o.rates, "rates", "", "sweep: comma-separated offered loads, e.g. 10000,25000,50000 (each point runs -duration, default 10s, or -messages)")
	fs.StringVar(&o.chart, "chart", "", "sweep: write an SVG chart of throughput and latency vs offered load to this file")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.from, "from", "", "sweep: do not measure; read a sweep's -json output from this file and print its table (and -chart)")
	fs.BoolVar(&o.scale, "scale", false, "scale mode: 1000 symbols (trades + books), cold start, rate limits, CPU and memory")
	fs.IntVar(&o.bookDepth, "book-depth", 0, "scale: Binance REST snapshot depth (0: the adapter default, as `run` uses)")
	fs.IntVar(&o.weight, "weight-per-minute", 0, "scale: Binance REST weight budget per minute (0: the seed's 1200, like MDB_BINANCE_WEIGHT_PER_MINUTE)")
	fs.IntVar(&o.bookBuffer, "book-buffer", 0, "scale: deltas buffered per book while it waits for a snapshot (0: the bridge's default)")
	fs.DurationVar(&o.syncWait, "sync-wait", DefaultScaleSyncWait, "scale: how long to wait for every book's first snapshot before the steady window")
	fs.IntVar(&o.inFlight, "in-flight", 0, "publishes awaiting an ack, raw and bridge alike (0: the publisher default)")
	fs.StringVar(&o.phases, "phases", "", "run a subset of the phases: comma-separated raw, ceiling, bridge (default all three)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the bridge phase's CPU profile (pprof) to this file (with -scale: the steady window's)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile taken after the bridge phase (with -scale: a heap profile at the end of the window) to this file")
	fs.BoolVar(&o.noSplit, "no-cpu-split", false, "do not profile to split CPU time by component")
	fs.IntVar(&o.replicas, "replicas", 1, "scale: run this many `mdbridge run` replica processes in cluster mode (MDB_CLUSTER) with NATS and the simulator in child processes; given (even 1), per-replica CPU and peak RSS, cold start to every unit carried, and with 2+ the handover after one replica is SIGKILLed; not given: the bridge in this process as before")
	fs.IntVar(&o.redundancy, "redundancy", DefaultReplicaRedundancy, "scale with -replicas: MDB_REDUNDANCY, the replicas carrying each unit")
	fs.DurationVar(&o.handover, "handover-wait", DefaultReplicaHandover, "scale with -replicas: how long to wait, after killing a replica, for every unit to be back on its owners")
	fs.StringVar(&o.logDir, "log-dir", "", "scale with -replicas: keep the children's logs (replica-<i>.log, nats.log, sim.log) in this directory (default: a temporary one, kept only if the run fails)")
	fs.IntVar(&o.simWeight, "sim-weight-limit", 0, "internal: with -serve-sim, the simulator's Binance REST weight limit per minute per IP (0: its default 6000)")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level of the components (logs go to stderr)")
	return o
}
