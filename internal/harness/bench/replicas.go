package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
)

// Defaults of ReplicasConfig.
const (
	DefaultReplicaRedundancy = 2
	// DefaultReplicaBookDepth is the snapshot depth of a replicas run:
	// Binance's cheapest (weight 5), so thousands of books start in minutes.
	DefaultReplicaBookDepth = 100
	// DefaultReplicaWeight is each replica's REST weight budget: Binance's
	// 6000 per minute per IP, each replica modelling a pod with its own
	// egress IP (its REST proxy dials the simulator from its own loopback
	// address).
	DefaultReplicaWeight   = 6000
	DefaultReplicaHandover = 3 * time.Minute
	// replicaInstance prefixes the replicas' MDB_INSTANCE.
	replicaInstance = "replica-"
	// simWeightLimit is the simulator's Binance weight limit per minute
	// per IP (its default, Binance's today).
	simWeightLimit = 6000
)

// ReplicasConfig configures Replicas: N `mdbridge run` processes in
// cluster mode (MDB_CLUSTER) sharing the units of ScaleMarkets.
type ReplicasConfig struct {
	// Replicas is the number of replica processes (at least 1).
	Replicas int
	// Redundancy is MDB_REDUNDANCY (default 2).
	Redundancy int
	// Symbols, Rate, Window, ConnectTimeout (here: cold start to every unit
	// carried min(R, N) times) and SyncWait are as in ScaleConfig.
	Symbols        int
	Rate           float64
	Window         time.Duration
	ConnectTimeout time.Duration
	SyncWait       time.Duration
	// HandoverWait bounds the wait, after one replica is killed, for every
	// unit to be back on min(R, N-1) live owners (default 3 min).
	HandoverWait time.Duration
	// BookDepth (default 100) and WeightPerMinute (default 6000, per
	// replica) are MDB_BINANCE_BOOK_DEPTH and MDB_BINANCE_WEIGHT_PER_MINUTE.
	BookDepth       int
	WeightPerMinute int
	// Storage is MDB_STREAM_STORAGE.
	Storage jetstream.StorageType
	// LogDir receives each child's stderr (replica-<i>.log, nats.log,
	// sim.log); "" makes a temporary directory, removed at the end unless
	// the run failed.
	LogDir   string
	Progress func(Progress)
	Logger   *slog.Logger
}

// ReplicasReport is the result of Replicas.
type ReplicasReport struct {
	Env             Env     `json:"env"`
	Replicas        int     `json:"replicas"`
	Redundancy      int     `json:"redundancy"`
	Symbols         int     `json:"symbols"` // units: one Binance symbol, trades + book
	Offered         float64 `json:"offered_msgs_per_sec"`
	BookDepth       int     `json:"book_depth"`
	WeightPerMinute int     `json:"weight_per_minute"`      // per replica
	SimWeightLimit  int     `json:"sim_weight_limit"`       // the simulator's per-IP limit; each replica's REST comes from its own IP
	Target          int     `json:"target_owners_per_unit"` // min(R, N)
	// CarriedSeconds is the time from cold start (the first replica
	// process started) to every unit on Target live CONNECTED owners in
	// md_state; MaxOwners the most owners any unit had then.
	CarriedSeconds float64 `json:"cold_start_to_carried_s"`
	UnitsCarried   int     `json:"units_carried"`
	MaxOwners      int     `json:"max_owners"`
	// BooksSyncedSeconds is the time from cold start to every owner's book
	// of every unit having its first snapshot (md_state snapshots > 0);
	// BooksSynced counts the (unit, owner) books synced then, of
	// BooksWanted.
	BooksSyncedSeconds float64 `json:"books_synced_s,omitempty"`
	BooksSynced        int     `json:"books_synced"`
	BooksWanted        int     `json:"books_wanted"`
	// Steady is the window after the books synced.
	WindowSeconds float64        `json:"window_s"`
	MsgsPerSec    float64        `json:"stream_msgs_per_sec"` // stored in the stream
	PerReplica    []ReplicaUsage `json:"per_replica"`
	// NATSCPUPercent and SimCPUPercent are the children's CPU over the
	// window.
	NATSCPUPercent float64         `json:"nats_cpu_percent_of_core"`
	SimCPUPercent  float64         `json:"sim_cpu_percent_of_core"`
	Handover       *HandoverReport `json:"handover,omitempty"`
	RateLimits     RateLimitCounts `json:"rate_limits"`
	// LogDir holds the children's logs when they were kept.
	LogDir string `json:"log_dir,omitempty"`
}

