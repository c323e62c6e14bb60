package bybit

import (
	"cmp"
	"fmt"
	"net/http"

	"github.com/qldata/mdbridge/bridge/internal/adapter"
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
}

// common points at the fields every adapter's Config has.
func (c *Config) common() adapter.Common {
	return adapter.Common{WSURL: &c.WSURL, RESTURL: &c.RESTURL, MaxFrameBytes: &c.MaxFrameBytes,
		MaxBodyBytes: &c.MaxBodyBytes, HTTPClient: &c.HTTPClient}
}

func (c *Config) setDefaults() {
	c.common().SetDefaults(adapter.Defaults{WSURL: DefaultWSURL, RESTURL: DefaultRESTURL,
		MaxFrameBytes: DefaultMaxFrameBytes, MaxBodyBytes: DefaultMaxBodyBytes})
	c.Market = cmp.Or(c.Market, MarketSpot)
	c.BookDepth = cmp.Or(c.BookDepth, DefaultBookDepth)
}

func (c *Config) validate() error {
	if err := c.common().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.Market != MarketSpot && c.Market != MarketLinear {
		return fmt.Errorf("%w: Market %q: want %q or %q", ErrConfig, c.Market, MarketSpot, MarketLinear)
	}
	switch c.BookDepth {
	case 1, 50, 200, 1000:
	default:
		return fmt.Errorf("%w: BookDepth %d: want 1, 50, 200 or 1000", ErrConfig, c.BookDepth)
	}
	return nil
}
