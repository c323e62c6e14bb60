package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/resilience"
)

// fakeREST is a scripted Binance REST endpoint that records every request.
type fakeREST struct {
	mu      sync.Mutex
	hits    atomic.Int64
	queries []string // path?query of each request
	reply   func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	reply := f.reply
	f.mu.Unlock()
	reply(w, r)
}

func (f *fakeREST) set(reply func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.reply = reply
	f.mu.Unlock()
}

func (f *fakeREST) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return ""
	}
	return f.queries[len(f.queries)-1]
}

func respond(status int, body string, hdr ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func newLimiter(t testing.TB, rpm int) *resilience.RateLimitManager {
	t.Helper()
	lim, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: rpm, Burst: rpm})
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

// newServed returns an adapter whose REST calls go to a real loopback
// httptest server backed by f.
func newServed(t *testing.T, f *fakeREST, cfg Config) *Adapter {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.RESTURL = srv.URL
	if cfg.Limiter == nil {
		cfg.Limiter = newLimiter(t, 100000)
	}
	return newTest(t, cfg)
}

const depthBody = `{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"],["3.99000000","9.00000000"]],"asks":[["4.00000200","12.00000000"]]}`

func TestSnapshot(t *testing.T) {
	f := &fakeREST{reply: respond(200, depthBody)}
	a := newServed(t, f, Config{})
	ev, err := a.Snapshot(context.Background(), "btcusdt")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.last(); got != "/api/v3/depth?limit=1000&symbol=BTCUSDT" {
		t.Errorf("request %q", got)
	}
	if ev.Type != bridge.EventBookSnapshot || ev.Exchange != "binance" || ev.Symbol != "BTCUSDT" || ev.LastID != 1027024 ||
		ev.TS == 0 || ev.TS != ev.RecvTS {
		t.Errorf("event %+v", ev)
	}
	if len(ev.Bids) != 2 || ev.Bids[1] != (bridge.Level{"3.99000000", "9.00000000"}) || len(ev.Asks) != 1 ||
		ev.Asks[0] != (bridge.Level{"4.00000200", "12.00000000"}) || cap(ev.Bids) != 2 {
		t.Errorf("levels %v / %v", ev.Bids, ev.Asks)
	}
}

// TestSnapshotWeight: the limiter is charged the documented weight for
// each depth limit.
func TestSnapshotWeight(t *testing.T) {
	for _, c := range []struct{ depth, weight int }{{100, 5}, {500, 25}, {1000, 50}, {5000, 250}} {
		t.Run(fmt.Sprint(c.depth), func(t *testing.T) {
			f := &fakeREST{reply: respond(200, `{"lastUpdateId":1,"bids":[],"asks":[]}`)}
			for attempt := 0; ; attempt++ {
				lim := newLimiter(t, 100000)
				a := newServed(t, f, Config{BookDepth: c.depth, Limiter: lim})
				minute := time.Now().Truncate(time.Minute)
				if _, err := a.Snapshot(context.Background(), "BTCUSDT"); err != nil {
					t.Fatal(err)
				}
				used := lim.UsedWeight()
				if !time.Now().Truncate(time.Minute).Equal(minute) && attempt == 0 {
					continue // the minute window rolled during the call: measure again
				}
				if used != c.weight {
					t.Errorf("used weight %d, want %d", used, c.weight)
				}
				if !strings.Contains(f.last(), fmt.Sprintf("limit=%d", c.depth)) {
					t.Errorf("request %q", f.last())
				}
				break
			}
		})
	}
}