// ReplicaUsage is one replica's resources over the steady window.
type ReplicaUsage struct {
	Instance   string  `json:"instance"`
	Units      int     `json:"units"` // units CONNECTED on it at the window's end
	CPUPercent float64 `json:"cpu_percent_of_core"`
	RSS        uint64  `json:"rss_bytes"`      // at the window's end
	PeakRSS    uint64  `json:"peak_rss_bytes"` // VmHWM since the process started
	REST       uint64  `json:"rest_requests"`
	RESTErrors uint64  `json:"rest_rate_limit_errors"` // 429 + 418 + 403
}

// HandoverReport is what happened after one replica was killed (SIGKILL).
type HandoverReport struct {
	Killed string `json:"killed"`
	// UnitsAffected are the units the killed replica carried.
	UnitsAffected int `json:"units_affected"`
	// MemberGoneSeconds: from the kill to every survivor's
	// mdbridge_cluster_members showing it gone (polled every 100 ms from
	// /metrics; 0 if not observed).
	MemberGoneSeconds float64 `json:"kill_to_member_gone_s"`
	// RestoredSeconds: from the kill to every unit on Target live
	// CONNECTED owners among the survivors; SinceGoneSeconds the same from
	// the member's departure.
	RestoredSeconds  float64 `json:"kill_to_restored_s"`
	SinceGoneSeconds float64 `json:"member_gone_to_restored_s"`
	Target           int     `json:"target_owners_per_unit"`
	Restored         bool    `json:"restored"`
	// Seconds: what the server was asked, per second from the kill to
	// the end of the wait.
	Seconds []HandoverSecond `json:"per_second,omitempty"`
}

// HandoverSecond counts the requests of every client of the server (the
// survivors' and the harness's own) in one second after the kill.
type HandoverSecond struct {
	Second int `json:"s"`
	// APIRequests are the JetStream API requests ($JS.API.>), API by kind
	// ("CONSUMER.CREATE", "STREAM.INFO", ...).
	APIRequests int            `json:"jetstream_api_requests"`
	API         map[string]int `json:"api,omitempty"`
	// StateWrites are the md_state puts and deletes ($KV.md_state.>).
	StateWrites int `json:"md_state_writes"`
}

func (c ReplicasConfig) withDefaults() ReplicasConfig {
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.Redundancy = cmp.Or(c.Redundancy, DefaultReplicaRedundancy)
	c.Symbols = cmp.Or(c.Symbols, DefaultScaleSymbols)
	c.Rate = cmp.Or(c.Rate, DefaultScaleRate)
	c.Window = cmp.Or(c.Window, DefaultScaleWindow)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultScaleSyncWait)
	c.SyncWait = cmp.Or(c.SyncWait, DefaultScaleSyncWait)
	c.HandoverWait = cmp.Or(c.HandoverWait, DefaultReplicaHandover)
	c.BookDepth = cmp.Or(c.BookDepth, DefaultReplicaBookDepth)
	c.WeightPerMinute = cmp.Or(c.WeightPerMinute, DefaultReplicaWeight)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	return c
}

// Validate reports the first invalid field.
func (c ReplicasConfig) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: ReplicasConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Replicas < 0 || c.Replicas > 32:
		return bad("Replicas", "%d outside 1..32", c.Replicas)
	case c.Redundancy < 0:
		return bad("Redundancy", "%d is negative", c.Redundancy)
	case c.Symbols < 0 || c.Symbols > 100_000:
		return bad("Symbols", "%d outside 1..100000", c.Symbols)
	case c.Rate < 0:
		return bad("Rate", "%v is negative", c.Rate)
	case c.Window < 0 || c.ConnectTimeout < 0 || c.SyncWait < 0 || c.HandoverWait < 0:
		return bad("Window", "durations must not be negative")
	case c.BookDepth < 0 || c.BookDepth > 5000:
		return bad("BookDepth", "%d outside 1..5000", c.BookDepth)
	case c.WeightPerMinute < 0:
		return bad("WeightPerMinute", "%d is negative", c.WeightPerMinute)
	}
	return nil
}

