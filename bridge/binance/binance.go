package binance

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adapter"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
	"github.com/qldata/mdbridge/resilience"
)

// Name is the exchange id of Binance Spot in subjects and msg IDs.
const Name = "binance"

// subscribeChunk is the number of streams per SUBSCRIBE frame. Binance
// documents no per-request limit; 200 streams keep a frame near 5 KiB.
const subscribeChunk = 200

// Adapter is the Binance Spot bridge.Exchange.
type Adapter struct {
	cfg  Config
	core adapter.Core
	usdm bool // Market "usdm" (see usdm.go)
	// arenas own the strings of frames decoded in place (fastTrade).
	arenas jscan.Arenas

	// historicalRefused is set once /api/v3/historicalTrades has been
	// refused (API key required); Trades then uses /api/v3/trades.
	historicalRefused atomic.Bool
}

var _ bridge.Exchange = (*Adapter)(nil)

// New validates cfg, applies defaults and returns an Adapter that logs to
// logger (rate-limit warnings, malformed responses; nil discards). Errors
// wrap ErrConfig.
func New(cfg Config, logger *slog.Logger) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, usdm: cfg.Market == MarketUSDM}
	name, rpm := Name, 1200
	if a.usdm {
		name, rpm = NameUSDM, cfg.WeightPerMinute
	}
	if err := a.core.Init(name, a.cfg.common(), cfg.Limiter, rpm, a.checkResponse, logger); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return a, nil
}

// Name returns "binance" (Spot) or "binance-usdm".
func (a *Adapter) Name() string { return a.core.Name }

// Limiter returns the rate limiter the adapter's REST calls go through.
func (a *Adapter) Limiter() *resilience.RateLimitManager { return a.core.Limiter }

// StreamName returns the Binance stream name of a topic:
// "btcusdt@trade" or "btcusdt@depth@100ms" ("btcusdt@depth" at 1000ms),
// "btcusdt@bookTicker", "btcusdt@kline_1m", or "" for a topic that is not exactly one known channel.
func (a *Adapter) StreamName(t bridge.Topic) string {
	if a.usdm {
		return a.usdmStreamName(t)
	}
	sym := strings.ToLower(t.Symbol)
	switch t.Channel {
	case bridge.ChannelTrade:
		return sym + "@trade"
	case bridge.ChannelBook:
		if a.cfg.DepthSpeed == "1000ms" {
			return sym + "@depth"
		}
		return sym + "@depth@100ms"
	}
	return channelStream(sym, t.Channel)
}

// streams returns the stream names of the valid topics, without
// duplicates, registering their symbols for interning (see
// adapter.Core.Register).
func (a *Adapter) streams(topics []bridge.Topic) []string {
	return a.core.Register(topics, a.StreamName)
}

func (a *Adapter) urlPrefix() string {
	if a.usdm {
		return a.cfg.WSURL + "/" + routeMarket + "/stream?streams=" // the longest route: URLs of both fit
	}
	p := a.cfg.WSURL + "/stream"
	if a.cfg.MicrosecondTimestamps {
		return p + "?timeUnit=MICROSECOND&streams="
	}
	return p + "?streams="
}

// split divides stream names into those carried in the URL (in order,
// while the URL stays within MaxURLBytes) and the rest.
func (a *Adapter) split(names []string) (inURL, rest []string) {
	n := len(a.urlPrefix())
	for i, s := range names {
		add := len(s)
		if i > 0 {
			add++ // '/'
		}
		if n+add > a.cfg.MaxURLBytes {
			return names[:i], names[i:]
		}
		n += add
	}
	return names, nil
}

// URL returns the combined-stream URL carrying topics:
// <WSURL>/stream?streams=btcusdt@trade/btcusdt@depth@100ms (with
// timeUnit=MICROSECOND first when configured). Topics beyond MaxURLBytes
// are left to SubscribeFrames. With no topics it returns <WSURL>/stream.
func (a *Adapter) URL(topics []bridge.Topic) string {
	if a.usdm {
		return a.usdmURL(topics)
	}
	inURL, _ := a.split(a.streams(topics))
	if len(inURL) == 0 {
		if a.cfg.MicrosecondTimestamps {
			return a.cfg.WSURL + "/stream?timeUnit=MICROSECOND"
		}
		return a.cfg.WSURL + "/stream"
	}
	return a.urlPrefix() + strings.Join(inURL, "/")
}

// SubscribeFrames returns SUBSCRIBE frames for the topics URL(topics) could
// not carry (nil when the URL carries them all, the usual case), at most
// 200 streams per frame: {"method":"SUBSCRIBE","params":[...],"id":N}.
// Call it with the same topics as URL.
func (a *Adapter) SubscribeFrames(topics []bridge.Topic, nextID func() int64) [][]byte {
	_, rest := a.split(a.streams(topics))
	return controlFrames("SUBSCRIBE", rest, nextID)
}

// UnsubscribeFrames returns UNSUBSCRIBE frames for all topics, at most 200
// streams per frame.
func (a *Adapter) UnsubscribeFrames(topics []bridge.Topic, nextID func() int64) [][]byte {
	return controlFrames("UNSUBSCRIBE", a.streams(topics), nextID)
}

func controlFrames(method string, names []string, nextID func() int64) [][]byte {
	var out [][]byte
	for len(names) > 0 {
		n := min(len(names), subscribeChunk)
		b := make([]byte, 0, 48+n*24)
		b = append(b, `{"method":"`...)
		b = append(b, method...)
		b = append(b, `","params":[`...)
		for i, s := range names[:n] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		}
		b = append(b, `],"id":`...)
		b = strconv.AppendInt(b, nextID(), 10)
		b = append(b, '}')
		out = append(out, b)
		names = names[n:]
	}
	return out
}

// Heartbeat: the server pings every 20 s and the client answers with
// WebSocket pongs (the runner's job); no application-level ping.
func (a *Adapter) Heartbeat() bridge.Heartbeat {
	if a.usdm {
		return bridge.Heartbeat{ClientPing: nil, Interval: usdmPingInterval}
	}
	return bridge.Heartbeat{ClientPing: nil, Interval: 20 * time.Second}
}

// Limits returns Binance Spot's per-connection rules: 1024 streams, 5
// inbound messages per second, 24 h connection age, 300 connection attempts
// per 5 minutes, 5 connections per IP (the seed's table), and the configured
// frame limit and book depth.
func (a *Adapter) Limits() bridge.Limits {
	if a.usdm {
		return a.usdmLimits()
	}
	return bridge.Limits{
		MaxTopicsPerConn:     1024,
		MaxArgsPerRequest:    0,
		MaxRequestArgsChars:  0,
		MaxInboundPerSecond:  5,
		MaxConnectionAge:     24 * time.Hour,
		ConnectsPerWindow:    300,
		ConnectWindow:        5 * time.Minute,
		MaxConnectionsPerIP:  adapter.ConnectionsPerIP(Name, 5),
		MaxFrameBytes:        a.cfg.MaxFrameBytes,
		RecommendedBookDepth: a.cfg.BookDepth,
	}
}

// BookMode is bridge.BookRESTSnapshot: diffs on the stream, the book starts
// from a REST snapshot (USD-M deltas chain by pu: Event.PrevID).
func (a *Adapter) BookMode() bridge.BookMode { return bridge.BookRESTSnapshot }
