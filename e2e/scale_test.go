//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
)

// The cluster scale test's markets: 12 Binance symbols with trades and
// books and 4 Bybit spot symbols with books, 16 units (exchange, symbol).
// Rates are low so that four bridges and the simulator fit on two cores.
var (
	scaleBinance = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT",
		"DOGEUSDT", "TRXUSDT", "LINKUSDT", "DOTUSDT", "LTCUSDT", "AVAXUSDT"}
	scaleBybit = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}
)

const (
	scaleTradeRate  = 10 // Binance trades per second per market
	scaleBookRate   = 5  // book updates per second per market
	scaleRedundancy = 2
	scaleBybitDepth = 50 // MDB_BYBIT_BOOK_DEPTH default
)

// scaleSpecs returns the simulator's -markets spec and the bridges'
// MDB_SUBSCRIBE for the scale markets.
func scaleSpecs() (markets, subscribe string) {
	rate := func(syms []string, trades, books int) string {
		out := make([]string, len(syms))
		for i, s := range syms {
			out[i] = fmt.Sprintf("%s@%d/%d", s, trades, books)
		}
		return strings.Join(out, ",")
	}
	markets = "binance:" + rate(scaleBinance, scaleTradeRate, scaleBookRate) + ";bybit:" + rate(scaleBybit, 1, scaleBookRate)
	subscribe = "binance:trade,book:" + strings.Join(scaleBinance, ",") + ";bybit:book:" + strings.Join(scaleBybit, ",")
	return markets, subscribe
}

// scaleUnits are the units of the scale subscription, as md_state names
// them.
func scaleUnits() []cluster.Unit {
	var out []cluster.Unit
	for _, s := range scaleBinance {
		out = append(out, cluster.Unit{Market: "binance", Symbol: s})
	}
	for _, s := range scaleBybit {
		out = append(out, cluster.Unit{Market: "bybit", Symbol: s})
	}
	return out
}

// unitOwners reads md_state: per unit, the instances with a fresh entry
// that is not DISCONNECTED, sorted, and whether all of them are CONNECTED.
func unitOwners(t *testing.T, js jetstream.JetStream) (map[cluster.Unit][]string, map[cluster.Unit]bool) {
	t.Helper()
	own := map[cluster.Unit][]string{}
	conn := map[cluster.Unit]bool{}
	for _, e := range readStates(t, js) {
		if e.Stale || e.Err != nil || e.State.State == publisher.StateDisconnected {
			continue
		}
		u := cluster.Unit{Market: e.State.Exchange, Symbol: e.State.Symbol}
		if _, ok := conn[u]; !ok {
			conn[u] = true
		}
		own[u] = append(own[u], e.State.Instance)
		if e.State.State != connected {
			conn[u] = false
		}
	}
	for u := range own {
		slices.Sort(own[u])
	}
	return own, conn
}

// waitAssigned waits until md_state shows every unit carried by exactly
// the R replicas of members that rendezvous hashing assigns it, all fresh
// and CONNECTED, and nothing else; it returns the owners and how long it
// took since begin.
func waitAssigned(t *testing.T, js jetstream.JetStream, members []string, begin time.Time) (map[cluster.Unit][]string, time.Duration) {
	t.Helper()
	units := scaleUnits()
	want := cluster.Assign(units, members, scaleRedundancy)
	var got map[cluster.Unit][]string
	waitFor(t, 90*time.Second, fmt.Sprintf("every unit on exactly its %d assigned replicas of %v, CONNECTED", scaleRedundancy, members), func() error {
		own, conn := unitOwners(t, js)
		wrong, notConn := 0, 0
		var example string
		for _, u := range units {
			w := slices.Sorted(slices.Values(want[u]))
			switch {
			case !slices.Equal(own[u], w):
				wrong++
				example = fmt.Sprintf("%s on %v, want %v", u, own[u], w)
			case !conn[u]:
				notConn++
				example = fmt.Sprintf("%s on %v not all CONNECTED", u, own[u])
			}
		}
		if extra := len(own) - len(units); wrong+notConn > 0 || extra != 0 {
			return fmt.Errorf("%d units with other owners, %d not CONNECTED, %d unknown units in md_state (e.g. %s)", wrong, notConn, extra, example)
		}
		got = own
		return nil
	})
	return got, time.Since(begin)
}

