package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
)

// Report is the outcome of a soak. Failures lists every violated guarantee;
// an empty list is a pass.
type Report struct {
	Seed       uint64        `json:"seed"`
	Pass       bool          `json:"pass"`
	Failures   []string      `json:"failures"`
	Notes      []string      `json:"notes,omitempty"`
	Started    time.Time     `json:"started"`
	Elapsed    time.Duration `json:"elapsed"`
	ChaosPhase time.Duration `json:"chaos_phase"`
	Config     ReportConfig  `json:"config"`

	Faults   []KindSummary  `json:"faults"`
	FaultLog []FaultResult  `json:"fault_log"`
	Markets  []MarketResult `json:"markets"`
	Stream   StreamResult   `json:"stream"`
	// SnapshotRequests are the control-subject snapshot requests sent
	// during the fault phase, per market.
	SnapshotRequests []SnapshotRequests `json:"snapshot_requests"`
	Replicas         []ReplicaTotals    `json:"replicas"`
	Injected         InjectedTotals     `json:"injected"`
	Resources        ResourceCheck      `json:"resources"`
	Samples          []Sample           `json:"samples"`
	// Owners are the units' owner counts over time (cluster mode).
	Owners OwnerReport `json:"owners"`
}

// ReportConfig is the configuration a report was produced with.
type ReportConfig struct {
	Duration         time.Duration `json:"duration"`
	Warmup           time.Duration `json:"warmup"`
	Settle           time.Duration `json:"settle"`
	FaultEvery       time.Duration `json:"fault_every"`
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout"`
	RotationAge      time.Duration `json:"rotation_age"`
	Markets          []string      `json:"markets"`
	Replicas         int           `json:"replicas"`
	Redundancy       int           `json:"redundancy"`
	Kinds            []FaultKind   `json:"kinds"`
	// ConsumerRule names the book consumer rule that decides.
	ConsumerRule string `json:"consumer_rule"`
	// BybitDepth is the Bybit orderbook depth subscribed and compared.
	BybitDepth int `json:"bybit_depth"`
	// SnapshotEvery is the period of the control-subject snapshot
	// requests during the faults (0: none).
	SnapshotEvery time.Duration `json:"snapshot_every"`
}

// ConsumerRule is the wire contract's book rule the soak judges by (README
// "Building a book").
const ConsumerRule = "README: a snapshot of the deltas' id series (depth) resets the book, then the kept deltas that continue it are applied"

func reportConfig(c Config) ReportConfig {
	rc := ReportConfig{Duration: c.Duration, Warmup: c.Warmup, Settle: c.Settle, FaultEvery: c.FaultEvery,
		HeartbeatTimeout: c.HeartbeatTimeout, RotationAge: c.RotationAge, Replicas: c.Replicas, Redundancy: c.Redundancy, Kinds: c.Kinds,
		ConsumerRule: ConsumerRule, BybitDepth: c.BybitDepth, SnapshotEvery: max(c.SnapshotEvery, 0)}
	for _, m := range c.Markets {
		rc.Markets = append(rc.Markets, fmt.Sprintf("%s:%s@%g/%g", m.Venue, m.Symbol, m.TradeRate, m.BookRate))
	}
	return rc
}

// KindSummary aggregates the faults of one kind.
type KindSummary struct {
	Kind     FaultKind `json:"kind"`
	Injected int       `json:"injected"`
	Skipped  int       `json:"skipped"`
	Errors   int       `json:"errors"`
	// Measured faults had an affected market with an event afterwards.
	Measured       int           `json:"measured"`
	MaxRecovery    time.Duration `json:"max_recovery"`
	MedianRecovery time.Duration `json:"median_recovery"`
	// Worst names the fault and market of MaxRecovery.
	Worst string `json:"worst,omitempty"`
	// From says what recovery is measured from.
	From string `json:"from"`
}

// FaultResult is one executed fault.
type FaultResult struct {
	PlannedFault
	Started  time.Duration `json:"started"` // since the start of the soak
	Lasted   time.Duration `json:"lasted"`
	Target   string        `json:"target,omitempty"`
	Err      string        `json:"error,omitempty"`
	Skipped  string        `json:"skipped,omitempty"`
	Recovery time.Duration `json:"recovery,omitempty"`
	Worst    string        `json:"worst,omitempty"`
	FirstAck time.Duration `json:"first_ack,omitempty"` // nats_restart
	Drained  time.Duration `json:"drained,omitempty"`   // nats_restart
}

