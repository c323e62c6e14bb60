package exsim

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// MarketConfig is one simulated market: a symbol on a venue and how fast it
// moves. The same symbol on two venues is two independent markets.
type MarketConfig struct {
	Venue  Venue  `json:"venue"`
	Symbol string `json:"symbol"` // the exchange's upper-case symbol, e.g. BTCUSDT
	// TradeRate is trades per second (0 = idle). A taker order produces one
	// to three trades at one price, so aggTrade and Bybit seq advance more
	// slowly than the trade ids.
	TradeRate float64 `json:"trade_rate"`
	// BookRate is order-book updates per second (0 = idle). Each update
	// changes one to three price levels.
	BookRate float64 `json:"book_rate"`
}

// Config configures a Server. The zero value is valid: every zero field
// takes the default named in its comment.
type Config struct {
	// Addr is the TCP listen address (default "127.0.0.1:0"). It must be a
	// loopback address unless AllowNonLoopback is set.
	Addr string
	// AllowNonLoopback permits a non-loopback Addr such as "0.0.0.0:9000"
	// (the standalone simulator inside a container). Tests never set it.
	AllowNonLoopback bool
	// Markets are the simulated markets (default DefaultMarkets()).
	Markets []MarketConfig
	// Seed makes the markets deterministic: the same seed gives the same
	// trades (ids, prices, quantities, sides) and book updates in the same
	// order. Timestamps and how events are batched into frames follow the
	// wall clock.
	Seed uint64

	// PingInterval is how often the Binance server pings (default 20s).
	PingInterval time.Duration
	// PongTimeout is how long Binance waits for the pong echoing a ping
	// before it disconnects (default 60s).
	PongTimeout time.Duration
	// MaxConnAge cuts Binance connections this long after they opened
	// (default 24h, as Binance does). Bybit has no such limit; the max_age
	// fault can impose one on any venue.
	MaxConnAge time.Duration
	// BybitIdleTimeout cuts a Bybit connection that has seen neither a
	// client ping nor any data sent for this long (default 10m).
	BybitIdleTimeout time.Duration
	// OKXIdleTimeout cuts an OKX connection that has seen neither a client
	// message ("ping", a request) nor any data sent for this long (default
	// 30s, OKX's cut).
	OKXIdleTimeout time.Duration
	// OKXKeepAlive is how long an OKX book may stay unchanged before a
	// keep-alive update (seqId == prevSeqId, empty sides) is sent (default
	// 60s).
	OKXKeepAlive time.Duration
	// OKXNoSnapshot makes OKX books subscriptions start without the
	// snapshot (the feed change OKX announced for 2026): clients bootstrap
	// from REST market/books.
	OKXNoSnapshot bool
	// InboundLimit is Binance's limit of client messages (text frames,
	// pings, pongs) per second per connection; more disconnects (default 5;
	// negative = unlimited).
	InboundLimit int
	// MaxStreams is Binance's limit of streams per connection (default 1024).
	MaxStreams int
	// USDMInboundLimit, USDMMaxStreams and USDMWeightLimit are the Binance
	// USD-M counterparts of InboundLimit, MaxStreams and BinanceWeightLimit
	// (defaults 10 messages per second, 200 streams, 2400 weight per minute).
	USDMInboundLimit int
	USDMMaxStreams   int
	USDMWeightLimit  int
	// BybitMaxArgs is Bybit spot's limit of args per subscribe request
	// (default 10; negative = unlimited). Linear has no limit.
	BybitMaxArgs int

	// BinanceWeightLimit is the REQUEST_WEIGHT limit per minute per IP
	// (default 6000, as today's exchangeInfo says; the seed's 1200 is the
	// other common value).
	BinanceWeightLimit int
	// BinanceBanAfter is how many 429 answers an IP gets in one window
	// before further requests get 418 and a ban (default 2).
	BinanceBanAfter int
	// BinanceBan is the length of a 418 IP ban (default 2m).
	BinanceBan time.Duration
	// BybitRequestLimit is Bybit's limit of REST requests per IP per
	// 5-second window (default 600); over it the answer is 403.
	BybitRequestLimit int
	// BybitBan is how long an IP stays banned after a 403 (default 10m).
	BybitBan time.Duration

	// ClockSkew is added to the server's clock: event times, trade times
	// and the time endpoints (default 0). Faults can change it at run time.
	ClockSkew time.Duration

	// SendQueue is the per-connection queue of outbound frames (default
	// 8192). A client that lets it fill up is disconnected as a slow
	// consumer, unless Backpressure is set.
	SendQueue int
	// Backpressure makes generators wait for slow clients instead of
	// disconnecting them (for throughput benchmarks).
	Backpressure bool
	// WriteTimeout bounds one socket write (default 10s); a client that
	// does not read for this long is disconnected.
	WriteTimeout time.Duration
	// TradeHistory is how many recent trades per market REST can return
	// (default 100000).
	TradeHistory int
	// BookLevels is the typical number of price levels per side of each
	// book (default 300, at least 20).
	BookLevels int
	// ShutdownGrace is the default delay between a serverShutdown event
	// and the close (default 5s).
	ShutdownGrace time.Duration
	// ClosedConns is how many closed connections' records the server keeps
	// for Conns, Delivered and Truth's PerConn (default 256; negative =
	// all). Older ones are forgotten, but the ids delivered on them stay
	// in Truth's Delivered and Undelivered.
	ClosedConns int

	// KlineSpeed makes kline time run this many times faster than the wall
	// clock from the server's start (default 1): at 60 a 1m bar closes every
	// second. Bar open and close times are on that clock.
	KlineSpeed float64
	// KlinePush is how often the open bar of every subscribed kline stream
	// is pushed (default 2s, as Binance does; closed bars are pushed when
	// they close).
	KlinePush time.Duration
	// TickerPush is how often a Bybit linear ticker moves and pushes a
	// delta of its changed fields (default 100ms); a binance-usdm mark
	// price moves and is pushed every 10 TickerPush (1 s by default); on
	// okx-swap, how often the ticker moves and pushes each of mark-price,
	// index-tickers, funding-rate and open-interest whose value changed.
	TickerPush time.Duration
	// LiquidationRate is Bybit linear, binance-usdm and okx-swap
	// liquidations per second per market (default 0.5; negative = none),
	// pushed in Bybit allLiquidation (OKX liquidation-orders) batches every
	// 500 ms; binance-usdm's forceOrder pushes only the latest of each
	// second, as the venue does.
	LiquidationRate float64

	// Faults are injected when the server starts (see Fault).
	Faults []Fault
}

