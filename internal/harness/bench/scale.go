package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/resilience"
)

// Defaults of ScaleConfig.
const (
	DefaultScaleSymbols  = 1000
	DefaultScaleRate     = 5000
	DefaultScaleWindow   = 30 * time.Second
	DefaultScaleConnect  = 120 * time.Second
	DefaultScaleSyncWait = 5 * time.Minute
	// Per-symbol caps of the simulated rates: Binance's depth@100ms stream
	// carries at most 10 updates per second.
	maxBookRate  = 10
	maxTradeRate = 250
)

// ScaleConfig configures Scale. The zero value is the scenario:
// 1000 Binance symbols with trades and books, about 5000 messages per
// second in aggregate, an embedded NATS server with file storage.
type ScaleConfig struct {
	// Symbols is the number of Binance symbols (default 1000), each
	// subscribed to trades and order book diffs.
	Symbols int
	// Rate is the aggregate offered load in messages per second (default
	// 5000), half trades, half book diffs, spread over the symbols with a
	// Zipf-like skew (a few busy symbols, a long quiet tail), capped per
	// symbol at 250 trades and 10 book updates per second.
	Rate float64
	// Connections caps the WebSocket connections (0: the bridge's plan,
	// the fewest the venue allows).
	Connections int
	// Window is the steady-state measurement window after every
	// connection is up and the books are synced (default 30 s).
	Window time.Duration
	// ConnectTimeout bounds the cold start to all CONNECTED (default 2 min).
	ConnectTimeout time.Duration
	// SyncWait bounds the wait for every order book's first snapshot
	// before the window starts anyway (default 5 min).
	SyncWait time.Duration
	// BookDepth is the Binance REST snapshot depth (0: the adapter's
	// default, as `mdbridge run` uses; its request weight decides how fast
	// a thousand books can start under the REST limit).
	BookDepth int
	// WeightPerMinute is the Binance REST weight budget per minute (0: the
	// seed's 1200 from resilience.ExchangeDefaults, as `mdbridge run`'s
	// MDB_BINANCE_WEIGHT_PER_MINUTE default; Binance allows 6000 today).
	WeightPerMinute int
	// BookBufferLimit is the bridge's per-book delta buffer while a book
	// waits for its snapshot (0: the bridge's default).
	BookBufferLimit int
	// HeapProfile, if set, receives a heap profile (pprof "heap", taken
	// after a garbage collection) at the end of the window.
	HeapProfile io.Writer
	// CPUProfile, if set, receives the CPU profile (pprof) of the steady
	// window.
	CPUProfile io.Writer
	// NoCPUSplit turns the profiler off during the window (no per-component
	// split, no CPUProfile): the CPU figure then carries no profiling cost.
	NoCPUSplit bool
	// SimURL is the base URL (http://host:port) of a simulator in another
	// process serving ScaleMarkets(Symbols, Rate) (see ServeSim), so that
	// the process measured holds the bridge alone; "" starts one in this
	// process (its memory and CPU then count, labelled sim).
	SimURL string
	// ExternalCPU and NATSDesc are as in Config: CPU of a NATS server in
	// another process is added to the window's CPU (as "nats").
	ExternalCPU func() time.Duration
	NATSDesc    string
	// Storage, NATSURL, StoreDir, Progress and Logger are as in Config.
	Storage  jetstream.StorageType
	NATSURL  string
	StoreDir string
	Progress func(Progress)
	Logger   *slog.Logger
}

// ScaleReport is the result of Scale.
type ScaleReport struct {
	Env         Env     `json:"env"`
	Symbols     int     `json:"symbols"`
	Topics      int     `json:"topics"`
	Connections int     `json:"connections"`
	Offered     float64 `json:"offered_msgs_per_sec"` // configured aggregate rate
	// BookDepth, WeightPerMinute and BookBufferLimit are the effective
	// settings (0: the component's default).
	BookDepth       int `json:"book_depth"`
	WeightPerMinute int `json:"weight_per_minute"`
	BookBufferLimit int `json:"book_buffer_limit"`
	// ConnectedSeconds is the time from cold start (bridge, publisher and
	// NATS connections created) to every connection CONNECTED with every
	// topic subscribed.
	ConnectedSeconds float64 `json:"cold_start_to_connected_s"`
	// BooksSynced is how many order books had their first snapshot when
	// the window started; BooksSyncedSeconds how long after cold start the
	// last one came (0 if not all did within SyncWait).
	BooksSynced        int     `json:"books_synced"`
	BooksSyncedSeconds float64 `json:"books_synced_s,omitempty"`
	// RateLimits counts rate-limit errors and what the REST calls were.
	RateLimits RateLimitCounts `json:"rate_limits"`
	Steady     Steady          `json:"steady"`
}

