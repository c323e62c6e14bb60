package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// fakeSource serves snapshots of the symbols in known, with increasing
// last update ids. When gate is set, every call waits for a value on it.
type fakeSource struct {
	known   map[string]bool // exchange.symbol; nil = everything
	gate    chan struct{}
	calls   atomic.Int64
	lastID  atomic.Int64
	entered chan struct{} // receives once per call, if set
	result  func(exchange, symbol string) (bridge.Event, error)
}

func (f *fakeSource) Snapshot(ctx context.Context, exchange, symbol string) (bridge.Event, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return bridge.Event{}, ctx.Err()
		}
	}
	if f.result != nil {
		return f.result(exchange, symbol)
	}
	id := f.lastID.Add(100)
	return bridge.Event{
		Type: bridge.EventBookSnapshot, Exchange: exchange, Symbol: symbol, TS: 7, RecvTS: 8, LastID: id,
		Bids: []bridge.Level{{"100.5", "2"}}, Asks: []bridge.Level{{"101", "1.5"}},
	}, nil
}

// filteredSource adds the SymbolFilter capability.
type filteredSource struct{ *fakeSource }

func (f filteredSource) Serves(exchange, symbol string) bool { return f.known[exchange+"."+symbol] }

// startService starts the service on nc with a publisher of cfg on nc.
func startService(t *testing.T, nc *nats.Conn, cfg Config, src SnapshotSource) *SnapshotService {
	t.Helper()
	return startServiceWith(t, nc, newPublisher(t, nc, cfg), src)
}

