package exsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/internal/cli"
)

// Exit codes of Main, the same as every mdbridge command's.
const (
	exitOK      = cli.ExitOK
	exitFailure = cli.ExitFailure // the simulator could not start
	exitUsage   = cli.ExitUsage   // bad command line, environment or Config
)

// Main is the command `mdbridge sim`: the simulator alone, for testing
// clients and consumers offline. It parses args (the flags after "sim";
// each defaults to an MDB_SIM_* environment variable, -h lists them),
// starts a Server, prints its URLs on stdout and serves until ctx is done,
// logging to stderr (its counters every 10 s).
//
// The markets are -symbols on every venue at -rate and -book-rate, or
// -markets (MDB_SIM_MARKETS), a ParseMarkets list with per-symbol rates.
// -markets replaces -symbols; both on the command line is a usage error,
// and a -symbols flag overrides an MDB_SIM_MARKETS variable (the command
// line beats the environment).
//
// It returns the process exit code: 0 when ctx ends, 2 for a bad command
// line or configuration, 1 when the server cannot start (e.g. the address
// is in use).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseCommand(args, stderr)
	if code >= 0 {
		return code
	}
	markets, err := o.marketConfigs()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge sim: %v\n", err)
		return exitUsage
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := New(Config{Addr: o.listen, Markets: markets, Seed: o.seed, ClockSkew: o.skew, AllowNonLoopback: o.anyAddr,
		KlineSpeed: o.klSpeed, LiquidationRate: o.liqRate}, logger)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge sim: %v\n", err)
		return exitUsage
	}
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "mdbridge sim: %v (is -listen %s free?)\n", err, o.listen)
		return exitFailure
	}
	defer srv.Close()
	printEndpoints(stdout, srv, len(markets), o.seed)
	return serveUntilDone(ctx, srv, logger, stdout)
}

// SymbolMarkets returns a market for each symbol of the comma-separated
// list (upper-cased, blanks ignored) on each of venues, all at tradeRate
// and bookRate; nil when the list names no symbol. New checks the symbols.
func SymbolMarkets(symbols string, venues []Venue, tradeRate, bookRate float64) []MarketConfig {
	var out []MarketConfig
	for sym := range strings.SplitSeq(symbols, ",") {
		if sym = strings.ToUpper(strings.TrimSpace(sym)); sym == "" {
			continue
		}
		for _, v := range venues {
			out = append(out, MarketConfig{Venue: v, Symbol: sym, TradeRate: tradeRate, BookRate: bookRate})
		}
	}
	return out
}

// commandFlags holds the flags of `mdbridge sim`.
type commandFlags struct {
	listen   string
	symbols  string
	markets  string
	rate     float64
	bookRate float64
	seed     uint64
	skew     time.Duration
	klSpeed  float64
	liqRate  float64
	anyAddr  bool
	verbose  bool
	set      map[string]bool // the flags given on the command line
}

