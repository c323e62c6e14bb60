package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/node"
)

// casAttempts bounds the read-modify-write retries of add and remove when
// other edits land in between.
const casAttempts = 20

const subscribeUsage = `show [-json] | set <spec> | add <spec> | remove <spec>   [-server nats://...] [-bucket md_config]

  show    the runtime spec (KV <bucket>/subscribe) and the set each replica runs, with its source
  set     replace the spec (checked first: a spec MDB_SUBSCRIBE would refuse is refused)
  add     add symbols, or channels of symbols, to the spec
  remove  remove channels of symbols; "*" as channels removes the symbols (binance:*:ETHUSDT)

A spec has MDB_SUBSCRIBE's syntax; several arguments are joined with ';'.
add and remove change the spec the replicas run now (the key's, else the
MDB_SUBSCRIBE set the replicas report) with a revision compare-and-set, so
concurrent edits do not lose each other.`

// cmdSubscribe is `mdbridge subscribe`: edits the runtime subscription
// spec that every replica follows (internal/node Runtime).
func cmdSubscribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags("subscribe", subscribeUsage, stderr)
		if code := parseFlags(fs, args); code >= 0 {
			return code
		}
		fs.Usage()
		return exitUsage
	}
	action := args[0]
	fs := newFlags("subscribe "+action, subscribeUsage, stderr)
	server := fs.String("server", "", "NATS URL (default MDB_NATS_URL, else the embedded server's address)")
	bucket := fs.String("bucket", "", "KV bucket of the runtime spec (default MDB_CONFIG_BUCKET, md_config)")
	asJSON := fs.Bool("json", false, "show: print JSON")
	if code := parseFlags(fs, args[1:]); code >= 0 {
		return code
	}
	spec := strings.Join(fs.Args(), ";")
	switch action {
	case "show":
		if fs.NArg() != 0 {
			fs.Usage()
			return exitUsage
		}
	case "set", "add", "remove":
		if strings.TrimSpace(spec) == "" {
			fmt.Fprintf(stderr, "mdbridge subscribe %s: a spec is required, e.g. %s\n", action, defaultSubscribe)
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "mdbridge subscribe: unknown action %q; allowed: show, set, add, remove\n", action)
		return exitUsage
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cfg, nc, js, err := clientConn(cctx, *server, stderr)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge subscribe: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	b := cmp.Or(*bucket, cfg.ConfigBucket, node.DefaultConfigBucket)
	ed := &specEditor{cfg: cfg, bucket: b}
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if action == "show" {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			fmt.Fprintf(stderr, "mdbridge subscribe show: KV bucket %q: %v (no replica with runtime subscriptions has run against this NATS; MDB_CONFIG_BUCKET names the bucket)\n", b, err)
			return exitFailure
		}
		ed.kv = kv
		if err := ed.show(ctx, stdout, *asJSON); err != nil {
			fmt.Fprintf(stderr, "mdbridge subscribe show: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	// The replicas create the bucket; an edit before any replica ran
	// creates it too (same settings).
	kv, err := js.KeyValue(ctx, b)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = node.EnsureConfigBucket(ctx, js, b, jetstream.FileStorage, cfg.StreamReplicas)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge subscribe %s: KV bucket %q: %v\n", action, b, err)
		return exitFailure
	}
	ed.kv = kv
	rev, final, err := ed.edit(ctx, action, spec)
	if err != nil {
		fmt.Fprintf(stderr, "mdbridge subscribe %s: %v\n", action, err)
		if errors.Is(err, errSpec) || errors.Is(err, errSpecEdit) {
			return exitUsage
		}
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s/%s revision %d: %s\n", b, node.DefaultSubscribeKey, rev, final)
	return exitOK
}

// errSpecEdit marks an add or remove that cannot apply to the current
// spec.
var errSpecEdit = errors.New("cannot edit the subscription spec")

// specEditor reads and writes the runtime spec key.
type specEditor struct {
	cfg    *Config
	bucket string
	kv     jetstream.KeyValue
}

// check refuses a spec MDB_SUBSCRIBE would refuse (parse, then the
// adapters and streams it needs, built offline), with the same messages.
func (e *specEditor) check(spec string) ([]Subscription, error) {
	subs, err := ParseSubscriptions(spec)
	if err != nil {
		return nil, err
	}
	if err := node.CheckSubscriptions(nodeSubscriptions(subs), node.Venues{}); err != nil {
		var se *node.SubscriptionError
		if errors.As(err, &se) && se.Index < len(subs) {
			return nil, fmt.Errorf("%w: group %s: %w", errSpec, subs[se.Index], se.Err)
		}
		return nil, fmt.Errorf("%w: %w", errSpec, err)
	}
	return subs, nil
}

// edit applies action to the key; it returns the new revision and spec.
func (e *specEditor) edit(ctx context.Context, action, arg string) (uint64, string, error) {
	if action == "set" {
		subs, err := e.check(arg)
		if err != nil {
			return 0, "", err
		}
		spec := renderSubs(subs)
		rev, err := e.kv.Put(ctx, node.DefaultSubscribeKey, []byte(spec))
		return rev, spec, err
	}
	var delta []Subscription
	var err error
	if action == "add" {
		delta, err = ParseSubscriptions(arg)
	} else {
		delta, err = parseRemoval(arg)
	}
	if err != nil {
		return 0, "", err
	}
	for range casAttempts {
		base, rev, err := e.current(ctx)
		if err != nil {
			return 0, "", err
		}
		next, err := editSpec(base, delta, action == "add")
		if err != nil {
			return 0, "", err
		}
		subs, err := e.check(next)
		if err != nil {
			return 0, "", err
		}
		spec := renderSubs(subs)
		var nrev uint64
		if rev == 0 {
			nrev, err = e.kv.Create(ctx, node.DefaultSubscribeKey, []byte(spec))
		} else {
			nrev, err = e.kv.Update(ctx, node.DefaultSubscribeKey, []byte(spec), rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another edit landed in between: apply to it
		}
		return nrev, spec, err
	}
	return 0, "", fmt.Errorf("the key kept changing during %d attempts; try again", casAttempts)
}

// current returns the spec the replicas run now and the key's revision (0:
// absent): the key's value, else the MDB_SUBSCRIBE set every replica
// reports.
func (e *specEditor) current(ctx context.Context) ([]Subscription, uint64, error) {
	en, err := e.kv.Get(ctx, node.DefaultSubscribeKey)
	if err == nil {
		subs, perr := ParseSubscriptions(string(en.Value()))
		if perr != nil {
			return nil, 0, fmt.Errorf("%w: the key %s/%s holds a spec the replicas reject (%v); replace it with `mdbridge subscribe set`", errSpecEdit, e.bucket, node.DefaultSubscribeKey, perr)
		}
		return subs, en.Revision(), nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, err
	}
	reports, err := e.reports(ctx)
	if err != nil {
		return nil, 0, err
	}
	specs := map[string]bool{}
	for _, r := range reports {
		specs[r.Spec] = true
	}
	switch len(specs) {
	case 0:
		return nil, 0, fmt.Errorf("%w: the key %s/%s is absent and no replica reports the set it runs; give the whole set with `mdbridge subscribe set <spec>`", errSpecEdit, e.bucket, node.DefaultSubscribeKey)
	case 1:
		for s := range specs {
			subs, err := ParseSubscriptions(s)
			return subs, 0, err
		}
	}
	return nil, 0, fmt.Errorf("%w: the key %s/%s is absent and the replicas run different MDB_SUBSCRIBE sets (%s); give the whole set with `mdbridge subscribe set <spec>`",
		errSpecEdit, e.bucket, node.DefaultSubscribeKey, strings.Join(slices.Sorted(func(yield func(string) bool) {
			for s := range specs {
				if !yield(s) {
					return
				}
			}
		}), " | "))
}

// reports reads the replicas' SubscribeStatus entries, sorted by instance.
func (e *specEditor) reports(ctx context.Context) ([]node.SubscribeStatus, error) {
	w, err := e.kv.Watch(ctx, node.StatusKeyPrefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []node.SubscribeStatus
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case en, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch closed")
			}
			if en == nil {
				slices.SortFunc(out, func(a, b node.SubscribeStatus) int { return strings.Compare(a.Instance, b.Instance) })
				return out, nil
			}
			var st node.SubscribeStatus
			if json.Unmarshal(en.Value(), &st) == nil && st.Instance != "" {
				out = append(out, st)
			}
		}
	}
}

// showDoc is `subscribe show -json`.
type showDoc struct {
	Bucket   string                 `json:"bucket"`
	Key      string                 `json:"key"`
	Spec     string                 `json:"spec,omitempty"` // empty: the key is absent
	Revision uint64                 `json:"revision,omitempty"`
	Written  time.Time              `json:"written,omitzero"`
	Replicas []node.SubscribeStatus `json:"replicas"`
}

func (e *specEditor) show(ctx context.Context, w io.Writer, asJSON bool) error {
	doc := showDoc{Bucket: e.bucket, Key: node.DefaultSubscribeKey}
	en, err := e.kv.Get(ctx, node.DefaultSubscribeKey)
	switch {
	case err == nil:
		doc.Spec, doc.Revision, doc.Written = string(en.Value()), en.Revision(), en.Created()
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return err
	}
	if doc.Replicas, err = e.reports(ctx); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(doc)
	}
	if doc.Spec == "" {
		fmt.Fprintf(w, "runtime spec %s/%s: absent (the replicas run MDB_SUBSCRIBE)\n", doc.Bucket, doc.Key)
	} else {
		fmt.Fprintf(w, "runtime spec %s/%s (revision %d, written %s):\n  %s\n", doc.Bucket, doc.Key, doc.Revision, doc.Written.UTC().Format(time.RFC3339), doc.Spec)
	}
	if len(doc.Replicas) == 0 {
		fmt.Fprintln(w, "\nno replica reports its set (none running with MDB_CONFIG_BUCKET on this NATS)")
		return nil
	}
	fmt.Fprintln(w, "\nREPLICAS")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INSTANCE\tSOURCE\tUNITS\tCHANGES\tUPDATED\tRUNNING\tREJECTED")
	for _, r := range doc.Replicas {
		src := "MDB_SUBSCRIBE"
		if r.Source == node.SourceKV {
			src = fmt.Sprintf("kv rev %d", r.Revision)
		}
		rej := "-"
		if r.Rejected != "" {
			rej = fmt.Sprintf("rev %d: %s", r.RejectedRevision, r.Rejected)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Instance, src, r.Units, r.Changes, r.Updated.UTC().Format(time.RFC3339), r.Spec, rej)
	}
	return tw.Flush()
}

