package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// fakeKV records Puts; it can fail or block them.
type fakeKV struct {
	jetstream.KeyValue // only Put is used

	mu      sync.Mutex
	puts    []fakePut
	fail    int           // fail this many next Puts
	block   chan struct{} // when set, Put waits until it is closed
	blocked int           // Puts waiting on block
}

type fakePut struct {
	key string
	st  bridge.SymbolState
	at  time.Time
}

func (f *fakeKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		f.mu.Lock()
		f.blocked++
		f.mu.Unlock()
		var err error
		select {
		case <-block:
		case <-ctx.Done():
			err = ctx.Err()
		}
		f.mu.Lock()
		f.blocked--
		f.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return 0, errors.New("fake: unavailable")
	}
	var st bridge.SymbolState
	if err := json.Unmarshal(value, &st); err != nil {
		return 0, err
	}
	f.puts = append(f.puts, fakePut{key: key, st: st, at: time.Now()})
	return uint64(len(f.puts)), nil
}

func (f *fakeKV) states(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.puts {
		if p.key == key {
			out = append(out, p.st.State)
		}
	}
	return out
}

func (f *fakeKV) all() []fakePut {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakePut(nil), f.puts...)
}

func sym(symbol, state string, messages uint64) bridge.SymbolState {
	return bridge.SymbolState{
		Exchange: "binance", Symbol: symbol, Instance: "pod-1", State: state,
		Since: time.Unix(1_700_000_000, 0), Counters: bridge.Counters{Messages: messages},
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStateWriterOrderAndCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{block: make(chan struct{})}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.PutState(sym("BTCUSDT", "CONNECTING", 0))
		synctest.Wait() // the writer is now blocked writing CONNECTING

		// PutState never blocks, even while the KV write hangs.
		for i := uint64(1); i <= 3; i++ {
			w.PutState(sym("BTCUSDT", "CONNECTED", i))
		}
		w.PutState(sym("BTCUSDT", "RECONNECTING", 3))
		w.PutState(sym("BTCUSDT", "CONNECTED", 4))
		w.PutState(sym("ETHUSDT", "CONNECTING", 0))
		close(kv.block)
		synctest.Wait()

		want := []string{"CONNECTING", "CONNECTED", "RECONNECTING", "CONNECTED"}
		if got := kv.states("binance.BTCUSDT.pod-1"); !equalStrings(got, want) {
			t.Errorf("BTCUSDT writes %v, want %v", got, want)
		}
		if got := kv.states("binance.ETHUSDT.pod-1"); !equalStrings(got, []string{"CONNECTING"}) {
			t.Errorf("ETHUSDT writes %v", got)
		}
		var puts []fakePut // BTCUSDT's (keys are written concurrently)
		for _, p := range kv.all() {
			if p.key == "binance.BTCUSDT.pod-1" {
				puts = append(puts, p)
			}
		}
		if puts[1].st.Messages != 3 {
			t.Errorf("coalesced CONNECTED carries messages=%d, want the newest (3)", puts[1].st.Messages)
		}
		if st := w.Stats(); st.Coalesced != 2 || st.Writes != 5 || st.Keys != 2 {
			t.Errorf("stats %+v: want 2 coalesced, 5 writes, 2 keys", st)
		}
	})
}

// TestStateWriterConcurrentKeys: states of different keys are written
// concurrently, not one Put round trip after another (a handover's ~1000
// new keys waited seconds behind the refresh of the others).
func TestStateWriterConcurrentKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := make(chan struct{})
		kv := &fakeKV{block: first}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.PutState(sym("S0USDT", "CONNECTING", 0))
		synctest.Wait() // writing S0 alone
		rest := make(chan struct{})
		kv.mu.Lock()
		kv.block = rest
		kv.mu.Unlock()
		const n = 10
		for i := 1; i <= n; i++ {
			w.PutState(sym(fmt.Sprintf("S%dUSDT", i), "CONNECTING", 0))
		}
		w.PutState(sym("S1USDT", "CONNECTED", 1)) // a second state of a key
		close(first)
		synctest.Wait()
		kv.mu.Lock()
		blocked := kv.blocked
		kv.mu.Unlock()
		if blocked != n {
			t.Errorf("%d Puts in flight for %d keys queued, want %d", blocked, n, n)
		}
		close(rest)
		synctest.Wait()
		if got := kv.states("binance.S1USDT.pod-1"); !equalStrings(got, []string{"CONNECTING", "CONNECTED"}) {
			t.Errorf("S1USDT writes %v", got)
		}
		if st := w.Stats(); st.Writes != n+2 {
			t.Errorf("%d writes, want %d", st.Writes, n+2)
		}
	})
}

func TestStateWriterRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{}
		w, err := NewStateWriter(kv, Config{StateRefresh: 5 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		start := time.Now()
		w.PutState(sym("BTCUSDT", "CONNECTED", 1))
		synctest.Wait()
		time.Sleep(16 * time.Second)
		synctest.Wait()
		puts := kv.all()
		if len(puts) != 4 {
			t.Fatalf("%d writes in 16 s with a 5 s refresh, want 4 (initial + 3 refreshes)", len(puts))
		}
		for i, p := range puts {
			if want := start.Add(time.Duration(i) * 5 * time.Second); !p.st.Updated.Equal(want) {
				t.Errorf("write %d: updated %v, want %v", i, p.st.Updated, want)
			}
			if !p.st.Since.Equal(time.Unix(1_700_000_000, 0)) || p.st.State != "CONNECTED" {
				t.Errorf("write %d: refresh changed the state: %+v", i, p.st)
			}
		}
	})
}

func TestStateWriterRetriesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{fail: 3}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.PutState(sym("BTCUSDT", "CONNECTING", 0))
		w.PutState(sym("BTCUSDT", "CONNECTED", 0))
		w.PutState(sym("BTCUSDT", "FAILED", 0))
		time.Sleep(3 * time.Second) // backoff 100, 200, 400 ms
		synctest.Wait()
		if got, want := kv.states("binance.BTCUSDT.pod-1"), []string{"CONNECTING", "CONNECTED", "FAILED"}; !equalStrings(got, want) {
			t.Errorf("writes %v, want %v", got, want)
		}
		if st := w.Stats(); st.Failures != 3 {
			t.Errorf("failures %d, want 3", st.Failures)
		}
	})
}

func TestStateWriterOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{block: make(chan struct{})}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.PutState(sym("BTCUSDT", "CONNECTING", 0))
		synctest.Wait()
		states := []string{"CONNECTED", "RECONNECTING"}
		for i := range 100 {
			w.PutState(sym("BTCUSDT", states[i%2], uint64(i)))
		}
		close(kv.block)
		synctest.Wait()
		got := kv.states("binance.BTCUSDT.pod-1")
		if len(got) != 1+maxPendingPerKey {
			t.Errorf("%d writes, want %d (bounded queue)", len(got), 1+maxPendingPerKey)
		}
		if st := w.Stats(); st.Overflowed != 100-maxPendingPerKey {
			t.Errorf("overflowed %d, want %d", st.Overflowed, 100-maxPendingPerKey)
		}
		if last := kv.all()[len(got)-1].st; last.Messages != 99 {
			t.Errorf("last write %+v, want the newest state", last)
		}
	})
}

func TestStateWriterFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.PutState(sym("BTCUSDT", "CONNECTED", 5))
		w.PutState(sym("ETHUSDT", "RECONNECTING", 1))
		w.PutState(sym("XRPUSDT", StateDisconnected, 0))
		w.PutState(bridge.SymbolState{Exchange: "binance", Symbol: "BAD.SYM", State: "CONNECTED"}) // ignored
		time.Sleep(time.Second)
		if err := w.WriteFinal(context.Background()); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for key, want := range map[string][]string{
			"binance.BTCUSDT.pod-1": {"CONNECTED", StateDisconnected},
			"binance.ETHUSDT.pod-1": {"RECONNECTING", StateDisconnected},
			"binance.XRPUSDT.pod-1": {StateDisconnected},
		} {
			if got := kv.states(key); !equalStrings(got, want) {
				t.Errorf("%s: %v, want %v", key, got, want)
			}
		}
		puts := kv.all()
		for _, p := range puts {
			if p.st.State != StateDisconnected || p.key == "binance.XRPUSDT.pod-1" {
				continue
			}
			if want := map[string]uint64{"binance.BTCUSDT.pod-1": 5, "binance.ETHUSDT.pod-1": 1}[p.key]; !p.st.Since.Equal(now) || !p.st.Updated.Equal(now) || p.st.Messages != want {
				t.Errorf("%s: final state %+v: want since=updated=now and the last counters (%d messages)", p.key, p.st, want)
			}
		}
		w.PutState(sym("BTCUSDT", "CONNECTED", 6)) // after WriteFinal: ignored
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(kv.all()); n != len(puts) {
			t.Errorf("writes after WriteFinal: %d", n-len(puts))
		}
	})
}

