package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cli"
)

// demoFault is one step of the demo's fault schedule.
type demoFault struct {
	what  string
	fault exsim.Fault
	hold  time.Duration // policy faults are cleared after hold
}

var demoFaults = []demoFault{
	{what: "abrupt close of every Binance connection (trades backfilled over REST, book resynced)", fault: exsim.Fault{Kind: exsim.FaultClose, Venue: exsim.Binance}},
	{what: "30% duplicated frames for 3s (dropped before NATS)", fault: exsim.Fault{Kind: exsim.FaultDuplicate, Rate: 0.3, Scope: exsim.ScopeAll}, hold: 3 * time.Second},
	{what: "5% of book diffs skipped for 3s (each gap answered by a fresh snapshot)", fault: exsim.Fault{Kind: exsim.FaultGap, Rate: 0.05, Scope: exsim.ScopeAll}, hold: 3 * time.Second},
	{what: "Binance serverShutdown (make-before-break rotation, nothing missed)", fault: exsim.Fault{Kind: exsim.FaultShutdown, Venue: exsim.Binance, Duration: exsim.Duration(2 * time.Second)}},
	{what: "abrupt close of every Bybit connection (book re-snapshotted)", fault: exsim.Fault{Kind: exsim.FaultClose, Venue: exsim.BybitSpot}},
	{what: "3 malformed frames (counted and dropped)", fault: exsim.Fault{Kind: exsim.FaultMalformed, Count: 3, Mode: exsim.MalformedInvalidJSON, Scope: exsim.ScopeAll}, hold: 3 * time.Second},
}

// freeAddr returns addr when it can be bound, else the same host with port 0
// (any free port) or -1 for the embedded NATS server.
func freeAddr(addr, fallbackPort string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, _ := net.SplitHostPort(addr)
		return net.JoinHostPort(host, fallbackPort)
	}
	ln.Close()
	return addr
}

