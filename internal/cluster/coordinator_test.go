package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// fakeRunner records the units it runs and, when report is set, writes
// them CONNECTED to md_state as a bridge would.
type fakeRunner struct {
	t        *testing.T
	instance string
	states   jetstream.KeyValue
	mu       sync.Mutex
	running  map[Unit]bool
	report   bool
}

func (f *fakeRunner) StartUnits(_ context.Context, units []Unit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.running[u] = true
	}
	return nil
}

func (f *fakeRunner) StopUnits(_ context.Context, units []Unit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		delete(f.running, u)
		key, _ := publisher.StateKey(u.Market, u.Symbol, f.instance)
		_ = f.states.Delete(context.Background(), key)
	}
	return nil
}

func (f *fakeRunner) units() []Unit {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Unit
	for u := range f.running {
		out = append(out, u)
	}
	slices.SortFunc(out, compareUnits)
	return out
}

// refresh writes every running unit CONNECTED (fresh) when reporting.
func (f *fakeRunner) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.report {
		return
	}
	for u := range f.running {
		key, _ := publisher.StateKey(u.Market, u.Symbol, f.instance)
		body, _ := json.Marshal(bridge.SymbolState{Exchange: u.Market, Symbol: u.Symbol, Instance: f.instance, State: "CONNECTED", Updated: time.Now()})
		if _, err := f.states.Put(context.Background(), key, body); err != nil {
			f.t.Log(err)
		}
	}
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMakeBeforeBreak: with R=1, a replica that loses units to a newcomer
// keeps them until the newcomer reports them CONNECTED, then releases
// them; the newcomer starts its units at once.
func TestMakeBeforeBreak(t *testing.T) {
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Shutdown(context.Background()) })
	nc, err := publisher.Connect(context.Background(), publisher.ConnConfig{URLs: []string{ns.ClientURL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	// The coordinators and the refreshers end before the connection closes
	// (cleanups run last-registered first): none logs after the test.
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	states, err := publisher.EnsureStateBucket(ctx, js, publisher.Config{Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	var units []Unit
	for i := range 40 {
		units = append(units, Unit{"binance", fmt.Sprintf("S%02dUSDT", i)})
	}
	cfg := Config{Redundancy: 1, Units: units, Heartbeat: 200 * time.Millisecond, Expiry: time.Second, Tick: 50 * time.Millisecond, HandoverTimeout: time.Hour, Storage: jetstream.MemoryStorage}
	members, err := EnsureBucket(ctx, js, Config{Instance: "x", Expiry: cfg.Expiry, Heartbeat: cfg.Heartbeat, Storage: jetstream.MemoryStorage}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := func(name string, report bool) (*Coordinator, *fakeRunner) {
		r := &fakeRunner{t: t, instance: name, states: states, running: map[Unit]bool{}, report: report}
		c := cfg
		c.Instance = name
		co, err := New(c, members, states, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := co.Run(ctx); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for ctx.Err() == nil {
				r.refresh()
				<-tick.C
			}
		}()
		return co, r
	}
	a, ra := start("a", true)
	waitCond(t, "a carries every unit", func() bool { return len(ra.units()) == len(units) })

	b, rb := start("b", false)
	wantB := Mine(units, []string{"a", "b"}, "b", 1)
	waitCond(t, "b starts its units", func() bool { return slices.Equal(rb.units(), wantB) })
	// b does not report CONNECTED: a keeps every unit (make-before-break).
	waitCond(t, "a sees b and starts the handover", func() bool { return a.Stats().Releasing == len(wantB) })
	if got := len(ra.units()); got != len(units) {
		t.Fatalf("a released units before b was CONNECTED: carries %d of %d", got, len(units))
	}
	rb.mu.Lock()
	rb.report = true
	rb.mu.Unlock()
	waitCond(t, "a releases b's units", func() bool { return len(ra.units()) == len(units)-len(wantB) })
	if st := a.Stats(); st.Handovers != uint64(len(wantB)) || st.Timeouts != 0 {
		t.Errorf("a: %+v, want %d handovers", st, len(wantB))
	}
	t.Logf("a: %+v; b: %+v", a.Stats(), b.Stats())
}
