package okx

import (
	"cmp"
	"fmt"
	"net/http"

	"github.com/qldata/mdbridge/bridge/internal/adapter"
	"github.com/qldata/mdbridge/resilience"
)

// Markets (OKX instType).
const (
	MarketSpot = "SPOT"
	MarketSwap = "SWAP"
)

// Exchange ids.
const (
	NameSpot = "okx"
	NameSwap = "okx-swap"
)

// Defaults.
const (
	DefaultWSURL         = "wss://ws.okx.com:8443"
	DefaultRESTURL       = "https://openapi.okx.com"
	DefaultMaxFrameBytes = 4 << 20 // a 400-level snapshot is ~40 KiB
	DefaultMaxBodyBytes  = 8 << 20
)

// Config configures an Adapter. The zero value talks to the real OKX SPOT
// market.
type Config struct {
	// WSURL is the WebSocket base URL (ws or wss): the adapter dials
	// <WSURL>/ws/v5/public or <WSURL>/ws/v5/business.
	WSURL string
	// RESTURL is the REST base URL (http or https).
	RESTURL string
	// Market is "SPOT" (default; exchange id "okx") or "SWAP" ("okx-swap").
	Market string
	// MaxFrameBytes is the largest inbound frame Decode accepts (default 4 MiB).
	MaxFrameBytes int64
	// MaxBodyBytes bounds every REST response body (default 8 MiB).
	MaxBodyBytes int64
	// Limiter paces REST requests. Share one per IP (okx and okx-swap
	// share OKX's). nil builds one (1,200 requests per minute: the tightest
	// endpoint used, history-trades, allows 20 per 2 s).
	Limiter *resilience.RateLimitManager
	// HTTPClient sends REST requests; nil uses a client with a 30 s timeout.
	HTTPClient *http.Client
}

func (c *Config) common() adapter.Common {
	return adapter.Common{WSURL: &c.WSURL, RESTURL: &c.RESTURL, MaxFrameBytes: &c.MaxFrameBytes,
		MaxBodyBytes: &c.MaxBodyBytes, HTTPClient: &c.HTTPClient}
}

func (c *Config) setDefaults() {
	c.common().SetDefaults(adapter.Defaults{WSURL: DefaultWSURL, RESTURL: DefaultRESTURL,
		MaxFrameBytes: DefaultMaxFrameBytes, MaxBodyBytes: DefaultMaxBodyBytes})
	c.Market = cmp.Or(c.Market, MarketSpot)
}

func (c *Config) validate() error {
	if err := c.common().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.Market != MarketSpot && c.Market != MarketSwap {
		return fmt.Errorf("%w: Market %q: want %q or %q", ErrConfig, c.Market, MarketSpot, MarketSwap)
	}
	return nil
}
