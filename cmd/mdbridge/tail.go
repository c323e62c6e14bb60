package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("tail", "[-json] [-seq N | -since 5m | -all] [-n N] <subject>   e.g. tail md.binance.BTCUSDT, md.binance.BTCUSDT.kline.1m, md.bybit-linear.BTCUSDT.>", stderr)
	asJSON := fs.Bool("json", false, "print the raw JSON bodies")
	seq := fs.Uint64("seq", 0, "start at this stream sequence")
	since := fs.Duration("since", 0, "start this long ago")
	all := fs.Bool("all", false, "start at the first stored message")
	count := fs.Int("n", 0, "stop after N messages (0 = follow until interrupted)")
	server := fs.String("server", "", "NATS URL (default MDB_NATS_URL, else the embedded server's address)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	subject := fs.Arg(0)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cfg, nc, js, err := clientConn(cctx, *server, stderr)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge tail: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	if !strings.HasPrefix(subject, cfg.SubjectPrefix+".") {
		fmt.Fprintf(stderr, "mdbridge tail: subject %q is outside the stream's %s.> (e.g. %s.binance.BTCUSDT)\n", subject, cfg.SubjectPrefix, cfg.SubjectPrefix)
		return exitUsage
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case *seq > 0:
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *seq
	case *since > 0:
		t := time.Now().Add(-*since)
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	case *all:
		occ.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, cfg.Stream, occ)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge tail: stream %s: %v (is the bridge running against this NATS? MDB_STREAM names the stream)\n", cfg.Stream, err)
		return exitFailure
	}
	it, err := cons.Messages()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge tail: %v\n", err)
		return exitFailure
	}
	go func() { <-ctx.Done(); it.Stop() }()
	// The ordered consumer follows NATS restarts by itself: after a
	// reconnect it makes a new consumer that starts after the last message
	// delivered. The operator is told the connection is down meanwhile.
	var last atomic.Uint64 // stream sequence of the last message printed
	conn := listenConn(nc)
	defer conn.Close()
	go reportConn(ctx, conn, stderr, &last)
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return exitOK
			}
			fmt.Fprintf(stderr, "mdbridge tail: %v\n", err)
			return exitFailure
		}
		meta, _ := m.Metadata()
		if meta != nil {
			last.Store(meta.Sequence.Stream)
		}
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", m.Data())
			continue
		}
		printEvent(stdout, meta, m.Data())
	}
	it.Stop()
	return exitOK
}

// reportConn tells on stderr when tail's connection is lost and back,
// until ctx ends or the listener is closed.
func reportConn(ctx context.Context, conn *connStatus, stderr io.Writer, last *atomic.Uint64) {
	down := false
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-conn.C():
			switch {
			case !ok:
				return
			case s == nats.CONNECTED && down:
				down = false
				fmt.Fprintf(stderr, "mdbridge tail: NATS reconnected; continuing after #%d\n", last.Load())
			case s != nats.CONNECTED && !down:
				down = true
				fmt.Fprintf(stderr, "mdbridge tail: NATS connection lost after #%d; reconnecting...\n", last.Load())
			}
		}
	}
}

// printEvent prints one stream message in a human-readable line.
func printEvent(w io.Writer, meta *jetstream.MsgMetadata, body []byte) {
	var seq uint64
	if meta != nil {
		seq = meta.Sequence.Stream
	}
	ev, err := bridge.DecodeJSON(body)
	if err != nil {
		fmt.Fprintf(w, "#%d not an mdbridge event (%v): %.120s\n", seq, err, body)
		return
	}
	ts := time.Unix(0, ev.TS).UTC().Format("15:04:05.000000")
	lat := time.Duration(ev.RecvTS - ev.TS)
	switch ev.Type {
	case bridge.EventTrade:
		fmt.Fprintf(w, "#%d %s %s %s trade %s %-4s %s @ %s (recv %s)\n", seq, ts, ev.Exchange, ev.Symbol, ev.ID, ev.Side, ev.Qty, ev.Price, signed(lat))
	case bridge.EventBookDelta:
		fmt.Fprintf(w, "#%d %s %s %s delta %d..%d bids %d asks %d%s\n", seq, ts, ev.Exchange, ev.Symbol, ev.FirstID, ev.LastID, len(ev.Bids), len(ev.Asks), topOfBook(ev))
	case bridge.EventBookSnapshot:
		reset := ""
		if ev.Flags&bridge.FlagIDReset != 0 {
			reset = " (ids RESET by the venue)"
		}
		fmt.Fprintf(w, "#%d %s %s %s SNAPSHOT last_id %d%s bids %d asks %d%s\n", seq, ts, ev.Exchange, ev.Symbol, ev.LastID, reset, len(ev.Bids), len(ev.Asks), topOfBook(ev))
	case bridge.EventBBO:
		b := ev.BBO()
		fmt.Fprintf(w, "#%d %s %s %s bbo %d bid %s x %s ask %s x %s\n", seq, ts, ev.Exchange, ev.Symbol, b.UpdateID, b.BidPrice, b.BidQty, b.AskPrice, b.AskQty)
	case bridge.EventKline:
		k := ev.Bar()
		state := "open"
		if k.Closed {
			state = "CLOSED"
		}
		trades := ""
		if k.Trades >= 0 {
			trades = fmt.Sprintf(" trades %d", k.Trades)
		}
		fmt.Fprintf(w, "#%d %s %s %s kline %s %s %s O %s H %s L %s C %s V %s QV %s%s\n", seq, ts, ev.Exchange, ev.Symbol, k.Interval,
			time.Unix(0, k.OpenTime).UTC().Format("2006-01-02T15:04:05Z"), state, k.Open, k.High, k.Low, k.Close, k.Volume, k.QuoteVolume, trades)
	case bridge.EventTicker:
		k := ev.Ticker()
		next := "-"
		if k.NextFundingTime > 0 {
			next = time.Unix(0, k.NextFundingTime).UTC().Format("15:04:05Z")
		}
		fmt.Fprintf(w, "#%d %s %s %s ticker seq %d last %s mark %s index %s funding %s (next %s) oi %s\n", seq, ts, ev.Exchange, ev.Symbol,
			k.Seq, dash(k.LastPrice), dash(k.MarkPrice), dash(k.IndexPrice), dash(k.FundingRate), next, dash(k.OpenInterest))
	case bridge.EventLiquidation:
		l := ev.Liquidation()
		fmt.Fprintf(w, "#%d %s %s %s LIQUIDATION %-4s %s @ %s\n", seq, ts, ev.Exchange, ev.Symbol, l.Side, l.Qty, l.Price)
	}
}

// dash shows an absent value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// signed formats d with its sign: +1.2ms, -4.99s (the exchange's clock
// can run ahead of ours, so the receive time can precede the event time).
func signed(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

func topOfBook(ev bridge.Event) string {
	var b strings.Builder
	if len(ev.Bids) > 0 {
		fmt.Fprintf(&b, " bid %s x %s", ev.Bids[0][0], ev.Bids[0][1])
	}
	if len(ev.Asks) > 0 {
		fmt.Fprintf(&b, " ask %s x %s", ev.Asks[0][0], ev.Asks[0][1])
	}
	return b.String()
}
