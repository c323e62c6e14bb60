package main

import (
	"context"
	"errors"
	"io"

	"github.com/qldata/mdbridge/exsim"
)

// cmdSim is `mdbridge sim`: the exchange simulator alone, for testing your
// own consumers or clients offline. Flags (with their MDB_SIM_* defaults),
// output and exit codes are exsim's (exsim.Main).
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return exsim.Main(ctx, args, stdout, stderr)
}

// simMarkets builds one market per symbol of the comma-separated list on
// each venue (`mdbridge demo`).
func simMarkets(symbols string, venues []exsim.Venue, tradeRate, bookRate float64) ([]exsim.MarketConfig, error) {
	out := exsim.SymbolMarkets(symbols, venues, tradeRate, bookRate)
	if len(out) == 0 {
		return nil, errors.New("no symbols")
	}
	return out, nil
}
