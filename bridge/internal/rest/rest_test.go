package rest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/resilience"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 9 * time.Second}, {"0", 0}, {"5", 5 * time.Second}, {"-3", 9 * time.Second}, {"abc", 9 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999", 30 * 24 * time.Hour},
	} {
		if got := RetryAfter(c.in, now, 9*time.Second); got != c.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestGet(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 2000)))
		case "/limited":
			w.WriteHeader(429)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	lim, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: 10000})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Limiter: lim, MaxBody: 1024, Prefix: "test", Check: func(resp *http.Response, body []byte) error {
		if resp.StatusCode == 429 {
			return &bridge.RateLimitError{Status: 429, RetryAfter: time.Hour}
		}
		return nil
	}}
	ctx := context.Background()
	if b, err := c.Get(ctx, srv.URL+"/ok", 1); err != nil || string(b) != "ok" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if _, err := c.Get(ctx, srv.URL+"/big", 1); !errors.Is(err, bridge.ErrMalformed) {
		t.Errorf("oversized: err = %v", err)
	}
	if _, err := c.Get(ctx, srv.URL+"/limited", 1); !errors.Is(err, bridge.ErrRateLimited) {
		t.Errorf("429: err = %v", err)
	}
	if d := time.Until(lim.PausedUntil()); d < 59*time.Minute {
		t.Errorf("paused for %v, want an hour", d)
	}
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx2, srv.URL+"/ok", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("during pause: err = %v", err)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d requests reached the server, want 3", n)
	}
}

func TestErrorMessage(t *testing.T) {
	for _, c := range []struct {
		status int
		msg    string
		parsed bool
		body   string
		want   string
	}{
		{400, "Invalid symbol.", true, `{"code":-1121}`, "Invalid symbol."},
		{403, "", false, "<html>forbidden</html>", "<html>forbidden</html>"},
		{503, "busy", true, "", "server error, outcome unknown: busy"},
		{502, "", false, strings.Repeat("x", 300), "server error, outcome unknown: " + strings.Repeat("x", 256) + "..."},
	} {
		if got := ErrorMessage(c.status, c.msg, c.parsed, []byte(c.body)); got != c.want {
			t.Errorf("ErrorMessage(%d, %q, %v) = %q, want %q", c.status, c.msg, c.parsed, got, c.want)
		}
	}
}