// parseRemoval parses the spec of `subscribe remove`: channels "*" mean
// every channel of the symbols.
func parseRemoval(spec string) ([]Subscription, error) {
	var out []Subscription
	for group := range strings.SplitSeq(spec, ";") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		parts := strings.Split(group, ":")
		all := len(parts) == 3 && strings.TrimSpace(parts[1]) == "*"
		if all {
			parts[1] = "trade"
		}
		subs, err := ParseSubscriptions(strings.Join(parts, ":"))
		if err != nil {
			return nil, err
		}
		for i := range subs {
			if all {
				subs[i].Channels = ^bridge.Channel(0)
			}
		}
		out = append(out, subs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty; e.g. binance:*:ETHUSDT", errSpec)
	}
	return out, nil
}

// editSpec adds delta's channels to base's symbols (add), or takes them
// away, dropping symbols left with none (remove); it returns the result in
// spec form (one group per symbol: ParseSubscriptions merges them).
func editSpec(base, delta []Subscription, add bool) (string, error) {
	type key struct{ ex, sym string }
	chans := map[key]bridge.Channel{}
	var order []key
	for _, s := range base {
		for _, sym := range s.Symbols {
			k := key{s.Exchange, sym}
			if _, ok := chans[k]; !ok {
				order = append(order, k)
			}
			chans[k] |= s.Channels
		}
	}
	for _, s := range delta {
		for _, sym := range s.Symbols {
			k := key{s.Exchange, sym}
			have, ok := chans[k]
			switch {
			case add && !ok:
				order = append(order, k)
				chans[k] = s.Channels
			case add:
				chans[k] = have | s.Channels
			case !ok || have&s.Channels == 0:
				return "", fmt.Errorf("%w: %s:%s:%s is not in the spec", errSpecEdit, s.Exchange, s.Channels, sym)
			default:
				chans[k] = have &^ s.Channels
			}
		}
	}
	var groups []string
	for _, k := range order {
		if ch := chans[k]; ch != 0 {
			groups = append(groups, k.ex+":"+ch.String()+":"+k.sym)
		}
	}
	if len(groups) == 0 {
		return "", fmt.Errorf("%w: the spec would be empty; a replica needs at least one subscription", errSpecEdit)
	}
	return strings.Join(groups, ";"), nil
}

