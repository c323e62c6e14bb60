package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// Topic kinds of the channels beyond trade and book.
const (
	topicTicker = iota + 100
	topicKline
	topicLiquidation
)

// MaxKlinesLimit is the most bars one /v5/market/kline call returns.
const MaxKlinesLimit = 1000

var (
	_ bridge.ChannelProvider = (*Adapter)(nil)
	_ bridge.KlineFetcher    = (*Adapter)(nil)
)

// bybitIntervals maps normalized intervals to Bybit's names.
var bybitIntervals = map[bridge.Interval]string{
	bridge.Interval1m: "1", bridge.Interval3m: "3", bridge.Interval5m: "5", bridge.Interval15m: "15",
	bridge.Interval30m: "30", bridge.Interval1h: "60", bridge.Interval2h: "120", bridge.Interval4h: "240",
	bridge.Interval6h: "360", bridge.Interval12h: "720", bridge.Interval1d: "D", bridge.Interval1w: "W",
	bridge.Interval1M: "M",
}

// IntervalName returns Bybit's name of iv ("1", "60", "D"), or "".
func IntervalName(iv bridge.Interval) string { return bybitIntervals[iv] }

// Channels returns what the market carries: trade, book, bbo
// (orderbook.1, unless the book itself uses depth 1) and klines of
// Bybit's intervals; linear adds ticker (tickers deltas merged into full
// state) and liquidation (allLiquidation).
func (a *Adapter) Channels() bridge.Channel {
	c := bridge.ChannelTrade | bridge.ChannelBook
	if a.cfg.BookDepth != 1 {
		c |= bridge.ChannelBBO
	}
	for iv := range bybitIntervals {
		c |= bridge.KlineChannels(iv)
	}
	if a.cfg.Market == MarketLinear {
		c |= bridge.ChannelTicker | bridge.ChannelLiquidation
	}
	return c
}

// channelArg returns the topic arg of a bbo, kline, ticker or liquidation
// topic, or "".
func (a *Adapter) channelArg(sym string, c bridge.Channel) string {
	switch c {
	case bridge.ChannelBBO:
		return "orderbook.1." + sym
	case bridge.ChannelTicker:
		return "tickers." + sym
	case bridge.ChannelLiquidation:
		return "allLiquidation." + sym
	}
	if name := bybitIntervals[c.Interval()]; name != "" {
		return "kline." + name + "." + sym
	}
	return ""
}

// classifyChannel returns the kind, symbol and interval of a tickers,
// kline or allLiquidation topic, or topicOther.
func classifyChannel(topic string) (int, string, bridge.Interval) {
	if s, ok := strings.CutPrefix(topic, "tickers."); ok {
		return topicTicker, s, 0
	}
	if s, ok := strings.CutPrefix(topic, "allLiquidation."); ok {
		return topicLiquidation, s, 0
	}
	if rest, ok := strings.CutPrefix(topic, "kline."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			if iv, err := bridge.ParseInterval(rest[:i]); err == nil && bybitIntervals[iv] == rest[:i] {
				return topicKline, rest[i+1:], iv
			}
		}
	}
	return topicOther, "", 0
}

// isSignedDecimal accepts "" (a field the venue leaves empty, e.g. funding
// on dated futures), a decimal, or a negative decimal.
func isSignedDecimal(s string) bool {
	if s == "" {
		return true
	}
	return jscan.IsDecimal(strings.TrimPrefix(s, "-"))
}

// chanEnv holds the envelope of a channel frame.
type chanEnv struct {
	seen    jscan.Seen
	typ     string
	ts, cs  int64
	dataPos int
}

const (
	ceType jscan.Seen = 1 << iota
	ceTS
	ceCS
	ceData
)

// channel decodes a tickers, kline or allLiquidation frame (already
// validated as JSON by Decode) into dst.
func (a *Adapter) channel(input string, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	kind, topicSym, iv := classifyChannel(env.topic)
	sym, err := a.core.Syms.Intern(topicSym)
	if err != nil {
		return dst, malformed("topic symbol: %v", err)
	}
	sc := jscan.New(input)
	var ce chanEnv
	err = sc.Object(func(key string) (err error) {
		switch key {
		case "type":
			if err = ce.seen.Add(ceType, key); err == nil {
				ce.typ, err = sc.String()
			}
		case "ts":
			if err = ce.seen.Add(ceTS, key); err == nil {
				ce.ts, _, err = sc.Uint()
			}
		case "cs":
			if err = ce.seen.Add(ceCS, key); err == nil {
				ce.cs, _, err = sc.Uint()
			}
		case "data":
			if err = ce.seen.Add(ceData, key); err == nil {
				ce.dataPos = sc.Pos()
				err = sc.Skip()
			}
		default:
			err = sc.Skip()
		}
		return err
	})
	if err != nil {
		return dst, malformed("%v", err)
	}
	if !ce.seen.Has(ceData | ceTS) {
		return dst, malformed("%s frame without data or ts", env.topic)
	}
	sc.Seek(ce.dataPos)
	n0 := len(dst)
	switch kind {
	case topicTicker:
		dst, err = a.ticker(&sc, &ce, sym, topicSym, recvTS, dst)
	case topicKline:
		dst, err = a.klines(&sc, sym, iv, recvTS, dst)
	case topicLiquidation:
		dst, err = a.liquidations(&sc, sym, topicSym, recvTS, dst)
	}
	if err != nil {
		return dst[:n0], malformed("%s: %v", env.topic, err)
	}
	return dst, nil
}

