package binance

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

// newServed returns an adapter whose REST calls go to a real loopback
// httptest server backed by f.
func newServed(t *testing.T, f *adaptertest.FakeREST, cfg Config) *Adapter {
	t.Helper()
	cfg.RESTURL = adaptertest.Serve(t, f)
	if cfg.Limiter == nil {
		cfg.Limiter = adaptertest.NewLimiter(t, 100000)
	}
	return newTest(t, cfg)
}

const depthBody = `{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"],["3.99000000","9.00000000"]],"asks":[["4.00000200","12.00000000"]]}`

func TestSnapshot(t *testing.T) {
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, depthBody))
	a := newServed(t, f, Config{})
	ev, err := a.Snapshot(context.Background(), "btcusdt")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Last(); got != "/api/v3/depth?limit=1000&symbol=BTCUSDT" {
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
			f := adaptertest.NewFakeREST(adaptertest.Respond(200, `{"lastUpdateId":1,"bids":[],"asks":[]}`))
			for attempt := 0; ; attempt++ {
				lim := adaptertest.NewLimiter(t, 100000)
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
				if !strings.Contains(f.Last(), fmt.Sprintf("limit=%d", c.depth)) {
					t.Errorf("request %q", f.Last())
				}
				break
			}
		})
	}
}

func TestUsedWeightHeaderSync(t *testing.T) {
	lim := adaptertest.NewLimiter(t, 1200)
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, `{"serverTime":1499827319559}`, "X-MBX-USED-WEIGHT-1M", "1150"))
	a := newServed(t, f, Config{Limiter: lim})
	if _, err := a.ServerTime(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lim.UsedWeight(); got < 1150 {
		t.Errorf("UsedWeight = %d after the exchange reported 1150", got)
	}
}

func TestRESTErrors(t *testing.T) {
	adaptertest.RESTErrors(t, "/api/v3/depth", []adaptertest.RESTErrorCase{
		{Name: "429 with Retry-After", Status: 429, Body: `{"code":-1003,"msg":"Too much request weight used; current limit is 1200 request weight per 1 MINUTE."}`, Hdr: []string{"Retry-After", "7"}, RateLimit: &bridge.RateLimitError{Status: 429, RetryAfter: 7 * time.Second}},
		{Name: "429 without Retry-After", Status: 429, Body: `{"code":-1003,"msg":"x"}`, RateLimit: &bridge.RateLimitError{Status: 429, RetryAfter: time.Minute}},
		{Name: "418 ban", Status: 418, Body: `{"code":-1003,"msg":"Way too much request weight used; IP banned until 1700000000000."}`, Hdr: []string{"Retry-After", "7200"}, RateLimit: &bridge.RateLimitError{Status: 418, RetryAfter: 2 * time.Hour, Banned: true}},
		{Name: "418 without Retry-After", Status: 418, Body: ``, RateLimit: &bridge.RateLimitError{Status: 418, RetryAfter: 2 * time.Minute, Banned: true}},
		{Name: "bad symbol", Status: 400, Body: `{"code":-1121,"msg":"Invalid symbol."}`, Code: CodeBadSymbol},
		{Name: "WAF 403", Status: 403, Body: `<html>forbidden</html>`},
		{Name: "503", Status: 503, Body: `{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}`, Code: -1001},
		{Name: "502 html", Status: 502, Body: `<html>bad gateway</html>`},
		{Name: "200 invalid JSON", Status: 200, Body: `{"lastUpdateId":`, Malformed: true},
		{Name: "200 wrong types", Status: 200, Body: `{"lastUpdateId":"1","bids":[],"asks":[]}`, Malformed: true},
		{Name: "200 missing asks", Status: 200, Body: `{"lastUpdateId":1,"bids":[]}`, Malformed: true},
		{Name: "200 bad level", Status: 200, Body: `{"lastUpdateId":1,"bids":[["1"]],"asks":[]}`, Malformed: true},
		{Name: "oversized body", Status: 200, Body: `{"lastUpdateId":1,"bids":[],"asks":[],"x":"` + strings.Repeat("a", 4096) + `"}`, Malformed: true},
	}, func(t *testing.T, restURL string, lim *resilience.RateLimitManager) bridge.Exchange {
		return newTest(t, Config{RESTURL: restURL, Limiter: lim, MaxBodyBytes: 2048})
	}, func(e *APIError) (int, int, string) { return e.Status, e.Code, e.Path })
}