func TestUsedWeightHeaderSync(t *testing.T) {
	lim := newLimiter(t, 1200)
	f := &fakeREST{reply: respond(200, `{"serverTime":1499827319559}`, "X-MBX-USED-WEIGHT-1M", "1150")}
	a := newServed(t, f, Config{Limiter: lim})
	if _, err := a.ServerTime(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lim.UsedWeight(); got < 1150 {
		t.Errorf("UsedWeight = %d after the exchange reported 1150", got)
	}
}

func TestRESTErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		hdr       []string
		rateLimit *bridge.RateLimitError
		code      int // expected APIError code, when not rate limited
		malformed bool
	}{
		{"429 with Retry-After", 429, `{"code":-1003,"msg":"Too much request weight used; current limit is 1200 request weight per 1 MINUTE."}`,
			[]string{"Retry-After", "7"}, &bridge.RateLimitError{Status: 429, RetryAfter: 7 * time.Second}, 0, false},
		{"429 without Retry-After", 429, `{"code":-1003,"msg":"x"}`, nil, &bridge.RateLimitError{Status: 429, RetryAfter: time.Minute}, 0, false},
		{"418 ban", 418, `{"code":-1003,"msg":"Way too much request weight used; IP banned until 1700000000000."}`,
			[]string{"Retry-After", "7200"}, &bridge.RateLimitError{Status: 418, RetryAfter: 2 * time.Hour, Banned: true}, 0, false},
		{"418 without Retry-After", 418, ``, nil, &bridge.RateLimitError{Status: 418, RetryAfter: 2 * time.Minute, Banned: true}, 0, false},
		{"bad symbol", 400, `{"code":-1121,"msg":"Invalid symbol."}`, nil, nil, CodeBadSymbol, false},
		{"WAF 403", 403, `<html>forbidden</html>`, nil, nil, 0, false},
		{"503", 503, `{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}`, nil, nil, -1001, false},
		{"502 html", 502, `<html>bad gateway</html>`, nil, nil, 0, false},
		{"200 invalid JSON", 200, `{"lastUpdateId":`, nil, nil, 0, true},
		{"200 wrong types", 200, `{"lastUpdateId":"1","bids":[],"asks":[]}`, nil, nil, 0, true},
		{"200 missing asks", 200, `{"lastUpdateId":1,"bids":[]}`, nil, nil, 0, true},
		{"200 bad level", 200, `{"lastUpdateId":1,"bids":[["1"]],"asks":[]}`, nil, nil, 0, true},
		{"oversized body", 200, `{"lastUpdateId":1,"bids":[],"asks":[],"x":"` + strings.Repeat("a", 4096) + `"}`, nil, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeREST{reply: respond(tt.status, tt.body, tt.hdr...)}
			lim := newLimiter(t, 100000)
			a := newServed(t, f, Config{Limiter: lim, MaxBodyBytes: 2048})
			before := time.Now()
			_, err := a.Snapshot(context.Background(), "BTCUSDT")
			if err == nil {
				t.Fatal("no error")
			}
			var rl *bridge.RateLimitError
			var ae *APIError
			switch {
			case tt.rateLimit != nil:
				if !errors.As(err, &rl) || !errors.Is(err, bridge.ErrRateLimited) {
					t.Fatalf("err = %v, want *RateLimitError", err)
				}
				if *rl != *tt.rateLimit {
					t.Errorf("RateLimitError = %+v, want %+v", *rl, *tt.rateLimit)
				}
				if until := lim.PausedUntil(); until.Before(before.Add(tt.rateLimit.RetryAfter)) {
					t.Errorf("limiter paused until %v, want >= now+%v", until, tt.rateLimit.RetryAfter)
				}
			case tt.malformed:
				if !errors.Is(err, bridge.ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
			default:
				if !errors.As(err, &ae) || !errors.Is(err, bridge.ErrExchange) {
					t.Fatalf("err = %v, want *APIError", err)
				}
				if ae.Status != tt.status || ae.Code != tt.code || ae.Path != "/api/v3/depth" {
					t.Errorf("APIError = %+v", ae)
				}
				if !lim.PausedUntil().IsZero() {
					t.Errorf("limiter paused by a non-rate-limit error")
				}
			}
		})
	}
}

// TestRateLimitPauseBlocksRequests (real sockets): after a 429 no request
// reaches the server until Retry-After has passed.
func TestRateLimitPauseBlocksRequests(t *testing.T) {
	f := &fakeREST{reply: respond(429, `{"code":-1003,"msg":"x"}`, "Retry-After", "30")}
	a := newServed(t, f, Config{})
	if _, err := a.ServerTime(context.Background()); !errors.Is(err, bridge.ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	f.set(respond(200, `{"serverTime":1}`))
	for _, call := range []func(ctx context.Context) error{
		func(ctx context.Context) error { _, err := a.ServerTime(ctx); return err },
		func(ctx context.Context) error { _, err := a.Snapshot(ctx, "BTCUSDT"); return err },
		func(ctx context.Context) error { _, err := a.Trades(ctx, "BTCUSDT", 1, 10); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want DeadlineExceeded while paused", err)
		}
	}
	if n := f.hits.Load(); n != 1 {
		t.Fatalf("%d requests reached the server, want 1 (none during the pause)", n)
	}
}

// handlerTransport serves requests in-process (no sockets, no goroutines),
// so REST calls can run inside a synctest bubble with fake time.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func newBubbled(t *testing.T, f *fakeREST, lim *resilience.RateLimitManager) *Adapter {
	t.Helper()
	return newTest(t, Config{Limiter: lim, HTTPClient: &http.Client{Transport: handlerTransport{f}}})
}

