package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/publisher"
)

// fakeSource serves book snapshots of a fixed set of symbols, counting
// fetches; delay simulates the REST round trip.
type fakeSource struct {
	symbols map[string]bool // "exchange.symbol"
	delay   time.Duration
	calls   atomic.Int64
	lastID  atomic.Int64
}

func (s *fakeSource) Serves(exchange, symbol string) bool { return s.symbols[exchange+"."+symbol] }

func (s *fakeSource) Snapshot(ctx context.Context, exchange, symbol string) (bridge.Event, error) {
	if !s.Serves(exchange, symbol) {
		return bridge.Event{}, fmt.Errorf("%w: %s %s", publisher.ErrUnknownSymbol, exchange, symbol)
	}
	s.calls.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return bridge.Event{}, ctx.Err()
		}
	}
	return bridge.Event{Type: bridge.EventBookSnapshot, Exchange: exchange, Symbol: symbol, LastID: s.lastID.Add(1),
		TS: time.Now().UnixNano(), RecvTS: time.Now().UnixNano(), Bids: []bridge.Level{{"100", "1"}}, Asks: []bridge.Level{{"101", "1"}}}, nil
}

// controlService is an embedded NATS server with the MD stream (memory)
// and one snapshot service on it.
type controlService struct {
	srv *publisher.Embedded
	nc  *nats.Conn // the service's connection
	cli *nats.Conn // a client's connection
	svc *publisher.SnapshotService
	src *fakeSource
	cfg publisher.Config
}

func startControlService(tb testing.TB, cfg publisher.Config, src *fakeSource) *controlService {
	tb.Helper()
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: tb.TempDir()}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	connect := func(name string) *nats.Conn {
		nc, err := publisher.Connect(context.Background(), publisher.ConnConfig{URLs: []string{srv.ClientURL()}, Name: name}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(nc.Close)
		return nc
	}
	cs := &controlService{srv: srv, nc: connect("service"), cli: connect("client"), src: src, cfg: cfg}
	pub, err := publisher.NewJetStream(context.Background(), cs.nc, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pub.Close() })
	if cs.svc, err = publisher.NewSnapshotService(cs.nc, pub, src, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cs.svc.Close() })
	if err := cs.nc.Flush(); err != nil { // the service's subscription is registered
		tb.Fatal(err)
	}
	return cs
}

var knownCodes = []string{publisher.CodeBadRequest, publisher.CodeUnknownSymbol, publisher.CodeBusy,
	publisher.CodeFetchFailed, publisher.CodePublishFailed, publisher.CodeUnavailable}