// startServiceWith starts the service on nc, publishing through pub.
func startServiceWith(t *testing.T, nc *nats.Conn, pub *JetStream, src SnapshotSource) *SnapshotService {
	t.Helper()
	s, err := NewSnapshotService(nc, pub, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before pub's Close (cleanups run last first)
	return s
}

// unprovisioned starts a publisher of cfg on nc without provisioning the
// stream.
func unprovisioned(t *testing.T, nc *nats.Conn, cfg Config) *JetStream {
	t.Helper()
	p, err := startJetStream(nc, cfg.withDefaults(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func rawRequest(t *testing.T, nc *nats.Conn, subject string, body []byte) SnapshotReply {
	t.Helper()
	m, err := nc.Request(subject, body, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var r SnapshotReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply %q: %v", m.Data, err)
	}
	return r
}

// provisioned returns a connection to a fresh server with the MD stream.
func provisioned(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := EnsureStream(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func TestSnapshotRequestPublishesAndReplies(t *testing.T) {
	nc, js := provisioned(t)
	src := &fakeSource{}
	startService(t, nc, Config{}, src)
	req, err := NewSnapshotRequester(nc, Config{}, "pod-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := req.Request(ctx, "binance", "BTCUSDT", "test")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stream != "MD" || rep.Seq == 0 || rep.LastID != 100 || rep.Exchange != "binance" || rep.Symbol != "BTCUSDT" || rep.Duplicate {
		t.Fatalf("reply %+v", rep)
	}
	s, _ := js.Stream(ctx, "MD")
	raw, err := s.GetMsg(ctx, rep.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "md.binance.BTCUSDT" || raw.Header.Get(HeaderMsgID) != "binance:BTCUSDT:book.snapshot:100" || raw.Header.Get(HeaderType) != "book.snapshot" {
		t.Errorf("stored message %s %v", raw.Subject, raw.Header)
	}
	ev, err := bridge.DecodeJSON(raw.Data)
	if err != nil || ev.Type != bridge.EventBookSnapshot || ev.LastID != 100 || len(ev.Bids) != 1 {
		t.Errorf("stored snapshot %+v, %v", ev, err)
	}

	// The bridge's interface returns the last update id.
	id, err := req.RequestSnapshot(ctx, "bybit", "ETHUSDT")
	if err != nil || id != 200 {
		t.Errorf("RequestSnapshot = %d, %v; want 200", id, err)
	}
	// The same snapshot again is a JetStream duplicate with the original seq.
	src.lastID.Store(0)
	again, err := req.Request(ctx, "binance", "BTCUSDT", "")
	if err != nil || !again.Duplicate || again.Seq != rep.Seq {
		t.Errorf("duplicate snapshot reply %+v, %v; want duplicate of seq %d", again, err, rep.Seq)
	}
}

func TestSnapshotBadRequests(t *testing.T) {
	nc, _ := provisioned(t)
	src := &fakeSource{known: map[string]bool{"binance.BTCUSDT": true, "binance.WRONG": true, "binance.GONE": true}}
	src.result = func(exchange, symbol string) (bridge.Event, error) {
		switch symbol {
		case "WRONG":
			return bridge.Event{Type: bridge.EventTrade, Exchange: exchange, Symbol: symbol}, nil
		case "GONE":
			return bridge.Event{}, fmt.Errorf("delisted: %w", ErrUnknownSymbol)
		}
		return bridge.Event{Type: bridge.EventBookSnapshot, Exchange: exchange, Symbol: symbol, LastID: 1}, nil
	}
	startService(t, nc, Config{}, filteredSource{src})

	for _, tc := range []struct {
		name, subject string
		body          []byte
		code          string // "" = success
		mention       string
	}{
		{"no body", "mdctl.snapshot.binance.BTCUSDT", nil, "", ""},
		{"empty object", "mdctl.snapshot.binance.BTCUSDT", []byte(` {} `), "", ""},
		{"with fields", "mdctl.snapshot.binance.BTCUSDT", []byte(`{"requester":"x","reason":"gap","future":1}`), "", ""},
		{"not json", "mdctl.snapshot.binance.BTCUSDT", []byte(`hello`), CodeBadRequest, "malformed"},
		{"broken json", "mdctl.snapshot.binance.BTCUSDT", []byte(`{"reason":`), CodeBadRequest, "malformed"},
		{"json array", "mdctl.snapshot.binance.BTCUSDT", []byte(`[1,2]`), CodeBadRequest, "JSON object"},
		{"too large", "mdctl.snapshot.binance.BTCUSDT", []byte(`{"reason":"` + strings.Repeat("x", MaxRequestBody) + `"}`), CodeBadRequest, "4096"},
		{"bad exchange", "mdctl.snapshot.bin$ance.BTCUSDT", nil, CodeBadRequest, "exchange"},
		{"unknown symbol", "mdctl.snapshot.binance.DOGEUSDT", nil, CodeUnknownSymbol, "DOGEUSDT"},
		{"source does not know it", "mdctl.snapshot.binance.GONE", nil, CodeUnknownSymbol, "delisted"},
		{"source returns wrong type", "mdctl.snapshot.binance.WRONG", nil, CodeFetchFailed, "trade"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawRequest(t, nc, tc.subject, tc.body)
			if tc.code == "" {
				if r.Error != "" || r.Seq == 0 {
					t.Errorf("reply %+v, want success", r)
				}
				return
			}
			if r.Code != tc.code || !strings.Contains(r.Error, tc.mention) || r.Seq != 0 {
				t.Errorf("reply %+v, want code %s mentioning %q", r, tc.code, tc.mention)
			}
		})
	}

	req, _ := NewSnapshotRequester(nc, Config{}, "")
	if _, err := req.RequestSnapshot(context.Background(), "binance", "DOGEUSDT"); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("unknown symbol: %v", err)
	}
	if _, err := req.RequestSnapshot(context.Background(), "binance", "BTC.USDT"); !errors.Is(err, bridge.ErrBadIdent) {
		t.Errorf("bad symbol: %v", err)
	}
}

func TestSnapshotCoalesces(t *testing.T) {
	nc, _ := provisioned(t)
	src := &fakeSource{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	svc := startService(t, nc, Config{}, src)
	req, _ := NewSnapshotRequester(nc, Config{}, "")
	ctx := context.Background()

	type result struct {
		rep SnapshotReply
		err error
	}
	first := make(chan result, 1)
	go func() {
		r, err := req.Request(ctx, "binance", "BTCUSDT", "")
		first <- result{r, err}
	}()
	<-src.entered // the first fetch is running

	// 20 requests arriving during that fetch coalesce onto one more fetch:
	// they must not reuse a snapshot that may predate their request.
	const n = 20
	results := make(chan result, n)
	for range n {
		go func() {
			r, err := req.Request(ctx, "binance", "BTCUSDT", "")
			results <- result{r, err}
		}()
	}
	deadline := time.Now().Add(60 * time.Second) // a failure bound: generous for a loaded machine
	for svc.Stats().Coalesced < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("requests did not coalesce: %+v", svc.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	src.gate <- struct{}{} // finish the first fetch
	<-src.entered          // the coalesced fetch starts
	src.gate <- struct{}{}

	r0 := <-first
	if r0.err != nil || r0.rep.LastID != 100 {
		t.Fatalf("first request: %+v", r0)
	}
	var seq uint64
	for range n {
		r := <-results
		if r.err != nil || r.rep.LastID != 200 {
			t.Fatalf("coalesced request: %+v", r)
		}
		if seq != 0 && r.rep.Seq != seq {
			t.Errorf("coalesced replies carry different sequences %d and %d", seq, r.rep.Seq)
		}
		seq = r.rep.Seq
	}
	if c := src.calls.Load(); c != 2 {
		t.Errorf("source called %d times for 21 requests, want 2", c)
	}
	if st := svc.Stats(); st.Fetches != 2 || st.Served != n+1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSnapshotFailures(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	req, _ := NewSnapshotRequester(nc, Config{RequestTimeout: 2 * time.Second}, "")

	// Nobody serves the control subject.
	if _, err := req.RequestSnapshot(context.Background(), "binance", "BTCUSDT"); !errors.Is(err, ErrNoResponders) {
		t.Errorf("no service: %v, want ErrNoResponders", err)
	}
	// No stream (JetStream off, so the publisher cannot re-create it): the
	// publish does not complete within SnapshotTimeout and the reply says so.
	if err := srv.Server().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	startServiceWith(t, nc, unprovisioned(t, nc, Config{SnapshotTimeout: time.Second}), &fakeSource{})
	_, err := req.RequestSnapshot(context.Background(), "binance", "BTCUSDT")
	if !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), "publish failed") {
		t.Errorf("no stream: %v, want ErrSnapshot mentioning the publish", err)
	}
	// A source error is reported.
	src := &fakeSource{result: func(string, string) (bridge.Event, error) { return bridge.Event{}, errors.New("HTTP 503") }}
	nc2 := connect(t, srv.ClientURL())
	startServiceWith(t, nc2, unprovisioned(t, nc2, Config{ControlPrefix: "ctl2"}), src)
	req2, _ := NewSnapshotRequester(nc2, Config{ControlPrefix: "ctl2"}, "")
	if _, err := req2.RequestSnapshot(context.Background(), "binance", "BTCUSDT"); !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("source failure: %v", err)
	}
}

func TestSnapshotLimiter(t *testing.T) {
	start := time.Unix(0, 0)
	b := snapshotLimiter(Config{SnapshotRate: 2, SnapshotBurst: 3})
	allow := func(t time.Time) bool { return b.AllowN(t, 1) }
	got := 0
	for range 10 {
		if allow(start) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("burst allowed %d, want 3", got)
	}
	if allow(start.Add(400 * time.Millisecond)) {
		t.Error("allowed before a token accrued")
	}
	if !allow(start.Add(500 * time.Millisecond)) {
		t.Error("refused after a token accrued")
	}
	if n := 0; func() int {
		for i := range 10 {
			if allow(start.Add(time.Hour)) {
				n = i + 1
			}
		}
		return n
	}() != 3 {
		t.Error("refill must cap at burst")
	}
}

// TestSnapshotOfPublishedEvent: a snapshot that the bridge already
// published through the same publisher (same msg ID, as Bybit's snapshot
// source returns) is a JetStream duplicate: the reply is a success with
// duplicate set and the original's sequence, and the publisher counts it.
func TestSnapshotOfPublishedEvent(t *testing.T) {
	nc, js := provisioned(t)
	pub := newPublisher(t, nc, Config{})
	ev := bookSnapshot("bybit", "BTCUSDT", 500)
	ctx := context.Background()
	if err := pub.Publish(ctx, []bridge.Event{ev}); err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{result: func(string, string) (bridge.Event, error) { return ev, nil }}
	startServiceWith(t, nc, pub, src)
	req, _ := NewSnapshotRequester(nc, Config{}, "")
	rep, err := req.Request(ctx, "bybit", "BTCUSDT", "gap")
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "MD")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetLastMsgForSubject(ctx, "md.bybit.BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Duplicate || rep.Seq != stored.Sequence || rep.LastID != 500 || rep.Stream != "MD" {
		t.Fatalf("reply %+v; want a duplicate of seq %d", rep, stored.Sequence)
	}
	if st := pub.Stats(); st.Published != 2 || st.Acked != 2 || st.Duplicates != 1 {
		t.Fatalf("publisher stats %+v", st)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %+v, %v; want the one snapshot", info.State, err)
	}
}

// startJetStream starts a publisher on nc for cfg (validated, with
// defaults) without provisioning the stream.
func startJetStream(nc *nats.Conn, cfg Config, logger *slog.Logger) (*JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("publisher: jetstream context: %w", err)
	}
	return attachJetStream(nc, js, cfg, logger)
}
