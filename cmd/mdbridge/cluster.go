package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"

	"github.com/qldata/mdbridge/internal/cluster"
)

// clusterCollector exports a cluster coordinator's gauges and counters.
type clusterCollector struct {
	c     *cluster.Coordinator
	descs map[string]*prometheus.Desc
}

var clusterMetrics = []struct {
	name, help string
	counter    bool
	value      func(cluster.Stats) float64
}{
	{"cluster_members", "Live replicas in this replica's view of md_members, itself included.", false, func(s cluster.Stats) float64 { return float64(s.Members) }},
	{"cluster_units_owned", "Units (exchange, symbol) assigned to this replica.", false, func(s cluster.Stats) float64 { return float64(s.Owned) }},
	{"cluster_units_releasing", "Units lost to other replicas and still carried until they are CONNECTED there.", false, func(s cluster.Stats) float64 { return float64(s.Releasing) }},
	{"cluster_units_below_redundancy", "Units with fewer than min(MDB_REDUNDANCY, members) live CONNECTED owners in md_state.", false, func(s cluster.Stats) float64 { return float64(s.BelowR) }},
	{"cluster_frozen", "1 while this replica cannot refresh its md_members entry and holds its units.", false, func(s cluster.Stats) float64 {
		if s.Frozen {
			return 1
		}
		return 0
	}},
	{"cluster_units", "Units (exchange, symbol) of the subscription set, over all replicas.", false, func(s cluster.Stats) float64 { return float64(s.Units) }},
	{"cluster_units_retired_total", "Running units stopped because the runtime subscription set dropped them.", true, func(s cluster.Stats) float64 { return float64(s.Retired) }},
	{"cluster_units_restarted_total", "Running units restarted because the runtime subscription set changed their channels.", true, func(s cluster.Stats) float64 { return float64(s.Restarted) }},
	{"cluster_units_gained_total", "Units this replica started carrying.", true, func(s cluster.Stats) float64 { return float64(s.Gained) }},
	{"cluster_handovers_total", "Units released after their new owners reported CONNECTED.", true, func(s cluster.Stats) float64 { return float64(s.Handovers) }},
	{"cluster_handover_timeouts_total", "Units released at the handover timeout without their new owners CONNECTED.", true, func(s cluster.Stats) float64 { return float64(s.Timeouts) }},
}

func newClusterCollector(c *cluster.Coordinator) *clusterCollector {
	cc := &clusterCollector{c: c, descs: map[string]*prometheus.Desc{}}
	for _, m := range clusterMetrics {
		cc.descs[m.name] = prometheus.NewDesc("mdbridge_"+m.name, m.help, nil, nil)
	}
	return cc
}

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range cc.descs {
		ch <- d
	}
}

func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	for _, m := range clusterMetrics {
		t := prometheus.GaugeValue
		if m.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(cc.descs[m.name], t, m.value(st))
	}
}

// minClusterHeartbeat is the shortest MDB_CLUSTER_HEARTBEAT: each beat is
// one KV write per replica.
const minClusterHeartbeat = 100 * time.Millisecond