// FuzzControlRequest sends arbitrary subjects and bodies to a running
// snapshot control service over NATS: every request either cannot be sent
// (the client refuses the subject), finds no responder (the subject is not
// <prefix>.snapshot.<token>.<token>), or gets exactly one well-formed reply;
// a success only for a valid, served exchange and symbol and a valid body.
// The service must keep serving throughout.
func FuzzControlRequest(f *testing.F) {
	for _, seed := range []struct {
		suffix string
		body   []byte
	}{
		{"binance.BTCUSDT", nil},
		{"binance.BTCUSDT", []byte(`{"requester":"x","reason":"gap"}`)},
		{"binance.BTCUSDT", []byte(` {"unknown":1} `)},
		{"binance.BTCUSDT", []byte(`[1,2]`)},
		{"binance.BTCUSDT", []byte(`{"requester":`)},
		{"binance.BTCUSDT", bytes.Repeat([]byte("a"), publisher.MaxRequestBody+1)},
		{"binance.BTC.USDT", nil},
		{"binance.*", nil},
		{"binance.>", nil},
		{"*.*", nil},
		{"binance.BTC%2EUSDT", nil},
		{"bin ance.BTCUSDT", nil},
		{"binance.", nil},
		{".BTCUSDT", nil},
		{"kraken.BTCUSDT", nil},
		{"binance.ÄBC", nil},
		{"binance." + strings.Repeat("A", 65), nil},
		{"binance.BTCUSDT\x00", nil},
	} {
		f.Add(seed.suffix, seed.body)
	}
	src := &fakeSource{symbols: map[string]bool{"binance.BTCUSDT": true}}
	cs := startControlService(f, publisher.Config{Storage: jetstream.MemoryStorage}, src)
	f.Fuzz(func(t *testing.T, suffix string, body []byte) {
		if len(body) > 64<<10 {
			body = body[:64<<10]
		}
		subject := cs.cfg.ControlPrefix + ".snapshot." + suffix
		if cs.cfg.ControlPrefix == "" {
			subject = publisher.DefaultControlPrefix + ".snapshot." + suffix
		}
		m, err := cs.cli.Request(subject, body, 5*time.Second)
		switch {
		case errors.Is(err, nats.ErrBadSubject):
			return // the client refuses to send it
		case errors.Is(err, nats.ErrNoResponders):
			tokens := strings.Split(suffix, ".")
			if len(tokens) == 2 && tokens[0] != "" && tokens[1] != "" && !strings.ContainsAny(suffix, "*> \t\r\n") {
				t.Fatalf("no responder for a two-token subject %q", subject)
			}
			return
		case err != nil:
			t.Fatalf("request %q: %v", subject, err)
		}
		var rep publisher.SnapshotReply
		dec := json.NewDecoder(bytes.NewReader(m.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("reply to %q is not a SnapshotReply: %v: %q", subject, err, m.Data)
		}
		exchange, symbol, _ := strings.Cut(suffix, ".")
		validIdents := bridge.ValidateIdent(exchange) == nil && bridge.ValidateIdent(symbol) == nil
		trimmed := bytes.TrimSpace(body)
		validBody := len(body) <= publisher.MaxRequestBody && (len(trimmed) == 0 || (trimmed[0] == '{' && json.Valid(trimmed)))
		if rep.Error == "" {
			if !validIdents || !validBody || !src.Serves(exchange, symbol) {
				t.Fatalf("request %q with body %q succeeded: %+v", subject, body, rep)
			}
			if rep.Exchange != exchange || rep.Symbol != symbol || rep.LastID == 0 || rep.Seq == 0 {
				t.Fatalf("success reply %+v for %s %s", rep, exchange, symbol)
			}
			return
		}
		if !slices.Contains(knownCodes, rep.Code) {
			t.Fatalf("reply code %q not one of %v", rep.Code, knownCodes)
		}
		if !validIdents && rep.Code != publisher.CodeBadRequest {
			t.Fatalf("invalid names in %q answered %+v, want %s", subject, rep, publisher.CodeBadRequest)
		}
		if len(body) > publisher.MaxRequestBody && rep.Code != publisher.CodeBadRequest {
			t.Fatalf("oversized body answered %+v", rep)
		}
	})
}

// maliciousNames are exchange or symbol names crafted to inject NATS
// subject tokens (or otherwise unsafe in a subject or KV key).
var maliciousNames = []string{
	"BTC.USDT", "BTC*", ">", "*", "md.>", "BTC USDT", "BTC\tUSDT", "BTC\nUSDT", "", "BTC\x00",
	strings.Repeat("A", bridge.MaxIdentLen+1), "ÄBC", "BTC/USDT", "a.b.c",
}

// TestMaliciousSymbolsRejected feeds names that would inject subject
// tokens to every entry point that builds a subject or key from them: the
// stream configuration, the md_state key, the snapshot requester and the
// publisher itself. Each must refuse without producing a message.
func TestMaliciousSymbolsRejected(t *testing.T) {
	cs := startControlService(t, publisher.Config{Storage: jetstream.MemoryStorage}, &fakeSource{symbols: map[string]bool{}})
	pub, err := publisher.NewJetStream(context.Background(), cs.nc, cs.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	req, err := publisher.NewSnapshotRequester(cs.cli, cs.cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	// Count everything published under md.> while the test runs.
	var onData atomic.Int64
	sub, err := cs.cli.Subscribe("md.>", func(*nats.Msg) { onData.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := cs.cli.Flush(); err != nil { // the subscription is registered
		t.Fatal(err)
	}
	ex, err := binance.New(binance.Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range maliciousNames {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			if err := bridge.ValidateIdent(name); !errors.Is(err, bridge.ErrBadIdent) {
				t.Fatalf("ValidateIdent(%q) = %v", name, err)
			}
			if _, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{name}}, bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil }), nil); !errors.Is(err, bridge.ErrConfig) {
				t.Fatalf("NewStream with symbol %q: %v", name, err)
			}
			if _, err := publisher.StateKey("binance", name, "i"); !errors.Is(err, bridge.ErrBadIdent) {
				t.Fatalf("StateKey with symbol %q: %v", name, err)
			}
			if _, err := publisher.StateKey(name, "BTCUSDT", "i"); !errors.Is(err, bridge.ErrBadIdent) {
				t.Fatalf("StateKey with exchange %q: %v", name, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := req.RequestSnapshot(ctx, "binance", name); !errors.Is(err, bridge.ErrBadIdent) {
				t.Fatalf("RequestSnapshot with symbol %q: %v", name, err)
			}
			before := pub.Stats().Rejected
			ev := bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: name, ID: "1", Seq: 1, Price: "1", Qty: "1", Side: bridge.SideBuy}
			if err := pub.Publish(ctx, []bridge.Event{ev}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if got := pub.Stats().Rejected; got != before+1 {
				t.Fatalf("Publish of symbol %q: rejected %d -> %d, want one rejection", name, before, got)
			}
		})
	}
	// A valid event afterwards still flows, and it is the only data message.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, []bridge.Event{binTrade(1)}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cs.cli.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for onData.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := onData.Load(); n != 1 {
		t.Fatalf("%d messages published under md.>, want only the valid one", n)
	}
	if n, err := readStream(ctx, cs.cli, publisher.DefaultStream, func(m *StreamMsg, _ error) {
		if m.Subject != "md.binance.BTCUSDT" {
			t.Errorf("stream holds %s", m.Subject)
		}
	}); err != nil || n != 1 {
		t.Fatalf("stream holds %d messages (%v), want only the valid one", n, err)
	}
}

// TestHugeControlPayload sends control requests with bodies far above the
// accepted size: each is refused at once (bad_request) without a fetch, and
// the service keeps serving.
func TestHugeControlPayload(t *testing.T) {
	src := &fakeSource{symbols: map[string]bool{"binance.BTCUSDT": true}}
	cs := startControlService(t, publisher.Config{Storage: jetstream.MemoryStorage}, src)
	subject := publisher.DefaultControlPrefix + ".snapshot.binance.BTCUSDT"
	max := int(cs.cli.MaxPayload()) - 1024
	for _, n := range []int{publisher.MaxRequestBody + 1, 64 << 10, max} {
		body := bytes.Repeat([]byte(`{`), n)
		start := time.Now()
		m, err := cs.cli.Request(subject, body, 5*time.Second)
		if err != nil {
			t.Fatalf("%d-byte request: %v", n, err)
		}
		var rep publisher.SnapshotReply
		if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Code != publisher.CodeBadRequest {
			t.Fatalf("%d-byte request answered %q (%v), want %s", n, m.Data, err, publisher.CodeBadRequest)
		}
		if len(m.Data) > 1024 {
			t.Fatalf("reply to a %d-byte request is %d bytes: the body is echoed", n, len(m.Data))
		}
		t.Logf("%d-byte body refused in %s", n, time.Since(start))
	}
	if c := src.calls.Load(); c != 0 {
		t.Fatalf("%d fetches for refused requests", c)
	}
	// Over the server's max_payload the client refuses to send at all.
	if err := cs.cli.Publish(subject, make([]byte, cs.cli.MaxPayload()+1)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish over max_payload: %v", err)
	}
	m, err := cs.cli.Request(subject, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep publisher.SnapshotReply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Error != "" || rep.LastID == 0 {
		t.Fatalf("normal request after the huge ones: %q %v", m.Data, err)
	}
}

// TestSnapshotRequestFlood fires thousands of snapshot requests within
// about a second on the control subject (valid and unknown symbols) and
// checks that the service's work is bounded: every request gets one reply
// (served, coalesced or refused as busy), fetches stay within the
// configured rate plus coalescing, and the service does not start a
// goroutine per request. The measured figures are logged.
func TestSnapshotRequestFlood(t *testing.T) {
	const requests = 5000
	src := &fakeSource{delay: 20 * time.Millisecond, symbols: map[string]bool{
		"binance.BTCUSDT": true, "binance.ETHUSDT": true, "bybit.BTCUSDT": true,
	}}
	cs := startControlService(t, publisher.Config{Storage: jetstream.MemoryStorage}, src)
	subjects := []string{"binance.BTCUSDT", "binance.ETHUSDT", "bybit.BTCUSDT", "binance.NOPEUSDT"}
	inbox := nats.NewInbox()
	var replies sync.Map // reply subject -> count
	var got atomic.Int64
	codes := map[string]int{}
	var codesMu sync.Mutex
	sub, err := cs.cli.Subscribe(inbox+".*", func(m *nats.Msg) {
		v, _ := replies.LoadOrStore(m.Subject, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		var rep publisher.SnapshotReply
		code := "ok"
		if err := json.Unmarshal(m.Data, &rep); err != nil {
			code = "malformed"
		} else if rep.Error != "" {
			code = rep.Code
		}
		codesMu.Lock()
		codes[code]++
		codesMu.Unlock()
		got.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseG, baseHeap := runtime.NumGoroutine(), ms.HeapInuse
	var peakG atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
					peakG.Store(g)
				}
			}
		}
	}()
	start := time.Now()
	for i := 0; i < requests; i++ {
		subject := publisher.DefaultControlPrefix + ".snapshot." + subjects[i%len(subjects)]
		if err := cs.cli.PublishRequest(subject, fmt.Sprintf("%s.%d", inbox, i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.cli.Flush(); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < requests && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	st := cs.svc.Stats()
	t.Logf("%d requests sent in %s, answered in %s; replies %v; service %+v; fetches %d; goroutines %d -> peak %d; heap in use %s -> %s",
		requests, sent, elapsed, codes, st, src.calls.Load(), baseG, peakG.Load(), mib(baseHeap), mib(ms.HeapInuse))
	if got.Load() != requests {
		t.Fatalf("%d replies to %d requests", got.Load(), requests)
	}
	replies.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n != 1 {
			t.Fatalf("request %v answered %d times", k, n)
		}
		return true
	})
	if st.Requests != requests {
		t.Fatalf("service counted %d requests", st.Requests)
	}
	// Fetches: at most the burst plus the rate over the elapsed time, and
	// never more than the source was asked.
	maxFetches := int64(publisher.DefaultSnapshotBurst) + int64(publisher.DefaultSnapshotRate*elapsed.Seconds()) + int64(len(subjects))
	if int64(st.Fetches) > maxFetches || src.calls.Load() > int64(st.Fetches) {
		t.Fatalf("%d fetches (%d source calls) for %d requests in %s: more than the rate allows (%d)", st.Fetches, src.calls.Load(), requests, elapsed, maxFetches)
	}
	if codes[publisher.CodeBusy] == 0 {
		t.Fatalf("no request was refused as busy: the limits did not engage (%v)", codes)
	}
	if codes[publisher.CodeUnknownSymbol] != requests/len(subjects) {
		t.Fatalf("%d unknown_symbol replies, want %d", codes[publisher.CodeUnknownSymbol], requests/len(subjects))
	}
	// Bounded concurrency: no goroutine per request.
	if extra := peakG.Load() - int64(baseG); extra > int64(publisher.DefaultSnapshotConcurrency+2*len(subjects)+50) {
		t.Fatalf("goroutines peaked %d above the baseline during the flood", extra)
	}
	// The service still serves afterwards (once the rate limit refills).
	time.Sleep(200 * time.Millisecond)
	m, err := cs.cli.Request(publisher.DefaultControlPrefix+".snapshot.binance.BTCUSDT", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep publisher.SnapshotReply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Error != "" {
		t.Fatalf("request after the flood: %q", m.Data)
	}
}
