package bybit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
	"github.com/qldata/mdbridge/resilience"
)

func ok(result string) string {
	return `{"retCode":0,"retMsg":"OK","result":` + result + `,"retExtInfo":{},"time":1672025956592}`
}

func newServed(t *testing.T, f *adaptertest.FakeREST, cfg Config) *Adapter {
	t.Helper()
	cfg.RESTURL = adaptertest.Serve(t, f)
	if cfg.Limiter == nil {
		cfg.Limiter = adaptertest.NewLimiter(t, 100000)
	}
	return newTest(t, cfg)
}

const bookResult = `{"s":"BTCUSDT","a":[["65557.7","16.606555"],["65558.0","0.1"]],"b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,"cts":1716863718905}`

func TestSnapshot(t *testing.T) {
	for _, market := range []string{MarketSpot, MarketLinear} {
		t.Run(market, func(t *testing.T) {
			f := adaptertest.NewFakeREST(adaptertest.Respond(200, ok(bookResult)))
			a := newServed(t, f, Config{Market: market, BookDepth: 1000})
			ev, err := a.Snapshot(context.Background(), "btcusdt")
			if err != nil {
				t.Fatal(err)
			}
			limit := map[string]string{MarketSpot: "1000", MarketLinear: "500"}[market] // linear serves at most 500
			if want := "/v5/market/orderbook?category=" + market + "&limit=" + limit + "&symbol=BTCUSDT"; f.Last() != want {
				t.Errorf("request %q, want %q", f.Last(), want)
			}
			adaptertest.AssertEvent(t, ev, bridge.Event{Type: bridge.EventBookSnapshot, Exchange: a.Name(), Symbol: "BTCUSDT",
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
	adaptertest.RESTErrors(t, "/v5/market/orderbook", []adaptertest.RESTErrorCase{
		{Name: "403 IP ban, default 10 min", Status: 403, Body: `access too frequent`, RateLimit: &bridge.RateLimitError{Status: 403, RetryAfter: 10 * time.Minute, Banned: true}},
		{Name: "403 with Retry-After", Status: 403, Body: ``, Hdr: []string{"Retry-After", "900"}, RateLimit: &bridge.RateLimitError{Status: 403, RetryAfter: 15 * time.Minute, Banned: true}},
		{Name: "429", Status: 429, Body: ``, Hdr: []string{"Retry-After", "3"}, RateLimit: &bridge.RateLimitError{Status: 429, RetryAfter: 3 * time.Second}},
		{Name: "retCode 10006 without reset", Status: 200, Body: `{"retCode":10006,"retMsg":"Too many visits!","result":{}}`, RateLimit: &bridge.RateLimitError{Status: 200, RetryAfter: time.Second}},
		{Name: "unknown symbol", Status: 200, Body: `{"retCode":10001,"retMsg":"params error: symbol invalid","result":{},"retExtInfo":{},"time":1}`, Code: 10001},
		{Name: "500", Status: 500, Body: `{"retCode":10016,"retMsg":"Server error."}`, Code: 10016},
		{Name: "502 html", Status: 502, Body: `<html></html>`},
		{Name: "200 not an envelope", Status: 200, Body: `[]`, Malformed: true},
		{Name: "200 result wrong type", Status: 200, Body: ok(`{"s":"BTCUSDT","a":[],"b":[],"ts":"1","u":1}`), Malformed: true},
		{Name: "200 other symbol", Status: 200, Body: ok(strings.Replace(bookResult, `"s":"BTCUSDT"`, `"s":"ETHUSDT"`, 1)), Malformed: true},
		{Name: "200 missing u", Status: 200, Body: ok(strings.Replace(bookResult, `"u":230704,`, ``, 1)), Malformed: true},
		{Name: "200 bad level", Status: 200, Body: ok(strings.Replace(bookResult, `["65558.0","0.1"]`, `["65558.0"]`, 1)), Malformed: true},
		{Name: "oversized body", Status: 200, Body: ok(`{"x":"` + strings.Repeat("a", 4096) + `"}`), Malformed: true},
	}, func(t *testing.T, restURL string, lim *resilience.RateLimitManager) bridge.Exchange {
		return newTest(t, Config{RESTURL: restURL, Limiter: lim, MaxBodyBytes: 2048})
	}, func(e *APIError) (int, int, string) { return e.Status, e.RetCode, e.Path })
}

// TestRetCode10006Reset: the per-UID limit waits until
// X-Bapi-Limit-Reset-Timestamp.
func TestRetCode10006Reset(t *testing.T) {
	// The adapter's clock is fixed, so the wait is exact however long the
	// request takes.
	now := time.UnixMilli(1_700_000_000_000)
	reset := now.Add(4 * time.Second).UnixMilli()
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, `{"retCode":10006,"retMsg":"Too many visits!"}`, "X-Bapi-Limit-Reset-Timestamp", fmt.Sprint(reset)))
	a := newServed(t, f, Config{})
	a.core.Now = func() time.Time { return now }
	_, err := a.ServerTime(context.Background())
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 4*time.Second {
		t.Fatalf("err = %v, want a wait of 4s", err)
	}
}

// TestBanObeyed (fake time): after a 403 no request is sent for 10
// minutes, from any goroutine; then requests resume.
func TestBanObeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := adaptertest.NewFakeREST(adaptertest.Respond(403, `access too frequent`))
		a := newTest(t, Config{Limiter: adaptertest.NewLimiter(t, 100000), HTTPClient: &http.Client{Transport: adaptertest.HandlerTransport{H: f}}})
		_, err := a.ServerTime(context.Background())
		var rl *bridge.RateLimitError
		if !errors.As(err, &rl) || !rl.Banned || rl.RetryAfter != 10*time.Minute {
			t.Fatalf("err = %v", err)
		}
		f.Set(adaptertest.Respond(200, ok(`{"timeSecond":"1688639403","timeNano":"1688639403423213947"}`)))
		adaptertest.HeldFor(t, f, 10*time.Minute, 3, func() {
			if _, err := a.Snapshot(context.Background(), "BTCUSDT"); err == nil {
				t.Errorf("snapshot with a time body succeeded")
			}
		})
	})
}