// TestRetryAfterObeyed (fake time): a 429 with Retry-After 5 and a 418 with
// Retry-After 120 hold every request, from any goroutine, for exactly that
// long.
func TestRetryAfterObeyed(t *testing.T) {
	for _, c := range []struct {
		status int
		after  time.Duration
	}{{429, 5 * time.Second}, {418, 120 * time.Second}} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeREST{reply: respond(c.status, `{"code":-1003,"msg":"x"}`, "Retry-After", fmt.Sprint(int(c.after/time.Second)))}
				a := newBubbled(t, f, newLimiter(t, 100000))
				start := time.Now()
				_, err := a.ServerTime(context.Background())
				var rl *bridge.RateLimitError
				if !errors.As(err, &rl) || rl.RetryAfter != c.after || rl.Banned != (c.status == 418) {
					t.Fatalf("err = %v", err)
				}
				f.set(respond(200, `{"serverTime":1700000000000}`))
				var done atomic.Int64
				for range 3 {
					go func() {
						if _, err := a.ServerTime(context.Background()); err != nil {
							t.Errorf("after pause: %v", err)
						}
						if d := time.Since(start); d < c.after {
							t.Errorf("request completed %v after the 429, before Retry-After %v", d, c.after)
						}
						done.Add(1)
					}()
				}
				time.Sleep(c.after - time.Millisecond)
				synctest.Wait()
				if n := f.hits.Load(); n != 1 || done.Load() != 0 {
					t.Fatalf("%d requests sent, %d done during the pause", n, done.Load())
				}
				time.Sleep(2 * time.Millisecond)
				synctest.Wait()
				if n := f.hits.Load(); n != 4 || done.Load() != 3 {
					t.Fatalf("after the pause: %d requests, %d done; want 4, 3", n, done.Load())
				}
			})
		})
	}
}

// TestUsedWeightHoldsRequests (fake time): when the exchange reports the
// minute's weight nearly used, a snapshot waits for the next minute window
// instead of being sent.
func TestUsedWeightHoldsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := newLimiter(t, 1200)
		f := &fakeREST{reply: respond(200, `{"serverTime":1}`, "X-MBX-USED-WEIGHT-1M", "1190")}
		a := newBubbled(t, f, lim)
		time.Sleep(10 * time.Second) // 00:00:10
		if _, err := a.ServerTime(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.set(respond(200, depthBody))
		done := make(chan error, 1)
		go func() { _, err := a.Snapshot(context.Background(), "BTCUSDT"); done <- err }()
		time.Sleep(49 * time.Second) // 00:00:59
		synctest.Wait()
		if n := f.hits.Load(); n != 1 {
			t.Fatalf("snapshot (weight 50) sent with 1190 of 1200 used: %d requests", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if err := <-done; err != nil || f.hits.Load() != 2 {
			t.Fatalf("snapshot in the next window: err %v, %d requests", err, f.hits.Load())
		}
	})
}

func TestServerTime(t *testing.T) {
	f := &fakeREST{reply: respond(200, `{"serverTime":1499827319559}`)}
	a := newServed(t, f, Config{})
	got, err := a.ServerTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(time.UnixMilli(1499827319559)) || f.last() != "/api/v3/time?" {
		t.Errorf("ServerTime = %v (request %q)", got, f.last())
	}
	f.set(respond(200, `{}`))
	if _, err := a.ServerTime(context.Background()); !errors.Is(err, bridge.ErrMalformed) {
		t.Errorf("missing serverTime: err = %v", err)
	}
}

func tradesJSON(from, to int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for id := from; id <= to; id++ {
		if id > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","time":%d,"isBuyerMaker":%v,"isBestMatch":true}`,
			id, 1499865549590+id, id%2 == 0)
	}
	b.WriteByte(']')
	return b.String()
}

