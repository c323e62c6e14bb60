package exsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// clearSimEnv empties the MDB_SIM_* variables for the test.
func clearSimEnv(t *testing.T) {
	for _, k := range []string{"LISTEN", "SYMBOLS", "MARKETS", "RATE", "BOOK_RATE", "SEED", "ANY_ADDR"} {
		t.Setenv("MDB_SIM_"+k, "")
	}
}

// TestCommandMarkets checks which markets the flags and MDB_SIM_*
// variables of `mdbridge sim` select.
func TestCommandMarkets(t *testing.T) {
	m := func(v Venue, sym string, tr, br float64) MarketConfig {
		return MarketConfig{Venue: v, Symbol: sym, TradeRate: tr, BookRate: br}
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []MarketConfig
		wantErr string
	}{
		{name: "defaults", want: []MarketConfig{
			m(Binance, "BTCUSDT", 10, 10), m(BybitSpot, "BTCUSDT", 10, 10), m(BybitLinear, "BTCUSDT", 10, 10), m(BinanceUSDM, "BTCUSDT", 10, 10),
			m(Binance, "ETHUSDT", 10, 10), m(BybitSpot, "ETHUSDT", 10, 10), m(BybitLinear, "ETHUSDT", 10, 10), m(BinanceUSDM, "ETHUSDT", 10, 10),
		}},
		{name: "symbols and rates", args: []string{"-symbols", " btcusdt, ", "-rate", "5", "-book-rate", "2"}, want: []MarketConfig{
			m(Binance, "BTCUSDT", 5, 2), m(BybitSpot, "BTCUSDT", 5, 2), m(BybitLinear, "BTCUSDT", 5, 2), m(BinanceUSDM, "BTCUSDT", 5, 2),
		}},
		{name: "symbols from the environment", env: map[string]string{"MDB_SIM_SYMBOLS": "SOLUSDT", "MDB_SIM_RATE": "3"}, want: []MarketConfig{
			m(Binance, "SOLUSDT", 3, 10), m(BybitSpot, "SOLUSDT", 3, 10), m(BybitLinear, "SOLUSDT", 3, 10), m(BinanceUSDM, "SOLUSDT", 3, 10),
		}},
		{name: "markets with per-symbol rates", args: []string{"-markets", "binance:BTCUSDT@1000/200,ethusdt;bybit-linear:BTCUSDT", "-rate", "7"}, want: []MarketConfig{
			m(Binance, "BTCUSDT", 1000, 200), m(Binance, "ETHUSDT", 7, 10), m(BybitLinear, "BTCUSDT", 7, 10),
		}},
		{name: "markets from the environment", env: map[string]string{"MDB_SIM_MARKETS": "bybit:SOLUSDT@3/4"}, want: []MarketConfig{
			m(BybitSpot, "SOLUSDT", 3, 4),
		}},
		{name: "markets flag over symbols variable", env: map[string]string{"MDB_SIM_SYMBOLS": "ADAUSDT"}, args: []string{"-markets", "binance:BTCUSDT"}, want: []MarketConfig{
			m(Binance, "BTCUSDT", 10, 10),
		}},
		{name: "symbols flag over markets variable", env: map[string]string{"MDB_SIM_MARKETS": "binance:BTCUSDT@1/1"}, args: []string{"-symbols", "XRPUSDT"}, want: []MarketConfig{
			m(Binance, "XRPUSDT", 10, 10), m(BybitSpot, "XRPUSDT", 10, 10), m(BybitLinear, "XRPUSDT", 10, 10), m(BinanceUSDM, "XRPUSDT", 10, 10),
		}},
		{name: "both flags", args: []string{"-markets", "binance:BTCUSDT", "-symbols", "ETHUSDT"}, wantErr: "-markets and -symbols exclude each other"},
		{name: "unknown venue", args: []string{"-markets", "kraken:BTCUSDT"}, wantErr: `-markets (MDB_SIM_MARKETS): exsim: invalid config: markets: unknown venue "kraken"`},
		{name: "bad rates", env: map[string]string{"MDB_SIM_MARKETS": "binance:BTCUSDT@fast"}, wantErr: "-markets (MDB_SIM_MARKETS)"},
		{name: "no symbols", args: []string{"-symbols", " , "}, wantErr: "-symbols (MDB_SIM_SYMBOLS): no symbols; e.g. BTCUSDT,ETHUSDT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSimEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			o, code := parseCommand(tt.args, io.Discard)
			if code >= 0 {
				t.Fatalf("parse: exit %d", code)
			}
			got, err := o.marketConfigs()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("markets\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestMainServesMarkets runs `mdbridge sim -markets ...` until its context
// is cancelled: it prints its URLs, serves the markets with their own
// rates on the admin API, and exits 0.
func TestMainServesMarkets(t *testing.T) {
	clearSimEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	args := []string{"-listen", "127.0.0.1:0", "-seed", "7", "-markets", "binance:BTCUSDT@2/1;bybit-linear:ETHUSDT"}
	go func() {
		done <- Main(ctx, args, outW, io.Discard)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	var out []string
	for len(out) < 5 && lines.Scan() {
		out = append(out, lines.Text())
	}
	if len(out) < 5 || !strings.HasPrefix(out[4], "  USD-M    MDB_BINANCE_USDM_WS_URL=ws://127.0.0.1:") || !strings.HasPrefix(out[0], "exchange simulator listening on 127.0.0.1:") || !strings.HasSuffix(out[0], "(2 markets, seed 7)") {
		t.Fatalf("output %q", out)
	}
	admin, _, ok := strings.Cut(strings.TrimPrefix(out[3], "  admin    "), " ")
	if !ok || !strings.HasPrefix(admin, "http://127.0.0.1:") {
		t.Fatalf("admin line %q", out[3])
	}
	status, _, body := get(t, admin+"/admin/markets")
	var markets []MarketConfig
	if err := json.Unmarshal(body, &markets); status != 200 || err != nil {
		t.Fatalf("GET /admin/markets: %d %v %s", status, err, body)
	}
	want := []MarketConfig{
		{Venue: Binance, Symbol: "BTCUSDT", TradeRate: 2, BookRate: 1},
		{Venue: BybitLinear, Symbol: "ETHUSDT", TradeRate: 10, BookRate: 10},
	}
	if !reflect.DeepEqual(markets, want) {
		t.Errorf("markets %+v, want %+v", markets, want)
	}
	cancel()
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Main did not return after its context ended")
	}
	if len(rest) != 1 || rest[0] != "simulator stopped" {
		t.Errorf("after cancel: %q", rest)
	}
}

// TestMainExitCodes checks the exit codes and messages of `mdbridge sim`
// that end before serving.
func TestMainExitCodes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-h"}, exitOK, "-markets string"},
		{"unknown flag", []string{"-frobnicate"}, exitUsage, "flag provided but not defined"},
		{"bad markets", []string{"-markets", "binance:BTC.USDT"}, exitUsage, "mdbridge sim: -markets (MDB_SIM_MARKETS): "},
		{"bad symbol", []string{"-listen", "127.0.0.1:0", "-symbols", "BTC.USDT"}, exitUsage, "mdbridge sim: exsim: invalid config"},
		{"non-loopback", []string{"-listen", "0.0.0.0:0"}, exitUsage, "mdbridge sim: "},
		{"address in use", []string{"-listen", busy.Addr().String()}, exitFailure, "(is -listen " + busy.Addr().String() + " free?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSimEnv(t)
			var out, errb bytes.Buffer
			if code := Main(context.Background(), tt.args, &out, &errb); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.want)
			}
		})
	}
}