// parseCommand parses the command line, with the MDB_SIM_* variables as
// defaults. It returns the exit code to end with (help, or a usage error
// already reported on stderr), or -1 to go on.
func parseCommand(args []string, stderr io.Writer) (*commandFlags, int) {
	fs := cli.NewFlags("sim", "[flags]  (flags default to MDB_SIM_* variables)", stderr)
	o := &commandFlags{}
	fs.StringVar(&o.listen, "listen", envOr("MDB_SIM_LISTEN", "127.0.0.1:9000"), "listen address, loopback unless -any-addr (MDB_SIM_LISTEN)")
	fs.StringVar(&o.symbols, "symbols", envOr("MDB_SIM_SYMBOLS", "BTCUSDT,ETHUSDT"), "symbols simulated on every venue (MDB_SIM_SYMBOLS)")
	fs.StringVar(&o.markets, "markets", envOr("MDB_SIM_MARKETS", ""), "markets with their own rates, instead of -symbols: <venue>:<SYMBOL>[@<trades>/<book>][,<SYMBOL>...][;<venue>:...], venue binance, bybit, bybit-linear or binance-usdm; -rate and -book-rate where no @ is given; e.g. 'binance:BTCUSDT@1000/200,ETHUSDT;bybit-linear:BTCUSDT' (MDB_SIM_MARKETS)")
	fs.Float64Var(&o.rate, "rate", envFloat("MDB_SIM_RATE", 10), "trades per second per market (MDB_SIM_RATE)")
	fs.Float64Var(&o.bookRate, "book-rate", envFloat("MDB_SIM_BOOK_RATE", 10), "book updates per second per market (MDB_SIM_BOOK_RATE)")
	fs.Uint64Var(&o.seed, "seed", uint64(envFloat("MDB_SIM_SEED", 1)), "market seed: the same seed gives the same trades (MDB_SIM_SEED)")
	fs.DurationVar(&o.skew, "clock-skew", 0, "offset added to the simulator's clock")
	fs.Float64Var(&o.klSpeed, "kline-speed", envFloat("MDB_SIM_KLINE_SPEED", 1), "kline time runs this many times faster than the wall clock: at 60 a 1m bar closes every second (MDB_SIM_KLINE_SPEED)")
	fs.Float64Var(&o.liqRate, "liquidation-rate", envFloat("MDB_SIM_LIQUIDATION_RATE", 0.5), "bybit-linear liquidations per second per market, negative for none (MDB_SIM_LIQUIDATION_RATE)")
	fs.BoolVar(&o.anyAddr, "any-addr", envOr("MDB_SIM_ANY_ADDR", "") == "true", "allow a non-loopback listen address, e.g. 0.0.0.0:9000 inside a container (MDB_SIM_ANY_ADDR)")
	fs.BoolVar(&o.verbose, "v", false, "log every connection")
	if code := cli.Parse(fs, args); code >= 0 {
		return nil, code
	}
	o.set = cli.Given(fs)
	return o, -1
}

// marketConfigs returns the markets of -markets, or else of -symbols on
// every venue; its errors name the flag and variable.
func (o *commandFlags) marketConfigs() ([]MarketConfig, error) {
	if o.set["markets"] && o.set["symbols"] {
		return nil, errors.New("-markets and -symbols exclude each other (-markets lists the symbols of each venue)")
	}
	if o.markets != "" && !o.set["symbols"] {
		ms, err := ParseMarkets(o.markets, o.rate, o.bookRate)
		if err != nil {
			return nil, fmt.Errorf("-markets (MDB_SIM_MARKETS): %w; e.g. binance:BTCUSDT@1000/200,ETHUSDT;bybit-linear:BTCUSDT", err)
		}
		return ms, nil
	}
	ms := SymbolMarkets(o.symbols, Venues(), o.rate, o.bookRate)
	if len(ms) == 0 {
		return nil, errors.New("-symbols (MDB_SIM_SYMBOLS): no symbols; e.g. BTCUSDT,ETHUSDT")
	}
	return ms, nil
}

// printEndpoints prints where the simulator listens and the bridge's
// variables that point at it.
func printEndpoints(w io.Writer, srv *Server, markets int, seed uint64) {
	fmt.Fprintf(w, "exchange simulator listening on %s (%d markets, seed %d)\n", srv.Addr(), markets, seed)
	fmt.Fprintf(w, "  Binance  MDB_BINANCE_WS_URL=%s MDB_BINANCE_REST_URL=%s\n", srv.BinanceWSURL(), srv.BinanceRESTURL())
	fmt.Fprintf(w, "  Bybit    MDB_BYBIT_WS_URL=%s MDB_BYBIT_REST_URL=%s\n", srv.BybitWSURL(), srv.BybitRESTURL())
	fmt.Fprintf(w, "  admin    %s (faults: POST /admin/faults, ground truth: GET /admin/truth)\n", srv.AdminURL())
	fmt.Fprintf(w, "  USD-M    MDB_BINANCE_USDM_WS_URL=%s MDB_BINANCE_USDM_REST_URL=%s\n", srv.BinanceUSDMWSURL(), srv.BinanceUSDMRESTURL())
}

// serveUntilDone logs the server's counters every 10 s until ctx ends.
func serveUntilDone(ctx context.Context, srv *Server, logger *slog.Logger, stdout io.Writer) int {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "simulator stopped")
			return exitOK
		case <-tick.C:
			logger.Info("simulator", "open_conns", srv.Stats().Open, "stats", fmt.Sprintf("%+v", srv.Stats()))
		}
	}
}

// envOr returns the environment variable's value, or def when it is unset
// or empty.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envFloat returns the environment variable as a number, or def when it
// is unset or not a number.
func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(envOr(name, ""), 64); err == nil {
		return v
	}
	return def
}