// cmdDemo is `mdbridge demo`: everything offline in one process, with a live
// summary, so a newcomer sees the bridge work (and recover) in seconds.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", "[-duration 0] [-faults=true] [-symbols BTCUSDT,ETHUSDT] [-rate 20]", stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0 = until Ctrl-C)")
	faults := fs.Bool("faults", true, "inject a rotating fault every -fault-every to show recovery")
	every := fs.Duration("fault-every", 8*time.Second, "period of the fault schedule")
	symbols := fs.String("symbols", "BTCUSDT,ETHUSDT", "symbols on Binance and Bybit")
	rate := fs.Float64("rate", 20, "simulated trades and book updates per second per market")
	refresh := fs.Duration("refresh", time.Second, "summary refresh period")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "mdbridge-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: %v\n", err)
		return exitFailure
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "mdbridge.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: %v\n", err)
		return exitFailure
	}
	defer logFile.Close()

	syms := splitList(strings.ToUpper(*symbols))
	markets, err := simMarkets(*symbols, []exsim.Venue{exsim.Binance, exsim.BybitSpot}, *rate, *rate)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: -symbols: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, "starting the exchange simulator, embedded NATS and the bridge (no network needed)...")
	simLogger := newLogger(logFile, "info", "text").With("component", "exsim")
	sim, err := exsim.New(exsim.Config{Markets: markets, Seed: 42}, simLogger)
	if err == nil {
		err = sim.Start(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: simulator: %v\n", err)
		return exitFailure
	}
	defer sim.Close()

	var cfg Config
	if err := envconfig.Process(envPrefix, &cfg); err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: configuration: %v\n", err)
		return exitUsage
	}
	cfg.NATSURL = ""
	cfg.EmbeddedListen = freeAddr("127.0.0.1:4222", "-1")
	cfg.DataDir = filepath.Join(dir, "nats")
	cfg.HTTPAddr = freeAddr("127.0.0.1:8080", "0")
	cfg.Instance = "demo"
	cfg.Subscribe = "binance:trade,book:" + strings.Join(syms, ",") + ";bybit:trade,book:" + strings.Join(syms, ",")
	cfg.BinanceWSURL, cfg.BinanceRESTURL = sim.BinanceWSURL(), sim.BinanceRESTURL()
	cfg.BybitWSURL, cfg.BybitRESTURL = sim.BybitWSURL(), sim.BybitRESTURL()
	cfg.USDMWSURL, cfg.USDMRESTURL = sim.BinanceUSDMWSURL(), sim.BinanceUSDMRESTURL()
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: %v\n", err)
		return exitUsage
	}
	logger := newLogger(logFile, cfg.LogLevel, "text")
	a, err := newApp(ctx, &cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: %v (log: %s)\n", err, logPath)
		return exitFailure
	}
	natsURL := a.node.Conn().ConnectedUrlRedacted()

	// Count what JetStream stored, per subject, from the stream itself.
	counts := &subjectCounts{n: map[string]uint64{}}
	cons, err := a.node.JetStream().OrderedConsumer(ctx, cfg.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{cfg.SubjectPrefix + ".>"}})
	if err == nil {
		var cc jetstream.ConsumeContext
		cc, err = cons.Consume(func(m jetstream.Msg) { counts.add(m.Subject()) })
		if err == nil {
			defer cc.Stop()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge demo: stream consumer: %v\n", err)
	}

	runDone := make(chan int, 1)
	go func() { runDone <- a.run(ctx) }()

	tty := cli.IsTerminal(stdout)
	start := time.Now()
	tick := time.NewTicker(*refresh)
	defer tick.Stop()
	var faultTick <-chan time.Time
	if *faults {
		ft := time.NewTicker(*every)
		defer ft.Stop()
		faultTick = ft.C
	}
	var (
		lastFault string
		faultAt   time.Time
		next      int
		clearAt   = map[uint64]time.Time{}
	)
	prev := map[string]uint64{}
	prevAt := start
	for {
		select {
		case code := <-runDone:
			fmt.Fprintf(stdout, "\ndemo stopped (log: %s, removed on exit)\n", logPath)
			return code
		case <-faultTick:
			f := demoFaults[next%len(demoFaults)]
			next++
			id, err := sim.InjectFault(f.fault)
			if err != nil {
				lastFault = "fault failed: " + err.Error()
			} else {
				lastFault, faultAt = f.what, time.Now()
				if f.hold > 0 {
					clearAt[id] = time.Now().Add(f.hold)
				}
			}
		case now := <-tick.C:
			for id, t := range clearAt {
				if now.After(t) {
					sim.ClearFault(id)
					delete(clearAt, id)
				}
			}
			cur := counts.snapshot()
			dt := now.Sub(prevAt).Seconds()
			if tty {
				fmt.Fprint(stdout, "\033[H\033[2J")
			}
			fmt.Fprintf(stdout, "mdbridge demo  %s elapsed  NATS %s (stream %s)  metrics http://%s/metrics\n\n",
				now.Sub(start).Round(time.Second), natsURL, cfg.Stream, a.httpAddr())
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SUBJECT\tSTORED\tEVENTS/S\tSTATE\tDUPLICATES\tGAPS\tSNAPSHOTS\tRECONNECTS\tBACKFILLED\tMISSING")
			for _, st := range a.symbolStates() {
				subj := cfg.SubjectPrefix + "." + st.Exchange + "." + st.Symbol
				rate := float64(cur[subj]-prev[subj]) / dt
				fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", subj, cur[subj], rate, st.State,
					st.Duplicates, st.Gaps, st.Snapshots, st.Reconnects, st.Backfilled, st.Missing)
			}
			tw.Flush()
			ps := a.node.Publisher().Stats()
			fmt.Fprintf(stdout, "\npublished %d  acked %d  in flight %d  JetStream duplicates %d  dropped %d\n", ps.Published, ps.Acked, ps.InFlight, ps.Duplicates, ps.Dropped)
			if lastFault != "" {
				fmt.Fprintf(stdout, "last fault (%s ago): %s\n", now.Sub(faultAt).Round(time.Second), lastFault)
			}
			fmt.Fprintf(stdout, "\nin another terminal:  MDB_NATS_URL=%s go run ./cmd/mdbridge tail %s.binance.%s\n", natsURL, cfg.SubjectPrefix, syms[0])
			fmt.Fprintf(stdout, "                      MDB_NATS_URL=%s go run ./cmd/mdbridge status --watch\n", natsURL)
			fmt.Fprintln(stdout, "Ctrl-C stops the demo.")
			prev, prevAt = cur, now
		}
	}
}

// subjectCounts counts stored messages per subject.
type subjectCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (c *subjectCounts) add(subject string) {
	c.mu.Lock()
	c.n[subject]++
	c.mu.Unlock()
}

func (c *subjectCounts) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// symbolStates returns the state of every symbol of every stream, sorted.
func (a *app) symbolStates() []symbolRow {
	var out []symbolRow
	for _, s := range a.node.Streams() {
		for _, st := range s.States() {
			out = append(out, symbolRow{SymbolState: st})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Exchange != out[j].Exchange {
			return out[i].Exchange < out[j].Exchange
		}
		return out[i].Symbol < out[j].Symbol
	})
	return out
}

// httpAddr is the bound address of the HTTP endpoints.
func (a *app) httpAddr() string {
	if a.httpLn == nil {
		return "(disabled)"
	}
	return a.httpLn.Addr().String()
}

// symbolRow is one symbol's state in the demo table.
type symbolRow struct{ bridge.SymbolState }