// ticker decodes a tickers snapshot (the full state) or delta (FlagDelta
// with a Has* bit per field present; the bridge merges it).
func (a *Adapter) ticker(sc *jscan.Scanner, ce *chanEnv, sym, topicSym string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	ts, err := msToNS(ce.ts)
	if err != nil {
		return dst, err
	}
	ev := bridge.Event{Type: bridge.EventTicker, Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recvTS, LastID: ce.cs}
	switch ce.typ {
	case "snapshot":
	case "delta":
		ev.Flags = bridge.FlagDelta
	default:
		return dst, fmt.Errorf("type %q", ce.typ)
	}
	arr := sc.Peek() == '['
	if arr { // the docs' table says array; every example is an object
		if err := sc.EnterArray(); err != nil {
			return dst, err
		}
		if ok, err := sc.Element(true); err != nil || !ok {
			return dst, errors.New("empty data array")
		}
	}
	var symbolSeen bool
	err = sc.Object(func(key string) error {
		var dstp *string
		var bit uint8
		switch key {
		case "symbol":
			s, err := sc.String()
			if err == nil && s != topicSym {
				err = fmt.Errorf("symbol %q differs from the topic's", s)
			}
			symbolSeen = true
			return err
		case "lastPrice":
			dstp, bit = &ev.Price, bridge.HasLast
		case "markPrice":
			dstp, bit = &ev.More[0], bridge.HasMark
		case "indexPrice":
			dstp, bit = &ev.More[1], bridge.HasIndex
		case "fundingRate":
			dstp, bit = &ev.More[2], bridge.HasFunding
		case "openInterest":
			dstp, bit = &ev.ID, bridge.HasOpenInterest
		case "nextFundingTime":
			raw, esc, err := sc.RawString()
			if err != nil {
				return err
			}
			ev.Flags |= bridge.HasNextFunding
			if raw == "" {
				return nil
			}
			ms, ok := parseUint(raw)
			if esc || !ok {
				return fmt.Errorf("nextFundingTime %q", raw)
			}
			ev.Seq, err = msToNS(ms)
			return err
		default:
			return sc.Skip()
		}
		raw, esc, err := sc.RawString()
		if err != nil {
			return err
		}
		if esc || !isSignedDecimal(raw) {
			return fmt.Errorf("%s is not a decimal: %q", key, raw)
		}
		if ev.Flags&bit != 0 {
			return fmt.Errorf("duplicate key %q", key)
		}
		*dstp = raw
		ev.Flags |= bit
		return nil
	})
	if err != nil {
		return dst, err
	}
	if arr {
		if ok, err := sc.Element(false); err != nil || ok {
			return dst, errors.New("data array with more than one ticker")
		}
	}
	if !symbolSeen {
		return dst, errors.New("ticker without symbol")
	}
	if ev.Flags&bridge.FlagDelta == 0 {
		ev.Flags = 0 // a snapshot is the full state: absent fields are empty
	}
	return append(dst, ev), nil
}

func parseUint(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0 && s[0] != '+'
}

// Kline item keys.
const (
	klStart jscan.Seen = 1 << iota
	klEnd
	klInterval
	klOpen
	klClose
	klHigh
	klLow
	klVolume
	klTurnover
	klConfirm
	klTimestamp
	klAll = klStart | klEnd | klInterval | klOpen | klClose | klHigh | klLow | klVolume | klTurnover | klConfirm | klTimestamp
)

