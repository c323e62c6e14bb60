package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/bridge"
)

// replies collects the replies sent to inbox.<token> on client, by token.
type replyLog struct {
	mu  sync.Mutex
	got map[string]SnapshotReply
	ch  chan string
}

func collectReplies(t *testing.T, client *nats.Conn) (string, *replyLog) {
	t.Helper()
	inbox := nats.NewInbox()
	r := &replyLog{got: map[string]SnapshotReply{}, ch: make(chan string, 10_000)}
	sub, err := client.Subscribe(inbox+".*", func(m *nats.Msg) {
		var rep SnapshotReply
		_ = json.Unmarshal(m.Data, &rep)
		tok := strings.TrimPrefix(m.Subject, inbox+".")
		r.mu.Lock()
		r.got[tok] = rep
		r.mu.Unlock()
		r.ch <- tok
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return inbox, r
}

// next waits for the next reply (bounded: a failure, not a timing check).
func (r *replyLog) next(t *testing.T) (string, SnapshotReply) {
	t.Helper()
	select {
	case tok := <-r.ch:
		r.mu.Lock()
		defer r.mu.Unlock()
		return tok, r.got[tok]
	case <-time.After(30 * time.Second):
		t.Fatal("no reply")
		return "", SnapshotReply{}
	}
}

// waitStats polls the service's counters until ok (bounded).
func waitStats(t *testing.T, svc *SnapshotService, ok func(SnapshotServiceStats) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for st := svc.Stats(); !ok(st); st = svc.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached the condition: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

// orderedSource records the order of its calls and blocks each on gate.
type orderedSource struct {
	gate    chan struct{}
	entered chan string
	mu      sync.Mutex
	order   []string
	id      int64
}

func (o *orderedSource) Snapshot(ctx context.Context, exchange, symbol string) (bridge.Event, error) {
	o.mu.Lock()
	o.order = append(o.order, symbol)
	o.id += 100
	id := o.id
	o.mu.Unlock()
	o.entered <- symbol
	select {
	case <-o.gate:
	case <-ctx.Done():
		return bridge.Event{}, ctx.Err()
	}
	return bookSnapshot(exchange, symbol, id), nil
}

// TestSnapshotQueueFIFO: with one fetch slot, requests wait in a queue
// (no busy refusal) and their fetches run in arrival order; a request
// for a symbol whose fetch is running queues a new fetch, and requests for
// a queued symbol join its fetch.
func TestSnapshotQueueFIFO(t *testing.T) {
	nc, _ := provisioned(t)
	src := &orderedSource{gate: make(chan struct{}), entered: make(chan string, 100)}
	svc := startService(t, nc, Config{SnapshotConcurrency: 1, SnapshotRate: 1000, SnapshotBurst: 1000, SnapshotMaxWaiters: 100}, src)
	client := connect(t, nc.ConnectedUrl())
	inbox, reps := collectReplies(t, client)
	send := func(sym, tok string) {
		t.Helper()
		if err := client.PublishRequest("mdctl.snapshot.binance."+sym, inbox+"."+tok, nil); err != nil {
			t.Fatal(err)
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	send("AAA", "a1")
	if got := <-src.entered; got != "AAA" {
		t.Fatalf("first fetch %s", got)
	}
	// While AAA is fetched: BBB, AAA again, CCC, DDD, then BBB and DDD
	// again (they join the queued fetches).
	for _, r := range [][2]string{{"BBB", "b1"}, {"AAA", "a2"}, {"CCC", "c1"}, {"DDD", "d1"}, {"BBB", "b2"}, {"DDD", "d2"}} {
		send(r[0], r[1])
	}
	waitStats(t, svc, func(st SnapshotServiceStats) bool { return st.Requests == 7 })
	if st := svc.Stats(); st.Queued != 4 || st.Coalesced != 2 || st.Busy != 0 {
		t.Fatalf("stats %+v: want 4 queued fetches, 2 coalesced requests, none busy", st)
	}
	for range 4 {
		src.gate <- struct{}{}
		<-src.entered
	}
	src.gate <- struct{}{}
	for range 7 {
		if tok, rep := reps.next(t); rep.Error != "" {
			t.Fatalf("%s: %+v", tok, rep)
		}
	}
	src.mu.Lock()
	order := strings.Join(src.order, ",")
	src.mu.Unlock()
	// Arrival order (AAA's second fetch is a new one: it came while the
	// first was being fetched).
	if want := "AAA,BBB,AAA,CCC,DDD"; order != want {
		t.Errorf("fetch order %s, want %s", order, want)
	}
	reps.mu.Lock()
	defer reps.mu.Unlock()
	if reps.got["b1"].Seq != reps.got["b2"].Seq || reps.got["d1"].Seq != reps.got["d2"].Seq || reps.got["a1"].LastID == reps.got["a2"].LastID {
		t.Errorf("coalescing: %+v", reps.got)
	}
}

// TestSnapshotQueueFloodBusy: above SnapshotMaxWaiters a request is
// refused "busy" at once with retry_after_ms; the waiters are all served.
func TestSnapshotQueueFloodBusy(t *testing.T) {
	nc, _ := provisioned(t)
	src := &fakeSource{gate: make(chan struct{})}
	cfg := Config{SnapshotConcurrency: 2, SnapshotRate: 10, SnapshotBurst: 5, SnapshotMaxWaiters: 50}
	svc := startService(t, nc, cfg, src)
	client := connect(t, nc.ConnectedUrl())
	inbox, reps := collectReplies(t, client)
	const n = 2000
	for i := range n {
		if err := client.PublishRequest(fmt.Sprintf("mdctl.snapshot.binance.SYM%d", i%500), inbox+"."+fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	// The first 50 requests wait (50 distinct symbols), all later ones are
	// refused at once.
	for range n - cfg.SnapshotMaxWaiters {
		tok, rep := reps.next(t)
		var i int
		fmt.Sscan(tok, &i)
		if rep.Code != CodeBusy || rep.RetryAfterMS <= 0 || i < cfg.SnapshotMaxWaiters {
			t.Fatalf("request %d: %+v, want busy with retry_after_ms", i, rep)
		}
	}
	close(src.gate)
	for range cfg.SnapshotMaxWaiters {
		if tok, rep := reps.next(t); rep.Error != "" {
			t.Fatalf("request %s: %+v", tok, rep)
		}
	}
	st := svc.Stats()
	if st.Busy != n-uint64(cfg.SnapshotMaxWaiters) || st.Served != uint64(cfg.SnapshotMaxWaiters) || st.Fetches != uint64(cfg.SnapshotMaxWaiters) || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSnapshotQueueExpired: a queued request whose timeout_ms has passed
// when its fetch would start is dropped without a fetch or a reply.
func TestSnapshotQueueExpired(t *testing.T) {
	nc, _ := provisioned(t)
	src := &orderedSource{gate: make(chan struct{}), entered: make(chan string, 10)}
	svc := startService(t, nc, Config{SnapshotConcurrency: 1, SnapshotRate: 1000, SnapshotBurst: 1000}, src)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	svc.mu.Lock()
	svc.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc.mu.Unlock()
	client := connect(t, nc.ConnectedUrl())
	inbox, reps := collectReplies(t, client)
	send := func(sym, tok, body string) {
		t.Helper()
		if err := client.PublishRequest("mdctl.snapshot.binance."+sym, inbox+"."+tok, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	send("AAA", "a", "")
	<-src.entered
	send("BBB", "b", `{"timeout_ms":2000}`)
	send("CCC", "c", `{"timeout_ms":5000}`)
	waitStats(t, svc, func(st SnapshotServiceStats) bool { return st.Queued == 2 })
	mu.Lock()
	now = now.Add(3 * time.Second) // BBB's requester has given up, CCC's not
	mu.Unlock()
	src.gate <- struct{}{}
	if got := <-src.entered; got != "CCC" {
		t.Fatalf("fetch of %s, want CCC (BBB expired)", got)
	}
	src.gate <- struct{}{}
	for _, want := range []string{"a", "c"} {
		if tok, rep := reps.next(t); tok != want || rep.Error != "" {
			t.Fatalf("reply %s %+v, want %s", tok, rep, want)
		}
	}
	if st := svc.Stats(); st.Expired != 1 || st.Fetches != 2 || st.Served != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestSnapshotUnitRelease: a per-unit service answers only the units it
// serves; a released unit's queued requests get "unavailable", and its
// subject then has no responders.
func TestSnapshotUnitRelease(t *testing.T) {
	nc, _ := provisioned(t)
	src := &orderedSource{gate: make(chan struct{}), entered: make(chan string, 10)}
	pub := newPublisher(t, nc, Config{SnapshotConcurrency: 1, SnapshotRate: 1000, SnapshotBurst: 1000})
	svc, err := NewUnitSnapshotService(nc, pub, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	eth, err := svc.Serve("binance", "ETHUSDT")
	if err != nil {
		t.Fatal(err)
	}
	btc, err := svc.Serve("binance", "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Serve("binance", "BTCUSDT"); err == nil {
		t.Error("serving a unit twice is accepted")
	}
	// Serve's subscriptions reach the server asynchronously; requests on
	// another connection below must find them (the requester's retries
	// cover this in the product, a bare PublishRequest does not).
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	client := connect(t, nc.ConnectedUrl())
	if _, err := client.Request("mdctl.snapshot.binance.SOLUSDT", nil, 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("a unit not served: %v, want no responders", err)
	}
	inbox, reps := collectReplies(t, client)
	send := func(sym, tok string) {
		t.Helper()
		if err := client.PublishRequest("mdctl.snapshot.binance."+sym, inbox+"."+tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	send("ETHUSDT", "e")
	select {
	case got := <-src.entered:
		if got != "ETHUSDT" {
			t.Fatalf("fetch of %s", got)
		}
	case <-time.After(30 * time.Second): // bounded: a failure, not a timing check
		t.Fatal("the ETHUSDT request never reached the source")
	}
	send("BTCUSDT", "b") // waits for the one fetch slot
	waitStats(t, svc, func(st SnapshotServiceStats) bool { return st.Queued == 1 })
	btc.Release()
	if tok, rep := reps.next(t); tok != "b" || rep.Code != CodeUnavailable {
		t.Fatalf("released unit's queued request: %s %+v, want unavailable", tok, rep)
	}
	src.gate <- struct{}{}
	if tok, rep := reps.next(t); tok != "e" || rep.Error != "" {
		t.Fatalf("ETH: %s %+v", tok, rep)
	}
	if _, err := client.Request("mdctl.snapshot.binance.BTCUSDT", nil, 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("a released unit: %v, want no responders", err)
	}
	eth.Release()
	eth.Release() // idempotent
	if st := svc.Stats(); st.Fetches != 1 || st.Served != 1 || st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestRequesterRetriesNoResponders: a request for a unit nobody serves yet
// is retried within the timeout and answered once an owner subscribes;
// with nobody ever serving it the error says no responders after several
// attempts.
func TestRequesterRetriesNoResponders(t *testing.T) {
	nc, _ := provisioned(t)
	pub := newPublisher(t, nc, Config{})
	svc, err := NewUnitSnapshotService(nc, pub, &fakeSource{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	rnc := connect(t, nc.ConnectedUrl())
	req, _ := NewSnapshotRequester(rnc, Config{RequestTimeout: 60 * time.Second}, "test")
	type result struct {
		rep SnapshotReply
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := req.Request(context.Background(), "binance", "BTCUSDT", "gap")
		done <- result{rep, err}
	}()
	// Two attempts got no responders before the unit is served.
	deadline := time.Now().Add(30 * time.Second)
	for rnc.Stats().OutMsgs < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the requester did not retry")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := svc.Serve("binance", "BTCUSDT"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.rep.LastID != 100 {
		t.Fatalf("after retries: %+v %v", r.rep, r.err)
	}

	short, _ := NewSnapshotRequester(rnc, Config{RequestTimeout: 300 * time.Millisecond}, "test")
	_, err = short.Request(context.Background(), "binance", "SOLUSDT", "gap")
	if !errors.Is(err, ErrNoResponders) || !strings.Contains(err.Error(), "attempts") {
		t.Errorf("nobody serving: %v, want no responders after several attempts", err)
	}
}

// TestSnapshotQueueExpiredFreeSlots: at SnapshotMaxWaiters, queued
// requests whose timeout has passed give their slots to new requests
// instead of a busy refusal.
func TestSnapshotQueueExpiredFreeSlots(t *testing.T) {
	nc, _ := provisioned(t)
	src := &orderedSource{gate: make(chan struct{}), entered: make(chan string, 10)}
	svc := startService(t, nc, Config{SnapshotConcurrency: 1, SnapshotRate: 1000, SnapshotBurst: 1000, SnapshotMaxWaiters: 3}, src)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	svc.mu.Lock()
	svc.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc.mu.Unlock()
	client := connect(t, nc.ConnectedUrl())
	inbox, reps := collectReplies(t, client)
	send := func(sym, tok, body string) {
		t.Helper()
		if err := client.PublishRequest("mdctl.snapshot.binance."+sym, inbox+"."+tok, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	send("AAA", "a", "")
	<-src.entered
	send("BBB", "b", `{"timeout_ms":1000}`)
	send("CCC", "c", `{"timeout_ms":1000}`)
	send("DDD", "d", "") // the limit: 3 waiting
	if tok, rep := reps.next(t); tok != "d" || rep.Code != CodeBusy {
		t.Fatalf("%s %+v, want d busy", tok, rep)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	send("EEE", "e", "") // BBB and CCC expired: room
	waitStats(t, svc, func(st SnapshotServiceStats) bool { return st.Requests == 5 })
	if st := svc.Stats(); st.Expired != 2 || st.Busy != 1 || st.Queued != 1 {
		t.Fatalf("stats %+v: want 2 expired, 1 busy, EEE queued", st)
	}
	src.gate <- struct{}{}
	if got := <-src.entered; got != "EEE" {
		t.Fatalf("fetch of %s, want EEE", got)
	}
	src.gate <- struct{}{}
	for range 2 {
		if tok, rep := reps.next(t); rep.Error != "" {
			t.Fatalf("%s %+v", tok, rep)
		}
	}
}

// TestRequesterBusyError is issue 15's publisher half: a busy refusal
// reaches the requester's caller as a *BusyError carrying the reply's
// retry_after_ms (the service's queue over its rate), still errors.Is
// ErrBusy, and a bridge.RetryDelayer with that delay. Before, the delay
// was dropped and the error was only ErrBusy text.
func TestRequesterBusyError(t *testing.T) {
	nc, _ := provisioned(t)
	src := &fakeSource{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	cfg := Config{SnapshotConcurrency: 1, SnapshotRate: 0.1, SnapshotBurst: 1, SnapshotMaxWaiters: 3}
	svc := startService(t, nc, cfg, src)
	defer close(src.gate)
	client := connect(t, nc.ConnectedUrl())
	inbox, _ := collectReplies(t, client)
	for i := range cfg.SnapshotMaxWaiters {
		if err := client.PublishRequest(fmt.Sprintf("mdctl.snapshot.binance.SYM%d", i), inbox+"."+fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	<-src.entered // SYM0 fetching, SYM1 and SYM2 queued
	waitStats(t, svc, func(st SnapshotServiceStats) bool { return st.Requests == 3 && st.Queued == 2 })

	req, err := NewSnapshotRequester(connect(t, nc.ConnectedUrl()), Config{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = req.RequestSnapshot(context.Background(), "binance", "SYM3")
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) {
		t.Fatalf("err %v (%T), want a *BusyError wrapping ErrBusy", err, err)
	}
	// Two queued fetches at 0.1/s: 20 s.
	if busy.RetryAfter != 20*time.Second || busy.Subject != "mdctl.snapshot.binance.SYM3" {
		t.Errorf("%+v, want retry after 20s on mdctl.snapshot.binance.SYM3", busy)
	}
	var rd bridge.RetryDelayer
	if !errors.As(err, &rd) || rd.RetryDelay() != busy.RetryAfter {
		t.Errorf("not a bridge.RetryDelayer with the reply's delay: %v", err)
	}
	if st := svc.Stats(); st.Busy != 1 {
		t.Errorf("stats %+v, want 1 busy", st)
	}
}