// validateCluster checks MDB_REDUNDANCY, MDB_MEMBERS_BUCKET,
// MDB_HANDOVER_TIMEOUT, MDB_CLUSTER_HEARTBEAT and MDB_CLUSTER_EXPIRY
// (checked even without MDB_CLUSTER, so a typo shows at once).
func (c *Config) validateCluster() error {
	var errs []error
	r, err := strconv.Atoi(strings.TrimSpace(c.Redundancy))
	switch {
	case err != nil:
		errs = append(errs, configError("REDUNDANCY", "%q is not a number; allowed: a whole number of at least 1 (default 2; 1 = no redundancy)", c.Redundancy))
	case r < 1:
		errs = append(errs, configError("REDUNDANCY", "%d; allowed: at least 1 (default 2; 1 = no redundancy)", r))
	default:
		c.redundancy = r
	}
	if err := bridge.ValidateIdent(c.MembersBucket); err != nil {
		errs = append(errs, configError("MEMBERS_BUCKET", "%v", err))
	} else if c.MembersBucket == c.KVBucket {
		errs = append(errs, configError("MEMBERS_BUCKET", "must differ from MDB_KV_BUCKET (%q)", c.KVBucket))
	}
	if c.IPShare < 1 {
		errs = append(errs, configError("IP_SHARE", "%d; allowed: the number of replicas sharing one egress IP, at least 1 (default 1: each replica has its own)", c.IPShare))
	}
	if c.HandoverTimeout < time.Second {
		errs = append(errs, configError("HANDOVER_TIMEOUT", "%s is below the minimum 1s; use a Go duration such as 30s", c.HandoverTimeout))
	}
	switch {
	case c.ClusterHeartbeat < minClusterHeartbeat:
		errs = append(errs, configError("CLUSTER_HEARTBEAT", "%s is below the minimum %s; use a Go duration such as 1s (the default)", c.ClusterHeartbeat, minClusterHeartbeat))
	case c.ClusterExpiry < time.Second:
		errs = append(errs, configError("CLUSTER_EXPIRY", "%s is below the minimum 1s (the membership bucket's TTL); use a Go duration such as 3s (the default)", c.ClusterExpiry))
	case c.ClusterExpiry < 2*c.ClusterHeartbeat:
		errs = append(errs, configError("CLUSTER_EXPIRY", "%s is below twice MDB_CLUSTER_HEARTBEAT (%s); allowed: at least %s", c.ClusterExpiry, c.ClusterHeartbeat, 2*c.ClusterHeartbeat))
	}
	return errors.Join(errs...)
}

// clusterConfig is the node's cluster configuration (nil without
// MDB_CLUSTER).
func (c *Config) clusterConfig() *cluster.Config {
	if !c.Cluster {
		return nil
	}
	return &cluster.Config{Redundancy: c.redundancy, Bucket: c.MembersBucket, HandoverTimeout: c.HandoverTimeout,
		Heartbeat: c.ClusterHeartbeat, Expiry: c.ClusterExpiry}
}

// printCluster prints the replicas of the membership bucket, if there is
// one, and each unit's owners: the instances with a fresh md_state entry
// that is not DISCONNECTED, with their state.
func printCluster(ctx context.Context, js jetstream.JetStream, cfg *Config, entries []publisher.StateEntry, w io.Writer) {
	kv, err := js.KeyValue(ctx, cfg.MembersBucket)
	if err != nil {
		return // not clustered
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	members, err := cluster.ReadMembers(rctx, kv)
	if err != nil {
		fmt.Fprintf(w, "\nmembers (%s): %v\n", cfg.MembersBucket, err)
		return
	}
	fmt.Fprintf(w, "\nMEMBERS (%s)\n", cfg.MembersBucket)
	r := 0
	for _, m := range members {
		state := "live"
		if m.Draining {
			state = "draining"
		}
		fmt.Fprintf(w, "  %-24s %-8s units=%-5d releasing=%-4d redundancy=%d age=%s started=%s\n",
			m.Instance, state, m.Units, m.Releasing, m.Redundancy, m.Age.Round(100*time.Millisecond), m.Started.Format(time.RFC3339))
		r = max(r, m.Redundancy)
	}
	owners := map[string][]string{}
	for _, e := range entries {
		if e.Stale || e.Err != nil || e.State.State == publisher.StateDisconnected {
			continue
		}
		u := e.State.Exchange + ":" + e.State.Symbol
		owners[u] = append(owners[u], e.State.Instance+"("+e.State.State+")")
	}
	units := slices.Sorted(func(yield func(string) bool) {
		for u := range owners {
			if !yield(u) {
				return
			}
		}
	})
	want := min(cmp.Or(r, 1), max(len(members), 1))
	below := 0
	fmt.Fprintf(w, "\nUNITS (owners with a fresh md_state entry)\n")
	for _, u := range units {
		o := owners[u]
		slices.Sort(o)
		mark := ""
		if len(o) < want {
			mark = "  below redundancy"
			below++
		}
		fmt.Fprintf(w, "  %-32s %s%s\n", u, strings.Join(o, " "), mark)
	}
	fmt.Fprintf(w, "%d units, %d below redundancy %d\n", len(units), below, want)
}

// share is a per-IP budget divided among the MDB_IP_SHARE replicas on
// that IP (at least 1).
func (c *Config) share(budget int) int {
	return max(budget/max(c.IPShare, 1), 1)
}
