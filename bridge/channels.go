package bridge

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// Channels. A subscription may combine them with |. Kline channels are
// built with KlineChannel (closed bars) and KlineOpenChannel (closed bars
// plus updates of the open bar).
const (
	ChannelTrade       Channel = 1 << iota // trades
	ChannelBook                            // order book: snapshot + deltas
	ChannelBBO                             // best bid and offer
	ChannelTicker                          // derivatives ticker: mark, index, funding, open interest
	ChannelLiquidation                     // liquidations
)

// Bit layout of the kline channels: bit klineBase+i is the closed bars of
// interval i+1, bit klineOpenBase+i its open-bar updates.
const (
	klineBase     = 8
	klineOpenBase = 32
	klineMask     = Channel(1<<numIntervals-1) << klineBase
	klineOpenMask = Channel(1<<numIntervals-1) << klineOpenBase

	// basicChannels are the channels that are not klines.
	basicChannels = ChannelTrade | ChannelBook | ChannelBBO | ChannelTicker | ChannelLiquidation
	allChannels   = basicChannels | klineMask | klineOpenMask
)

var basicNames = [...]struct {
	c    Channel
	name string
}{
	{ChannelTrade, "trade"}, {ChannelBook, "book"}, {ChannelBBO, "bbo"},
	{ChannelTicker, "ticker"}, {ChannelLiquidation, "liquidation"},
}

// KlineChannel returns the channel of iv's closed bars.
func KlineChannel(iv Interval) Channel {
	if !iv.Valid() {
		return 0
	}
	return 1 << (klineBase + uint(iv) - 1)
}

// KlineOpenChannel returns the channel of iv's closed bars plus the updates
// of its open bar (spec token "kline.<iv>+open").
func KlineOpenChannel(iv Interval) Channel {
	if !iv.Valid() {
		return 0
	}
	return KlineChannel(iv) | 1<<(klineOpenBase+uint(iv)-1)
}

// Interval returns the interval of a single kline channel bit (closed or
// open-bar), or 0.
func (c Channel) Interval() Interval {
	switch {
	case c&klineMask != 0 && bits.OnesCount64(uint64(c)) == 1:
		return Interval(bits.TrailingZeros64(uint64(c)) - klineBase + 1)
	case c&klineOpenMask != 0 && bits.OnesCount64(uint64(c)) == 1:
		return Interval(bits.TrailingZeros64(uint64(c)) - klineOpenBase + 1)
	}
	return 0
}

// Intervals returns the kline intervals of c, ascending.
func (c Channel) Intervals() []Interval {
	var out []Interval
	for m := uint64(c&klineMask) >> klineBase; m != 0; m &= m - 1 {
		out = append(out, Interval(bits.TrailingZeros64(m)+1))
	}
	return out
}

// OpenBars reports whether c asks for the open-bar updates of iv.
func (c Channel) OpenBars(iv Interval) bool {
	return iv.Valid() && c&(1<<(klineOpenBase+uint(iv)-1)) != 0
}

// topicBits returns the single bits of c that are exchange subscriptions,
// in a fixed order: the basic channels, then one per kline interval
// (open-bar bits are a filter, not a subscription).
func (c Channel) topicBits() []Channel {
	var out []Channel
	for _, b := range basicNames {
		if c&b.c != 0 {
			out = append(out, b.c)
		}
	}
	for _, iv := range c.Intervals() {
		out = append(out, KlineChannel(iv))
	}
	return out
}

