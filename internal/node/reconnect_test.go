package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/internal/cluster"
	"github.com/qldata/mdbridge/publisher"
)

// TestRuntimeWatchAfterReconnect: the embedded NATS server restarts on the
// same port with the same store; the replica's connection reconnects, the
// spec follower sets its watch up again (its watch count grows: without
// that, the ordered consumer behind the watch stays silent until it
// misses heartbeats), and a spec written right after the reconnect is
// applied (its revision the running one), the earlier revision not
// applied a second time. The replica runs in cluster mode: its
// membership and md_state watches are set up again as well
// (Stats.Rewatches), and it still owns the unit afterwards.
func TestRuntimeWatchAfterReconnect(t *testing.T) {
	dir := t.TempDir()
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	shutdown := func(ns *publisher.Embedded) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ns.Shutdown(ctx)
	}
	port := ns.Port()
	sim, err := exsim.New(exsim.Config{Seed: 5, Markets: []exsim.MarketConfig{
		{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 20},
		{Venue: exsim.Binance, Symbol: "ETHUSDT", TradeRate: 20},
	}, BinanceWeightLimit: 1_000_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	env := &testEnv{ns: ns, sim: sim}
	cfg := runtimeConfig(env, "w")
	cfg.Publisher.Storage = jetstream.FileStorage // the spec survives the restart
	cfg.Cluster = &cluster.Config{Redundancy: 1, Heartbeat: time.Second, Expiry: 6 * time.Second, Tick: 200 * time.Millisecond, HandoverTimeout: time.Minute}
	n := env.start(t, cfg)
	t.Cleanup(n.Close)
	t.Cleanup(func() { shutdown(env.ns) })
	js, err := jetstream.New(env.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cfgKV jetstream.KeyValue
	waitUntil(t, time.Minute, 50*time.Millisecond, "config bucket", func() (err error) {
		cfgKV, err = js.KeyValue(ctx, DefaultConfigBucket)
		return err
	})
	applied := func(step string, rev uint64) {
		t.Helper()
		waitUntil(t, 2*time.Minute, 50*time.Millisecond, step, func() error {
			n.rt.mu.Lock()
			got := n.rt.st.Revision
			n.rt.mu.Unlock()
			if got != rev {
				return fmt.Errorf("running revision %d, want %d", got, rev)
			}
			return nil
		})
	}
	rev1, err := cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:BTCUSDT,ETHUSDT"))
	if err != nil {
		t.Fatal(err)
	}
	applied("first spec", rev1)
	owns := func(step string, units int) {
		t.Helper()
		waitUntil(t, 2*time.Minute, 50*time.Millisecond, step, func() error {
			if st := n.Cluster().Stats(); st.Members != 1 || st.Units != units || st.Owned != units {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
	}
	// The coordinator runs (its watches set up) before the restart.
	owns("the replica owns the spec's units before the restart", 2)
	n.rt.mu.Lock()
	changes := n.rt.st.Changes
	n.rt.mu.Unlock()
	watches := n.rt.watches.Load()
	rewatches := n.Cluster().Stats().Rewatches

	shutdown(env.ns)
	ns2, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: port, StoreDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.ns = ns2
	waitUntil(t, 2*time.Minute, 20*time.Millisecond, "watch set up again after the reconnect", func() error {
		if got := n.rt.watches.Load(); got <= watches {
			return fmt.Errorf("%d watches, %d before the restart; node reconnects %d", got, watches, n.Conn().Stats().Reconnects)
		}
		return nil
	})
	// The cluster's membership and md_state watches too.
	waitUntil(t, 2*time.Minute, 20*time.Millisecond, "cluster watches set up again after the reconnect", func() error {
		if got := n.Cluster().Stats().Rewatches; got < rewatches+2 {
			return fmt.Errorf("%d rewatches, %d before the restart", got, rewatches)
		}
		return nil
	})
	var rev2 uint64
	waitUntil(t, time.Minute, 50*time.Millisecond, "put after the reconnect", func() (err error) {
		rev2, err = cfgKV.Put(ctx, DefaultSubscribeKey, []byte("binance:trade:ETHUSDT"))
		return err
	})
	applied("spec written after the reconnect", rev2)
	n.rt.mu.Lock()
	st := n.rt.st
	n.rt.mu.Unlock()
	if st.Changes != changes+1 {
		t.Fatalf("%d changes applied after the reconnect, want 1 (the first spec applied again?): %+v", st.Changes-changes, st)
	}
	owns("the replica owns the spec's unit after the reconnect", 1)
	t.Logf("spec watches %d -> %d, cluster rewatches %d -> %d, node reconnects %d, revision %d -> %d", watches, n.rt.watches.Load(),
		rewatches, n.Cluster().Stats().Rewatches, n.Conn().Stats().Reconnects, rev1, rev2)
}
