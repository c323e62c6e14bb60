package bybit

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adapter"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
	"github.com/qldata/mdbridge/resilience"
)

// Exchange ids.
const (
	NameSpot   = "bybit"
	NameLinear = "bybit-linear"
)

// Per-request subscribe limits (Bybit spot; applied to linear as well).
const (
	MaxArgsPerRequest = 10
	MaxArgsChars      = 21000
	// MaxTopicsPerConn keeps a connection's args under MaxArgsChars for any
	// valid symbol: 250 args of at most len("orderbook.1000.")+64 = 79
	// characters is 19,750.
	MaxTopicsPerConn = 250
)

// Adapter is the Bybit v5 public bridge.Exchange for one market.
type Adapter struct {
	cfg  Config
	core adapter.Core
	// arenas own the strings of trades decoded in place.
	arenas jscan.Arenas
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
	name := NameSpot
	if cfg.Market == MarketLinear {
		name = NameLinear
	}
	a := &Adapter{cfg: cfg}
	if err := a.core.Init(name, a.cfg.common(), cfg.Limiter, 120, a.checkResponse, logger); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return a, nil
}

// Name returns "bybit" (spot) or "bybit-linear".
func (a *Adapter) Name() string { return a.core.Name }

// Market returns "spot" or "linear".
func (a *Adapter) Market() string { return a.cfg.Market }

// Limiter returns the rate limiter the adapter's REST calls go through.
func (a *Adapter) Limiter() *resilience.RateLimitManager { return a.core.Limiter }

// TopicArg returns the Bybit topic of t: "publicTrade.BTCUSDT" or
// "orderbook.<depth>.BTCUSDT", or "" for a topic that is not exactly one
// known channel.
func (a *Adapter) TopicArg(t bridge.Topic) string {
	sym := strings.ToUpper(t.Symbol)
	switch t.Channel {
	case bridge.ChannelTrade:
		return "publicTrade." + sym
	case bridge.ChannelBook:
		return "orderbook." + strconv.Itoa(a.cfg.BookDepth) + "." + sym
	}
	return a.channelArg(sym, t.Channel)
}

// args returns the topic args of the valid topics, without duplicates,
// registering their symbols (see adapter.Core.Register).
func (a *Adapter) args(topics []bridge.Topic) []string {
	return a.core.Register(topics, a.TopicArg)
}

// URL returns <WSURL>/v5/public/<market>; topics are subscribed with
// SubscribeFrames.
func (a *Adapter) URL(topics []bridge.Topic) string {
	a.args(topics)
	return a.cfg.WSURL + "/v5/public/" + a.cfg.Market
}

// SubscribeFrames returns {"req_id":"<n>","op":"subscribe","args":[...]}
// frames of at most 10 args and 21,000 characters of args each.
func (a *Adapter) SubscribeFrames(topics []bridge.Topic, nextID func() int64) [][]byte {
	return opFrames("subscribe", a.args(topics), nextID)
}

// UnsubscribeFrames is SubscribeFrames with op "unsubscribe".
func (a *Adapter) UnsubscribeFrames(topics []bridge.Topic, nextID func() int64) [][]byte {
	return opFrames("unsubscribe", a.args(topics), nextID)
}

func opFrames(op string, args []string, nextID func() int64) [][]byte {
	var out [][]byte
	for len(args) > 0 {
		n, chars := 0, 0
		for n < len(args) && n < MaxArgsPerRequest && (n == 0 || chars+len(args[n]) <= MaxArgsChars) {
			chars += len(args[n])
			n++
		}
		b := make([]byte, 0, 48+chars+3*n)
		b = append(b, `{"req_id":"`...)
		b = strconv.AppendInt(b, nextID(), 10)
		b = append(b, `","op":"`...)
		b = append(b, op...)
		b = append(b, `","args":[`...)
		for i, s := range args[:n] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		}
		b = append(b, "]}"...)
		out = append(out, b)
		args = args[n:]
	}
	return out
}

// Heartbeat: the client sends {"req_id":"<id>","op":"ping"} every 20 s.
func (a *Adapter) Heartbeat() bridge.Heartbeat {
	return bridge.Heartbeat{ClientPing: pingFrame, Interval: 20 * time.Second}
}

func pingFrame(reqID int64) []byte {
	b := make([]byte, 0, 48)
	b = append(b, `{"req_id":"`...)
	b = strconv.AppendInt(b, reqID, 10)
	return append(b, `","op":"ping"}`...)
}

// Limits returns Bybit's rules: 10 args and 21,000 characters per
// subscribe request, MaxTopicsPerConn topics per connection, 500 new
// connections per 5 minutes, 20 connections per IP (the seed's table), no
// connection age limit, and the configured frame limit and book depth.
func (a *Adapter) Limits() bridge.Limits {
	return bridge.Limits{
		MaxTopicsPerConn:     MaxTopicsPerConn,
		MaxArgsPerRequest:    MaxArgsPerRequest,
		MaxRequestArgsChars:  MaxArgsChars,
		MaxInboundPerSecond:  0,
		MaxConnectionAge:     0,
		ConnectsPerWindow:    500,
		ConnectWindow:        5 * time.Minute,
		MaxConnectionsPerIP:  adapter.ConnectionsPerIP(a.core.Name, 20),
		MaxFrameBytes:        a.cfg.MaxFrameBytes,
		RecommendedBookDepth: a.cfg.BookDepth,
	}
}

// BookMode is bridge.BookStreamSnapshot: the stream sends a snapshot, then
// deltas; resubscribing yields a fresh snapshot.
func (a *Adapter) BookMode() bridge.BookMode { return bridge.BookStreamSnapshot }
