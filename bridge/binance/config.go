package binance

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// Defaults.
const (
	DefaultWSURL         = "wss://stream.binance.com:9443"
	DefaultRESTURL       = "https://api.binance.com"
	DefaultBookDepth     = 1000    // REST snapshot limit: request weight 50
	DefaultMaxFrameBytes = 4 << 20 // 4 MiB: a depth@100ms frame is tens of KiB even in a busy market
	DefaultMaxURLBytes   = 8000    // fits the 8 KiB request-line limit common in HTTP front ends
	DefaultMaxBodyBytes  = 8 << 20 // a 5000-level snapshot is ~300 KiB
	DefaultDepthSpeed    = "100ms"
)

// Config configures an Adapter. The zero value talks to the real Binance
// Spot endpoints with the defaults above.
type Config struct {
	// WSURL is the WebSocket base URL (scheme ws or wss, no path), e.g.
	// "wss://stream.binance.com:9443" or a simulator's "ws://127.0.0.1:port".
	WSURL string
	// RESTURL is the REST base URL (scheme http or https).
	RESTURL string
	// BookDepth is the REST snapshot limit (1..5000). Its request weight is
	// 5 up to 100, 25 up to 500, 50 up to 1000, 250 up to 5000.
	BookDepth int
	// DepthSpeed is the diff stream's update speed: "100ms" (default,
	// <s>@depth@100ms) or "1000ms" (<s>@depth).
	DepthSpeed string
	// MicrosecondTimestamps adds timeUnit=MICROSECOND to the stream URL and
	// reads event times as microseconds.
	MicrosecondTimestamps bool
	// MaxFrameBytes is the largest inbound frame Decode accepts and the
	// read limit reported in Limits (default 4 MiB).
	MaxFrameBytes int64
	// MaxURLBytes bounds the stream URL; topics that do not fit are
	// subscribed with SUBSCRIBE frames (default 8000).
	MaxURLBytes int
	// MaxBodyBytes bounds every REST response body (default 8 MiB).
	MaxBodyBytes int64

	// Limiter paces REST requests by weight. Share one per IP. nil builds
	// one from resilience.ExchangeDefaults("binance") (1200 weight per
	// minute, default burst).
	Limiter *resilience.RateLimitManager
	// HTTPClient sends REST requests; nil uses a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives rate-limit warnings; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.WSURL == "" {
		c.WSURL = DefaultWSURL
	}
	if c.RESTURL == "" {
		c.RESTURL = DefaultRESTURL
	}
	if c.BookDepth == 0 {
		c.BookDepth = DefaultBookDepth
	}
	if c.DepthSpeed == "" {
		c.DepthSpeed = DefaultDepthSpeed
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxURLBytes == 0 {
		c.MaxURLBytes = DefaultMaxURLBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	if err := checkBase(c.WSURL, "ws", "wss"); err != nil {
		return fmt.Errorf("%w: WSURL: %v", ErrConfig, err)
	}
	if err := checkBase(c.RESTURL, "http", "https"); err != nil {
		return fmt.Errorf("%w: RESTURL: %v", ErrConfig, err)
	}
	if c.BookDepth < 1 || c.BookDepth > 5000 {
		return fmt.Errorf("%w: BookDepth %d outside 1..5000", ErrConfig, c.BookDepth)
	}
	if c.DepthSpeed != "100ms" && c.DepthSpeed != "1000ms" {
		return fmt.Errorf("%w: DepthSpeed %q: want \"100ms\" or \"1000ms\"", ErrConfig, c.DepthSpeed)
	}
	if c.MaxFrameBytes < 1024 {
		return fmt.Errorf("%w: MaxFrameBytes %d below 1024", ErrConfig, c.MaxFrameBytes)
	}
	if c.MaxURLBytes < 256 {
		return fmt.Errorf("%w: MaxURLBytes %d below 256", ErrConfig, c.MaxURLBytes)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("%w: MaxBodyBytes %d below 1024", ErrConfig, c.MaxBodyBytes)
	}
	return nil
}

func checkBase(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("%q: scheme must be %v", raw, schemes)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: base URL must not have a query or fragment", raw)
	}
	return nil
}

// depthWeight is the request weight of GET /api/v3/depth for limit.
func depthWeight(limit int) int {
	switch {
	case limit <= 100:
		return 5
	case limit <= 500:
		return 25
	case limit <= 1000:
		return 50
	default:
		return 250
	}
}
