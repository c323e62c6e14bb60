package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// statusRow is one md_state entry with the message rate observed between two
// readings.
type statusRow struct {
	publisher.StateEntry
	Rate float64 `json:"msgs_per_sec"` // -1 when unknown
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "[-watch] [-json] [-server nats://...] [pattern]", stderr)
	watch := fs.Bool("watch", false, "refresh until interrupted")
	asJSON := fs.Bool("json", false, "print JSON (one document per refresh)")
	server := fs.String("server", "", "NATS URL (default MDB_NATS_URL, else the embedded server's address)")
	sample := fs.Duration("sample", 6*time.Second, "how long to observe for msgs/s (0 skips rates)")
	interval := fs.Duration("interval", 2*time.Second, "refresh period with -watch")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	pattern := fs.Arg(0)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cfg, nc, js, err := clientConn(cctx, *server, stderr)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge status: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	kv, err := js.KeyValue(ctx, cfg.KVBucket)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge status: KV bucket %q: %v (has a bridge run against this NATS? MDB_KV_BUCKET names the bucket)\n", cfg.KVBucket, err)
		return exitFailure
	}
	read := func() ([]publisher.StateEntry, error) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		entries, err := publisher.ReadStates(rctx, kv)
		if err != nil || pattern == "" {
			return entries, err
		}
		var out []publisher.StateEntry
		for _, e := range entries {
			if matchKey(pattern, e.Key) {
				out = append(out, e)
			}
		}
		return out, nil
	}
	lastNote := ""
	show := func(rows []statusRow, note string) {
		if *asJSON {
			if note != lastNote && note != "" {
				fmt.Fprintf(stderr, "mdbridge status: %s\n", note)
			}
			lastNote = note
			enc := json.NewEncoder(stdout)
			enc.Encode(rows)
			return
		}
		if *watch {
			fmt.Fprint(stdout, "\033[H\033[2J")
			fmt.Fprintf(stdout, "md_state on %s at %s (Ctrl-C to stop)\n", cmp.Or(nc.ConnectedUrlRedacted(), "(disconnected)"), time.Now().Format(time.TimeOnly))
			if note != "" {
				fmt.Fprintf(stdout, "%s\n", note)
			}
			fmt.Fprintln(stdout)
		}
		printStatus(stdout, rows)
	}
	if *watch {
		return watchStatus(ctx, nc, kv, pattern, *interval, show, stderr)
	}
	prev, err := read()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge status: %v\n", err)
		return exitFailure
	}
	cur := prev
	if *sample > 0 && len(prev) > 0 {
		fmt.Fprintf(stderr, "sampling message rates for %s (-sample 0 skips)...\n", *sample)
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(*sample):
		}
		if cur, err = read(); err != nil {
			fmt.Fprintf(stderr, "mdbridge status: %v\n", err)
			return exitFailure
		}
	}
	show(rates(prev, cur), "")
	if !*asJSON {
		printCluster(ctx, js, cfg, cur, stdout)
	}
	return exitOK
}

// minRateSpan is the shortest span a watched key's rate is measured over.
const minRateSpan = time.Second

// rewatchDelay is the pause before a KV watch that ended (or could not be
// set up) is set up again.
const rewatchDelay = time.Second

// watchStatus follows the bucket (publisher.WatchStates) and shows the
// entries every interval until ctx ends. A key's rate comes from its last
// two revisions, so it stays steady between refreshes of the writer; age
// and staleness are computed at each refresh.
//
// The watch outlives NATS restarts: while the connection is lost the last
// entries stay on screen under a "reconnecting" line, and once it is back
// the watch is set up again at once (the ordered consumer behind a KV
// watch otherwise stays silent after a reconnect). The new watch delivers
// every key's newest revision again (deletions as markers), which the
// table absorbs: a revision already shown changes nothing.
func watchStatus(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, pattern string, interval time.Duration, show func(rows []statusRow, note string), stderr io.Writer) int {
	wctx, wcancel := context.WithCancel(ctx)
	updates, err := publisher.WatchStates(wctx, kv, pattern)
	if err != nil {
		wcancel()
		fmt.Fprintf(stderr, "mdbridge status: %v\n", err)
		return exitFailure
	}
	defer func() { wcancel() }()
	conn := listenConn(nc)
	defer conn.Close()
	cur := map[string]publisher.StateEntry{}
	prev := map[string]publisher.StateEntry{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var retry <-chan time.Time // set while the watch is to be set up again
	note := ""                 // shown above the table while the watch is not live
	rewatch := func() {
		wcancel()
		wctx, wcancel = context.WithCancel(ctx)
		if updates, err = publisher.WatchStates(wctx, kv, pattern); err != nil {
			updates, retry = nil, time.After(rewatchDelay)
			note = fmt.Sprintf("cannot watch md_state (%v); retrying...", err)
			return
		}
		retry, note = nil, ""
	}
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case s := <-conn.C():
			if s == nats.CONNECTED {
				rewatch()
			} else {
				updates, retry = nil, nil
				note = fmt.Sprintf("NATS connection lost at %s; reconnecting... (the entries below are those received before)", time.Now().Format(time.TimeOnly))
			}
			show(watchRows(prev, cur, time.Now()), note)
		case <-retry:
			rewatch()
		case e, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return exitOK
				}
				updates, retry = nil, time.After(rewatchDelay)
				note = "the md_state watch ended; watching again..."
				continue
			}
			if e.Deleted {
				delete(cur, e.Key)
				delete(prev, e.Key)
			} else {
				// The rate's base is the newest earlier revision at least
				// minRateSpan older: two writes close together (a
				// transition, then a refresh) would give a wild rate.
				if old, ok := cur[e.Key]; ok && e.State.Updated.Sub(old.State.Updated) >= minRateSpan {
					prev[e.Key] = old
				}
				cur[e.Key] = e
			}
		case <-tick.C:
			show(watchRows(prev, cur, time.Now()), note)
		}
	}
}

