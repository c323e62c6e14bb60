package binance

import (
	"cmp"
	"fmt"
	"net/http"
	"time"

	"github.com/qldata/mdbridge/bridge/internal/adapter"
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

// Markets.
const (
	MarketSpot = "spot" // Binance Spot, exchange id "binance"
	MarketUSDM = "usdm" // Binance USD-M futures, exchange id "binance-usdm"
)

// Config configures an Adapter. The zero value talks to the real Binance
// Spot endpoints with the defaults above.
type Config struct {
	// Market is "spot" (default; exchange id "binance") or "usdm" (USD-M
	// futures; exchange id "binance-usdm", see usdm.go for its defaults).
	Market string
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

	// WeightPerMinute is the REST request weight per minute the limiter
	// built when Limiter is nil allows (usdm only; default 2400).
	WeightPerMinute int
	// OpenInterestEvery is how often the ticker channel polls each symbol's
	// open interest (GET /fapi/v1/openInterest, weight 1: n symbols cost
	// n per OpenInterestEvery of the REST budget); usdm only, default 1m,
	// negative: never (the ticker then has no open interest).
	OpenInterestEvery time.Duration

	// Limiter paces REST requests by weight. Share one per IP. nil builds
	// one from resilience.ExchangeDefaults("binance") (1200 weight per
	// minute, default burst).
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
	c.Market = cmp.Or(c.Market, MarketSpot)
	if c.Market == MarketUSDM {
		c.setUSDMDefaults()
		return
	}
	c.common().SetDefaults(adapter.Defaults{WSURL: DefaultWSURL, RESTURL: DefaultRESTURL,
		MaxFrameBytes: DefaultMaxFrameBytes, MaxBodyBytes: DefaultMaxBodyBytes})
	c.BookDepth = cmp.Or(c.BookDepth, DefaultBookDepth)
	c.DepthSpeed = cmp.Or(c.DepthSpeed, DefaultDepthSpeed)
	c.MaxURLBytes = cmp.Or(c.MaxURLBytes, DefaultMaxURLBytes)
}

func (c *Config) validate() error {
	if err := c.common().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	switch c.Market {
	case MarketSpot:
	case MarketUSDM:
		return c.validateUSDM()
	default:
		return fmt.Errorf("%w: Market %q: want %q or %q", ErrConfig, c.Market, MarketSpot, MarketUSDM)
	}
	if c.BookDepth < 1 || c.BookDepth > 5000 {
		return fmt.Errorf("%w: BookDepth %d outside 1..5000", ErrConfig, c.BookDepth)
	}
	if c.DepthSpeed != "100ms" && c.DepthSpeed != "1000ms" {
		return fmt.Errorf("%w: DepthSpeed %q: want \"100ms\" or \"1000ms\"", ErrConfig, c.DepthSpeed)
	}
	if c.MaxURLBytes < 256 {
		return fmt.Errorf("%w: MaxURLBytes %d below 256", ErrConfig, c.MaxURLBytes)
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

// SnapshotWeight is the REST request weight of one order book snapshot of
// market (MarketSpot or MarketUSDM) at depth limit (0: the market's
// default depth): what a REST budget in weight per minute divides into
// snapshots per minute.
func SnapshotWeight(market string, limit int) int {
	if market == MarketUSDM {
		return usdmDepthWeight(cmp.Or(limit, DefaultUSDMBookDepth))
	}
	return depthWeight(cmp.Or(limit, DefaultBookDepth))
}