// klines decodes the data array of a kline frame, one EventKline per item.
func (a *Adapter) klines(sc *jscan.Scanner, sym string, iv bridge.Interval, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		var seen jscan.Seen
		var start, end, stamp int64
		var name string
		var confirm bool
		ev := bridge.Event{Type: bridge.EventKline, Interval: iv, Exchange: a.core.Name, Symbol: sym, RecvTS: recvTS, Seq: -1}
		err = sc.Object(func(key string) (err error) {
			dec := func(bit jscan.Seen, d *string) {
				if err = seen.Add(bit, key); err == nil {
					*d, err = sc.Decimal()
				}
			}
			num := func(bit jscan.Seen, d *int64) {
				if err = seen.Add(bit, key); err == nil {
					*d, _, err = sc.Uint()
				}
			}
			switch key {
			case "start":
				num(klStart, &start)
			case "end":
				num(klEnd, &end)
			case "timestamp":
				num(klTimestamp, &stamp)
			case "interval":
				if err = seen.Add(klInterval, key); err == nil {
					name, err = sc.String()
				}
			case "open":
				dec(klOpen, &ev.More[0])
			case "high":
				dec(klHigh, &ev.More[1])
			case "low":
				dec(klLow, &ev.More[2])
			case "close":
				dec(klClose, &ev.Price)
			case "volume":
				dec(klVolume, &ev.Qty)
			case "turnover":
				dec(klTurnover, &ev.ID)
			case "confirm":
				if err = seen.Add(klConfirm, key); err == nil {
					confirm, err = sc.Bool()
				}
			default:
				err = sc.Skip()
			}
			return err
		})
		if err != nil {
			return dst, err
		}
		if !seen.Has(klAll) {
			return dst, errors.New("kline item lacks one of start end interval open close high low volume turnover confirm timestamp")
		}
		if name != bybitIntervals[iv] || end < start {
			return dst, fmt.Errorf("kline item interval %q / start %d end %d", name, start, end)
		}
		if ev.FirstID, err = msToNS(start); err != nil {
			return dst, err
		}
		if ev.LastID, err = msToNS(end); err != nil {
			return dst, err
		}
		if ev.TS, err = msToNS(stamp); err != nil {
			return dst, err
		}
		if confirm {
			ev.Flags = bridge.FlagClosed
		}
		dst = append(dst, ev)
	}
}

// Liquidation item keys.
const (
	lqT jscan.Seen = 1 << iota
	lqS
	lqSide
	lqV
	lqP
	lqAll = lqT | lqS | lqSide | lqV | lqP
)

// liquidations decodes the data array of an allLiquidation frame. Bybit's
// S is the liquidated position's side ("Buy": a long); the event's Side is
// the liquidation order's (a long is liquidated by a sell).
func (a *Adapter) liquidations(sc *jscan.Scanner, sym, topicSym string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	n0 := len(dst)
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		var seen jscan.Seen
		var t int64
		var s, side string
		ev := bridge.Event{Type: bridge.EventLiquidation, Exchange: a.core.Name, Symbol: sym, RecvTS: recvTS}
		err = sc.Object(func(key string) (err error) {
			switch key {
			case "T":
				if err = seen.Add(lqT, key); err == nil {
					t, _, err = sc.Uint()
				}
			case "s":
				if err = seen.Add(lqS, key); err == nil {
					s, err = sc.String()
				}
			case "S":
				if err = seen.Add(lqSide, key); err == nil {
					side, err = sc.String()
				}
			case "v":
				if err = seen.Add(lqV, key); err == nil {
					ev.Qty, err = sc.Decimal()
				}
			case "p":
				if err = seen.Add(lqP, key); err == nil {
					ev.Price, err = sc.Decimal()
				}
			default:
				err = sc.Skip()
			}
			return err
		})
		if err != nil {
			return dst, err
		}
		if !seen.Has(lqAll) {
			return dst, errors.New("liquidation item lacks one of T s S v p")
		}
		if s != topicSym {
			return dst, fmt.Errorf("liquidation symbol %q differs from the topic's", s)
		}
		switch side {
		case "Buy":
			ev.Side = bridge.SideSell
		case "Sell":
			ev.Side = bridge.SideBuy
		default:
			return dst, fmt.Errorf("liquidation side %q", side)
		}
		if ev.TS, err = msToNS(t); err != nil {
			return dst, err
		}
		for i := n0; i < len(dst); i++ { // number identical liquidations of the frame
			p := &dst[i]
			if p.TS == ev.TS && p.Side == ev.Side && p.Price == ev.Price && p.Qty == ev.Qty {
				ev.Seq++
			}
		}
		dst = append(dst, ev)
	}
}

// bbo builds the EventBBO of an orderbook.1 frame (a snapshot of the best
// level; an empty side gives "" price and quantity).
func (a *Adapter) bbo(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	b := &env.book
	if !env.seen.Has(envData) || !b.seen.Has(bookS|bookB|bookA|bookU) {
		return dst, malformed("orderbook.1 frame lacks data or one of s, b, a, u")
	}
	if b.s != env.sym || !env.seen.Has(envTS) {
		return dst, malformed("orderbook.1 symbol %q differs from topic %q, or no ts", b.s, env.topic)
	}
	ts, err := msToNS(env.ts)
	if err != nil {
		return dst, malformed("%v", err)
	}
	sym, err := a.core.Syms.Intern(env.sym)
	if err != nil {
		return dst, malformed("topic symbol: %v", err)
	}
	ev := bridge.Event{Type: bridge.EventBBO, Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recvTS, LastID: b.u}
	if ev.Price, ev.Qty, err = firstLevel(sc, b.bPos); err != nil {
		return dst, malformed("b: %v", err)
	}
	if ev.More[0], ev.More[1], err = firstLevel(sc, b.aPos); err != nil {
		return dst, malformed("a: %v", err)
	}
	return append(dst, ev), nil
}

