package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/exsim"
)

// TestSimWiring checks that `mdbridge sim` reaches exsim with the
// command's exit codes (the command itself is tested there).
func TestSimWiring(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"sim", "-h"}, &out, &errb); code != exitOK {
		t.Fatalf("sim -h: exit %d", code)
	}
	if !strings.Contains(errb.String(), "Usage: mdbridge sim") || !strings.Contains(errb.String(), "MDB_SIM_MARKETS") {
		t.Errorf("sim -h:\n%s", errb.String())
	}
	errb.Reset()
	if code := dispatch(context.Background(), []string{"sim", "-markets", "nowhere:BTCUSDT"}, &out, &errb); code != exitUsage {
		t.Fatalf("sim -markets nowhere:...: exit %d, want %d; stderr %s", code, exitUsage, errb.String())
	}
}

// TestSimMarkets checks the markets `mdbridge demo` simulates.
func TestSimMarkets(t *testing.T) {
	got, err := simMarkets("btcusdt, ETHUSDT", []exsim.Venue{exsim.Binance, exsim.BybitSpot}, 5, 6)
	if err != nil || len(got) != 4 || got[0] != (exsim.MarketConfig{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 5, BookRate: 6}) ||
		got[3].Venue != exsim.BybitSpot || got[3].Symbol != "ETHUSDT" {
		t.Errorf("simMarkets = %+v, %v", got, err)
	}
	if _, err := simMarkets(" , ", exsim.Venues(), 1, 1); err == nil || err.Error() != "no symbols" {
		t.Errorf("no symbols: %v", err)
	}
}