// perReplica counts the units each replica carries.
func perReplica(own map[cluster.Unit][]string) map[string]int {
	out := map[string]int{}
	for _, os := range own {
		for _, o := range os {
			out[o]++
		}
	}
	return out
}

// waitSettled waits until a bridge's coordinator sees every member and
// releases nothing and no unit below redundancy (its cluster metrics), and
// returns its metrics.
func waitSettled(t *testing.T, n *node, members int) map[string]float64 {
	t.Helper()
	var m map[string]float64
	waitFor(t, 60*time.Second, n.role+" settled", func() error {
		var err error
		if m, err = n.metrics(); err != nil {
			return err
		}
		if m["mdbridge_cluster_members"] != float64(members) || m["mdbridge_cluster_units_releasing"] != 0 || m["mdbridge_cluster_units_below_redundancy"] != 0 {
			return fmt.Errorf("members %v (want %d), releasing %v, below redundancy %v",
				m["mdbridge_cluster_members"], members, m["mdbridge_cluster_units_releasing"], m["mdbridge_cluster_units_below_redundancy"])
		}
		return nil
	})
	t.Logf("%s: members %.0f, units owned %.0f, gained %.0f, handovers %.0f, handover timeouts %.0f; publish failures %.0f, retries %.0f",
		n.role, m["mdbridge_cluster_members"], m["mdbridge_cluster_units_owned"], m["mdbridge_cluster_units_gained_total"],
		m["mdbridge_cluster_handovers_total"], m["mdbridge_cluster_handover_timeouts_total"], m["mdbridge_publish_failures_total"], m["mdbridge_publish_retries_total"])
	return m
}

