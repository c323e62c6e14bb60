package bybit

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// Markets.
const (
	MarketSpot   = "spot"
	MarketLinear = "linear"
)

// Defaults.
const (
	DefaultWSURL         = "wss://stream.bybit.com"
	DefaultRESTURL       = "https://api.bybit.com"
	DefaultBookDepth     = 50
	DefaultMaxFrameBytes = 4 << 20 // 4 MiB: a 1024-trade frame is ~250 KiB, a 1000-level snapshot ~70 KiB
	DefaultMaxBodyBytes  = 8 << 20
)

// Config configures an Adapter. The zero value talks to the real Bybit spot
// endpoints with the defaults above.
type Config struct {
	// WSURL is the WebSocket base URL (ws or wss, no path): the adapter
	// dials <WSURL>/v5/public/<Market>.
	WSURL string
	// RESTURL is the REST base URL (http or https).
	RESTURL string
	// Market is "spot" (default; exchange id "bybit") or "linear"
	// (exchange id "bybit-linear").
	Market string
	// BookDepth is the orderbook topic depth (1, 50, 200 or 1000; default
	// 50) and the REST snapshot limit.
	BookDepth int
	// MaxFrameBytes is the largest inbound frame Decode accepts and the
	// read limit reported in Limits (default 4 MiB).
	MaxFrameBytes int64
	// MaxBodyBytes bounds every REST response body (default 8 MiB).
	MaxBodyBytes int64

	// Limiter paces REST requests. Share one per IP. nil builds one from
	// resilience.ExchangeDefaults (120 requests per minute).
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
	if c.Market == "" {
		c.Market = MarketSpot
	}
	if c.BookDepth == 0 {
		c.BookDepth = DefaultBookDepth
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
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
	if c.Market != MarketSpot && c.Market != MarketLinear {
		return fmt.Errorf("%w: Market %q: want %q or %q", ErrConfig, c.Market, MarketSpot, MarketLinear)
	}
	switch c.BookDepth {
	case 1, 50, 200, 1000:
	default:
		return fmt.Errorf("%w: BookDepth %d: want 1, 50, 200 or 1000", ErrConfig, c.BookDepth)
	}
	if c.MaxFrameBytes < 1024 {
		return fmt.Errorf("%w: MaxFrameBytes %d below 1024", ErrConfig, c.MaxFrameBytes)
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