func TestTradesHistorical(t *testing.T) {
	f := &fakeREST{reply: respond(200, tradesJSON(28457, 28459))}
	a := newServed(t, f, Config{})
	got, err := a.Trades(context.Background(), "BTCUSDT", 28457, 500)
	if err != nil {
		t.Fatal(err)
	}
	if q := f.last(); q != "/api/v3/historicalTrades?fromId=28457&limit=500&symbol=BTCUSDT" {
		t.Errorf("request %q", q)
	}
	if len(got) != 3 {
		t.Fatalf("%d trades", len(got))
	}
	for i, ev := range got {
		id := int64(28457 + i)
		want := bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: (1499865549590 + id) * 1e6,
			RecvTS: ev.RecvTS, ID: fmt.Sprint(id), Seq: id, Price: "4.00000100", Qty: "12.00000000", Side: bridge.SideBuy}
		if id%2 == 0 {
			want.Side = bridge.SideSell
		}
		assertEvent(t, ev, want)
	}
	// Trades below fromID are dropped; limit is honoured.
	got, err = a.Trades(context.Background(), "BTCUSDT", 28458, 1)
	if err != nil || len(got) != 1 || got[0].Seq != 28458 {
		t.Errorf("filtered: %v %+v", err, got)
	}
	for name, body := range map[string]string{
		"descending ids": `[{"id":2,"price":"1","qty":"1","time":1,"isBuyerMaker":true},{"id":1,"price":"1","qty":"1","time":1,"isBuyerMaker":true}]`,
		"string id":      `[{"id":"x","price":"1","qty":"1","time":1,"isBuyerMaker":true}]`,
		"float price":    `[{"id":1,"price":1.5,"qty":"1","time":1,"isBuyerMaker":true}]`,
		"missing maker":  `[{"id":1,"price":"1","qty":"1","time":1}]`,
		"not an array":   `{"id":1}`,
	} {
		f.set(respond(200, body))
		if _, err := a.Trades(context.Background(), "BTCUSDT", 0, 10); !errors.Is(err, bridge.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestTradesFallback: historicalTrades refused (API key required) falls
// back to /api/v3/trades, remembered for later calls.
func TestTradesFallback(t *testing.T) {
	f := &fakeREST{}
	f.set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v3/historicalTrades" {
			respond(401, `{"code":-2014,"msg":"API-key format invalid."}`)(w, r)
			return
		}
		respond(200, tradesJSON(100, 105))(w, r)
	})
	a := newServed(t, f, Config{})
	got, err := a.Trades(context.Background(), "BTCUSDT", 103, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 103 || got[2].Seq != 105 {
		t.Errorf("fallback trades %+v", got)
	}
	if q := f.last(); q != "/api/v3/trades?limit=1000&symbol=BTCUSDT" {
		t.Errorf("fallback request %q", q)
	}
	// fromID older than the recent window: what is there is returned; the
	// caller sees the first id above fromID and counts the rest missing.
	got, err = a.Trades(context.Background(), "BTCUSDT", 50, 1000)
	if err != nil || len(got) != 6 || got[0].Seq != 100 {
		t.Errorf("old fromID: %v %d trades", err, len(got))
	}
	if n := f.hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (historicalTrades tried once)", n)
	}
	// Other errors do not trigger the fallback.
	f2 := &fakeREST{reply: respond(400, `{"code":-1121,"msg":"Invalid symbol."}`)}
	b := newServed(t, f2, Config{})
	var ae *APIError
	if _, err := b.Trades(context.Background(), "NOPE", 1, 10); !errors.As(err, &ae) || ae.Code != CodeBadSymbol {
		t.Errorf("err = %v", err)
	}
	if b.historicalRefused.Load() || f2.hits.Load() != 1 {
		t.Errorf("fallback taken on a bad symbol")
	}
}

func TestRESTContextAndInput(t *testing.T) {
	block := make(chan struct{})
	f := &fakeREST{reply: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}}
	a := newServed(t, f, Config{})
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Snapshot(ctx, "BTCUSDT"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if _, err := a.Snapshot(context.Background(), "BTC.USDT"); !errors.Is(err, bridge.ErrBadIdent) {
		t.Errorf("bad symbol: err = %v", err)
	}
	if _, err := a.Trades(context.Background(), "BTCUSDT", -1, 10); err == nil {
		t.Errorf("negative fromID accepted")
	}
}
