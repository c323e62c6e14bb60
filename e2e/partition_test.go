//go:build e2e

package e2e

import (
	"testing"
	"time"
)

// partitionFor is how long the bridge is cut off from NATS.
const partitionFor = 20 * time.Second

// TestNetworkPartition: the bridge reaches NATS and the simulator over two
// networks; it is disconnected from the NATS network for 20 s while it
// keeps receiving from the simulator, then connected again. The bridge
// must hold what it received and publish it once NATS is reachable again:
// every trade exactly once.
func TestNetworkPartition(t *testing.T) {
	l := newLab(t)
	natsNet, simNet := l.network(), l.network()
	ns := l.natsNode("nats-0", natsNet, nil)
	_, js := l.connectNATS(ns)
	_, sim := l.simNode(simNet, 13)
	br := l.bridgeNode(bridgeOpts{
		instance: "bridge-p", natsURL: "nats://nats-0:4222",
		networks: []attach{{natsNet, nil}, {simNet, nil}},
	})
	runFor(t, js, 10*time.Second, "before the partition")

	faultAt := sim.generated(t, tradeMarkets)
	br.disconnect(natsNet)
	cut := time.Now()
	// Whatever was in flight lands within a moment; after that the stream
	// must not grow while the bridge is cut off (proof the partition holds).
	time.Sleep(2 * time.Second)
	info, err := streamInfo(t, js)
	if err != nil {
		t.Fatal(err)
	}
	during := info.State.Msgs
	runFor(t, js, partitionFor-time.Since(cut), "partitioned")
	info, err = streamInfo(t, js)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != during {
		t.Fatalf("stream MD grew from %d to %d messages while the bridge was partitioned from NATS", during, info.State.Msgs)
	}
	t.Logf("partition held for %s: stream stayed at %d messages", time.Since(cut).Round(100*time.Millisecond), during)
	br.connect(natsNet)
	healed := time.Now()
	waitFor(t, 90*time.Second, "stream growing again after the partition", func() error {
		info, err := streamInfo(t, js)
		if err != nil {
			return err
		}
		if info.State.Msgs <= during {
			return errorf("stream still at %d messages", info.State.Msgs)
		}
		return nil
	})
	t.Logf("publishing resumed %s after the network healed", time.Since(healed).Round(100*time.Millisecond))
	runFor(t, js, 10*time.Second, "healed")

	sim.stop(t)
	gen := sim.generated(t, tradeMarkets)
	r := newStreamReader(t, js, sim)
	r.waitComplete(gen, 120*time.Second)
	r.checkExactlyOnce(gen, faultAt, simTradeRate*15)
	if !br.running() {
		t.Fatalf("the bridge exited")
	}
	br.checkPublisher(t)
}