// RateLimitCounts are rate-limit signals from both sides: the simulator's
// answers as seen by the adapter's HTTP client, and the simulator's own
// disconnect counters.
type RateLimitCounts struct {
	RESTRequests uint64 `json:"rest_requests"`
	REST429      uint64 `json:"rest_429"`
	REST418      uint64 `json:"rest_418"`
	REST403      uint64 `json:"rest_403"`
	// WSRateDisconnects: connections the simulator cut for exceeding
	// Binance's 5 client messages per second.
	WSRateDisconnects uint64 `json:"ws_rate_disconnects"`
	// Total is the sum of the errors above (the target is 0).
	Total uint64 `json:"total"`
	// Reconnects and SlowDisconnects are not rate-limit errors but would
	// disturb the measurement.
	Reconnects      uint64 `json:"reconnects"`
	SlowDisconnects uint64 `json:"slow_disconnects"`
}

// Steady is the steady-state measurement of Scale.
type Steady struct {
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"` // acknowledged
	// CPUPercent is the process's CPU time over the window as a percentage
	// of one core (with ExternalCPU, the NATS child's included); CPUSplit
	// the same per component. ProcessCPUPercent is this process's alone
	// (the bridge, its publisher and the harness, with the simulator unless
	// SimURL is set).
	CPUPercent        float64            `json:"cpu_percent_of_core"`
	ProcessCPUPercent float64            `json:"process_cpu_percent_of_core"`
	CPUSplit          map[string]float64 `json:"cpu_split_percent,omitempty"`
	RSS               uint64             `json:"rss_bytes"`
	PeakRSS           uint64             `json:"peak_rss_bytes"` // since the process started
	HeapInuse         uint64             `json:"heap_inuse_bytes"`
	Goroutines        int                `json:"goroutines"`
	// GoroutineSplit counts the goroutines by component.
	GoroutineSplit map[string]int `json:"goroutine_split,omitempty"`
}

func (c ScaleConfig) withDefaults() ScaleConfig {
	if c.Symbols == 0 {
		c.Symbols = DefaultScaleSymbols
	}
	if c.Rate == 0 {
		c.Rate = DefaultScaleRate
	}
	if c.Window == 0 {
		c.Window = DefaultScaleWindow
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultScaleConnect
	}
	if c.SyncWait == 0 {
		c.SyncWait = DefaultScaleSyncWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field.
func (c ScaleConfig) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: ScaleConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Symbols < 0 || c.Symbols > 100_000:
		return bad("Symbols", "%d outside 1..100000", c.Symbols)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("Rate", "%v", c.Rate)
	case c.Connections < 0:
		return bad("Connections", "%d is negative", c.Connections)
	case c.Window < 0 || c.ConnectTimeout < 0 || c.SyncWait < 0:
		return bad("Window", "durations must not be negative")
	case c.WeightPerMinute < 0 || c.BookBufferLimit < 0:
		return bad("WeightPerMinute", "limits must not be negative")
	case c.BookDepth < 0 || c.BookDepth > 5000:
		return bad("BookDepth", "%d outside 1..5000", c.BookDepth)
	case c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage:
		return bad("Storage", "%v: want file or memory", c.Storage)
	case c.SimURL != "" && !strings.HasPrefix(c.SimURL, "http://"):
		return bad("SimURL", "%q: want http://host:port", c.SimURL)
	}
	return nil
}