// BridgeTotals sums bridge.Stats over a replica's generations and streams.
type BridgeTotals struct {
	Frames, Received, Emitted, Duplicates, Gaps, Snapshots, Backfilled, Missing, Dropped, Malformed, Reconnects, Rotations uint64
}

func (b *BridgeTotals) add(s bridge.Stats) {
	b.Frames += s.Frames
	b.Received += s.Received
	b.Emitted += s.Emitted
	b.Duplicates += s.Duplicates
	b.Gaps += s.Gaps
	b.Snapshots += s.Snapshots
	b.Backfilled += s.Backfilled
	b.Missing += s.Missing
	b.Dropped += s.Dropped
	b.Malformed += s.Malformed
	b.Reconnects += s.Reconnects
	b.Rotations += s.Rotations
}

// PublisherTotals sums publisher.Stats counters over generations.
type PublisherTotals struct {
	Published, Acked, Retries, Failures, Duplicates, Dropped, Rejected, Abandoned, Reordered uint64
}

func (p *PublisherTotals) add(s publisher.Stats) {
	p.Published += s.Published
	p.Acked += s.Acked
	p.Retries += s.Retries
	p.Failures += s.Failures
	p.Duplicates += s.Duplicates
	p.Dropped += s.Dropped
	p.Rejected += s.Rejected
	p.Abandoned += s.Abandoned
	p.Reordered += s.Reordered
}

// ReplicaTotals is one replica over all its generations.
type ReplicaTotals struct {
	Replica     string                         `json:"replica"`
	Generations int                            `json:"generations"`
	Kills       int                            `json:"kills"`
	Bridge      BridgeTotals                   `json:"bridge"`
	Publisher   PublisherTotals                `json:"publisher"`
	Service     publisher.SnapshotServiceStats `json:"snapshot_service"`
	Errors      []string                       `json:"errors,omitempty"`
	// PerExchange splits Bridge by exchange.
	PerExchange map[string]BridgeTotals `json:"per_exchange"`
}

// InjectedTotals is what the simulator and the harness did.
type InjectedTotals struct {
	Connections      int         `json:"connections"`
	GapsInjected     uint64      `json:"gaps_injected"` // book diffs withheld
	DuplicatedFrames uint64      `json:"duplicated_frames"`
	MalformedFrames  uint64      `json:"malformed_frames"`
	Sim              exsim.Stats `json:"sim"`
	NATSRestarts     int         `json:"nats_restarts"`
	Kills            int         `json:"kills"`
	Adds             int         `json:"adds"` // replica_add: replicas that joined
}

// finishReport fills everything but the reconciliation and decides.
func (h *harness) finishReport(rep *Report, baseline, final Sample) {
	h.mu.Lock()
	runs := slices.Clone(h.runs)
	rep.Samples = slices.Clone(h.samples)
	h.mu.Unlock()
	rep.Resources = checkResources(rep.Samples, baseline, final)
	h.recoveries(rep, runs)

	for _, r := range h.reps() {
		r.mu.Lock()
		rt := ReplicaTotals{Replica: r.name(), Generations: len(r.history), PerExchange: map[string]BridgeTotals{}}
		for _, g := range r.history {
			if g.Killed {
				rt.Kills++
			}
			for ex, s := range g.Streams {
				rt.Bridge.add(s)
				t := rt.PerExchange[ex]
				t.add(s)
				rt.PerExchange[ex] = t
			}
			rt.Publisher.add(g.Publisher)
			rt.Service.Requests += g.Service.Requests
			rt.Service.Served += g.Service.Served
			rt.Service.Failed += g.Service.Failed
			rt.Service.Busy += g.Service.Busy
			rt.Service.Fetches += g.Service.Fetches
			rt.Service.Coalesced += g.Service.Coalesced
			rt.Errors = append(rt.Errors, g.Errors...)
		}
		r.mu.Unlock()
		rep.Replicas = append(rep.Replicas, rt)
	}
	conns := h.sim.Conns()
	rep.Injected.Connections = len(conns)
	for _, c := range conns {
		rep.Injected.GapsInjected += c.Skipped
		rep.Injected.DuplicatedFrames += c.Duplicated
		rep.Injected.MalformedFrames += c.Malformed
	}
	rep.Injected.Sim = h.sim.Stats()
	for _, fr := range runs {
		if fr.Skipped == "" && fr.Err == "" {
			switch fr.Kind {
			case KindNATS:
				rep.Injected.NATSRestarts++
			case KindKill:
				rep.Injected.Kills++
			case KindAdd:
				rep.Injected.Adds++
			}
		}
	}
	rep.decide()
}