// TestClusterScale: bridges in cluster mode (R=2) against a 3-node NATS
// cluster (stream MD at R3) scale 2 → 4 → 2 replicas while the simulator
// generates 16 units (12 Binance trade+book, 4 Bybit book). After each step
// md_state must show every unit on exactly the 2 replicas rendezvous
// hashing assigns it, fresh and CONNECTED; the two replicas removed stop
// gracefully (SIGTERM: they drain, handing their units over) and exit 0.
// At the end every Binance trade is in the stream exactly once and every
// consumer book built from the stream equals the simulator's.
func TestClusterScale(t *testing.T) {
	l := newLab(t)
	nw := l.network()
	names := []string{"nats-0", "nats-1", "nats-2"}
	servers := make([]*node, len(names))
	for i, name := range names {
		servers[i] = l.natsNode(name, nw, names)
	}
	_, js := l.connectNATS(servers...)
	markets, sub := scaleSpecs()
	_, sim := l.simNodeMarkets(nw, 17, markets)
	bridge := func(instance string) *node {
		return l.bridgeNode(bridgeOpts{
			instance: instance,
			natsURL:  "nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222",
			networks: []attach{{nw, nil}},
			env: map[string]string{
				"MDB_SUBSCRIBE": sub, "MDB_STREAM_REPLICAS": "3",
				"MDB_CLUSTER": "true", "MDB_REDUNDANCY": strconv.Itoa(scaleRedundancy),
			},
		})
	}
	var trades []market
	for _, s := range scaleBinance {
		trades = append(trades, market{exsim.Binance, s})
	}
	var books []bookDepth
	for _, m := range trades {
		books = append(books, bookDepth{m, 0})
	}
	for _, s := range scaleBybit {
		books = append(books, bookDepth{market{exsim.BybitSpot, s}, scaleBybitDepth})
	}

	// 2 replicas, R=2: both carry everything.
	begin := time.Now()
	bridges := map[string]*node{"bridge-1": bridge("bridge-1"), "bridge-2": bridge("bridge-2")}
	_, took := waitAssigned(t, js, slices.Sorted(maps.Keys(bridges)), begin)
	t.Logf("2 replicas: all %d units on both, CONNECTED, %s after the first bridge started", len(scaleUnits()), took.Round(100*time.Millisecond))
	for _, name := range slices.Sorted(maps.Keys(bridges)) {
		waitSettled(t, bridges[name], len(bridges))
	}
	runFor(t, js, 5*time.Second, "2 replicas")
	faultAt := sim.generated(t, trades)

	// Scale out to 4.
	begin = time.Now()
	for _, name := range []string{"bridge-3", "bridge-4"} {
		bridges[name] = bridge(name)
	}
	started := time.Since(begin)
	members := slices.Sorted(maps.Keys(bridges))
	own, took := waitAssigned(t, js, members, begin)
	counts := perReplica(own)
	t.Logf("scale 2 → 4: converged %s after the scale-out began (the two new containers were ready after %s); units per replica %v",
		took.Round(100*time.Millisecond), started.Round(100*time.Millisecond), counts)
	for _, name := range members {
		if counts[name] == 0 {
			t.Errorf("%s carries no unit at 4 replicas", name)
		}
	}
	var handovers, timeouts float64
	for _, name := range members {
		m := waitSettled(t, bridges[name], len(members))
		if owned := int(m["mdbridge_cluster_units_owned"]); owned != counts[name] {
			t.Errorf("%s: mdbridge_cluster_units_owned %d, md_state shows %d units", name, owned, counts[name])
		}
		handovers += m["mdbridge_cluster_handovers_total"]
		timeouts += m["mdbridge_cluster_handover_timeouts_total"]
	}
	t.Logf("scale 2 → 4: %.0f handovers, %.0f handover timeouts", handovers, timeouts)
	if handovers == 0 {
		t.Errorf("no handover counted after the scale-out: the first two replicas kept every unit")
	}
	if timeouts != 0 {
		t.Errorf("%.0f handovers timed out after the scale-out: a unit was released before its new owners were CONNECTED", timeouts)
	}
	runFor(t, js, 5*time.Second, "4 replicas")

	// Scale in to 2: stop one of the first and one of the new replicas
	// at once, gracefully.
	gone := []string{"bridge-1", "bridge-3"}
	begin = time.Now()
	var wg sync.WaitGroup
	codes := make([]int, len(gone))
	errs := make([]error, len(gone))
	for i, name := range gone {
		wg.Go(func() { codes[i], errs[i] = bridges[name].stop(60 * time.Second) })
	}
	wg.Wait()
	stopped := time.Since(begin)
	for i, name := range gone {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if codes[i] != 0 {
			t.Errorf("%s exited with code %d after SIGTERM, want 0 (137: killed at the stop timeout, no drain)", name, codes[i])
		}
		delete(bridges, name)
	}
	members = slices.Sorted(maps.Keys(bridges))
	own, took = waitAssigned(t, js, members, begin)
	t.Logf("scale 4 → 2: converged %s after SIGTERM (both containers exited, codes %v, after %s); units per replica %v",
		took.Round(100*time.Millisecond), codes, stopped.Round(100*time.Millisecond), perReplica(own))
	handovers, timeouts = 0, 0
	for _, name := range members {
		m := waitSettled(t, bridges[name], len(members))
		timeouts += m["mdbridge_cluster_handover_timeouts_total"]
		handovers += m["mdbridge_cluster_handovers_total"]
	}
	t.Logf("survivors after 4 → 2: %.0f handovers, %.0f handover timeouts in total", handovers, timeouts)
	if timeouts != 0 {
		t.Errorf("%.0f handovers timed out: a unit was released before its new owners were CONNECTED", timeouts)
	}
	runFor(t, js, 5*time.Second, "2 replicas again")

	sim.stop(t)
	gen := sim.generated(t, trades)
	r := newStreamReader(t, js, sim)
	r.waitComplete(gen, 90*time.Second)
	n := r.checkExactlyOnce(gen, faultAt, scaleTradeRate*15)
	r.waitBooks(books, 90*time.Second) // fails the test now if a book differs
	if r.failures == 0 {
		t.Logf("reconciled: %d Binance trades over %d markets exactly once, %d books equal to the simulator's", n, len(trades), len(books))
	}
	for _, name := range members {
		if !bridges[name].running() {
			t.Errorf("%s exited", name)
		}
		bridges[name].checkPublisher(t)
	}
}