// scaleMarkets spreads rate over n symbols: half trades, half book
// updates, with weights 1/(i+1)^s (s = 0.9 for trades, 0.5 for books),
// water-filled under the per-symbol caps.
func scaleMarkets(n int, rate float64) []exsim.MarketConfig {
	trades := zipf(n, rate/2, 0.9, maxTradeRate)
	books := zipf(n, rate/2, 0.5, maxBookRate)
	out := make([]exsim.MarketConfig, n)
	for i := range out {
		out[i] = exsim.MarketConfig{
			Venue: exsim.Binance, Symbol: "S" + strconv.Itoa(i) + "USDT",
			TradeRate: trades[i], BookRate: books[i],
		}
	}
	return out
}

// zipf returns n rates summing to total (if the caps allow), proportional
// to 1/(i+1)^s and at most limit each.
func zipf(n int, total, s, limit float64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), s)
	}
	out := make([]float64, n)
	capped := make([]bool, n)
	left := total
	for range 20 {
		sum := 0.0
		for i := range w {
			if !capped[i] {
				sum += w[i]
			}
		}
		if sum == 0 || left <= 1e-9 {
			break
		}
		changed := false
		for i := range w {
			if capped[i] {
				continue
			}
			if v := left * w[i] / sum; v >= limit {
				out[i], capped[i], changed = limit, true, true
			}
		}
		left = total
		for i := range out {
			if capped[i] {
				left -= out[i]
			}
		}
		if !changed {
			for i := range w {
				if !capped[i] {
					out[i] = left * w[i] / sum
				}
			}
			break
		}
	}
	return out
}

// Scale measures one bridge replica carrying many symbols: the cold start
// to all CONNECTED, rate-limit errors, and, once every book is synced (or
// SyncWait passed), CPU, memory and goroutines over a steady window.
func Scale(ctx context.Context, cfg ScaleConfig) (rep *ScaleReport, err error) {
	withComponent(ctx, compHarness, func(ctx context.Context) { rep, err = scale(ctx, cfg) })
	return rep, err
}