// watchRows is the table of a watch: each current entry with its age and
// staleness as of now and its rate from its previous revision.
func watchRows(prev, cur map[string]publisher.StateEntry, now time.Time) []statusRow {
	var p, c []publisher.StateEntry
	for k, e := range cur {
		e.Age = now.Sub(e.State.Updated)
		e.Stale = e.Err != nil || e.Age > publisher.DefaultStaleAfter
		c = append(c, e)
		if o, ok := prev[k]; ok {
			p = append(p, o)
		}
	}
	return rates(p, c)
}

// rates pairs each current entry with its previous reading.
func rates(prev, cur []publisher.StateEntry) []statusRow {
	old := make(map[string]publisher.StateEntry, len(prev))
	for _, e := range prev {
		old[e.Key] = e
	}
	rows := make([]statusRow, 0, len(cur))
	for _, e := range cur {
		r := statusRow{StateEntry: e, Rate: -1}
		if o, ok := old[e.Key]; ok {
			dt := e.State.Updated.Sub(o.State.Updated).Seconds()
			if dt > 0 && e.State.Messages >= o.State.Messages {
				r.Rate = float64(e.State.Messages-o.State.Messages) / dt
			}
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

func printStatus(w io.Writer, rows []statusRow) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no entries in md_state (no bridge has reported yet)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXCHANGE\tSYMBOL\tINSTANCE\tSTATE\tIN STATE\tMSGS/S\tLAST MSG\tDATA AGE\tMESSAGES\tGAPS\tRECONNECTS\tMISSING\tDROPPED\tERROR")
	now := time.Now()
	for _, r := range rows {
		st := r.State
		state := st.State
		if r.Stale {
			state += " (STALE " + r.Age.Round(time.Second).String() + ")"
		}
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\t\t\tINVALID\t\t\t\t\t\t\t\t\t\t%v\n", r.Key, r.Err)
			continue
		}
		rate := "-"
		if r.Rate >= 0 {
			rate = fmt.Sprintf("%.1f", r.Rate)
		}
		last := "never"
		if st.LastMessageTS > 0 {
			last = now.Sub(time.Unix(0, st.LastMessageTS)).Round(100*time.Millisecond).String() + " ago"
		}
		errText := errorColumn(st.State, st.LastError)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n",
			st.Exchange, st.Symbol, st.Instance, state, now.Sub(st.Since).Round(time.Second),
			rate, last, dataAgeColumn(st, now), st.Messages, st.Gaps, st.Reconnects, st.Missing, st.Dropped+st.PublishDropped, errText)
	}
	tw.Flush()
}

// dataAgeColumn is the DATA AGE cell: the age of each channel's newest
// message ("trade 1.2s book 0.3s"), "never" for a channel that received
// none, "STALE" after a channel the bridge reports stale (no message for
// its threshold, MDB_STALE_AFTER).
func dataAgeColumn(st bridge.SymbolState, now time.Time) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(st.Channels)) {
		cs := st.Channels[name]
		age := "never"
		if cs.LastMessageTS > 0 {
			d := max(0, now.Sub(time.Unix(0, cs.LastMessageTS)))
			if d < 10*time.Second {
				d = d.Round(100 * time.Millisecond)
			} else {
				d = d.Round(time.Second)
			}
			age = d.String()
		}
		if cs.Stale {
			age += " STALE"
		}
		parts = append(parts, name+" "+age)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// errorColumn is the ERROR cell: the last error, marked "earlier:" while
// CONNECTED (it is from before the current connection: the state keeps the
// last error until another one replaces it), cut to 60 characters.
func errorColumn(state, lastError string) string {
	if lastError == "" {
		return ""
	}
	if state == "CONNECTED" {
		lastError = "earlier: " + lastError
	}
	if len(lastError) > 60 {
		lastError = lastError[:57] + "..."
	}
	return lastError
}

// matchKey matches a KV key against a NATS-style pattern (* one token, > rest).
func matchKey(pattern, key string) bool {
	p, k := strings.Split(pattern, "."), strings.Split(key, ".")
	for i, t := range p {
		if t == ">" {
			return len(k) > i
		}
		if i >= len(k) || (t != "*" && t != k[i]) {
			return false
		}
	}
	return len(p) == len(k)
}