// firstLevel reads the first [price, qty] of the level array at pos.
func firstLevel(sc *jscan.Scanner, pos int) (px, qty string, err error) {
	sc.Seek(pos)
	if err = sc.EnterArray(); err != nil {
		return
	}
	ok, err := sc.Element(true)
	if err != nil || !ok {
		return "", "", err
	}
	if err = sc.EnterArray(); err != nil {
		return
	}
	if ok, err = sc.Element(true); err != nil || !ok {
		return "", "", errors.New("empty level")
	}
	if px, err = sc.Decimal(); err != nil {
		return
	}
	if ok, err = sc.Element(false); err != nil || !ok {
		return "", "", errors.New("level without quantity")
	}
	qty, err = sc.Decimal()
	return
}

// Klines returns closed bars of symbol with GET /v5/market/kline?category=
// &symbol=&interval=&start=&end=&limit=: the bars whose open time is in
// [fromNS, toNS], ascending (Bybit answers newest first), at most limit
// (max 1000). Bybit gives no trade count (Trades -1). Errors:
// *bridge.RateLimitError, *APIError, bridge.ErrMalformed, ctx and
// transport errors, all wrapped.
func (a *Adapter) Klines(ctx context.Context, symbol string, iv bridge.Interval, fromNS, toNS int64, limit int) ([]bridge.Event, error) {
	const path = "/v5/market/kline"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	name := bybitIntervals[iv]
	if name == "" {
		return nil, fmt.Errorf("%w: bybit: kline interval %q", bridge.ErrNotSupported, iv.String())
	}
	if limit <= 0 || limit > MaxKlinesLimit {
		limit = MaxKlinesLimit
	}
	// Bybit answers the newest bars of the range first: ask for a window
	// of at most limit bars from fromNS, so a long range is read oldest
	// page first (the caller asks again from after the last bar).
	d := iv.Duration()
	if d == 0 {
		d = 28 * 24 * time.Hour // the shortest month
	}
	if w := int64(limit) * int64(d); toNS-fromNS >= w {
		toNS = fromNS + w - 1
	}
	q := url.Values{"category": {a.cfg.Market}, "symbol": {sym}, "interval": {name},
		"start": {strconv.FormatInt(fromNS/1e6, 10)}, "end": {strconv.FormatInt(toNS/1e6, 10)}, "limit": {strconv.Itoa(limit)}}
	res, err := a.get(ctx, path, q)
	if err != nil {
		return nil, err
	}
	var r struct {
		Symbol string     `json:"symbol"`
		List   [][]string `json:"list"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	if r.Symbol != "" && r.Symbol != sym {
		return nil, a.core.Malformed(path, fmt.Errorf("symbol %q, asked for %q", r.Symbol, sym))
	}
	recv := a.core.Now().UnixNano()
	out := make([]bridge.Event, 0, len(r.List))
	for i := len(r.List) - 1; i >= 0; i-- {
		row := r.List[i]
		if len(row) < 7 {
			return nil, a.core.Malformed(path, fmt.Errorf("kline row %d: %d elements", i, len(row)))
		}
		ms, ok := parseUint(row[0])
		if !ok {
			return nil, a.core.Malformed(path, fmt.Errorf("kline row %d: start %q", i, row[0]))
		}
		for _, d := range row[1:7] {
			if !jscan.IsDecimal(d) {
				return nil, a.core.Malformed(path, fmt.Errorf("kline row %d: %q is not a decimal", i, d))
			}
		}
		open, err := msToNS(ms)
		if err != nil {
			return nil, a.core.Malformed(path, err)
		}
		if len(out) > 0 && open <= out[len(out)-1].FirstID {
			return nil, a.core.Malformed(path, fmt.Errorf("kline rows not newest first at %d", i))
		}
		if open < fromNS || open > toNS {
			continue
		}
		ev := bridge.Event{Type: bridge.EventKline, Interval: iv, Flags: bridge.FlagClosed, Exchange: a.core.Name, Symbol: sym,
			RecvTS: recv, FirstID: open, LastID: iv.Next(open) - 1_000_000, Price: row[4], Qty: row[5], Seq: -1}
		ev.TS = ev.LastID
		ev.More, ev.ID = [3]string{row[1], row[2], row[3]}, row[6]
		out = append(out, ev)
	}
	return out, nil
}
