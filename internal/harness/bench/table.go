package bench

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// printReport prints a Run report as a table.
func printReport(w io.Writer, r *Report) {
	printReportHeader(w, r)
	printPhases(w, []*Phase{r.Raw, r.Ceiling, r.Bridge})
	printReportFooter(w, r)
}

// printReportHeader prints what was measured and where.
func printReportHeader(w io.Writer, r *Report) {
	s := r.Settings
	load := "saturation"
	if s.Rate > 0 {
		load = fmt.Sprintf("offered %s msgs/s", fmtCount(s.Rate))
	}
	fmt.Fprintf(w, "mdbridge bench: %s, %s, %d symbol(s), %d connection(s), %s storage, NATS %s\n",
		runLength(s), load, s.Symbols, s.Connections, s.Storage, r.Env.NATS)
	fmt.Fprintf(w, "%s %s/%s, %d CPUs, GOMAXPROCS %d; %s\n\n", r.Env.GoVersion, r.Env.OS, r.Env.Arch, r.Env.NumCPU, r.Env.GOMAXPROCS, r.Env.Layout)
}

// phaseRows are the rows of printReport's table: a name and the cell of
// one phase.
var phaseRows = []struct {
	name string
	cell func(p *Phase) string
}{
	{"msgs/s", func(p *Phase) string { return fmtCount(p.MsgsPerSec) }},
	{"acked / offered", func(p *Phase) string { return fmt.Sprintf("%d/%d", p.Acked, p.Messages) }},
	{"complete", func(p *Phase) string { return strconv.FormatBool(p.Complete) }},
	{"seconds", func(p *Phase) string { return fmt.Sprintf("%.2f", p.Seconds) }},
	{"offered msgs/s", func(p *Phase) string { return fmtCount(p.Offered) }},
	{"latency p50", func(p *Phase) string { return fmtMicros(p.Latency.P50) }},
	{"latency p90", func(p *Phase) string { return fmtMicros(p.Latency.P90) }},
	{"latency p99", func(p *Phase) string { return fmtMicros(p.Latency.P99) }},
	{"latency p99.9", func(p *Phase) string { return fmtMicros(p.Latency.P999) }},
	{"latency max", func(p *Phase) string { return fmtMicros(p.Latency.Max) }},
	{"sim -> bridge p50/p99", func(p *Phase) string {
		if p.Stages == nil {
			return "-"
		}
		return fmtP50P99(&p.Stages.ToReceive)
	}},
	{"bridge -> ack p50/p99", func(p *Phase) string {
		if p.Stages == nil {
			return "-"
		}
		return fmtP50P99(&p.Stages.ReceiveToAck)
	}},
	{"bridge -> NATS socket p50/p99", func(p *Phase) string {
		if p.Stages == nil {
			return "-"
		}
		return fmtP50P99(p.Stages.ReceiveToWire)
	}},
	{"to NATS socket p50/p99", func(p *Phase) string { return fmtP50P99(p.ToWire) }},
	{"CPU s / 1M msgs", func(p *Phase) string { return fmt.Sprintf("%.2f", p.CPUPerMillion) }},
	{"CPU split", func(p *Phase) string { return fmtSplit(p.CPUSplit) }},
	{"peak RSS", func(p *Phase) string { return fmtBytes(p.PeakRSS) }},
	{"body bytes", func(p *Phase) string { return strconv.Itoa(p.BodyBytes) }},
	{"body MB/s", func(p *Phase) string { return fmt.Sprintf("%.1f", p.BodyMBPerSec) }},
}