// replica is one `mdbridge run` child.
type replica struct {
	name    string
	cmd     *exec.Cmd
	metrics string // http://127.0.0.1:port/metrics
	rest    *restCounter
	proxy   *http.Server
	exited  chan struct{}
	killed  bool
}

// Replicas measures N replica processes of `mdbridge run` in cluster mode
// against a simulator and a NATS server in child processes: cold start to
// every unit carried min(R, N) times, to every book synced, CPU and peak
// RSS of each replica over a steady window, then (N > 1) the handover
// after one replica is killed, and the rate-limit errors.
func Replicas(ctx context.Context, cfg ReplicasConfig) (*ReplicasReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	logDir, keepLogs := cfg.LogDir, cfg.LogDir != ""
	if keepLogs {
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: log directory: %w", ErrSetup, err)
		}
	} else {
		if logDir, err = os.MkdirTemp("", "mdbridge-bench-replicas-"); err != nil {
			return nil, err
		}
	}
	rep := &ReplicasReport{
		Replicas: cfg.Replicas, Redundancy: cfg.Redundancy, Symbols: cfg.Symbols, Offered: cfg.Rate,
		BookDepth: cfg.BookDepth, WeightPerMinute: cfg.WeightPerMinute,
		SimWeightLimit: simWeightLimit,
		Target:         min(cfg.Redundancy, cfg.Replicas),
	}
	rep.Env = Env{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), NATS: "embedded, in a child process",
		Layout: fmt.Sprintf("%d `mdbridge run` replica process(es) (MDB_CLUSTER=true); NATS, the simulator and this harness in 3 other processes", cfg.Replicas)}
	r := &replicaRun{cfg: cfg, rep: rep, exe: exe, logDir: logDir}
	err = r.run(ctx)
	r.close()
	switch {
	case err != nil:
		rep.LogDir = logDir
	case keepLogs:
		rep.LogDir = logDir
	default:
		os.RemoveAll(logDir)
	}
	return rep, err
}

// replicaRun is the state of one Replicas run.
type replicaRun struct {
	cfg    ReplicasConfig
	rep    *ReplicasReport
	exe    string
	logDir string

	natsChild, simChild *childProcess
	sim                 *remoteSim
	nc                  *nats.Conn
	js                  jetstream.JetStream
	replicas            []*replica
	states              *stateView
	files               []*os.File
}

func (r *replicaRun) progress(step string, done, total int, start time.Time, left time.Duration) {
	progress(r.cfg.Progress, Progress{Phase: "scale", Step: step, Done: uint64(done), Total: uint64(total), Elapsed: time.Since(start), Left: left})
}

func (r *replicaRun) logFile(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(r.logDir, name))
	if err == nil {
		r.files = append(r.files, f)
	}
	return f, err
}