// TestStateWriterFinalConcurrentKeys: WriteFinal writes different keys
// concurrently (a replica shutting down with thousands of units spent one
// KV round trip per key, in series, of its shutdown grace), each key's
// states still in order.
func TestStateWriterFinalConcurrentKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{}
		w, err := NewStateWriter(kv, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		const n = 10
		for i := range n {
			w.PutState(sym(fmt.Sprintf("S%dUSDT", i), "CONNECTED", 1))
		}
		synctest.Wait() // written
		block := make(chan struct{})
		kv.mu.Lock()
		kv.block = block
		kv.mu.Unlock()
		w.PutState(sym("S0USDT", "RECONNECTING", 2)) // queued for WriteFinal
		done := make(chan error, 1)
		go func() { done <- w.WriteFinal(context.Background()) }()
		synctest.Wait()
		kv.mu.Lock()
		blocked := kv.blocked
		kv.mu.Unlock()
		if blocked != n {
			t.Errorf("%d final Puts in flight for %d keys, want %d", blocked, n, n)
		}
		close(block)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := kv.states("binance.S0USDT.pod-1"); !equalStrings(got, []string{"CONNECTED", "RECONNECTING", StateDisconnected}) {
			t.Errorf("S0USDT writes %v", got)
		}
		for i := 1; i < n; i++ {
			if got := kv.states(fmt.Sprintf("binance.S%dUSDT.pod-1", i)); !equalStrings(got, []string{"CONNECTED", StateDisconnected}) {
				t.Errorf("S%dUSDT writes %v", i, got)
			}
		}
	})
}

func TestStateKey(t *testing.T) {
	for _, tc := range []struct {
		ex, sym, inst, want string
		ok                  bool
	}{
		{"binance", "BTCUSDT", "pod-1", "binance.BTCUSDT.pod-1", true},
		{"bybit-linear", "ETHUSDT", "host.example.com", "bybit-linear.ETHUSDT.host_example_com", true},
		{"bybit", "X", "a*b>c d", "bybit.X.a_b_c_d", true},
		{"bybit", "X", "", "bybit.X._", true},
		{"bin.ance", "X", "i", "", false},
		{"binance", "X*", "i", "", false},
	} {
		got, err := StateKey(tc.ex, tc.sym, tc.inst)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("StateKey(%q,%q,%q) = %q, %v", tc.ex, tc.sym, tc.inst, got, err)
		}
		if !tc.ok && !errors.Is(err, bridge.ErrBadIdent) {
			t.Errorf("error %v does not wrap ErrBadIdent", err)
		}
	}
}

