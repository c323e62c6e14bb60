package okx

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

// Limits of OKX's public WebSocket (EXCHANGES-MORE.md, 4.2-4.3).
const (
	// MaxTopicsPerConn: OKX advises fewer than 30 channels of 400-level
	// books per connection; trades count alike.
	MaxTopicsPerConn = 30
	// MaxArgsChars bounds the args of one request (OKX: 64 KB); one request
	// carries a connection's topics (30 args of at most ~110 bytes), so it
	// is never reached by the planner's own shards.
	MaxArgsChars = 64 << 10
	// OpsPerHour is OKX's budget of subscribe/unsubscribe/login requests per
	// connection per hour.
	OpsPerHour = 480
	// ConnectsPerSecond is OKX's new-connection limit per IP.
	ConnectsPerSecond = 3
	// PingInterval is the idle time after which the client sends "ping"
	// (OKX cuts a connection idle for 30 s).
	PingInterval = 20 * time.Second
)

// REST budget: one limiter for all of OKX's public endpoints (they limit
// per IP and endpoint): 20 weight per second, bursts of 40; each endpoint's
// weight makes its own limit hold when it is used alone (books 40 / 2 s,
// history-trades 20 / 2 s, public/time 10 / 2 s).
const (
	RequestsPerMinute = 1200
	RequestBurst      = 40
	weightBooks       = 1
	weightTrades      = 2
	weightTime        = 4
)

// Channels.
const (
	chanBooks     = "books"
	chanTrades    = "trades"
	chanTradesAll = "trades-all"
)

// Adapter is the OKX v5 public bridge.Exchange for one market.
type Adapter struct {
	cfg    Config
	core   adapter.Core
	reg    chanRegistry
	arenas jscan.Arenas // owns the strings of fast-path trades (fastTrades)
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
	if cfg.Market == MarketSwap {
		name = NameSwap
	}
	lim := cfg.Limiter
	if lim == nil {
		var err error
		if lim, err = NewLimiter(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	a := &Adapter{cfg: cfg}
	if err := a.core.Init(name, a.cfg.common(), lim, RequestsPerMinute, a.checkResponse, logger); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return a, nil
}

// NewLimiter returns a REST limiter with OKX's public budget, to share
// between the okx and okx-swap adapters (OKX limits per IP).
func NewLimiter() (*resilience.RateLimitManager, error) {
	return resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: RequestsPerMinute, Burst: RequestBurst})
}

// Name returns "okx" (SPOT) or "okx-swap".
func (a *Adapter) Name() string { return a.core.Name }

// Market returns "SPOT" or "SWAP".
func (a *Adapter) Market() string { return a.cfg.Market }

// Limiter returns the REST limiter.
func (a *Adapter) Limiter() *resilience.RateLimitManager { return a.core.Limiter }

// business reports whether a connection carrying topics uses the /business
// endpoint: it carries trades and klines only (trades-all and candles live
// there; Route keeps klines off the connections of the other channels).
func business(topics []bridge.Topic) bool {
	if len(topics) == 0 {
		return false
	}
	for _, t := range topics {
		if t.Channel != bridge.ChannelTrade && t.Channel.Interval() == 0 {
			return false
		}
	}
	return true
}

// arg returns the subscription arg of t on the public or business
// endpoint, or "" for a topic that is not exactly one known channel.
func (a *Adapter) arg(t bridge.Topic, biz bool) string {
	var ch string
	switch t.Channel {
	case bridge.ChannelTrade:
		ch = chanTrades
		if biz {
			ch = chanTradesAll
		}
	case bridge.ChannelBook:
		ch = chanBooks
	default:
		return a.channelArg(t)
	}
	return `{"channel":"` + ch + `","instId":"` + strings.ToUpper(t.Symbol) + `"}`
}

func (a *Adapter) args(topics []bridge.Topic) []string {
	biz := business(topics)
	return a.core.Register(topics, func(t bridge.Topic) string { return a.arg(t, biz) })
}

// URL returns <WSURL>/ws/v5/business for a connection of trades and
// klines only, <WSURL>/ws/v5/public otherwise.
func (a *Adapter) URL(topics []bridge.Topic) string {
	a.args(topics)
	if business(topics) {
		return a.cfg.WSURL + "/ws/v5/business"
	}
	return a.cfg.WSURL + "/ws/v5/public"
}

// SubscribeFrames returns {"id":"<n>","op":"subscribe","args":[...]}
// frames, one per instrument (its trades and books args together): OKX
// refuses a request as a whole when an arg names an unknown instrument, so
// a bad symbol must not take the others down with it. A connection of
// MaxTopicsPerConn topics spends at most 30 of its OpsPerHour subscribing.
func (a *Adapter) SubscribeFrames(topics []bridge.Topic, nextID func() int64) [][]byte {
	return opFrames("subscribe", a.args(topics), nextID)
}

// UnsubscribeFrames is SubscribeFrames with op "unsubscribe", except for
// liquidation topics: their one liquidation-orders subscription (instType
// SWAP) serves every swap of the connection, so it stays (the decoder
// filters by instrument).
func (a *Adapter) UnsubscribeFrames(topics []bridge.Topic, nextID func() int64) [][]byte {
	keep := make([]bridge.Topic, 0, len(topics))
	for _, t := range topics {
		if t.Channel != bridge.ChannelLiquidation {
			keep = append(keep, t)
		}
	}
	return opFrames("unsubscribe", a.args(keep), nextID)
}

func opFrames(op string, args []string, nextID func() int64) [][]byte {
	var out [][]byte
	for len(args) > 0 {
		n, chars := 0, 0
		for n < len(args) && (n == 0 || chars+len(args[n])+1 <= MaxArgsChars && instOf(args[n]) == instOf(args[0])) {
			chars += len(args[n]) + 1
			n++
		}
		b := make([]byte, 0, 48+chars)
		b = append(b, `{"id":"`...)
		b = strconv.AppendInt(b, nextID(), 10)
		b = append(b, `","op":"`...)
		b = append(b, op...)
		b = append(b, `","args":[`...)
		for i, s := range args[:n] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, s...)
		}
		b = append(b, "]}"...)
		out = append(out, b)
		args = args[n:]
	}
	return out
}

var pingText = []byte("ping")

// Heartbeat: the client sends the text "ping" every PingInterval; OKX
// answers the text "pong".
func (a *Adapter) Heartbeat() bridge.Heartbeat {
	return bridge.Heartbeat{ClientPing: func(int64) []byte { return pingText }, Interval: PingInterval}
}

// Limits returns OKX's rules: MaxTopicsPerConn topics per connection, 3 new
// connections per second per IP, OpsPerHour subscribe/unsubscribe requests
// per connection and hour, no connection age limit.
func (a *Adapter) Limits() bridge.Limits {
	return bridge.Limits{
		MaxTopicsPerConn:     MaxTopicsPerConn,
		ConnectsPerWindow:    ConnectsPerSecond,
		ConnectWindow:        time.Second,
		MaxOpsPerHour:        OpsPerHour,
		MaxFrameBytes:        a.cfg.MaxFrameBytes,
		RecommendedBookDepth: 400,
	}
}

// BookMode is bridge.BookStreamChained: `books` sends a snapshot, then
// deltas chained by prevSeqId.
func (a *Adapter) BookMode() bridge.BookMode { return bridge.BookStreamChained }

// instOf returns the instId part of an arg.
func instOf(arg string) string {
	_, inst, _ := strings.Cut(arg, `"instId":"`)
	inst, _, _ = strings.Cut(inst, `"`)
	return inst
}