func (r *replicaRun) run(ctx context.Context) error {
	cfg, rep := r.cfg, r.rep
	progress(cfg.Progress, Progress{Phase: "scale", Step: "setup"})
	nlog, err := r.logFile("nats.log")
	if err != nil {
		return err
	}
	if r.natsChild, err = startNATSChild(ctx, -1, nlog); err != nil {
		return fmt.Errorf("%w: NATS child: %w", ErrSetup, err)
	}
	simLog, err := r.logFile("sim.log")
	if err != nil {
		return err
	}
	if r.simChild, err = startChild(ctx, "simulator", "http://", "", -1, simLog, "-serve-sim",
		"-symbols", strconv.Itoa(cfg.Symbols), "-rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64),
		"-sim-weight-limit", strconv.Itoa(rep.SimWeightLimit)); err != nil {
		return fmt.Errorf("%w: simulator child: %w", ErrSetup, err)
	}
	if r.sim, err = newRemoteSim(r.simChild.url, cfg.Logger); err != nil {
		return err
	}
	if r.nc, err = nats.Connect(r.natsChild.url, nats.MaxReconnects(-1)); err != nil {
		return fmt.Errorf("%w: NATS: %w", ErrSetup, err)
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		return err
	}
	// Cold start.
	start := time.Now()
	for i := range cfg.Replicas {
		if err := r.startReplica(ctx, i+1); err != nil {
			return err
		}
	}
	// The replicas create md_state; the watch then delivers every entry
	// written so far before the changes.
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var kv jetstream.KeyValue
	for kv == nil {
		if kv, err = r.js.KeyValue(ctx, "md_state"); err != nil {
			kv = nil
			if time.Since(start) > cfg.ConnectTimeout {
				return fmt.Errorf("%w: bucket md_state not created within %s: %w", ErrSetup, cfg.ConnectTimeout, err)
			}
			r.progress("carried", 0, cfg.Symbols, start, 0)
			if err := r.wait(ctx, t); err != nil {
				return err
			}
		}
	}
	if r.states, err = watchStateView(ctx, kv); err != nil {
		return err
	}
	took, err := r.waitUnits(ctx, start, "carried", cfg.ConnectTimeout, "", rep.Target)
	rep.UnitsCarried, rep.MaxOwners = r.states.carried("", rep.Target)
	if err != nil {
		return fmt.Errorf("cold start: %d of %d units on %d owners after %s: %w", rep.UnitsCarried, cfg.Symbols, rep.Target, cfg.ConnectTimeout, err)
	}
	rep.CarriedSeconds = took.Seconds()

	// Books.
	rep.BooksWanted = cfg.Symbols * rep.Target
	syncEnd := start.Add(took).Add(cfg.SyncWait)
	for {
		rep.BooksSynced = r.states.booksSynced("")
		if rep.BooksSynced >= rep.BooksWanted {
			rep.BooksSyncedSeconds = time.Since(start).Seconds()
			break
		}
		r.progress("books", rep.BooksSynced, rep.BooksWanted, start, time.Until(syncEnd))
		if time.Now().After(syncEnd) {
			break
		}
		if err := r.wait(ctx, t); err != nil {
			return err
		}
	}

	// Steady window.
	if err := r.window(ctx, t); err != nil {
		return err
	}
	if cfg.Replicas > 1 {
		if err := r.handover(ctx, t); err != nil {
			return err
		}
	}
	r.rateLimits()
	return nil
}