// recoveries measures the time to recover of every fault and summarizes
// them per kind.
//
// Exchange-side faults: for each affected market on each replica that
// stayed up, the end of the latest interruption that began between the
// injection and the fault's end plus 3 s: a state other than CONNECTED
// until the next CONNECTED, or a silence of the market's publish flow over
// 1.5 s until the next event. (With overlapping faults an interruption may
// be attributed to several of them: the numbers are an upper bound.)
// Without an interruption, the next event. Recovery is measured from the
// injection. replica_kill: from the restart to the first event of every
// market of the restarted replica. nats_restart: from the restart until
// every replica had a publish acknowledged.
func (h *harness) recoveries(rep *Report, runs []*faultRun) {
	const grace = 3 * time.Second
	type down struct {
		replica  int
		from, to time.Time
	}
	var downs []down
	for _, fr := range runs {
		if fr.Kind == KindKill && fr.Skipped == "" && !fr.resumed.IsZero() {
			downs = append(downs, down{fr.Replica, fr.Start, fr.resumed.Add(h.cfg.HeartbeatTimeout + 10*time.Second)})
		}
	}
	wasDown := func(replica int, from, to time.Time) bool {
		for _, d := range downs {
			if d.replica == replica && d.from.Before(to) && d.to.After(from) {
				return true
			}
		}
		return false
	}
	pairName := func(p pairKey) string {
		return fmt.Sprintf("%s %s %s", string(rune('A'+p.replica)), p.exchange, p.symbol)
	}
	byKind := map[FaultKind][]time.Duration{}
	sums := map[FaultKind]*KindSummary{}
	for _, k := range AllKinds() {
		sums[k] = &KindSummary{Kind: k, From: "injection"}
	}
	sums[KindKill].From = "restart (first event of every market)"
	sums[KindNATS].From = "restart (every replica acked again)"
	for _, fr := range runs {
		res := FaultResult{PlannedFault: fr.PlannedFault, Started: fr.Start.Sub(h.start), Lasted: fr.End.Sub(fr.Start),
			Target: fr.Target, Err: fr.Err, Skipped: fr.Skipped, FirstAck: fr.firstAck, Drained: fr.drained}
		ks := sums[fr.Kind]
		switch {
		case fr.Skipped != "":
			ks.Skipped++
		case fr.Err != "":
			ks.Errors++
		default:
			ks.Injected++
		}
		if fr.Skipped == "" && fr.Err == "" {
			var worst time.Duration
			var worstPair string
			measured := false
			switch fr.Kind {
			case KindNATS:
				if fr.firstAck > 0 {
					worst, measured, worstPair = fr.firstAck, true, "publishers"
				}
			case KindKill:
				if !fr.resumed.IsZero() {
					for _, p := range fr.affected {
						if e := h.rec.nextPublish(p, fr.resumed.UnixNano()); e > 0 {
							if d := time.Duration(e - fr.resumed.UnixNano()); d >= worst {
								worst, worstPair, measured = d, pairName(p), true
							}
						}
					}
				}
			default:
				t0, to := fr.Start, fr.End.Add(grace)
				for _, p := range fr.affected {
					if wasDown(p.replica, t0, to) {
						continue
					}
					end, ok := h.rec.outageEnd(p, t0.UnixNano(), to.UnixNano(), pauseThreshold)
					if !ok {
						end = h.rec.nextPublish(p, t0.UnixNano())
					}
					if end == 0 {
						continue
					}
					if d := time.Duration(end - t0.UnixNano()); d >= worst {
						worst, worstPair, measured = d, pairName(p), true
					}
				}
			}
			if measured {
				res.Recovery, res.Worst = worst, worstPair
				byKind[fr.Kind] = append(byKind[fr.Kind], worst)
				ks.Measured++
				if worst >= ks.MaxRecovery {
					ks.MaxRecovery, ks.Worst = worst, fmt.Sprintf("#%d %s", fr.N, worstPair)
				}
			}
		}
		rep.FaultLog = append(rep.FaultLog, res)
	}
	for _, k := range AllKinds() {
		ks := sums[k]
		if ds := byKind[k]; len(ds) > 0 {
			slices.Sort(ds)
			ks.MedianRecovery = ds[len(ds)/2]
		}
		if ks.Injected+ks.Skipped+ks.Errors > 0 || slices.Contains(h.cfg.Kinds, k) {
			rep.Faults = append(rep.Faults, *ks)
		}
	}
}

