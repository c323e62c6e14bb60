package binance

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adapter"
)

// Binance USD-M futures (Config.Market "usdm"), EXCHANGES-MORE.md section 2.
//
// The futures WebSocket is split into routes (2026): book streams on
// <WSURL>/public, trades and everything else on <WSURL>/market; a
// connection on the wrong route is acknowledged but receives nothing. The
// adapter is a bridge.Router, so the runner opens the aggTrade streams on
// /market connections and the depth streams on /public ones.
//
// Trades come from <s>@aggTrade (the official futures trade feed; raw
// @trade is undocumented): the event id is the aggregate id "a", consecutive
// per symbol, backfilled from /fapi/v1/aggTrades?fromId. Books come from
// <s>@depth@100ms and /fapi/v1/depth; futures update ids are not
// contiguous, so every delta carries pu (Event.PrevID) and chains by it.

// NameUSDM is the exchange id of Binance USD-M futures in subjects and msg IDs.
const NameUSDM = "binance-usdm"

// USD-M defaults.
const (
	DefaultUSDMWSURL           = "wss://fstream.binance.com"
	DefaultUSDMRESTURL         = "https://fapi.binance.com"
	DefaultUSDMBookDepth       = 1000 // /fapi/v1/depth limit: weight 20
	DefaultUSDMWeightPerMinute = 2400 // REQUEST_WEIGHT per minute per IP
	// DefaultUSDMOpenInterestEvery is the default Config.OpenInterestEvery.
	DefaultUSDMOpenInterestEvery = time.Minute
	WeightUSDMOpenInterest       = 1
	WeightUSDMAggTrades          = 20
	MaxUSDMAggTradesLimit        = 1000
)

// Routes of the futures WebSocket.
const (
	routePublic = "public" // depth, bookTicker
	routeMarket = "market" // aggTrade, markPrice, kline, forceOrder, ...
)

// Futures connection rules (EXCHANGES-MORE.md 2.2).
const (
	usdmPingInterval   = 3 * time.Minute // the server pings every 3 min, disconnects after 10 min without a pong
	usdmInboundPerSec  = 10              // incoming messages per connection (pings, pongs, control)
	usdmStreamsPerConn = 200             // the stricter of the two official figures (200 vs 1024)
)

func (c *Config) setUSDMDefaults() {
	c.common().SetDefaults(adapter.Defaults{WSURL: DefaultUSDMWSURL, RESTURL: DefaultUSDMRESTURL,
		MaxFrameBytes: DefaultMaxFrameBytes, MaxBodyBytes: DefaultMaxBodyBytes})
	c.BookDepth = cmp.Or(c.BookDepth, DefaultUSDMBookDepth)
	c.DepthSpeed = cmp.Or(c.DepthSpeed, DefaultDepthSpeed)
	c.MaxURLBytes = cmp.Or(c.MaxURLBytes, DefaultMaxURLBytes)
	c.WeightPerMinute = cmp.Or(c.WeightPerMinute, DefaultUSDMWeightPerMinute)
	c.OpenInterestEvery = cmp.Or(c.OpenInterestEvery, DefaultUSDMOpenInterestEvery)
}

func (c *Config) validateUSDM() error {
	switch c.BookDepth {
	case 5, 10, 20, 50, 100, 500, 1000:
	default:
		return fmt.Errorf("%w: usdm: BookDepth %d: want 5, 10, 20, 50, 100, 500 or 1000", ErrConfig, c.BookDepth)
	}
	switch c.DepthSpeed {
	case "100ms", "250ms", "500ms":
	default:
		return fmt.Errorf("%w: usdm: DepthSpeed %q: want \"100ms\", \"250ms\" or \"500ms\"", ErrConfig, c.DepthSpeed)
	}
	if c.MicrosecondTimestamps {
		return fmt.Errorf("%w: usdm: MicrosecondTimestamps is a Spot option", ErrConfig)
	}
	if c.MaxURLBytes < 256 {
		return fmt.Errorf("%w: MaxURLBytes %d below 256", ErrConfig, c.MaxURLBytes)
	}
	if c.WeightPerMinute < 1 {
		return fmt.Errorf("%w: usdm: WeightPerMinute %d below 1", ErrConfig, c.WeightPerMinute)
	}
	return nil
}

// usdmDepthWeight is the request weight of GET /fapi/v1/depth for limit.
func usdmDepthWeight(limit int) int {
	switch {
	case limit <= 50:
		return 2
	case limit <= 100:
		return 5
	case limit <= 500:
		return 10
	default:
		return 20
	}
}

// usdmStreamName: "btcusdt@aggTrade", "btcusdt@depth@100ms" ("btcusdt@depth"
// at 250ms, the stream's default speed), "btcusdt@bookTicker",
// "btcusdt@kline_1m", "btcusdt@markPrice@1s", "btcusdt@forceOrder".
func (a *Adapter) usdmStreamName(t bridge.Topic) string {
	sym := strings.ToLower(t.Symbol)
	switch t.Channel {
	case bridge.ChannelTrade:
		return sym + "@aggTrade"
	case bridge.ChannelBook:
		if a.cfg.DepthSpeed == "250ms" {
			return sym + "@depth"
		}
		return sym + "@depth@" + a.cfg.DepthSpeed
	}
	return usdmChannelStream(sym, t.Channel)
}

// Route is the bridge.Router of the adapter: for USD-M, "public" for book
// and bbo topics (@depth, @bookTicker) and "market" for the rest (trades,
// klines, ticker, liquidations); "" for Spot (one route).
func (a *Adapter) Route(t bridge.Topic) string {
	if !a.usdm {
		return ""
	}
	if t.Channel == bridge.ChannelBook || t.Channel == bridge.ChannelBBO {
		return routePublic
	}
	return routeMarket
}

var _ bridge.Router = (*Adapter)(nil)

// usdmURL is <WSURL>/<route>/stream?streams=a/b/c for topics of one route
// (the route of the first topic; the runner never mixes them).
func (a *Adapter) usdmURL(topics []bridge.Topic) string {
	route := routePublic
	if len(topics) > 0 {
		route = a.Route(topics[0])
	}
	base := a.cfg.WSURL + "/" + route + "/stream"
	inURL, _ := a.split(a.streams(topics))
	if len(inURL) == 0 {
		return base
	}
	return base + "?streams=" + strings.Join(inURL, "/")
}

// usdmLimits: 200 streams, 10 inbound messages per second, 24 h connection
// age; the connection-attempt rate is not documented for futures, Spot's
// 300 per 5 minutes is used.
func (a *Adapter) usdmLimits() bridge.Limits {
	return bridge.Limits{
		MaxTopicsPerConn:     usdmStreamsPerConn,
		MaxInboundPerSecond:  usdmInboundPerSec,
		MaxConnectionAge:     24 * time.Hour,
		ConnectsPerWindow:    300,
		ConnectWindow:        5 * time.Minute,
		MaxConnectionsPerIP:  adapter.ConnectionsPerIP(NameUSDM, 10),
		MaxFrameBytes:        a.cfg.MaxFrameBytes,
		RecommendedBookDepth: a.cfg.BookDepth,
	}
}