// wait waits for the next tick, a replica's unexpected exit, or ctx.
func (r *replicaRun) wait(ctx context.Context, t *time.Ticker) error {
	for _, p := range r.replicas {
		if p.killed {
			continue
		}
		select {
		case <-p.exited:
			return fmt.Errorf("replica %s exited: %s (log in %s)", p.name, p.cmd.ProcessState, r.logDir)
		default:
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// startReplica starts `mdbridge run` as replica-i behind its own counting
// REST proxy to the simulator.
func (r *replicaRun) startReplica(ctx context.Context, i int) error {
	cfg := r.cfg
	p := &replica{name: replicaInstance + strconv.Itoa(i), rest: &restCounter{}, exited: make(chan struct{})}
	target, err := url.Parse(r.sim.BinanceRESTURL())
	if err != nil {
		return err
	}
	// The proxy reaches the simulator from a loopback address of the
	// replica's own (127.0.0.<10+i>): the simulator's per-IP weight
	// budget, and the X-MBX-USED-WEIGHT-1M it reports, are then the
	// replica's alone, as for pods with their own egress IPs.
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}).DialContext
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &countingTransport{base: tr, c: p.rest}
	// A replica abandoning a request at its deadline is its business (its
	// log says so); the proxy's own complaint would only clutter stderr.
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.proxy = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.proxy.Serve(pl) }()
	port, err := freePort()
	if err != nil {
		return err
	}
	p.metrics = "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	syms := make([]string, cfg.Symbols)
	for j, m := range ScaleMarkets(cfg.Symbols, cfg.Rate) {
		syms[j] = m.Symbol
	}
	dir, err := os.MkdirTemp(r.logDir, p.name+"-data-")
	if err != nil {
		return err
	}
	storage := "file"
	if cfg.Storage == jetstream.MemoryStorage {
		storage = "memory"
	}
	env := []string{
		"MDB_CLUSTER=true",
		"MDB_REDUNDANCY=" + strconv.Itoa(cfg.Redundancy),
		"MDB_INSTANCE=" + p.name,
		"MDB_NATS_URL=" + r.natsChild.url,
		"MDB_SUBSCRIBE=binance:trade,book:" + strings.Join(syms, ","),
		"MDB_BINANCE_WS_URL=" + r.sim.BinanceWSURL(),
		"MDB_BINANCE_REST_URL=http://" + pl.Addr().String(),
		"MDB_BINANCE_BOOK_DEPTH=" + strconv.Itoa(cfg.BookDepth),
		"MDB_BINANCE_WEIGHT_PER_MINUTE=" + strconv.Itoa(cfg.WeightPerMinute),
		"MDB_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"MDB_DATA_DIR=" + dir,
		"MDB_STREAM_STORAGE=" + storage,
		"MDB_LOG_LEVEL=" + cmp.Or(os.Getenv("MDB_BENCH_LOG_LEVEL"), "warn"),
	}
	for _, kv := range os.Environ() { // the harness's own MDB_* must not leak in
		if !strings.HasPrefix(kv, "MDB_") {
			env = append(env, kv)
		}
	}
	lf, err := r.logFile(p.name + ".log")
	if err != nil {
		return err
	}
	p.cmd = exec.CommandContext(ctx, r.exe, "run")
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, lf, lf
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %w", ErrSetup, p.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	r.replicas = append(r.replicas, p)
	return nil
}

// waitUnits waits until every unit has want live CONNECTED owners (not
// the instance dead) and returns how long after start it happened.
func (r *replicaRun) waitUnits(ctx context.Context, start time.Time, step string, timeout time.Duration, dead string, want int) (time.Duration, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	end := time.Now().Add(timeout)
	last := time.Time{}
	for {
		n, _ := r.states.carried(dead, want)
		if n >= r.cfg.Symbols {
			return time.Since(start), nil
		}
		if time.Since(last) >= 250*time.Millisecond {
			r.progress(step, n, r.cfg.Symbols, start, time.Until(end))
			last = time.Now()
		}
		if time.Now().After(end) {
			return 0, ErrIncomplete
		}
		if err := r.wait(ctx, t); err != nil {
			return 0, err
		}
	}
}

// window measures each replica's CPU and memory over the steady window.
func (r *replicaRun) window(ctx context.Context, t *time.Ticker) error {
	cfg, rep := r.cfg, r.rep
	stream, err := r.js.Stream(ctx, "MD")
	if err != nil {
		return fmt.Errorf("stream MD: %w", err)
	}
	info0, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	cpu0 := make([]time.Duration, len(r.replicas))
	for i, p := range r.replicas {
		cpu0[i] = procCPU(p.cmd.Process.Pid)
	}
	nats0, sim0, t0 := r.natsChild.cpu(), r.simChild.cpu(), time.Now()
	end := t0.Add(cfg.Window)
	for now := time.Now(); now.Before(end); now = time.Now() {
		r.progress("steady", 0, 0, t0, end.Sub(now))
		if err := r.wait(ctx, t); err != nil {
			return err
		}
	}
	el := time.Since(t0)
	info1, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / el.Seconds() }
	rep.WindowSeconds = el.Seconds()
	rep.MsgsPerSec = float64(info1.State.Msgs-info0.State.Msgs) / el.Seconds()
	rep.NATSCPUPercent, rep.SimCPUPercent = pct(r.natsChild.cpu()-nats0), pct(r.simChild.cpu()-sim0)
	owned := r.states.owned("")
	for i, p := range r.replicas {
		rss, peak := procMem(p.cmd.Process.Pid)
		rep.PerReplica = append(rep.PerReplica, ReplicaUsage{
			Instance: p.name, Units: owned[p.name], CPUPercent: pct(procCPU(p.cmd.Process.Pid) - cpu0[i]),
			RSS: rss, PeakRSS: peak,
		})
	}
	return nil
}