// TestBanBlocksRequests (real sockets): after a 403 nothing reaches the
// server while the ban lasts.
func TestBanBlocksRequests(t *testing.T) {
	f := adaptertest.NewFakeREST(adaptertest.Respond(403, ``))
	a := newServed(t, f, Config{})
	if _, err := a.Snapshot(context.Background(), "BTCUSDT"); !errors.Is(err, bridge.ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	f.Set(adaptertest.Respond(200, ok(bookResult)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.RecentTrades(ctx, "BTCUSDT", 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if f.Hits.Load() != 1 {
		t.Errorf("%d requests, want 1", f.Hits.Load())
	}
}

func TestServerTime(t *testing.T) {
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, ok(`{"timeSecond":"1688639403","timeNano":"1688639403423213947"}`)))
	a := newServed(t, f, Config{})
	got, err := a.ServerTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(time.Unix(0, 1688639403423213947)) || f.Last() != "/v5/market/time?" {
		t.Errorf("ServerTime = %v (request %q)", got, f.Last())
	}
	f.Set(adaptertest.Respond(200, ok(`{"timeSecond":"1688639403"}`)))
	if got, err := a.ServerTime(context.Background()); err != nil || !got.Equal(time.Unix(1688639403, 0)) {
		t.Errorf("timeSecond fallback: %v %v", got, err)
	}
	f.Set(adaptertest.Respond(200, ok(`{"timeNano":"x"}`)))
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
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, ok(list)))
	a := newServed(t, f, Config{})
	got, err := a.RecentTrades(context.Background(), "BTCUSDT", 500)
	if err != nil {
		t.Fatal(err)
	}
	if q := f.Last(); q != "/v5/market/recent-trade?category=spot&limit=60&symbol=BTCUSDT" {
		t.Errorf("request %q (spot limit capped at 60)", q)
	}
	if len(got) != 3 {
		t.Fatalf("%d trades", len(got))
	}
	adaptertest.AssertEvent(t, got[0], bridge.Event{Type: bridge.EventTrade, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1672052955758_000000,
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
		f.Set(adaptertest.Respond(200, ok(`{"category":"spot","list":[`+item+`]}`)))
		if _, err := a.RecentTrades(context.Background(), "BTCUSDT", 1); !errors.Is(err, bridge.ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	lin := newServed(t, adaptertest.NewFakeREST(adaptertest.Respond(200, ok(`{"category":"linear","list":[]}`))), Config{Market: MarketLinear})
	if got, err := lin.RecentTrades(context.Background(), "BTCUSDT", 1000); err != nil || len(got) != 0 {
		t.Errorf("linear: %v %v", got, err)
	}
}