// DefaultMarkets returns the markets used when Config.Markets is empty:
// BTCUSDT and ETHUSDT on Binance, BTCUSDT on Bybit spot and linear, each
// at 10 trades and 10 book updates per second.
func DefaultMarkets() []MarketConfig {
	return []MarketConfig{
		{Venue: Binance, Symbol: "BTCUSDT", TradeRate: 10, BookRate: 10},
		{Venue: Binance, Symbol: "ETHUSDT", TradeRate: 10, BookRate: 10},
		{Venue: BybitSpot, Symbol: "BTCUSDT", TradeRate: 10, BookRate: 10},
		{Venue: BybitLinear, Symbol: "BTCUSDT", TradeRate: 10, BookRate: 10},
	}
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if len(cfg.Markets) == 0 {
		cfg.Markets = DefaultMarkets()
	}
	cfg.PingInterval = cmp.Or(cfg.PingInterval, 20*time.Second)
	cfg.PongTimeout = cmp.Or(cfg.PongTimeout, 60*time.Second)
	cfg.MaxConnAge = cmp.Or(cfg.MaxConnAge, 24*time.Hour)
	cfg.BybitIdleTimeout = cmp.Or(cfg.BybitIdleTimeout, 10*time.Minute)
	cfg.OKXIdleTimeout = cmp.Or(cfg.OKXIdleTimeout, 30*time.Second)
	cfg.OKXKeepAlive = cmp.Or(cfg.OKXKeepAlive, 60*time.Second)
	cfg.BinanceBan = cmp.Or(cfg.BinanceBan, 2*time.Minute)
	cfg.BybitBan = cmp.Or(cfg.BybitBan, 10*time.Minute)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, 10*time.Second)
	cfg.ShutdownGrace = cmp.Or(cfg.ShutdownGrace, 5*time.Second)
	cfg.InboundLimit = cmp.Or(cfg.InboundLimit, 5)
	cfg.MaxStreams = cmp.Or(cfg.MaxStreams, 1024)
	cfg.USDMInboundLimit = cmp.Or(cfg.USDMInboundLimit, 10)
	cfg.USDMMaxStreams = cmp.Or(cfg.USDMMaxStreams, 200)
	cfg.USDMWeightLimit = cmp.Or(cfg.USDMWeightLimit, 2400)
	cfg.BybitMaxArgs = cmp.Or(cfg.BybitMaxArgs, 10)
	cfg.BinanceWeightLimit = cmp.Or(cfg.BinanceWeightLimit, 6000)
	cfg.BinanceBanAfter = cmp.Or(cfg.BinanceBanAfter, 2)
	cfg.BybitRequestLimit = cmp.Or(cfg.BybitRequestLimit, 600)
	cfg.SendQueue = cmp.Or(cfg.SendQueue, 8192)
	cfg.TradeHistory = cmp.Or(cfg.TradeHistory, 100000)
	cfg.BookLevels = cmp.Or(cfg.BookLevels, 300)
	cfg.ClosedConns = cmp.Or(cfg.ClosedConns, 256)
	cfg.KlineSpeed = cmp.Or(cfg.KlineSpeed, 1)
	cfg.KlinePush = cmp.Or(cfg.KlinePush, 2*time.Second)
	cfg.TickerPush = cmp.Or(cfg.TickerPush, 100*time.Millisecond)
	cfg.LiquidationRate = cmp.Or(cfg.LiquidationRate, 0.5)
	return cfg
}