// handover kills the last replica and measures how long until the
// survivors' views drop it and every unit is back on its target owners.
func (r *replicaRun) handover(ctx context.Context, t *time.Ticker) error {
	cfg, rep := r.cfg, r.rep
	victim := r.replicas[len(r.replicas)-1]
	h := &HandoverReport{Killed: victim.name, UnitsAffected: r.states.owned("")[victim.name],
		Target: min(cfg.Redundancy, cfg.Replicas-1)}
	rep.Handover = h
	victim.killed = true
	counted, err := r.countHandover()
	if err != nil {
		return err
	}
	defer func() { h.Seconds = counted() }()
	kill := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", victim.name, err)
	}
	<-victim.exited
	gone := make(chan time.Time, 1)
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if at, ok := r.watchMembers(mctx, cfg.Replicas-1); ok {
			gone <- at
		}
	}()
	took, err := r.waitUnits(ctx, kill, "handover", cfg.HandoverWait, victim.name, h.Target)
	if err != nil {
		return fmt.Errorf("handover: units not back on %d live owners within %s: %w", h.Target, cfg.HandoverWait, err)
	}
	h.Restored, h.RestoredSeconds = true, took.Seconds()
	// The member's departure is usually seen before the units return; give
	// the metrics poll a moment if not.
	select {
	case at := <-gone:
		h.MemberGoneSeconds = at.Sub(kill).Seconds()
		h.SinceGoneSeconds = h.RestoredSeconds - h.MemberGoneSeconds
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// watchMembers polls the survivors' /metrics until every one reports
// want members, and returns when.
func (r *replicaRun) watchMembers(ctx context.Context, want int) (time.Time, bool) {
	client := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		all := true
		for _, p := range r.replicas {
			if p.killed {
				continue
			}
			if v, ok := metricValue(client, p.metrics, "mdbridge_cluster_members"); !ok || int(v) != want {
				all = false
				break
			}
		}
		if all {
			return time.Now(), true
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-t.C:
		}
	}
}

// metricValue reads an unlabelled gauge from a Prometheus text page.
func metricValue(client *http.Client, u, name string) (float64, bool) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// rateLimits sums the replicas' REST proxies and the simulator's counters.
func (r *replicaRun) rateLimits() {
	c := RateLimitCounts{}
	for i, p := range r.replicas {
		req, tm, b, f := p.rest.requests.Load(), p.rest.tooMany.Load(), p.rest.banned.Load(), p.rest.forbidden.Load()
		c.RESTRequests += req
		c.REST429 += tm
		c.REST418 += b
		c.REST403 += f
		if i < len(r.rep.PerReplica) {
			r.rep.PerReplica[i].REST, r.rep.PerReplica[i].RESTErrors = req, tm+b+f
		}
	}
	ss := r.sim.Stats()
	c.WSRateDisconnects, c.SlowDisconnects = ss.RateDisconnects, ss.SlowDisconnects
	c.Total = c.REST429 + c.REST418 + c.REST403 + c.WSRateDisconnects
	r.rep.RateLimits = c
}

