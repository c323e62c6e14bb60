package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/internal/exsim"
)

// envOr returns the environment variable's value, or def when unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(envOr(name, ""), 64); err == nil {
		return v
	}
	return def
}

// simMarkets builds one market per symbol on each venue.
func simMarkets(symbols string, venues []exsim.Venue, tradeRate, bookRate float64) ([]exsim.MarketConfig, error) {
	var out []exsim.MarketConfig
	for _, sym := range splitList(symbols) {
		sym = strings.ToUpper(sym)
		for _, v := range venues {
			out = append(out, exsim.MarketConfig{Venue: v, Symbol: sym, TradeRate: tradeRate, BookRate: bookRate})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no symbols")
	}
	return out, nil
}

// cmdSim is `mdbridge sim`: the exchange simulator alone, for testing your
// own consumers or clients offline.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sim", "[flags]  (flags default to MDB_SIM_* variables)", stderr)
	listen := fs.String("listen", envOr("MDB_SIM_LISTEN", "127.0.0.1:9000"), "listen address, loopback unless -any-addr (MDB_SIM_LISTEN)")
	symbols := fs.String("symbols", envOr("MDB_SIM_SYMBOLS", "BTCUSDT,ETHUSDT"), "symbols simulated on every venue (MDB_SIM_SYMBOLS)")
	rate := fs.Float64("rate", envFloat("MDB_SIM_RATE", 10), "trades per second per market (MDB_SIM_RATE)")
	bookRate := fs.Float64("book-rate", envFloat("MDB_SIM_BOOK_RATE", 10), "book updates per second per market (MDB_SIM_BOOK_RATE)")
	seed := fs.Uint64("seed", uint64(envFloat("MDB_SIM_SEED", 1)), "market seed: the same seed gives the same trades (MDB_SIM_SEED)")
	skew := fs.Duration("clock-skew", 0, "offset added to the simulator's clock")
	anyAddr := fs.Bool("any-addr", envOr("MDB_SIM_ANY_ADDR", "") == "true", "allow a non-loopback listen address, e.g. 0.0.0.0:9000 inside a container (MDB_SIM_ANY_ADDR)")
	verbose := fs.Bool("v", false, "log every connection")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	markets, err := simMarkets(*symbols, exsim.Venues(), *rate, *bookRate)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge sim: -symbols (MDB_SIM_SYMBOLS): %v; e.g. BTCUSDT,ETHUSDT\n", err)
		return exitUsage
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := exsim.New(exsim.Config{Addr: *listen, Markets: markets, Seed: *seed, ClockSkew: *skew, AllowNonLoopback: *anyAddr}, logger)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge sim: %v\n", err)
		return exitUsage
	}
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "mdbridge sim: %v (is -listen %s free?)\n", err, *listen)
		return exitFailure
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "exchange simulator listening on %s (%d markets, seed %d)\n", srv.Addr(), len(markets), *seed)
	fmt.Fprintf(stdout, "  Binance  MDB_BINANCE_WS_URL=%s MDB_BINANCE_REST_URL=%s\n", srv.BinanceWSURL(), srv.BinanceRESTURL())
	fmt.Fprintf(stdout, "  Bybit    MDB_BYBIT_WS_URL=%s MDB_BYBIT_REST_URL=%s\n", srv.BybitWSURL(), srv.BybitRESTURL())
	fmt.Fprintf(stdout, "  admin    %s (faults: POST /admin/faults, ground truth: GET /admin/truth)\n", srv.AdminURL())
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