// String returns the channel names joined with ",", as the MDB_SUBSCRIBE
// spec writes them: "trade,book,bbo,kline.1m,kline.1h+open". A single
// channel returns its name alone; the empty set "none".
func (c Channel) String() string {
	var parts []string
	for _, b := range basicNames {
		if c&b.c != 0 {
			parts = append(parts, b.name)
		}
	}
	for _, iv := range c.Intervals() {
		if c.OpenBars(iv) {
			parts = append(parts, "kline."+iv.String()+"+open")
		} else {
			parts = append(parts, "kline."+iv.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseChannel parses one channel token: "trade", "book", "bbo", "ticker",
// "liquidation", "kline.<interval>" or "kline.<interval>+open". The error
// wraps ErrConfig and lists the allowed tokens.
func ParseChannel(tok string) (Channel, error) {
	for _, b := range basicNames {
		if tok == b.name {
			return b.c, nil
		}
	}
	if rest, ok := strings.CutPrefix(tok, "kline."); ok {
		open := false
		if r, ok := strings.CutSuffix(rest, "+open"); ok {
			rest, open = r, true
		}
		iv, err := ParseInterval(rest)
		if err != nil {
			return 0, err
		}
		if open {
			return KlineOpenChannel(iv), nil
		}
		return KlineChannel(iv), nil
	}
	return 0, fmt.Errorf("%w: unknown channel %q (allowed: trade, book, bbo, ticker, liquidation, kline.<interval>[+open])", ErrConfig, tok)
}

// Interval is a kline interval, normalized across venues. The zero value is
// no interval.
type Interval uint8

// Intervals, named as Binance names them (the normalized names).
const (
	Interval1s Interval = iota + 1
	Interval1m
	Interval3m
	Interval5m
	Interval15m
	Interval30m
	Interval1h
	Interval2h
	Interval4h
	Interval6h
	Interval8h
	Interval12h
	Interval1d
	Interval3d
	Interval1w
	Interval1M
	numIntervals = iota
)

var intervalNames = [...]string{"", "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}

var intervalDurations = [...]time.Duration{0, time.Second, time.Minute, 3 * time.Minute, 5 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour, 8 * time.Hour,
	12 * time.Hour, 24 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour, 0}

// Valid reports whether iv is one of the defined intervals.
func (iv Interval) Valid() bool { return iv >= Interval1s && iv <= Interval1M }

// String returns the normalized name ("1m", "1h", "1d", "1w", "1M"), or ""
// for an invalid interval.
func (iv Interval) String() string {
	if iv.Valid() {
		return intervalNames[iv]
	}
	return ""
}

// Duration returns the fixed length of iv; 0 for 1M (calendar months) and
// invalid intervals.
func (iv Interval) Duration() time.Duration {
	if iv.Valid() {
		return intervalDurations[iv]
	}
	return 0
}

// Next returns the open time (Unix ns) of the bar after the one opening at
// openNS.
func (iv Interval) Next(openNS int64) int64 {
	if iv == Interval1M {
		return time.Unix(0, openNS).UTC().AddDate(0, 1, 0).UnixNano()
	}
	return openNS + int64(iv.Duration())
}

// ParseInterval parses a normalized interval name ("1m", "1h", "1M"...).
// Venue spellings are accepted too: Bybit's minute counts ("1", "60",
// "240"), "D", "W" and "M". The error wraps ErrConfig and lists the names.
func ParseInterval(s string) (Interval, error) {
	for i := 1; i < len(intervalNames); i++ {
		if s == intervalNames[i] {
			return Interval(i), nil
		}
	}
	switch s {
	case "1":
		return Interval1m, nil
	case "3":
		return Interval3m, nil
	case "5":
		return Interval5m, nil
	case "15":
		return Interval15m, nil
	case "30":
		return Interval30m, nil
	case "60":
		return Interval1h, nil
	case "120":
		return Interval2h, nil
	case "240":
		return Interval4h, nil
	case "360":
		return Interval6h, nil
	case "720":
		return Interval12h, nil
	case "D":
		return Interval1d, nil
	case "W":
		return Interval1w, nil
	case "M":
		return Interval1M, nil
	}
	return 0, fmt.Errorf("%w: unknown kline interval %q (allowed: %s)", ErrConfig, s, strings.Join(intervalNames[1:], ", "))
}

// ChannelProvider is implemented by adapters that carry more than trades
// and books: Channels returns every channel the market supports (kline
// intervals as KlineOpenChannel bits). An adapter without it supports
// ChannelTrade|ChannelBook.
type ChannelProvider interface {
	Channels() Channel
}

// KlineFetcher is implemented by adapters that can fill closed bars missed
// while disconnected: Klines returns the closed bars of symbol and iv whose
// open time (Unix ns) is in [fromNS, toNS], ascending, at most limit.
type KlineFetcher interface {
	Klines(ctx context.Context, symbol string, iv Interval, fromNS, toNS int64, limit int) ([]Event, error)
}

// supportedChannels returns what ex supports.
func supportedChannels(ex Exchange) Channel {
	if p, ok := ex.(ChannelProvider); ok {
		return p.Channels()
	}
	return ChannelTrade | ChannelBook
}

// checkChannels validates a requested channel set against what ex
// supports; the error names the market and the allowed channels.
func checkChannels(ex Exchange, c Channel) error {
	if c&^allChannels != 0 {
		return fmt.Errorf("%w: unknown channel bits %#x", ErrConfig, uint64(c&^allChannels))
	}
	for m := uint64(c & klineOpenMask >> (klineOpenBase - klineBase)); m != 0; m &= m - 1 {
		if c&Channel(m&-m) == 0 {
			return fmt.Errorf("%w: open-bar updates without the kline channel", ErrConfig)
		}
	}
	sup := supportedChannels(ex)
	if bad := c &^ sup; bad != 0 {
		return fmt.Errorf("%w: market %s does not have channel %s (allowed: %s)", ErrConfig, ex.Name(), bad.String(), describeChannels(sup))
	}
	return nil
}

// describeChannels lists a supported set compactly: basic channels, then
// "kline.<iv>[+open]" with the interval list.
func describeChannels(c Channel) string {
	var parts []string
	for _, b := range basicNames {
		if c&b.c != 0 {
			parts = append(parts, b.name)
		}
	}
	if ivs := c.Intervals(); len(ivs) > 0 {
		names := make([]string, len(ivs))
		for i, iv := range ivs {
			names[i] = iv.String()
		}
		parts = append(parts, "kline.<"+strings.Join(names, "|")+">[+open]")
	}
	return strings.Join(parts, ", ")
}

// DescribeChannels lists the channels ex supports, as error messages and
// the CLI show them.
func DescribeChannels(ex Exchange) string { return describeChannels(supportedChannels(ex)) }

// KlineChannels returns the channel set of every interval in ivs with
// open-bar updates: what an adapter's Channels reports for its intervals.
func KlineChannels(ivs ...Interval) Channel {
	var c Channel
	for _, iv := range ivs {
		c |= KlineOpenChannel(iv)
	}
	return c
}