// close stops everything: the replicas (SIGKILL: their drain would only
// wait for each other), the proxies, NATS and the simulator.
func (r *replicaRun) close() {
	if r.sim != nil && r.rep.RateLimits.RESTRequests == 0 {
		r.rateLimits()
	}
	for _, p := range r.replicas {
		if !p.killed {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
		_ = p.proxy.Close()
	}
	if r.states != nil {
		r.states.stop()
	}
	if r.nc != nil {
		r.nc.Close()
	}
	if r.simChild != nil {
		r.simChild.stop()
	}
	if r.natsChild != nil {
		r.natsChild.stop()
	}
	for _, f := range r.files {
		f.Close()
	}
}

// freePort returns a loopback TCP port free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procMem returns a process's VmRSS and VmHWM (Linux; 0 elsewhere).
func procMem(pid int) (rss, peak uint64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	return statusKB(b, "VmRSS:"), statusKB(b, "VmHWM:")
}

// stateView follows md_state: the newest entry of every key.
type stateView struct {
	mu      sync.Mutex
	entries map[string]publisher.StateEntry
	cancel  context.CancelFunc
	done    chan struct{}
}

func watchStateView(ctx context.Context, kv jetstream.KeyValue) (*stateView, error) {
	ctx, cancel := context.WithCancel(ctx)
	ch, err := publisher.WatchStates(ctx, kv, "")
	if err != nil {
		cancel()
		return nil, err
	}
	v := &stateView{entries: map[string]publisher.StateEntry{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for e := range ch {
			v.mu.Lock()
			if e.Deleted {
				delete(v.entries, e.Key)
			} else if e.Err == nil {
				v.entries[e.Key] = e
			}
			v.mu.Unlock()
		}
	}()
	return v, nil
}

func (v *stateView) stop() { v.cancel(); <-v.done }

// live calls f for every CONNECTED entry of a live instance (not dead,
// refreshed within publisher.DefaultStaleAfter).
func (v *stateView) live(dead string, f func(unit, instance string, st publisher.StateEntry)) {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.entries {
		s := e.State
		if s.State != "CONNECTED" || s.Instance == dead || now.Sub(s.Updated) > publisher.DefaultStaleAfter {
			continue
		}
		f(s.Exchange+"."+s.Symbol, s.Instance, e)
	}
}

// carried counts the units with at least want live CONNECTED owners, and
// the most owners of a unit.
func (v *stateView) carried(dead string, want int) (n, most int) {
	owners := map[string]int{}
	v.live(dead, func(unit, _ string, _ publisher.StateEntry) { owners[unit]++ })
	for _, k := range owners {
		if k >= want {
			n++
		}
		most = max(most, k)
	}
	return n, most
}

// booksSynced counts the live CONNECTED (unit, owner) entries whose book
// has had a snapshot.
func (v *stateView) booksSynced(dead string) int {
	n := 0
	v.live(dead, func(_, _ string, e publisher.StateEntry) {
		if e.State.Snapshots > 0 {
			n++
		}
	})
	return n
}

// owned counts each instance's live CONNECTED units.
func (v *stateView) owned(dead string) map[string]int {
	out := map[string]int{}
	v.live(dead, func(_, inst string, _ publisher.StateEntry) { out[inst]++ })
	return out
}

// countHandover counts, per second from now, the JetStream API requests
// (by kind, "CONSUMER.CREATE" for $JS.API.CONSUMER.CREATE.…) and the
// md_state writes of every client of the server (the harness subscribes
// to their subjects). done returns the seconds counted so far.
func (r *replicaRun) countHandover() (done func() []HandoverSecond, err error) {
	var mu sync.Mutex
	start := time.Now()
	var secs []HandoverSecond
	at := func() *HandoverSecond {
		s := int(time.Since(start) / time.Second)
		for len(secs) <= s {
			secs = append(secs, HandoverSecond{Second: len(secs)})
		}
		return &secs[s]
	}
	api, err := r.nc.Subscribe("$JS.API.>", func(m *nats.Msg) {
		toks := strings.SplitN(m.Subject, ".", 5)
		kind := strings.Join(toks[2:min(len(toks), 4)], ".")
		mu.Lock()
		defer mu.Unlock()
		h := at()
		h.APIRequests++
		if h.API == nil {
			h.API = map[string]int{}
		}
		h.API[kind]++
	})
	if err != nil {
		return nil, err
	}
	state, err := r.nc.Subscribe("$KV.md_state.>", func(*nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		at().StateWrites++
	})
	if err != nil {
		_ = api.Unsubscribe()
		return nil, err
	}
	return func() []HandoverSecond {
		_ = api.Unsubscribe()
		_ = state.Unsubscribe()
		mu.Lock()
		defer mu.Unlock()
		return secs
	}, nil
}