func scale(ctx context.Context, cfg ScaleConfig) (*ScaleReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	env, err := startNATS(ctx, cfg.NATSURL, cfg.StoreDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer env.close()
	pcfg := Config{Storage: cfg.Storage}.withDefaults().publisherConfig()
	markets := scaleMarkets(cfg.Symbols, cfg.Rate)
	rep := &ScaleReport{Env: newEnv(env, cfg.NATSDesc), Symbols: cfg.Symbols, Offered: cfg.Rate,
		BookDepth: cfg.BookDepth, WeightPerMinute: cfg.WeightPerMinute, BookBufferLimit: cfg.BookBufferLimit}
	if rep.BookDepth == 0 {
		rep.BookDepth = binance.DefaultBookDepth
	}
	if rep.WeightPerMinute == 0 {
		def, _ := resilience.ExchangeDefaults(binance.Name)
		rep.WeightPerMinute = def.RequestsPerMinute
	}
	if rep.BookBufferLimit == 0 {
		rep.BookBufferLimit = bridge.DefaultBookBufferLimit
	}
	switch {
	case env.embedded == nil && cfg.SimURL != "":
		rep.Env.Layout = "the bridge alone in this process; the simulator and NATS run in other processes"
	case env.embedded == nil:
		rep.Env.Layout = "one process: simulator and bridge share GOMAXPROCS threads; NATS runs outside it"
	case cfg.SimURL != "":
		rep.Env.Layout = "one process: bridge and NATS server share GOMAXPROCS threads; the simulator runs in another process"
	default:
		rep.Env.Layout = "one process: simulator, bridge and NATS server share GOMAXPROCS threads"
	}

	progress(cfg.Progress, Progress{Phase: "scale", Step: "setup"})
	start := time.Now()
	r, err := startRig(ctx, env, rigConfig{
		markets: markets, simURL: cfg.SimURL, channels: bridge.ChannelTrade | bridge.ChannelBook,
		connections: cfg.Connections, bookDepth: cfg.BookDepth, weightPerMin: cfg.WeightPerMinute,
		bookBuffer: cfg.BookBufferLimit, pcfg: pcfg,
	}, cfg.Logger)
	if err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_ = r.shutdown(sctx)
		cancel()
	}()
	rep.Topics = r.topics
	took, err := r.waitConnected(ctx, start, cfg.ConnectTimeout, func(up, total int) {
		progress(cfg.Progress, Progress{Phase: "scale", Step: "connect", Done: uint64(up), Total: uint64(total), Elapsed: time.Since(start)})
	})
	_, rep.Connections = r.connected()
	if err != nil {
		rep.RateLimits = r.rateLimits()
		return rep, err
	}
	rep.ConnectedSeconds = took.Seconds()

	// Wait for the books' first snapshots.
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	syncEnd := time.Now().Add(cfg.SyncWait)
	for {
		rep.BooksSynced = r.booksSynced()
		if rep.BooksSynced >= cfg.Symbols {
			rep.BooksSyncedSeconds = time.Since(start).Seconds()
			break
		}
		progress(cfg.Progress, Progress{Phase: "scale", Step: "books", Done: uint64(rep.BooksSynced), Total: uint64(cfg.Symbols), Elapsed: time.Since(start), Left: time.Until(syncEnd)})
		if time.Now().After(syncEnd) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-t.C:
		}
	}

	// Steady window.
	runtime.GC()
	split := startCPUSplit(!cfg.NoCPUSplit)
	ext := func() time.Duration { return 0 }
	if cfg.ExternalCPU != nil {
		ext = cfg.ExternalCPU
	}
	cpu0, ext0, acked0, t0 := cpuTime(), ext(), r.pub.Stats().Acked, time.Now()
	end := t0.Add(cfg.Window)
	for now := time.Now(); now.Before(end); now = time.Now() {
		progress(cfg.Progress, Progress{Phase: "scale", Step: "steady", Done: r.pub.Stats().Acked - acked0, Elapsed: now.Sub(t0), Left: end.Sub(now)})
		select {
		case <-ctx.Done():
			_, _ = split.stop(nil)
			return rep, ctx.Err()
		case <-t.C:
		}
	}
	el := time.Since(t0)
	extCPU := ext() - ext0
	cpu := cpuTime() - cpu0 + extCPU
	acked := r.pub.Stats().Acked - acked0
	sp, perr := split.stop(cfg.CPUProfile)
	if perr != nil {
		return rep, fmt.Errorf("bench: CPU profile: %w", perr)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, peak := memStatus()
	st := Steady{
		Seconds: el.Seconds(), MsgsPerSec: float64(acked) / el.Seconds(),
		CPUPercent: 100 * cpu.Seconds() / el.Seconds(), ProcessCPUPercent: 100 * (cpu - extCPU).Seconds() / el.Seconds(),
		RSS: rss, PeakRSS: peak,
		HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine(),
	}
	st.GoroutineSplit, _ = goroutinesByComponent()
	if sp != nil {
		sp[compNATS] += extCPU.Seconds()
		st.CPUSplit = map[string]float64{}
		for k, v := range sp {
			st.CPUSplit[k] = 100 * v / el.Seconds()
		}
	}
	rep.Steady = st
	if cfg.HeapProfile != nil {
		runtime.GC()
		if err := pprof.Lookup("heap").WriteTo(cfg.HeapProfile, 0); err != nil {
			return rep, fmt.Errorf("bench: heap profile: %w", err)
		}
	}
	rep.RateLimits = r.rateLimits()
	if rep.BooksSynced < cfg.Symbols {
		rep.BooksSynced = r.booksSynced()
	}
	return rep, nil
}

// booksSynced counts symbols whose order book has had a snapshot.
func (r *rig) booksSynced() int {
	n := 0
	for _, st := range r.stream.States() {
		if st.Snapshots > 0 {
			n++
		}
	}
	return n
}

// rateLimits collects the rate-limit counters.
func (r *rig) rateLimits() RateLimitCounts {
	ss := r.sim.Stats()
	c := RateLimitCounts{
		RESTRequests: r.rest.requests.Load(), REST429: r.rest.tooMany.Load(),
		REST418: r.rest.banned.Load(), REST403: r.rest.forbidden.Load(),
		WSRateDisconnects: ss.RateDisconnects, SlowDisconnects: ss.SlowDisconnects,
		Reconnects: r.stream.Stats().Reconnects,
	}
	c.Total = c.REST429 + c.REST418 + c.REST403 + c.WSRateDisconnects
	return c
}
