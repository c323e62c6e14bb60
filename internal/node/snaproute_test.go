package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
)

// TestClusterSnapshotRouting: 3 replicas with R=1 over 12 Binance units; a
// snapshot request for every unit is answered with a snapshot, by the
// unit's owner: only the owners subscribe a unit's control subject, so no
// replica that does not carry it answers unknown_symbol (before, the
// queue group spanned every replica and about 2 in 3 requests got
// unknown_symbol).
func TestClusterSnapshotRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster integration test")
	}
	c := newClusterRig(t, 21, 12, cluster.Config{Redundancy: 1, Heartbeat: time.Second, Expiry: 6 * time.Second, Tick: 200 * time.Millisecond, HandoverTimeout: time.Minute})
	members := []string{"r1", "r2", "r3"}
	nodes := map[string]*Node{}
	for _, name := range members {
		nodes[name] = c.start(name, nil)
	}
	c.observe()
	c.steady("3 replicas", members)
	owners := c.assign(members)

	req, err := publisher.NewSnapshotRequester(c.env.connect(t), publisher.Config{RequestTimeout: 30 * time.Second}, "test")
	if err != nil {
		t.Fatal(err)
	}
	var unknown, failed, notOwner int
	for _, u := range c.units {
		before := map[string]uint64{}
		for name, n := range nodes {
			before[name] = n.SnapshotService().Stats().Served
		}
		rep, err := req.Request(context.Background(), u.Market, u.Symbol, "test")
		switch {
		case errors.Is(err, publisher.ErrUnknownSymbol):
			unknown++
			t.Errorf("%v: %v", u, err)
			continue
		case err != nil:
			failed++
			t.Errorf("%v: %v", u, err)
			continue
		case rep.Exchange != u.Market || rep.Symbol != u.Symbol || rep.Seq == 0 || rep.LastID == 0:
			failed++
			t.Errorf("%v: reply %+v", u, rep)
			continue
		}
		var servedBy []string
		for name, n := range nodes {
			if n.SnapshotService().Stats().Served > before[name] {
				servedBy = append(servedBy, name)
			}
		}
		if !slices.ContainsFunc(servedBy, func(s string) bool { return slices.Contains(owners[u], s) }) {
			notOwner++
			t.Errorf("%v: served by %v, its owners are %v", u, servedBy, owners[u])
		}
	}
	t.Logf("%d requests: %d unknown_symbol, %d other failures, %d not served by an owner", len(c.units), unknown, failed, notOwner)
}