// printPhases prints phaseRows with one column per phase ("-" for a
// phase not run).
func printPhases(w io.Writer, phases []*Phase) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\traw JetStream\tceiling\tbridge\t")
	for _, row := range phaseRows {
		fmt.Fprintf(tw, "%s\t", row.name)
		for _, p := range phases {
			if p == nil {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t", row.cell(p))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// printReportFooter prints the comparison, the bridge's counters and what
// the latency rows mean.
func printReportFooter(w io.Writer, r *Report) {
	var cmp []string
	if r.Ceiling != nil && r.Bridge != nil {
		cmp = append(cmp, fmt.Sprintf("bridge/ceiling throughput: %.3f", r.CeilingRatio))
	}
	if r.Raw != nil && r.Bridge != nil {
		c := fmt.Sprintf("bridge/raw throughput: %.3f   bridge-added p99: %s", r.Ratio, fmtMicros(r.AddedP99))
		if r.Raw.ToWire != nil && r.Bridge.ToWire != nil {
			c += fmt.Sprintf(" (to the NATS socket: %s)", fmtMicros(r.AddedP99ToWire))
		}
		cmp = append(cmp, c)
	}
	if len(cmp) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(cmp, "   "))
	}
	if b := r.Bridge; b != nil && b.Bridge != nil {
		c := b.Bridge
		fmt.Fprintf(w, "bridge: frames %d, emitted %d, duplicates %d, gaps %d, reconnects %d; publisher retries %d, failures %d, dropped %d\n",
			c.Frames, c.Emitted, c.Duplicates, c.Gaps, c.Reconnects, c.Retries, c.Failures, c.Dropped)
	}
	fmt.Fprintln(w, "latency: message creation (raw, ceiling: harness clock; bridge: simulator trade time, µs) to its JetStream ack read off the publishing connection;")
	fmt.Fprintln(w, "         the bridge's is split at its receive time (recv_ts): sim -> bridge, bridge -> ack;")
	fmt.Fprintln(w, "         to NATS socket: creation to the message's bytes handed to the publishing connection's socket (no server time)")
}

// fmtP50P99 formats "p50 / p99", or "-" for nil.
func fmtP50P99(l *Latency) string {
	if l == nil {
		return "-"
	}
	return fmtMicros(l.P50) + " / " + fmtMicros(l.P99)
}

func runLength(s Settings) string {
	switch {
	case s.Messages > 0 && s.DurationSec > 0:
		return fmt.Sprintf("%d msgs or %gs per phase", s.Messages, s.DurationSec)
	case s.DurationSec > 0:
		return fmt.Sprintf("%gs per phase", s.DurationSec)
	default:
		return fmt.Sprintf("%d msgs per phase", s.Messages)
	}
}

// printSweep prints one row per offered load.
func printSweep(w io.Writer, sr *SweepReport) {
	e := sr.Env
	fmt.Fprintf(w, "mdbridge bench sweep: NATS %s, %s %s/%s, %d CPUs, GOMAXPROCS %d\n\n", e.NATS, e.GoVersion, e.OS, e.Arch, e.NumCPU, e.GOMAXPROCS)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OFFERED\tRAW MSG/S\tBRIDGE MSG/S\tRATIO\tCEILING MSG/S\tB/CEIL\tRAW P50\tRAW P99\tBRIDGE P50\tBRIDGE P99\tBRIDGE P99.9\tADDED P99\tADDED P99 TO SOCKET\tCPU S/1M RAW\tCPU S/1M BRIDGE\t")
	for _, p := range sr.Points {
		raw, br := p.Raw, p.Bridge
		if raw == nil || br == nil {
			continue
		}
		toSocket := "-"
		if raw.ToWire != nil && br.ToWire != nil {
			toSocket = fmtMicros(p.AddedP99ToWire)
		}
		ceil, bc := "-", "-"
		if p.Ceiling != nil {
			ceil, bc = fmtCount(p.Ceiling.MsgsPerSec), fmt.Sprintf("%.3f", p.CeilingRatio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", fmtCount(p.Settings.Rate),
			fmtCount(raw.MsgsPerSec), fmtCount(br.MsgsPerSec), p.Ratio, ceil, bc,
			fmtMicros(raw.Latency.P50), fmtMicros(raw.Latency.P99), fmtMicros(br.Latency.P50), fmtMicros(br.Latency.P99),
			fmtMicros(br.Latency.P999), fmtMicros(p.AddedP99), toSocket, raw.CPUPerMillion, br.CPUPerMillion)
	}
	tw.Flush()
}

// printScale prints a Scale report.
func printScale(w io.Writer, r *ScaleReport) {
	e := r.Env
	fmt.Fprintf(w, "mdbridge bench -scale: %d Binance symbols (%d topics: trades + books) over %d connection(s), offered %s msgs/s\n",
		r.Symbols, r.Topics, r.Connections, fmtCount(r.Offered))
	fmt.Fprintf(w, "Binance REST: book depth %d, %d weight/minute; book buffer %d deltas\n", r.BookDepth, r.WeightPerMinute, r.BookBufferLimit)
	fmt.Fprintf(w, "%s %s/%s, %d CPUs, GOMAXPROCS %d, NATS %s; %s\n\n", e.GoVersion, e.OS, e.Arch, e.NumCPU, e.GOMAXPROCS, e.NATS, e.Layout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	st := r.Steady
	fmt.Fprintf(tw, "cold start to all CONNECTED\t%.2f s\n", r.ConnectedSeconds)
	synced := fmt.Sprintf("%d/%d", r.BooksSynced, r.Symbols)
	if r.BooksSyncedSeconds > 0 {
		synced += fmt.Sprintf(" after %.1f s", r.BooksSyncedSeconds)
	}
	fmt.Fprintf(tw, "order books synced\t%s\n", synced)
	rl := r.RateLimits
	fmt.Fprintf(tw, "rate-limit errors\t%d (REST 429: %d, 418: %d, 403: %d of %d requests; WS rate disconnects: %d)\n",
		rl.Total, rl.REST429, rl.REST418, rl.REST403, rl.RESTRequests, rl.WSRateDisconnects)
	fmt.Fprintf(tw, "reconnects / slow-consumer cuts\t%d / %d\n", rl.Reconnects, rl.SlowDisconnects)
	fmt.Fprintf(tw, "steady window\t%.1f s at %s acked msgs/s\n", st.Seconds, fmtCount(st.MsgsPerSec))
	if st.ProcessCPUPercent != st.CPUPercent {
		fmt.Fprintf(tw, "CPU (this process / with NATS)\t%.1f%% / %.1f%% of one core\n", st.ProcessCPUPercent, st.CPUPercent)
	} else {
		fmt.Fprintf(tw, "CPU (whole process)\t%.1f%% of one core\n", st.CPUPercent)
	}
	if len(st.CPUSplit) > 0 {
		fmt.Fprintf(tw, "CPU by component\t%s\n", fmtPercents(st.CPUSplit))
	}
	fmt.Fprintf(tw, "RSS now / peak\t%s / %s (heap in use %s)\n", fmtBytes(st.RSS), fmtBytes(st.PeakRSS), fmtBytes(st.HeapInuse))
	gs := fmt.Sprint(st.Goroutines)
	if len(st.GoroutineSplit) > 0 {
		var parts []string
		for _, k := range sortedKeys(st.GoroutineSplit) {
			parts = append(parts, fmt.Sprintf("%s %d", k, st.GoroutineSplit[k]))
		}
		gs += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(tw, "goroutines\t%s\n", gs)
	tw.Flush()
}

func fmtCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtMicros(us float64) string {
	neg := us < 0
	if neg {
		us = -us
	}
	var s string
	switch {
	case us >= 1e6:
		s = fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		s = fmt.Sprintf("%.2fms", us/1e3)
	default:
		s = fmt.Sprintf("%.0fµs", us)
	}
	if neg {
		return "-" + s
	}
	return s
}

func fmtBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}

// fmtSplit shows CPU seconds by component as shares of their sum.
func fmtSplit(split map[string]float64) string {
	if len(split) == 0 {
		return "-"
	}
	sum := 0.0
	for _, v := range split {
		sum += v
	}
	var parts []string
	for _, k := range sortedKeys(split) {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*split[k]/sum))
	}
	return strings.Join(parts, " ")
}

func fmtPercents(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// sortedKeys returns m's keys by decreasing value.
func sortedKeys[V int | float64](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}

// printReplicas prints a Replicas report.
func printReplicas(w io.Writer, r *ReplicasReport) {
	e := r.Env
	fmt.Fprintf(w, "mdbridge bench -scale -replicas %d -redundancy %d: %d units (Binance symbols, trades + book each), offered %s msgs/s\n",
		r.Replicas, r.Redundancy, r.Symbols, fmtCount(r.Offered))
	fmt.Fprintf(w, "Binance REST: book depth %d, %d weight/minute per replica (simulator: %d per IP; each replica's REST from its own loopback IP)\n",
		r.BookDepth, r.WeightPerMinute, r.SimWeightLimit)
	fmt.Fprintf(w, "%s %s/%s, %d CPUs; %s\n\n", e.GoVersion, e.OS, e.Arch, e.NumCPU, e.Layout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "cold start to every unit on %d CONNECTED owner(s)\t%.1f s (%d/%d units; at most %d owners)\n",
		r.Target, r.CarriedSeconds, r.UnitsCarried, r.Symbols, r.MaxOwners)
	synced := fmt.Sprintf("%d/%d", r.BooksSynced, r.BooksWanted)
	if r.BooksSyncedSeconds > 0 {
		synced += fmt.Sprintf(" after %.1f s", r.BooksSyncedSeconds)
	}
	fmt.Fprintf(tw, "owner books synced\t%s\n", synced)
	fmt.Fprintf(tw, "steady window\t%.1f s at %s msgs/s stored in the stream\n", r.WindowSeconds, fmtCount(r.MsgsPerSec))
	var cpu float64
	var rss uint64
	for _, p := range r.PerReplica {
		cpu += p.CPUPercent
		rss += p.PeakRSS
		fmt.Fprintf(tw, "  %s\t%d units, CPU %.1f%% of one core, RSS %s, peak %s; REST %d requests, %d rate-limited\n",
			p.Instance, p.Units, p.CPUPercent, fmtBytes(p.RSS), fmtBytes(p.PeakRSS), p.REST, p.RESTErrors)
	}
	if n := len(r.PerReplica); n > 0 {
		fmt.Fprintf(tw, "replicas: mean / sum\tCPU %.1f%% / %.1f%%, peak RSS %s / %s\n", cpu/float64(n), cpu, fmtBytes(rss/uint64(n)), fmtBytes(rss))
	}
	fmt.Fprintf(tw, "NATS / simulator CPU\t%.1f%% / %.1f%% of one core\n", r.NATSCPUPercent, r.SimCPUPercent)
	if h := r.Handover; h != nil {
		fmt.Fprintf(tw, "handover (%s SIGKILLed, carried %d units)\t", h.Killed, h.UnitsAffected)
		if h.Restored {
			fmt.Fprintf(tw, "every unit on %d live owner(s) %.1f s after the kill", h.Target, h.RestoredSeconds)
			if h.MemberGoneSeconds > 0 {
				fmt.Fprintf(tw, "; member gone from every view after %.1f s, restored %.1f s later", h.MemberGoneSeconds, h.SinceGoneSeconds)
			}
			fmt.Fprintln(tw)
		} else {
			fmt.Fprintln(tw, "not restored")
		}
		for _, s := range h.Seconds {
			fmt.Fprintf(tw, "  second %d after the kill	JetStream API requests %d, md_state writes %d\n", s.Second, s.APIRequests, s.StateWrites)
		}
	}
	rl := r.RateLimits
	fmt.Fprintf(tw, "rate-limit errors\t%d (REST 429: %d, 418: %d, 403: %d of %d requests; WS rate disconnects: %d; slow-consumer cuts: %d)\n",
		rl.Total, rl.REST429, rl.REST418, rl.REST403, rl.RESTRequests, rl.WSRateDisconnects, rl.SlowDisconnects)
	if r.LogDir != "" {
		fmt.Fprintf(tw, "children's logs\t%s\n", r.LogDir)
	}
	tw.Flush()
}