// TestRateLimitPauseBlocksRequests (real sockets): after a 429 no request
// reaches the server until Retry-After has passed.
func TestRateLimitPauseBlocksRequests(t *testing.T) {
	f := adaptertest.NewFakeREST(adaptertest.Respond(429, `{"code":-1003,"msg":"x"}`, "Retry-After", "30"))
	a := newServed(t, f, Config{})
	if _, err := a.ServerTime(context.Background()); !errors.Is(err, bridge.ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	f.Set(adaptertest.Respond(200, `{"serverTime":1}`))
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
	if n := f.Hits.Load(); n != 1 {
		t.Fatalf("%d requests reached the server, want 1 (none during the pause)", n)
	}
}

func newBubbled(t *testing.T, f *adaptertest.FakeREST, lim *resilience.RateLimitManager) *Adapter {
	t.Helper()
	return newTest(t, Config{Limiter: lim, HTTPClient: &http.Client{Transport: adaptertest.HandlerTransport{H: f}}})
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
				f := adaptertest.NewFakeREST(adaptertest.Respond(c.status, `{"code":-1003,"msg":"x"}`, "Retry-After", fmt.Sprint(int(c.after/time.Second))))
				a := newBubbled(t, f, adaptertest.NewLimiter(t, 100000))
				start := time.Now()
				_, err := a.ServerTime(context.Background())
				var rl *bridge.RateLimitError
				if !errors.As(err, &rl) || rl.RetryAfter != c.after || rl.Banned != (c.status == 418) {
					t.Fatalf("err = %v", err)
				}
				f.Set(adaptertest.Respond(200, `{"serverTime":1700000000000}`))
				adaptertest.HeldFor(t, f, c.after, 3, func() {
					if _, err := a.ServerTime(context.Background()); err != nil {
						t.Errorf("after pause: %v", err)
					}
					if d := time.Since(start); d < c.after {
						t.Errorf("request completed %v after the 429, before Retry-After %v", d, c.after)
					}
				})
			})
		})
	}
}

// TestUsedWeightHoldsRequests (fake time): when the exchange reports the
// minute's weight nearly used, a snapshot waits for the next minute window
// instead of being sent.
func TestUsedWeightHoldsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := adaptertest.NewLimiter(t, 1200)
		f := adaptertest.NewFakeREST(adaptertest.Respond(200, `{"serverTime":1}`, "X-MBX-USED-WEIGHT-1M", "1190"))
		a := newBubbled(t, f, lim)
		time.Sleep(10 * time.Second) // 00:00:10
		if _, err := a.ServerTime(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.Set(adaptertest.Respond(200, depthBody))
		done := make(chan error, 1)
		go func() { _, err := a.Snapshot(context.Background(), "BTCUSDT"); done <- err }()
		time.Sleep(49 * time.Second) // 00:00:59
		synctest.Wait()
		if n := f.Hits.Load(); n != 1 {
			t.Fatalf("snapshot (weight 50) sent with 1190 of 1200 used: %d requests", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if err := <-done; err != nil || f.Hits.Load() != 2 {
			t.Fatalf("snapshot in the next window: err %v, %d requests", err, f.Hits.Load())
		}
	})
}

func TestServerTime(t *testing.T) {
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, `{"serverTime":1499827319559}`))
	a := newServed(t, f, Config{})
	got, err := a.ServerTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(time.UnixMilli(1499827319559)) || f.Last() != "/api/v3/time?" {
		t.Errorf("ServerTime = %v (request %q)", got, f.Last())
	}
	f.Set(adaptertest.Respond(200, `{}`))
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
	f := adaptertest.NewFakeREST(adaptertest.Respond(200, tradesJSON(28457, 28459)))
	a := newServed(t, f, Config{})
	got, err := a.Trades(context.Background(), "BTCUSDT", 28457, 500)
	if err != nil {
		t.Fatal(err)
	}
	if q := f.Last(); q != "/api/v3/historicalTrades?fromId=28457&limit=500&symbol=BTCUSDT" {
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
		adaptertest.AssertEvent(t, ev, want)
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
		f.Set(adaptertest.Respond(200, body))
		if _, err := a.Trades(context.Background(), "BTCUSDT", 0, 10); !errors.Is(err, bridge.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestTradesFallback: historicalTrades refused (API key required) falls
// back to /api/v3/trades, remembered for later calls.
func TestTradesFallback(t *testing.T) {
	f := adaptertest.NewFakeREST(nil)
	f.Set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v3/historicalTrades" {
			adaptertest.Respond(401, `{"code":-2014,"msg":"API-key format invalid."}`)(w, r)
			return
		}
		adaptertest.Respond(200, tradesJSON(100, 105))(w, r)
	})
	a := newServed(t, f, Config{})
	got, err := a.Trades(context.Background(), "BTCUSDT", 103, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 103 || got[2].Seq != 105 {
		t.Errorf("fallback trades %+v", got)
	}
	if q := f.Last(); q != "/api/v3/trades?limit=1000&symbol=BTCUSDT" {
		t.Errorf("fallback request %q", q)
	}
	// fromID older than the recent window: what is there is returned; the
	// caller sees the first id above fromID and counts the rest missing.
	got, err = a.Trades(context.Background(), "BTCUSDT", 50, 1000)
	if err != nil || len(got) != 6 || got[0].Seq != 100 {
		t.Errorf("old fromID: %v %d trades", err, len(got))
	}
	if n := f.Hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (historicalTrades tried once)", n)
	}
	// Other errors do not trigger the fallback.
	f2 := adaptertest.NewFakeREST(adaptertest.Respond(400, `{"code":-1121,"msg":"Invalid symbol."}`))
	b := newServed(t, f2, Config{})
	var ae *APIError
	if _, err := b.Trades(context.Background(), "NOPE", 1, 10); !errors.As(err, &ae) || ae.Code != CodeBadSymbol {
		t.Errorf("err = %v", err)
	}
	if b.historicalRefused.Load() || f2.Hits.Load() != 1 {
		t.Errorf("fallback taken on a bad symbol")
	}
}

func TestRESTContextAndInput(t *testing.T) {
	block := make(chan struct{})
	f := adaptertest.NewFakeREST(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
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
