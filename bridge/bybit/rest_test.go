package bybit

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

// fakeREST is a scripted Bybit REST endpoint that records every request.
type fakeREST struct {
	mu      sync.Mutex
	hits    atomic.Int64
	queries []string
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

func ok(result string) string {
	return `{"retCode":0,"retMsg":"OK","result":` + result + `,"retExtInfo":{},"time":1672025956592}`
}

func newLimiter(t testing.TB, rpm int) *resilience.RateLimitManager {
	t.Helper()
	lim, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: rpm, Burst: rpm})
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

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

const bookResult = `{"s":"BTCUSDT","a":[["65557.7","16.606555"],["65558.0","0.1"]],"b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,"cts":1716863718905}`

func TestSnapshot(t *testing.T) {
	for _, market := range []string{MarketSpot, MarketLinear} {
		t.Run(market, func(t *testing.T) {
			f := &fakeREST{reply: respond(200, ok(bookResult))}
			a := newServed(t, f, Config{Market: market, BookDepth: 1000})
			ev, err := a.Snapshot(context.Background(), "btcusdt")
			if err != nil {
				t.Fatal(err)
			}
			limit := map[string]string{MarketSpot: "1000", MarketLinear: "500"}[market] // linear serves at most 500
			if want := "/v5/market/orderbook?category=" + market + "&limit=" + limit + "&symbol=BTCUSDT"; f.last() != want {
				t.Errorf("request %q, want %q", f.last(), want)
			}
			assertEvent(t, ev, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: a.Name(), Symbol: "BTCUSDT",
				TS: 1716863719031_000000, RecvTS: ev.RecvTS, LastID: 230704, Seq: 1432604333,
				Bids: []bridge.Level{{"65485.47", "47.081829"}},
				Asks: []bridge.Level{{"65557.7", "16.606555"}, {"65558.0", "0.1"}}})
			if ev.RecvTS == 0 {
				t.Error("RecvTS not set")
			}
		})
	}
}

func TestRESTErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		hdr       []string
		rateLimit *bridge.RateLimitError
		retCode   int
		malformed bool
	}{
		{"403 IP ban, default 10 min", 403, `access too frequent`, nil, &bridge.RateLimitError{Status: 403, RetryAfter: 10 * time.Minute, Banned: true}, 0, false},
		{"403 with Retry-After", 403, ``, []string{"Retry-After", "900"}, &bridge.RateLimitError{Status: 403, RetryAfter: 15 * time.Minute, Banned: true}, 0, false},
		{"429", 429, ``, []string{"Retry-After", "3"}, &bridge.RateLimitError{Status: 429, RetryAfter: 3 * time.Second}, 0, false},
		{"retCode 10006 without reset", 200, `{"retCode":10006,"retMsg":"Too many visits!","result":{}}`, nil,
			&bridge.RateLimitError{Status: 200, RetryAfter: time.Second}, 0, false},
		{"unknown symbol", 200, `{"retCode":10001,"retMsg":"params error: symbol invalid","result":{},"retExtInfo":{},"time":1}`, nil, nil, 10001, false},
		{"500", 500, `{"retCode":10016,"retMsg":"Server error."}`, nil, nil, 10016, false},
		{"502 html", 502, `<html></html>`, nil, nil, 0, false},
		{"200 not an envelope", 200, `[]`, nil, nil, 0, true},
		{"200 result wrong type", 200, ok(`{"s":"BTCUSDT","a":[],"b":[],"ts":"1","u":1}`), nil, nil, 0, true},
		{"200 other symbol", 200, ok(strings.Replace(bookResult, `"s":"BTCUSDT"`, `"s":"ETHUSDT"`, 1)), nil, nil, 0, true},
		{"200 missing u", 200, ok(strings.Replace(bookResult, `"u":230704,`, ``, 1)), nil, nil, 0, true},
		{"200 bad level", 200, ok(strings.Replace(bookResult, `["65558.0","0.1"]`, `["65558.0"]`, 1)), nil, nil, 0, true},
		{"oversized body", 200, ok(`{"x":"` + strings.Repeat("a", 4096) + `"}`), nil, nil, 0, true},
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
				if ae.Status != tt.status || ae.RetCode != tt.retCode || ae.Path != "/v5/market/orderbook" {
					t.Errorf("APIError = %+v", ae)
				}
				if !lim.PausedUntil().IsZero() {
					t.Errorf("limiter paused by a non-rate-limit error")
				}
			}
		})
	}
}

// TestRetCode10006Reset: the per-UID limit waits until
// X-Bapi-Limit-Reset-Timestamp.
func TestRetCode10006Reset(t *testing.T) {
	reset := time.Now().Add(4 * time.Second).UnixMilli()
	f := &fakeREST{reply: respond(200, `{"retCode":10006,"retMsg":"Too many visits!"}`, "X-Bapi-Limit-Reset-Timestamp", fmt.Sprint(reset))}
	a := newServed(t, f, Config{})
	_, err := a.ServerTime(context.Background())
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter < 3*time.Second || rl.RetryAfter > 4*time.Second {
		t.Fatalf("err = %v", err)
	}
}

// handlerTransport serves requests in-process so REST calls can run inside
// a synctest bubble.
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