// renderSubs writes parsed subscriptions in spec form.
func renderSubs(subs []Subscription) string {
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ";")
}

// subscribeCollector exports the runtime subscription report.
type subscribeCollector struct {
	status                                                      func() (node.SubscribeStatus, bool)
	units, fromKV, invalid, changes, rejected                   *prometheus.Desc
	uniUnits, uniRefreshes, uniFailures, uniListed, uniDelisted *prometheus.Desc
}

func newSubscribeCollector(status func() (node.SubscribeStatus, bool)) *subscribeCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("mdbridge_subscribe_"+name, help, nil, nil)
	}
	return &subscribeCollector{
		status:       status,
		units:        d("units", "Units (exchange, symbol) of the subscription set running (all replicas' work in cluster mode)."),
		fromKV:       d("from_kv", "1 while the running set is the runtime spec of MDB_CONFIG_BUCKET, 0 while it is MDB_SUBSCRIBE."),
		invalid:      d("spec_rejected", "1 while the runtime spec's latest revision was rejected (the previous set runs; see mdbridge subscribe show)."),
		changes:      d("changes_total", "Runtime subscription specs applied since start."),
		rejected:     d("rejected_total", "Runtime subscription specs rejected since start."),
		uniUnits:     prometheus.NewDesc("mdbridge_universe_units", "Units (exchange, symbol) the universe patterns of the running set match.", nil, nil),
		uniRefreshes: prometheus.NewDesc("mdbridge_universe_refreshes_total", "Instrument-list refreshes (every MDB_UNIVERSE_REFRESH while the set has patterns).", nil, nil),
		uniFailures:  prometheus.NewDesc("mdbridge_universe_refresh_failures_total", "Instrument-list refreshes that failed or left a pattern empty (the running set stayed).", nil, nil),
		uniListed:    prometheus.NewDesc("mdbridge_universe_listed_total", "Units started because the venue listed them.", nil, nil),
		uniDelisted:  prometheus.NewDesc("mdbridge_universe_delisted_total", "Units released because the venue delisted or halted them.", nil, nil),
	}
}

func (c *subscribeCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *subscribeCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.status()
	if !ok {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(c.units, prometheus.GaugeValue, float64(st.Units))
	ch <- prometheus.MustNewConstMetric(c.fromKV, prometheus.GaugeValue, b(st.Source == node.SourceKV))
	ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.GaugeValue, b(st.Rejected != ""))
	ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(st.Changes))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(st.RejectedTotal))
	ch <- prometheus.MustNewConstMetric(c.uniUnits, prometheus.GaugeValue, float64(st.Symbols))
	ch <- prometheus.MustNewConstMetric(c.uniRefreshes, prometheus.CounterValue, float64(st.Refreshes))
	ch <- prometheus.MustNewConstMetric(c.uniFailures, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(c.uniListed, prometheus.CounterValue, float64(st.Listed))
	ch <- prometheus.MustNewConstMetric(c.uniDelisted, prometheus.CounterValue, float64(st.Delisted))
}
