//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// streamInfo returns the MD stream's info.
func streamInfo(t *testing.T, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "MD")
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// TestNATSNodeKill: a 3-node NATS cluster holds the MD stream at R3; while
// the bridge publishes from the simulator, the stream's leader is killed
// with SIGKILL and restarted. Every trade must be in the stream exactly once.
func TestNATSNodeKill(t *testing.T) {
	l := newLab(t)
	nw := l.network()
	names := []string{"nats-0", "nats-1", "nats-2"}
	servers := make([]*node, len(names))
	for i, name := range names {
		servers[i] = l.natsNode(name, nw, names)
	}
	_, js := l.connectNATS(servers...)
	_, sim := l.simNode(nw, 7)
	bridge := l.bridgeNode(bridgeOpts{
		instance: "bridge-a",
		natsURL:  "nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222",
		networks: []attach{{nw, nil}},
		env:      map[string]string{"MDB_STREAM_REPLICAS": "3"},
	})
	runFor(t, js, 10*time.Second, "warm-up")

	info, err := streamInfo(t, js)
	if err != nil {
		t.Fatalf("stream MD: %v", err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream MD: replicas %d, cluster %+v; want R3 with a leader", info.Config.Replicas, info.Cluster)
	}
	idx := slices.Index(names, info.Cluster.Leader)
	if idx < 0 {
		t.Fatalf("stream leader %q is not one of %v", info.Cluster.Leader, names)
	}
	victim := servers[idx]
	t.Logf("stream MD: R%d, leader %s, %d messages; killing the leader", info.Config.Replicas, info.Cluster.Leader, info.State.Msgs)

	faultAt := sim.generated(t, tradeMarkets)
	victim.kill()
	runFor(t, js, 12*time.Second, "leader killed")
	victim.restart()
	waitFor(t, 90*time.Second, "restarted node's replica current again", func() error {
		info, err := streamInfo(t, js)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("no leader")
		}
		peers := []string{info.Cluster.Leader}
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline {
				return fmt.Errorf("replica %s current=%v offline=%v lag=%d", p.Name, p.Current, p.Offline, p.Lag)
			}
			peers = append(peers, p.Name)
		}
		if !slices.Contains(peers, victim.role) || len(peers) != 3 {
			return fmt.Errorf("peers %v", peers)
		}
		return nil
	})
	info, err = streamInfo(t, js)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all three replicas current again; leader now %s", info.Cluster.Leader)
	runFor(t, js, 8*time.Second, "after restart")

	sim.stop(t)
	gen := sim.generated(t, tradeMarkets)
	r := newStreamReader(t, js, sim)
	r.waitComplete(gen, 90*time.Second)
	r.checkExactlyOnce(gen, faultAt, simTradeRate*15)
	if !bridge.running() {
		t.Fatalf("the bridge exited")
	}
	if m := bridge.checkPublisher(t); m["mdbridge_publish_failures_total"] == 0 {
		t.Errorf("no publish failed while the stream leader was down: the fault did not reach the bridge")
	}
}