// TestBanObeyed (fake time): after a 403 no request is sent for 10
// minutes, from any goroutine; then requests resume.
func TestBanObeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeREST{reply: respond(403, `access too frequent`)}
		a := newTest(t, Config{Limiter: newLimiter(t, 100000), HTTPClient: &http.Client{Transport: handlerTransport{f}}})
		_, err := a.ServerTime(context.Background())
		var rl *bridge.RateLimitError
		if !errors.As(err, &rl) || !rl.Banned || rl.RetryAfter != 10*time.Minute {
			t.Fatalf("err = %v", err)
		}
		f.set(respond(200, ok(`{"timeSecond":"1688639403","timeNano":"1688639403423213947"}`)))
		var done atomic.Int64
		for range 3 {
			go func() {
				if _, err := a.Snapshot(context.Background(), "BTCUSDT"); err == nil {
					t.Errorf("snapshot with a time body succeeded")
				}
				done.Add(1)
			}()
		}
		time.Sleep(10*time.Minute - time.Millisecond)
		synctest.Wait()
		if n := f.hits.Load(); n != 1 || done.Load() != 0 {
			t.Fatalf("%d requests sent, %d done during the ban", n, done.Load())
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := f.hits.Load(); n != 4 || done.Load() != 3 {
			t.Fatalf("after the ban: %d requests, %d done", n, done.Load())
		}
	})
}

// TestBanBlocksRequests (real sockets): after a 403 nothing reaches the
// server while the ban lasts.
func TestBanBlocksRequests(t *testing.T) {
	f := &fakeREST{reply: respond(403, ``)}
	a := newServed(t, f, Config{})
	if _, err := a.Snapshot(context.Background(), "BTCUSDT"); !errors.Is(err, bridge.ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	f.set(respond(200, ok(bookResult)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.RecentTrades(ctx, "BTCUSDT", 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if f.hits.Load() != 1 {
		t.Errorf("%d requests, want 1", f.hits.Load())
	}
}

func TestServerTime(t *testing.T) {
	f := &fakeREST{reply: respond(200, ok(`{"timeSecond":"1688639403","timeNano":"1688639403423213947"}`))}
	a := newServed(t, f, Config{})
	got, err := a.ServerTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(time.Unix(0, 1688639403423213947)) || f.last() != "/v5/market/time?" {
		t.Errorf("ServerTime = %v (request %q)", got, f.last())
	}
	f.set(respond(200, ok(`{"timeSecond":"1688639403"}`)))
	if got, err := a.ServerTime(context.Background()); err != nil || !got.Equal(time.Unix(1688639403, 0)) {
		t.Errorf("timeSecond fallback: %v %v", got, err)
	}
	f.set(respond(200, ok(`{"timeNano":"x"}`)))
	if _, err := a.ServerTime(context.Background()); !errors.Is(err, bridge.ErrMalformed) {
		t.Errorf("err = %v", err)
	}
}

func TestTradesNotSupported(t *testing.T) {
	a := newTest(t, Config{})
	if _, err := a.Trades(context.Background(), "BTCUSDT", 1, 10); !errors.Is(err, bridge.ErrNotSupported) {
		t.Errorf("err = %v", err)
	}
}

func TestRecentTrades(t *testing.T) {
	list := `{"category":"spot","list":[` +
		`{"execId":"2100000000007764265","symbol":"BTCUSDT","price":"16618.51","size":"0.1","side":"Sell","time":"1672052955760","isBlockTrade":false},` +
		`{"execId":"2100000000007764264","symbol":"BTCUSDT","price":"16618.50","size":"0.2","side":"Buy","time":"1672052955758","isBlockTrade":false},` +
		`{"execId":"2100000000007764263","symbol":"BTCUSDT","price":"16618.49","size":"0.00012","side":"Buy","time":"1672052955758","isBlockTrade":false}]}`
	f := &fakeREST{reply: respond(200, ok(list))}
	a := newServed(t, f, Config{})
	got, err := a.RecentTrades(context.Background(), "BTCUSDT", 500)
	if err != nil {
		t.Fatal(err)
	}
	if q := f.last(); q != "/v5/market/recent-trade?category=spot&limit=60&symbol=BTCUSDT" {
		t.Errorf("request %q (spot limit capped at 60)", q)
	}
	if len(got) != 3 {
		t.Fatalf("%d trades", len(got))
	}
	assertEvent(t, got[0], bridge.Event{Type: bridge.EventTrade, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1672052955758_000000,
		RecvTS: got[0].RecvTS, ID: "2100000000007764263", Price: "16618.49", Qty: "0.00012", Side: bridge.SideBuy})
	if got[1].ID != "2100000000007764264" || got[2].ID != "2100000000007764265" || got[2].Side != bridge.SideSell {
		t.Errorf("order: %s %s %s", got[0].ID, got[1].ID, got[2].ID)
	}
	for name, item := range map[string]string{
		"other symbol": `{"execId":"1","symbol":"ETHUSDT","price":"1","size":"1","side":"Buy","time":"1"}`,
		"bad side":     `{"execId":"1","symbol":"BTCUSDT","price":"1","size":"1","side":"buy","time":"1"}`,
		"bad time":     `{"execId":"1","symbol":"BTCUSDT","price":"1","size":"1","side":"Buy","time":1}`,
		"bad price":    `{"execId":"1","symbol":"BTCUSDT","price":"-1","size":"1","side":"Buy","time":"1"}`,
		"empty id":     `{"execId":"","symbol":"BTCUSDT","price":"1","size":"1","side":"Buy","time":"1"}`,
	} {
		f.set(respond(200, ok(`{"category":"spot","list":[`+item+`]}`)))
		if _, err := a.RecentTrades(context.Background(), "BTCUSDT", 1); !errors.Is(err, bridge.ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	lin := newServed(t, &fakeREST{reply: respond(200, ok(`{"category":"linear","list":[]}`))}, Config{Market: MarketLinear})
	if got, err := lin.RecentTrades(context.Background(), "BTCUSDT", 1000); err != nil || len(got) != 0 {
		t.Errorf("linear: %v %v", got, err)
	}
}