// decide fills Failures and Notes from the numbers.
func (rep *Report) decide() {
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	note := func(format string, args ...any) { rep.Notes = append(rep.Notes, fmt.Sprintf(format, args...)) }
	backfilled := map[string]uint64{}
	for _, r := range rep.Replicas {
		for ex, t := range r.PerExchange {
			backfilled[ex] += t.Backfilled
		}
	}
	f, n := verdicts(rep.Markets, rep.Stream, backfilled)
	rep.Failures = append(rep.Failures, f...)
	rep.Notes = append(rep.Notes, n...)
	unknown, sent := 0, 0
	for _, sr := range rep.SnapshotRequests {
		unknown += sr.Unknown
		sent += sr.Sent
	}
	if unknown > 0 {
		note("%d of %d snapshot requests on the control subject were answered unknown_symbol: in cluster mode only a unit's owners subscribe its subject (queue group %q), so a replica answered for a unit none of its streams carried",
			unknown, sent, publisher.QueueGroup)
	}
	for _, sr := range rep.SnapshotRequests {
		if sr.Served == 0 {
			note("%s %s: none of %d snapshot requests on the control subject was served (%d busy, %d failed: %v): the books were not checked against requested snapshots",
				sr.Exchange, sr.Symbol, sr.Sent, sr.Busy, sr.Failed, sr.Errors)
		}
	}
	for _, r := range rep.Replicas {
		for _, e := range r.Errors {
			fail("replica %s: %s", r.Replica, e)
		}
		if r.Publisher.Dropped > 0 || r.Publisher.Rejected > 0 {
			fail("replica %s: publisher dropped %d and rejected %d events", r.Replica, r.Publisher.Dropped, r.Publisher.Rejected)
		}
		if r.Publisher.Reordered > 0 {
			note("replica %s: %d retried publishes were stored after a later message (publisher.Stats.Reordered)", r.Replica, r.Publisher.Reordered)
		}
		if r.Bridge.Missing > 0 {
			note("replica %s: the bridge declared %d trades missing (counted in md_state)", r.Replica, r.Bridge.Missing)
		}
	}
	for _, u := range rep.Owners.Units {
		if u.LongestZeroOwners > rep.Owners.Bound {
			fail("unit %s: no live replica ran it for %s (longest run; %s in total; bound %s; R=%d): with R >= 2 and one replica killed at a time every unit keeps an owner (R=1 has no redundancy: a kill leaves its units unowned until the member expires)",
				u.Unit, u.LongestZeroOwners, u.ZeroOwners, rep.Owners.Bound, rep.Owners.Redundancy)
		}
	}
	if rep.Owners.Steady != "" {
		fail("the cluster did not settle to every unit at R owners after the faults: %s", rep.Owners.Steady)
	}
	if rep.Owners.ZeroConnectedTotal > 0 {
		note("owners: units had no CONNECTED owner for %s in total (upstream faults on every connection of a venue disconnect every owner at once; longest per unit in the owner table)",
			rep.Owners.ZeroConnectedTotal)
	}
	rc := rep.Resources
	if !rc.GoroutinesOK {
		fail("goroutines grew from %d to %d (bound %d)", rc.Baseline.Goroutines, rc.Final.Goroutines, rc.GoroutineMax)
	}
	if !rc.HeapOK {
		fail("in-use heap grew from %s to %s (bound %s)", mib(rc.Baseline.HeapInuse), mib(rc.Final.HeapInuse), mib(rc.HeapMax))
	}
	if !rc.RSSOK {
		fail("RSS grew from %s to %s (bound %s)", mib(rc.Baseline.RSS), mib(rc.Final.RSS), mib(rc.RSSMax))
	}
	for _, k := range rep.Faults {
		if k.Errors > 0 {
			note("%s: %d faults could not be injected (see the fault log)", k.Kind, k.Errors)
		}
		if k.Injected == 0 && slices.Contains(rep.Config.Kinds, k.Kind) {
			note("%s: never injected (the fault phase was too short or every attempt was skipped)", k.Kind)
		}
	}
	rep.Pass = len(rep.Failures) == 0
}