// validate checks a config that went through withDefaults.
func (cfg Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if err := checkAddr(cfg.Addr, cfg.AllowNonLoopback); err != nil {
		return bad("%v", err)
	}
	seen := map[string]bool{}
	for i, m := range cfg.Markets {
		if !m.Venue.Valid() {
			return bad("market %d: unknown venue %q (want binance, bybit, bybit-linear, okx or okx-swap)", i, m.Venue)
		}
		if m.Venue.isOKX() {
			if !validOKXInstID(m.Venue, m.Symbol) {
				return bad("market %d: %s instrument %q must be upper-case letters, digits and '-' (e.g. BTC-USDT; okx-swap ids end in -SWAP)", i, m.Venue, m.Symbol)
			}
		} else if !validSymbol(m.Symbol) && (m.Venue != BinanceUSDM || !validUSDMQuarterly(m.Symbol)) {
			return bad("market %d: symbol %q must be 1-20 upper-case letters or digits (binance-usdm quarterlies: BTCUSDT_261225)", i, m.Symbol)
		}
		key := string(m.Venue) + "/" + m.Symbol
		if seen[key] {
			return bad("market %d: %s %s configured twice", i, m.Venue, m.Symbol)
		}
		seen[key] = true
		if m.TradeRate < 0 || m.BookRate < 0 || m.TradeRate > maxRate || m.BookRate > maxRate {
			return bad("market %s %s: rates must be within 0..%g per second", m.Venue, m.Symbol, float64(maxRate))
		}
	}
	if pair, ok := checkQuarterlies(cfg.Markets); !ok {
		return bad("binance-usdm lists at most two quarterlies of %s (CURRENT_QUARTER, NEXT_QUARTER)", pair)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PingInterval", cfg.PingInterval}, {"PongTimeout", cfg.PongTimeout},
		{"MaxConnAge", cfg.MaxConnAge}, {"BybitIdleTimeout", cfg.BybitIdleTimeout},
		{"OKXIdleTimeout", cfg.OKXIdleTimeout}, {"OKXKeepAlive", cfg.OKXKeepAlive},
		{"BinanceBan", cfg.BinanceBan}, {"BybitBan", cfg.BybitBan},
		{"WriteTimeout", cfg.WriteTimeout}, {"ShutdownGrace", cfg.ShutdownGrace},
	} {
		if d.v < 0 {
			return bad("%s must not be negative", d.name)
		}
	}
	if cfg.MaxStreams < 0 || cfg.BinanceWeightLimit < 0 || cfg.BinanceBanAfter < 0 ||
		cfg.BybitRequestLimit < 0 || cfg.SendQueue < 0 || cfg.TradeHistory < 0 {
		return bad("limits and sizes must not be negative")
	}
	if cfg.KlineSpeed < 0 || cfg.KlineSpeed > 1e6 || cfg.KlinePush < 0 || cfg.TickerPush < 0 {
		return bad("KlineSpeed must be within 0..1e6, KlinePush and TickerPush not negative")
	}
	if cfg.BookLevels < 20 || cfg.BookLevels > 5000 {
		return bad("BookLevels %d must be within 20..5000", cfg.BookLevels)
	}
	for i, f := range cfg.Faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("%w: fault %d: %w", ErrConfig, i, err)
		}
	}
	return nil
}

// maxRate bounds a market's configured rates (events per second).
const maxRate = 10_000_000

func validSymbol(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validOKXInstID: 3-32 characters of [A-Z0-9_-] with a '-'; okx-swap ids
// end in "-SWAP" or, expiry futures, "-YYMMDD" (BTC-USD-261225); okx
// (SPOT) ids do not.
func validOKXInstID(v Venue, s string) bool {
	if len(s) < 3 || len(s) > 32 || !strings.Contains(s, "-") || okxVenueOf(s) != v {
		return false
	}
	if pair, _, ok := splitDelivery(s, '-'); ok && strings.Count(pair, "-") != 1 {
		return false // an expiry future is BASE-QUOTE-YYMMDD
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
