package adaptertest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/resilience"
)

// FakeREST is a scripted REST endpoint that records every request.
type FakeREST struct {
	Hits    atomic.Int64 // requests received
	mu      sync.Mutex
	queries []string // path?query of each request
	reply   http.HandlerFunc
}

// NewFakeREST returns a FakeREST answering with reply.
func NewFakeREST(reply http.HandlerFunc) *FakeREST { return &FakeREST{reply: reply} }

// ServeHTTP records the request and answers it with the current reply.
func (f *FakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.Hits.Add(1)
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	reply := f.reply
	f.mu.Unlock()
	reply(w, r)
}

// Set replaces the reply for later requests.
func (f *FakeREST) Set(reply http.HandlerFunc) {
	f.mu.Lock()
	f.reply = reply
	f.mu.Unlock()
}

// Last returns path?query of the latest request, or "".
func (f *FakeREST) Last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return ""
	}
	return f.queries[len(f.queries)-1]
}

// Respond returns a reply with status, a JSON content type, the header
// pairs hdr (name, value, ...) and body.
func Respond(status int, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// NewLimiter returns a limiter of rpm requests per minute with a burst of
// rpm.
func NewLimiter(t testing.TB, rpm int) *resilience.RateLimitManager {
	t.Helper()
	lim, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: rpm, Burst: rpm})
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

// Serve serves h on a loopback server closed when the test ends and
// returns its URL.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// HandlerTransport serves requests in-process (no sockets, no
// goroutines), so REST calls can run inside a synctest bubble with fake
// time.
type HandlerTransport struct{ H http.Handler }

// RoundTrip serves r with H.
func (t HandlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.H.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// CountingTransport counts the requests that actually leave the adapter
// and sends them with http.DefaultTransport.
type CountingTransport struct{ N atomic.Int64 }

// RoundTrip counts r and sends it.
func (c *CountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.N.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// RESTErrorCase is one scripted answer to a snapshot request and the
// error it must give: a rate-limit error (which pauses the limiter),
// ErrMalformed, or else the venue's error wrapping bridge.ErrExchange with
// the HTTP Status and the venue's error Code.
type RESTErrorCase struct {
	Name      string
	Status    int
	Body      string
	Hdr       []string               // header pairs
	RateLimit *bridge.RateLimitError // the expected rate-limit error
	Code      int                    // the venue's expected error code (Binance code, Bybit retCode)
	Malformed bool                   // expect bridge.ErrMalformed
}

// RESTErrors runs each case as a subtest: a Snapshot from the adapter
// newAdapter builds for restURL and lim (a fresh limiter per case) must
// fail as the case says. An exchange error must be the venue's error type
// E, whose status, code and request path fields gives; the path must be
// path.
func RESTErrors[E error](t *testing.T, path string, cases []RESTErrorCase,
	newAdapter func(t *testing.T, restURL string, lim *resilience.RateLimitManager) bridge.Exchange,
	fields func(E) (status, code int, path string)) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			lim := NewLimiter(t, 100000)
			a := newAdapter(t, Serve(t, NewFakeREST(Respond(c.Status, c.Body, c.Hdr...))), lim)
			before := time.Now()
			_, err := a.Snapshot(context.Background(), "BTCUSDT")
			if err == nil {
				t.Fatal("no error")
			}
			var rl *bridge.RateLimitError
			var api E
			switch {
			case c.RateLimit != nil:
				if !errors.As(err, &rl) || !errors.Is(err, bridge.ErrRateLimited) {
					t.Fatalf("err = %v, want *RateLimitError", err)
				}
				if *rl != *c.RateLimit {
					t.Errorf("RateLimitError = %+v, want %+v", *rl, *c.RateLimit)
				}
				if until := lim.PausedUntil(); until.Before(before.Add(c.RateLimit.RetryAfter)) {
					t.Errorf("limiter paused until %v, want >= now+%v", until, c.RateLimit.RetryAfter)
				}
			case c.Malformed:
				if !errors.Is(err, bridge.ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
			default:
				if !errors.As(err, &api) || !errors.Is(err, bridge.ErrExchange) {
					t.Fatalf("err = %v, want %T wrapping ErrExchange", err, api)
				}
				if st, code, p := fields(api); st != c.Status || code != c.Code || p != path {
					t.Errorf("%T = %+v, want status %d, code %d, path %s", api, api, c.Status, c.Code, path)
				}
				if !lim.PausedUntil().IsZero() {
					t.Errorf("limiter paused by a non-rate-limit error")
				}
			}
		})
	}
}

// HeldFor runs calls concurrent calls of call inside a synctest bubble
// while a rate-limit pause of d, starting now, lasts: none may reach f or
// complete before the pause ends, and all must be sent and done right
// after it.
func HeldFor(t *testing.T, f *FakeREST, d time.Duration, calls int, call func()) {
	t.Helper()
	before := f.Hits.Load()
	var done atomic.Int64
	for range calls {
		go func() {
			call()
			done.Add(1)
		}()
	}
	time.Sleep(d - time.Millisecond)
	synctest.Wait()
	if n := f.Hits.Load() - before; n != 0 || done.Load() != 0 {
		t.Fatalf("%d requests sent, %d done during the pause", n, done.Load())
	}
	time.Sleep(2 * time.Millisecond)
	synctest.Wait()
	if n := f.Hits.Load() - before; n != int64(calls) || done.Load() != int64(calls) {
		t.Fatalf("after the pause: %d requests, %d done; want %d, %d", n, done.Load(), calls, calls)
	}
}
