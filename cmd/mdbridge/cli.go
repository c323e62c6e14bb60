package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/qldata/mdbridge/internal/cli"
)

// Exit codes.
const (
	exitOK      = cli.ExitOK
	exitFailure = cli.ExitFailure
	exitUsage   = cli.ExitUsage
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run the bridge (default); configured by MDB_* variables", cmdRun},
		{"demo", "embedded NATS + offline exchange simulator + bridge, with a live summary", cmdDemo},
		{"status", "show connection state from the md_state KV bucket (--watch, --json)", cmdStatus},
		{"subscribe", "show or change the runtime subscription set every replica follows (show|set|add|remove)", cmdSubscribe},
		{"tail", "print events from a subject of the stream (tail md.binance.BTCUSDT)", cmdTail},
		{"snapshot", "request a fresh order-book snapshot (snapshot binance BTCUSDT)", cmdSnapshot},
		{"sim", "run the Binance/Bybit exchange simulator alone", cmdSim},
		{"bench", "measure bridge throughput and latency against raw JetStream publishing", cmdBench},
		{"chaos", "soak the bridge under all faults at once and reconcile against ground truth", cmdChaos},
		{"probe", "GET a URL and exit 0 on HTTP 2xx (container health checks)", cmdProbe},
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return cmdRun(ctx, nil, stdout, stderr)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		return cmdRun(ctx, args, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "mdbridge: unknown command %q; run `mdbridge -h` for the list\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mdbridge: exchange market data (Binance, Bybit) republished into NATS JetStream.")
	fmt.Fprintln(w, "\nUsage: mdbridge [command] [flags]")
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\n`mdbridge <command> -h` shows a command's flags.")
	fmt.Fprintln(w, "\nConfiguration of `run` (environment variables):")
	var c Config
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	if err := envconfig.Usagef(envPrefix, &c, tw, usageFormat); err != nil {
		fmt.Fprintln(w, err)
	}
	tw.Flush()
}

const usageFormat = `{{range .}}  {{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`

// newFlags, parseFlags and newLogger are the commands' shared helpers
// (internal/cli).
func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	return cli.NewFlags(name, args, stderr)
}
func parseFlags(fs *flag.FlagSet, args []string) int { return cli.Parse(fs, args) }
func newLogger(w io.Writer, level, format string) *slog.Logger {
	return cli.NewLogger(w, level, format)
}

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("probe", "[-timeout 3s] <url>", stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stderr, "probe: %s: HTTP %d: %s\n", fs.Arg(0), resp.StatusCode, strings.TrimSpace(string(body)))
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	return exitOK
}