// TestStateBucket runs two instances against a real KV bucket: every
// transition appears in order to a watcher, and the entries of an instance
// that stops refreshing become stale while the live one's stay fresh.
func TestStateBucket(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := Config{StateRefresh: 100 * time.Millisecond, StaleAfter: time.Second}
	kv, err := EnsureStateBucket(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureStateBucket(ctx, js, cfg); err != nil {
		t.Fatalf("second EnsureStateBucket: %v", err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.TTL() != DefaultStateTTL || status.History() != StateHistory {
		t.Errorf("bucket TTL %s history %d", status.TTL(), status.History())
	}

	// A generous threshold: the watcher checks order, not staleness, and a
	// loaded machine may deliver an entry late.
	watch, err := WatchStates(ctx, kv, "binance.BTCUSDT.*", WithStaleAfter(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewStateWriter(kv, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewStateWriter(kv, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	transitions := []string{"CONNECTING", "CONNECTED", "RECONNECTING", "CONNECTED"}
	for i, s := range transitions {
		st := sym("BTCUSDT", s, uint64(i))
		st.Instance = "a"
		a.PutState(st)
	}
	live := sym("ETHUSDT", "CONNECTED", 1)
	live.Instance = "b"
	b.PutState(live)

	// The watcher sees every transition of instance a, in order (refreshes
	// repeat the current state; collapse them).
	var seen []string
	for len(seen) < len(transitions) {
		select {
		case e := <-watch:
			if e.Key != "binance.BTCUSDT.a" || e.Err != nil || e.Stale {
				t.Fatalf("unexpected watch entry %+v", e)
			}
			if len(seen) == 0 || seen[len(seen)-1] != e.State.State {
				seen = append(seen, e.State.State)
			}
		case <-ctx.Done():
			t.Fatalf("watcher saw %v", seen)
		}
	}
	if !equalStrings(seen, transitions) {
		t.Errorf("watcher saw %v, want %v", seen, transitions)
	}

	// Instance a dies (no final write); b keeps refreshing. Wait until b
	// has refreshed more than StaleAfter after a's last write, then judge
	// both at b's last refresh (WithNow): a's entry is stale, b's fresh,
	// however late this goroutine ran.
	a.Close()
	var byKey map[string]StateEntry
	for {
		entries, err := ReadStates(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		// ReadStates returns each key once (its newest revision), even
		// while b rewrites its key every 100 ms.
		byKey = map[string]StateEntry{}
		for _, e := range entries {
			if _, dup := byKey[e.Key]; dup {
				t.Fatalf("key %s twice in %+v", e.Key, entries)
			}
			byKey[e.Key] = e
		}
		if len(byKey) != 2 {
			t.Fatalf("entries %+v", entries)
		}
		if byKey["binance.ETHUSDT.b"].State.Updated.Sub(byKey["binance.BTCUSDT.a"].State.Updated) > cfg.StaleAfter {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("b did not refresh past a's staleness: %+v", byKey)
		case <-time.After(50 * time.Millisecond):
		}
	}
	at := byKey["binance.ETHUSDT.b"].State.Updated
	entries, err := ReadStates(ctx, kv, WithStaleAfter(cfg.StaleAfter), WithNow(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	byKey = map[string]StateEntry{}
	for _, e := range entries {
		byKey[e.Key] = e
	}
	if e := byKey["binance.BTCUSDT.a"]; !e.Stale || e.State.State != "CONNECTED" || e.Age < cfg.StaleAfter {
		t.Errorf("dead instance entry %+v: want stale", e)
	}
	if e := byKey["binance.ETHUSDT.b"]; e.Stale || e.State.State != "CONNECTED" {
		t.Errorf("live instance entry %+v: want fresh", e)
	}

	if err := b.WriteFinal(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err = ReadStates(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[1]; e.Key != "binance.ETHUSDT.b" || e.State.State != StateDisconnected {
		t.Errorf("after WriteFinal: %+v", e)
	}
	// With the default threshold nothing is stale yet; with a clock an hour
	// ahead everything is.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	entries, _ = ReadStates(ctx, kv, WithNow(later))
	for _, e := range entries {
		if !e.Stale {
			t.Errorf("%s not stale an hour later", e.Key)
		}
	}
}

// TestStateWriterFinalNoWarning: a clean shutdown while a background write
// is in flight cancels that write; it is written again by WriteFinal and
// is neither a warning nor a counted failure.
func TestStateWriterFinalNoWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{block: make(chan struct{})}
		logs := &syncBuffer{}
		w, err := NewStateWriter(kv, Config{}, slogTo(logs))
		if err != nil {
			t.Fatal(err)
		}
		w.PutState(sym("BTCUSDT", "CONNECTED", 5))
		synctest.Wait() // the writer is blocked writing CONNECTED
		go func() {
			synctest.Wait() // WriteFinal has cancelled the background write
			kv.mu.Lock()
			close(kv.block)
			kv.block = nil
			kv.mu.Unlock()
		}()
		if err := w.WriteFinal(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := kv.states("binance.BTCUSDT.pod-1"); !equalStrings(got, []string{"CONNECTED", StateDisconnected}) {
			t.Errorf("writes %v, want CONNECTED then DISCONNECTED", got)
		}
		if st := w.Stats(); st.Failures != 0 {
			t.Errorf("%d failures counted for a write cancelled by shutdown", st.Failures)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("warning on a clean shutdown:\n%s", logs.String())
		}
	})
}

// TestReadStatesNewestRevision: ReadStates reads every kept revision and
// returns each key once, its newest; a key whose newest revision is a
// delete is absent, one rewritten after a delete is present again.
func TestReadStatesNewestRevision(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := EnsureStateBucket(ctx, js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, state string, n uint64) {
		t.Helper()
		b, err := json.Marshal(sym("BTCUSDT", state, n))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 * StateHistory { // more revisions than the bucket keeps
		put("binance.BTCUSDT.a", "CONNECTED", uint64(i))
	}
	put("binance.BTCUSDT.b", "CONNECTED", 1)
	if err := kv.Delete(ctx, "binance.BTCUSDT.b"); err != nil {
		t.Fatal(err)
	}
	put("binance.BTCUSDT.c", "CONNECTING", 1)
	if err := kv.Delete(ctx, "binance.BTCUSDT.c"); err != nil {
		t.Fatal(err)
	}
	put("binance.BTCUSDT.c", "RECONNECTING", 2)
	entries, err := ReadStates(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s=%s/%d", e.Key, e.State.State, e.State.Messages))
	}
	want := []string{
		fmt.Sprintf("binance.BTCUSDT.a=CONNECTED/%d", 3*StateHistory-1),
		"binance.BTCUSDT.c=RECONNECTING/2",
	}
	if !equalStrings(got, want) {
		t.Errorf("ReadStates = %v, want %v", got, want)
	}
}
