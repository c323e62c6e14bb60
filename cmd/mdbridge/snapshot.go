package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

func cmdSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("snapshot", "[-server nats://...] <exchange> <SYMBOL>   e.g. snapshot binance BTCUSDT", stderr)
	server := fs.String("server", "", "NATS URL (default MDB_NATS_URL, else the embedded server's address)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the reply (NATS \"no responders\", no bridge carrying the symbol yet, is retried until then)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitUsage
	}
	exchange, symbol := strings.ToLower(fs.Arg(0)), strings.ToUpper(fs.Arg(1))
	for _, id := range []string{exchange, symbol} {
		if err := bridge.ValidateIdent(id); err != nil {
			fmt.Fprintf(stderr, "mdbridge snapshot: %v\n", err)
			return exitUsage
		}
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg, nc, _, err := clientConn(cctx, *server, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge snapshot: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	req, err := publisher.NewSnapshotRequester(nc, publisher.Config{ControlPrefix: cfg.ControlPrefix, SubjectPrefix: cfg.SubjectPrefix, Stream: cfg.Stream, RequestTimeout: *timeout}, "cli-"+bridge.HostIdent())
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge snapshot: %v\n", err)
		return exitFailure
	}
	reply, err := req.Request(cctx, exchange, symbol, "cli")
	if err != nil {
		// The error names the control subject already.
		hint := ""
		switch {
		case errors.Is(err, publisher.ErrNoResponders):
			hint = fmt.Sprintf(" (retried for the whole -timeout %s: no bridge carrying %s %s answered; is one running against %s? MDB_NATS_URL or -server selects the NATS)",
				*timeout, exchange, symbol, nc.ConnectedUrlRedacted())
		case errors.Is(err, context.DeadlineExceeded):
			hint = fmt.Sprintf(" (is a bridge subscribed to %s %s running against %s? MDB_NATS_URL or -server selects the NATS)",
				exchange, symbol, nc.ConnectedUrlRedacted())
		}
		fmt.Fprintf(stderr, "mdbridge snapshot: %v%s\n", err, hint)
		return exitFailure
	}
	out, _ := json.Marshal(reply)
	fmt.Fprintf(stdout, "%s\n", out)
	if reply.Error != "" {
		return exitFailure
	}
	return exitOK
}
