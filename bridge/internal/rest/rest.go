package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

// DefaultMaxBody is the response body limit used when Client.MaxBody is 0.
const DefaultMaxBody = 8 << 20

// Limiter is the part of resilience.RateLimitManager the client needs.
type Limiter interface {
	AcquireN(ctx context.Context, weight int) error
	Pause(until time.Time)
	PausedUntil() time.Time
}

// CheckFunc inspects one response (status, headers, body read under the
// limit) and returns nil for success or the error to return to the caller.
// Returning a *bridge.RateLimitError pauses the limiter.
type CheckFunc func(resp *http.Response, body []byte) error

// Client sends weighted, rate-limited GET requests.
type Client struct {
	HTTP    *http.Client     // nil = http.DefaultClient
	Limiter Limiter          // required
	Check   CheckFunc        // required
	MaxBody int64            // response body limit in bytes; 0 = DefaultMaxBody
	Now     func() time.Time // nil = time.Now
	Log     *slog.Logger     // nil = discard
	Prefix  string           // error message prefix, e.g. "binance"
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get waits until the limiter is not paused, acquires weight, sends GET url
// and returns the body of a response the check function accepted.
//
// Errors: ctx's error (wrapped) when ctx ends first, a *bridge.RateLimitError
// (errors.Is bridge.ErrRateLimited) when the exchange refused the request for
// rate limiting, bridge.ErrMalformed (wrapped) when the body exceeds the
// limit, transport errors wrapped, and whatever the check function returns.
func (c *Client) Get(ctx context.Context, url string, weight int) ([]byte, error) {
	for {
		if err := c.waitPause(ctx); err != nil {
			return nil, err
		}
		if err := c.Limiter.AcquireN(ctx, weight); err != nil {
			return nil, fmt.Errorf("%s: rate limiter: %w", c.Prefix, err)
		}
		// Another request may have been refused while we waited for
		// weight: never send during a pause.
		if c.now().Before(c.Limiter.PausedUntil()) {
			continue
		}
		break
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Prefix, err)
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s: %w", c.Prefix, req.URL.Path, err)
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s: reading body: %w", c.Prefix, req.URL.Path, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: %s: GET %s: response body exceeds %d bytes", bridge.ErrMalformed, c.Prefix, req.URL.Path, limit)
	}
	if err := c.Check(resp, body); err != nil {
		var rl *bridge.RateLimitError
		if errors.As(err, &rl) {
			until := c.now().Add(rl.RetryAfter)
			c.Limiter.Pause(until)
			if c.Log != nil {
				c.Log.Warn("rate limited by exchange; pausing REST requests",
					"status", rl.Status, "retry_after", rl.RetryAfter, "banned", rl.Banned, "path", req.URL.Path)
			}
		}
		return nil, err
	}
	return body, nil
}

// waitPause blocks until the limiter's pause has passed or ctx ends.
func (c *Client) waitPause(ctx context.Context) error {
	for {
		until := c.Limiter.PausedUntil()
		d := until.Sub(c.now())
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting out a rate-limit pause until %s: %w", c.Prefix, until.UTC().Format(time.RFC3339), ctx.Err())
		case <-t.C:
		}
	}
}

// RetryAfter parses a Retry-After header value: delay seconds or an HTTP
// date. It returns def when the value is empty or unparsable, and 0 for a
// date in the past.
func RetryAfter(v string, now time.Time, def time.Duration) time.Duration {
	if v == "" {
		return def
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return def
		}
		if n > int64(30*24*time.Hour/time.Second) {
			n = int64(30 * 24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return def
}

// Snippet returns at most 256 bytes of body for error messages.
func Snippet(body []byte) string {
	const max = 256
	if len(body) > max {
		return string(body[:max]) + "..."
	}
	return string(body)
}

// ErrorMessage is the message of an exchange's error answer: msg when the
// body carried one (parsed), else a Snippet of the body; for a 5xx status
// it says the outcome is unknown (the request may have been executed).
func ErrorMessage(status int, msg string, parsed bool, body []byte) string {
	if !parsed {
		msg = Snippet(body)
	}
	if status >= 500 {
		msg = "server error, outcome unknown: " + msg
	}
	return msg
}