// verdicts judges the reconciliation of the stream (markets and stream
// accounting; backfilled is the bridge's backfilled trades per exchange,
// for the notes): it returns the violated guarantees and the notes, as
// Report.Failures and Report.Notes list them.
func verdicts(markets []MarketResult, st StreamResult, backfilled map[string]uint64) (failures, notes []string) {
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	if st.MsgIDDups > 0 {
		fail("%d messages stored twice under one Nats-Msg-Id: %v", st.MsgIDDups, st.Examples)
	}
	if st.DecodeErrors > 0 {
		fail("%d stored messages do not decode or carry a wrong msg id: %v", st.DecodeErrors, st.Examples)
	}
	if st.ForeignEvents > 0 {
		fail("%d stored events belong to no configured market: %v", st.ForeignEvents, st.Examples)
	}
	for _, m := range markets {
		name := m.Exchange + " " + m.Symbol
		t := m.Trades
		if t.Duplicates > 0 {
			fail("%s: %d trades stored more than once: %v", name, t.Duplicates, t.Examples)
		}
		if t.Unknown > 0 && !t.NotSubscribed {
			fail("%s: %d stored trades the simulator never generated: %v", name, t.Unknown, t.Examples)
		}
		if t.LostUncounted > 0 {
			fail("%s: %d trades the simulator wrote to a live replica's connection are missing from the stream and the bridge did not count them (%d loss episodes, bridge missing+dropped counters %d): %v",
				name, t.LostUncounted, t.LostEpisodes, t.BridgeCounted, t.Examples)
		}
		if t.NotSubscribed {
			if t.Unknown > 0 {
				fail("%s: %d trades stored although the market's trades are not subscribed", name, t.Unknown)
			}
		} else if exactTrades(exsim.Venue(m.Exchange)) {
			if t.Missing > 0 {
				fail("%s: %d trades missing from the stream although recoverable by id (%d never delivered on any connection, %d only to a killed replica, %d in flight at a close, %d delivered to a live replica): %v",
					name, t.Missing, t.NeverDelivered, t.KilledReplica, t.InTransit, t.LostByBridge, t.Examples)
			}
		} else {
			if t.LostCounted > 0 {
				note("%s: %d trades written to a live replica's connection are missing from the stream; the bridge counted their %d loss episodes as missing or dropped (counters %d)",
					name, t.LostCounted, t.LostEpisodes, t.BridgeCounted)
			}
			if t.Missing > 0 {
				note("%s: %d of %d trades missing: %d never delivered to any bridge connection (generated while every replica was disconnected; Bybit ids are not consecutive, so only the best-effort recent-trades backfill can bring them back: %s backfilled %d trades in total), %d received only by a replica that was killed before they were acknowledged, %d still in flight when the simulator closed the live replica's connection (discarded by the reset a write after the close provokes), %d lost by a live replica",
					name, t.Missing, t.Generated, t.NeverDelivered, m.Exchange, backfilled[m.Exchange], t.KilledReplica, t.InTransit, t.LostByBridge)
			}
		}
		if t.OutOfOrder > 0 {
			note("%s: %d trades stored after a trade with a higher id (replicas interleave; consumers must not assume id order)", name, t.OutOfOrder)
		}
		b := m.Book
		if b.Diverged {
			fail("%s: book diverged from the simulator's (consumer rule: %s): %s", name, ConsumerRule, b.Diff)
		}
		if b.LibraryDiverged {
			fail("%s: %s", name, b.LibraryDiff)
		}
		if b.ForeignSnapshots > 0 {
			fail("%s: %d book snapshots of another update-id series than the deltas (depth %d) were published (the consumer skips them; README: the bridge never publishes one): %v",
				name, b.ForeignSnapshots, b.Series, b.ForeignLog)
		}
		if b.DeltaDuplicates > 0 {
			fail("%s: %d book deltas stored twice (same last_id)", name, b.DeltaDuplicates)
		}
		if b.SnapDuplicates > 0 {
			fail("%s: %d book snapshots stored twice (same last_id)", name, b.SnapDuplicates)
		}
		if b.ConsumerGaps > 0 {
			fail("%s: %d consumer-visible book gaps (a delta beyond the book id + 1 that no kept or later delta filled; the consumer waits for the next snapshot): %v. Stale snapshots: %s",
				name, b.ConsumerGaps, b.GapLog, staleText(b.StaleLog))
		}
		if b.HealedGaps > 0 {
			note("%s: %d times the book lacked updates that another replica's copies, stored later, filled without a snapshot: %v",
				name, b.HealedGaps, b.GapLog)
		}
		if b.StaleSnapshots > 0 {
			note("%s: %d snapshots were stored after newer deltas of another replica (the documented consumer skips them; %d kept deltas applied by id after other snapshots); a consumer that only resets on a snapshot would have seen %d gaps (book diverged: %v)",
				name, b.StaleSnapshots, b.Replayed, b.NaiveGaps, b.NaiveDiverged)
		}
	}
	return failures, notes
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes the human-readable report.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	c := rep.Config
	fmt.Fprintf(&b, "mdbridge chaos soak: %s   seed %d\n", verdict, rep.Seed)
	fmt.Fprintf(&b, "reproduce: mdbridge chaos --duration %s --seed %d --bybit-depth %d --replicas %d --redundancy %d\n", c.Duration, rep.Seed, c.BybitDepth, c.Replicas, c.Redundancy)
	fmt.Fprintf(&b, "faults for %s (every %s on average, overlapping), warm-up %s, settle %s; whole run %s\n",
		rep.ChaosPhase.Round(time.Second), c.FaultEvery, c.Warmup, c.Settle, rep.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "%d replicas in cluster mode, R=%d (each unit carried by R of them; replica_add starts one more), heartbeat timeout %s, rotation age %s, Bybit orderbook depth %d, snapshot requests every %s\nmarkets (trades/s / book updates/s): %s\nbook consumer rule: %s\n",
		c.Replicas, c.Redundancy, c.HeartbeatTimeout, c.RotationAge, c.BybitDepth, dur(c.SnapshotEvery), strings.Join(c.Markets, " "), c.ConsumerRule)

	b.WriteString("\nFAULTS (time to recover: worst market, measured from the point named; an interruption during overlapping faults counts for each of them, so MAX is an upper bound and MEDIAN the typical figure)\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tINJECTED\tSKIPPED\tERRORS\tMAX RECOVERY\tMEDIAN\tWORST\tFROM")
	for _, k := range rep.Faults {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", k.Kind, k.Injected, k.Skipped, k.Errors,
			dur(k.MaxRecovery), dur(k.MedianRecovery), k.Worst, k.From)
	}
	tw.Flush()
	for _, f := range rep.FaultLog {
		if (f.Kind == KindKill || f.Kind == KindAdd) && f.Skipped == "" {
			fmt.Fprintf(&b, "  %s #%d at %s: %s%s\n", f.Kind, f.N, f.Started.Round(time.Second), f.Target,
				map[bool]string{true: fmt.Sprintf(", down %s", f.Hold.Round(time.Millisecond))}[f.Kind == KindKill])
		}
		if f.Kind == KindNATS && f.Skipped == "" {
			fmt.Fprintf(&b, "  nats_restart #%d: down %s, publishers acked again %s and drained %s after the restart\n",
				f.N, f.Hold.Round(time.Millisecond), dur(f.FirstAck), dur(f.Drained))
		}
	}

	b.WriteString("\nTRADES (per connection: WRITTEN = written by the simulator to at least one bridge connection, of them IN STREAM; missing trades: NEVER written to any bridge connection / written only to a KILLED replica / IN TRANSIT: only in the unacknowledged last bytes of connections the simulator closed / LOST although written to a live replica, COUNTED or UNCOUNTED by the bridge's missing+dropped counters in EPISODES of consecutive missing trades)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MARKET\tGENERATED\tWRITTEN\tIN STREAM\tSTORED\tDUPLICATES\tMISSING\tNEVER\tKILLED\tIN TRANSIT\tLOST COUNTED\tLOST UNCOUNTED\tEPISODES\tBRIDGE COUNTED\tUNKNOWN\tOUT OF ORDER")
	for _, m := range rep.Markets {
		t := m.Trades
		if t.NotSubscribed {
			fmt.Fprintf(tw, "%s %s\tnot subscribed (%d stored)\n", m.Exchange, m.Symbol, t.InStream)
			continue
		}
		fmt.Fprintf(tw, "%s %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", m.Exchange, m.Symbol, t.Generated, t.Written,
			t.WrittenInStream, t.InStream, t.Duplicates, t.Missing, t.NeverDelivered, t.KilledReplica, t.InTransit, t.LostCounted, t.LostUncounted,
			t.LostEpisodes, t.BridgeCounted, t.Unknown, t.OutOfOrder)
	}
	tw.Flush()

	b.WriteString("\nBOOKS (the stream replayed by a consumer following the README rule, and by bridge.BookBuilder, vs the simulator's final book; RESET-ONLY: gaps a consumer that only resets on snapshots would see)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MARKET\tDEPTH\tUPDATES GEN\tDELIVERED\tIN STREAM\tDELTAS\tSNAPSHOTS\tSTALE SNAPS\tFOREIGN SNAPS\tCONSUMER GAPS/FILLED\tRESET-ONLY GAPS\tDUP DELTAS/SNAPS\tFINAL ID\tSIM ID\tBOOK\tBOOKBUILDER")
	for _, m := range rep.Markets {
		bk := m.Book
		word := func(d bool) string {
			if d {
				return "DIVERGED"
			}
			return "equal"
		}
		if bk.NotSubscribed {
			fmt.Fprintf(tw, "%s %s\tnot subscribed (%d deltas, %d snapshots stored)\n", m.Exchange, m.Symbol, bk.Deltas, bk.Snapshots)
			continue
		}
		depth := "-"
		if bk.Series != 0 {
			depth = strconv.Itoa(bk.Series)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%d/%d\t%d\t%d\t%s\t%s\n", m.Exchange, m.Symbol, depth, bk.UpdatesGenerated,
			bk.UpdatesDelivered, bk.UpdatesInStream, bk.Deltas, bk.Snapshots, bk.StaleSnapshots, bk.ForeignSnapshots, bk.ConsumerGaps, bk.HealedGaps, bk.NaiveGaps,
			bk.DeltaDuplicates, bk.SnapDuplicates, bk.FinalID, bk.SimID, word(bk.Diverged), word(bk.LibraryDiverged))
	}
	tw.Flush()
	b.WriteString("\nSNAPSHOT REQUESTS (mdctl.snapshot.<exchange>.<symbol> during the faults, as a consumer sends them; the snapshots they produced are in the books above)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MARKET\tSENT\tSERVED\tDUPLICATE\tBUSY\tFAILED\tUNKNOWN_SYMBOL\tFIRST LAST_IDS\tFIRST ERRORS")
	for _, r := range rep.SnapshotRequests {
		fmt.Fprintf(tw, "%s %s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%s\n", r.Exchange, r.Symbol, r.Sent, r.Served, r.Duplicate, r.Busy, r.Failed, r.Unknown,
			r.LastIDs, strings.Join(r.Errors, "; "))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nSTREAM: %d messages, %d Nats-Msg-Id duplicates, %d decode errors, %d foreign events\n",
		rep.Stream.Messages, rep.Stream.MsgIDDups, rep.Stream.DecodeErrors, rep.Stream.ForeignEvents)

	b.WriteString("\nBRIDGE REPLICAS (all generations)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tGENS\tKILLS\tRECONNECTS\tROTATIONS\tGAPS\tSNAPSHOTS\tDUPS DROPPED\tMALFORMED\tBACKFILLED\tMISSING\tPUBLISHED\tACKED\tJS DUPS\tRETRIES\tDROPPED\tABANDONED\tSNAP REQ/SERVED/BUSY")
	for _, r := range rep.Replicas {
		br, p, s := r.Bridge, r.Publisher, r.Service
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d/%d\n", r.Replica, r.Generations, r.Kills,
			br.Reconnects, br.Rotations, br.Gaps, br.Snapshots, br.Duplicates, br.Malformed, br.Backfilled, br.Missing,
			p.Published, p.Acked, p.Duplicates, p.Retries, p.Dropped+p.Rejected, p.Abandoned, s.Requests, s.Served, s.Busy)
	}
	tw.Flush()
	in := rep.Injected
	var gaps uint64
	for _, r := range rep.Replicas {
		gaps += r.Bridge.Gaps
	}
	fmt.Fprintf(&b, "\nINJECTED: %d book diffs withheld on the replicas' connections (gaps detected by the replicas: %d; one gap may span several withheld diffs, and trade and reconnect gaps count too), %d frames duplicated, %d malformed or oversized frames, %d WebSocket connections (%d closed by faults, %d at their age limit, %d slow-consumer cuts), %d NATS restarts, %d replica kills, %d replicas added\n",
		in.GapsInjected, gaps, in.DuplicatedFrames, in.MalformedFrames, in.Connections, in.Sim.FaultCloses, in.Sim.AgeCuts,
		in.Sim.SlowDisconnects, in.NATSRestarts, in.Kills, in.Adds)
	rep.Owners.writeText(&b)

	rc := rep.Resources
	fmt.Fprintf(&b, "\nRESOURCES (%d samples): goroutines %d at baseline, %d final (bound %d), peak %d at %s;\n  heap in use %s at baseline, %s final (bound %s), peak %s; RSS %s at baseline, %s final (bound %s), peak %s\n  bound: %s\n",
		rc.SampleCount, rc.Baseline.Goroutines, rc.Final.Goroutines, rc.GoroutineMax, rc.Peak.Goroutines, rc.Peak.At.Round(time.Second),
		mib(rc.Baseline.HeapInuse), mib(rc.Final.HeapInuse), mib(rc.HeapMax), mib(rc.PeakHeap),
		mib(rc.Baseline.RSS), mib(rc.Final.RSS), mib(rc.RSSMax), mib(rc.PeakRSS), rc.Bound)
	if len(rep.Samples) > 0 {
		b.WriteString("  samples (elapsed goroutines heap rss):")
		step := max(1, len(rep.Samples)/12)
		for i := 0; i < len(rep.Samples); i += step {
			s := rep.Samples[i]
			fmt.Fprintf(&b, " [%s %d %s %s]", s.At.Round(time.Second), s.Goroutines, mib(s.HeapInuse), mib(s.RSS))
		}
		b.WriteString("\n")
	}
	if len(rep.Failures) > 0 {
		b.WriteString("\nFAILURES\n")
		for _, f := range rep.Failures {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
	}
	if len(rep.Notes) > 0 {
		b.WriteString("\nNOTES\n")
		for _, n := range rep.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\nverdict: %s (seed %d)\n", verdict, rep.Seed)
	_, err := io.WriteString(w, b.String())
	return err
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

func staleText(ss []StaleSnapshot) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("seq %d: snapshot %d after book id %d (%s)", s.Seq, s.LastID, s.BookID, s.Origin))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// writeText writes the OWNERS section: the owner-count histograms over
// time (runs of equal samples merged) and the per-unit table.
func (o OwnerReport) writeText(b *strings.Builder) {
	if len(o.Samples) == 0 {
		return
	}
	fmt.Fprintf(b, "\nOWNERS (every %s, R=%d: units with 0/1/2/3+ live replicas running them = OWNERS, of them CONNECTED; equal consecutive samples merged)\n", o.Every, o.Redundancy)
	for i := 0; i < len(o.Samples); {
		s := o.Samples[i]
		j := i + 1
		for j < len(o.Samples) && o.Samples[j].Owners == s.Owners && o.Samples[j].Connected == s.Connected &&
			o.Samples[j].Phase == s.Phase && o.Samples[j].Replicas == s.Replicas {
			j++
		}
		fmt.Fprintf(b, "  %6s-%-6s %-7s up %d  owners %d/%d/%d/%d  connected %d/%d/%d/%d\n", s.At.Round(time.Second), o.Samples[j-1].At.Round(time.Second),
			s.Phase, s.Replicas, s.Owners[0], s.Owners[1], s.Owners[2], s.Owners[3], s.Connected[0], s.Connected[1], s.Connected[2], s.Connected[3])
		i = j
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT	MIN OWNERS	MAX	MIN CONNECTED	ZERO OWNERS (LONGEST)	ZERO CONNECTED (LONGEST)	OWNER CHANGES")
	for _, u := range o.Units {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s (%s)\t%s (%s)\t%d\n", u.Unit, u.MinOwners, u.MaxOwners, u.MinConnected,
			dur(u.ZeroOwners), dur(u.LongestZeroOwners), dur(u.ZeroConnected), dur(u.LongestZeroConnected), u.Changes)
	}
	tw.Flush()
	fmt.Fprintf(b, "  time any unit had 0 owners: %s in total (bound per run %s); 0 CONNECTED owners: %s in total\n",
		dur(o.ZeroOwnersTotal), o.Bound, dur(o.ZeroConnectedTotal))
	if o.Steady != "" {
		fmt.Fprintf(b, "  after settling: %s\n", o.Steady)
	}
}
