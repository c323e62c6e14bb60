package binance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// WeightKlines is the REST weight of GET /api/v3/klines.
const WeightKlines = 2

// MaxKlinesLimit is the most bars one /api/v3/klines call returns.
const MaxKlinesLimit = 1000

var (
	_ bridge.ChannelProvider = (*Adapter)(nil)
	_ bridge.KlineFetcher    = (*Adapter)(nil)
)

// Channels returns what the market carries. Spot: trade, book, bbo
// (@bookTicker) and klines of every interval (@kline_<iv>); no derivatives
// ticker and no liquidations. USD-M adds ticker (@markPrice@1s) and
// liquidation (@forceOrder), and has no 1s klines (usdm_channels.go).
func (a *Adapter) Channels() bridge.Channel {
	if a.usdm {
		return usdmChannels()
	}
	return bridge.ChannelTrade | bridge.ChannelBook | bridge.ChannelBBO | bridge.KlineChannels(
		bridge.Interval1s, bridge.Interval1m, bridge.Interval3m, bridge.Interval5m, bridge.Interval15m,
		bridge.Interval30m, bridge.Interval1h, bridge.Interval2h, bridge.Interval4h, bridge.Interval6h,
		bridge.Interval8h, bridge.Interval12h, bridge.Interval1d, bridge.Interval3d, bridge.Interval1w,
		bridge.Interval1M)
}

// channelStream returns the stream name of a bbo or kline topic, or "".
func channelStream(sym string, c bridge.Channel) string {
	if c == bridge.ChannelBBO {
		return sym + "@bookTicker"
	}
	if iv := c.Interval(); iv.Valid() {
		return sym + "@kline_" + iv.String() // Binance names are the normalized names
	}
	return ""
}

// chanPayload holds the members of a bookTicker or kline payload.
type chanPayload struct {
	seen             jscan.Seen
	u, eventTime     int64
	s, b, bq, a, aq  string
	k                klinePayload
	kIsObject        bool
	wrapperHasObject bool
}

type klinePayload struct {
	seen                jscan.Seen
	t, tc, n            int64
	i, o, c, h, l, v, q string
	x                   bool
}

// Payload keys of bookTicker and kline, as jscan.Seen bits.
const (
	cpU jscan.Seen = 1 << iota
	cpS
	cpB
	cpBQ
	cpA
	cpAQ
	cpE
	cpK
	cpBBO = cpU | cpS | cpB | cpBQ | cpA | cpAQ
)

// Kline object keys.
const (
	kpT jscan.Seen = 1 << iota
	kpTC
	kpI
	kpO
	kpC
	kpH
	kpL
	kpV
	kpN
	kpX
	kpQ
	kpAll = kpT | kpTC | kpI | kpO | kpC | kpH | kpL | kpV | kpX | kpQ
)

// scanChannel reads the payload of a frame (the "data" object of a
// combined-stream wrapper, or the top level of a raw stream) into p. It
// re-reads the frame the main decoder has validated, without allocating.
func scanChannel(input string, p *chanPayload) error {
	sc := jscan.New(input)
	if err := sc.EnterObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if key == "data" && sc.Peek() == '{' {
			if err := p.object(&sc); err != nil {
				return err
			}
			p.wrapperHasObject = true
			continue
		}
		if err := p.member(&sc, key); err != nil {
			return err
		}
	}
}

func (p *chanPayload) object(sc *jscan.Scanner) error {
	*p = chanPayload{}
	return sc.Object(func(key string) error { return p.member(sc, key) })
}

func (p *chanPayload) member(sc *jscan.Scanner, key string) error {
	var err error
	str := func(bit jscan.Seen, dst *string) {
		if err = p.seen.Add(bit, key); err == nil {
			*dst, err = sc.Decimal()
		}
	}
	switch key {
	case "u":
		if err = p.seen.Add(cpU, key); err == nil {
			p.u, _, err = sc.Uint()
		}
	case "s":
		if err = p.seen.Add(cpS, key); err == nil {
			var esc bool
			if p.s, esc, err = sc.RawString(); err == nil && esc {
				err = fmt.Errorf("escaped symbol")
			}
		}
	case "b":
		str(cpB, &p.b)
	case "B":
		if sc.Peek() != '"' { // kline's "B" (ignore) is a string too; only bookTicker reads it
			return sc.Skip()
		}
		str(cpBQ, &p.bq)
	case "a":
		str(cpA, &p.a)
	case "A":
		str(cpAQ, &p.aq)
	case "E":
		if err = p.seen.Add(cpE, key); err == nil {
			p.eventTime, _, err = sc.Uint()
		}
	case "k":
		if err = p.seen.Add(cpK, key); err == nil {
			if sc.Peek() != '{' {
				return fmt.Errorf("\"k\" is not an object")
			}
			p.kIsObject = true
			err = sc.Object(func(key string) error { return p.k.member(sc, key) })
		}
	default:
		err = sc.Skip()
	}
	return err
}

func (k *klinePayload) member(sc *jscan.Scanner, key string) error {
	var err error
	num := func(bit jscan.Seen, dst *int64) {
		if err = k.seen.Add(bit, key); err == nil {
			*dst, _, err = sc.Uint()
		}
	}
	dec := func(bit jscan.Seen, dst *string) {
		if err = k.seen.Add(bit, key); err == nil {
			*dst, err = sc.Decimal()
		}
	}
	switch key {
	case "t":
		num(kpT, &k.t)
	case "T":
		num(kpTC, &k.tc)
	case "n":
		num(kpN, &k.n)
	case "i":
		if err = k.seen.Add(kpI, key); err == nil {
			k.i, err = sc.String()
		}
	case "o":
		dec(kpO, &k.o)
	case "c":
		dec(kpC, &k.c)
	case "h":
		dec(kpH, &k.h)
	case "l":
		dec(kpL, &k.l)
	case "v":
		dec(kpV, &k.v)
	case "q":
		dec(kpQ, &k.q)
	case "x":
		if err = k.seen.Add(kpX, key); err == nil {
			k.x, err = sc.Bool()
		}
	default:
		err = sc.Skip()
	}
	return err
}

// bookTicker decodes a @bookTicker payload into one EventBBO. Spot's
// bookTicker carries no time: TS is the receive time.
func (a *Adapter) bookTicker(input string, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	var p chanPayload
	if err := scanChannel(input, &p); err != nil {
		return dst, bridge.Frame{}, malformed("bookTicker: %v", err)
	}
	if !p.seen.Has(cpBBO) {
		return dst, bridge.Frame{}, malformed("bookTicker lacks one of u, s, b, B, a, A")
	}
	sym, err := a.core.Syms.Intern(p.s)
	if err != nil {
		return dst, bridge.Frame{}, malformed("\"s\": %v", err)
	}
	ev := bridge.Event{Type: bridge.EventBBO, Exchange: Name, Symbol: sym, TS: recvTS, RecvTS: recvTS}
	ev.Price, ev.Qty, ev.More[0], ev.More[1], ev.LastID = p.b, p.bq, p.a, p.aq, p.u
	return append(dst, ev), bridge.Frame{Kind: bridge.FrameData}, nil
}

// kline decodes a kline payload into one EventKline (FlagClosed when x).
func (a *Adapter) kline(input string, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	var p chanPayload
	if err := scanChannel(input, &p); err != nil {
		return dst, bridge.Frame{}, malformed("kline: %v", err)
	}
	if !p.seen.Has(cpS|cpE|cpK) || !p.k.seen.Has(kpAll) {
		return dst, bridge.Frame{}, malformed("kline lacks E, s, k or one of k.t T i o c h l v x q")
	}
	sym, err := a.core.Syms.Intern(p.s)
	if err != nil {
		return dst, bridge.Frame{}, malformed("\"s\": %v", err)
	}
	iv, err := bridge.ParseInterval(p.k.i)
	if err != nil || iv.String() != p.k.i {
		return dst, bridge.Frame{}, malformed("kline interval %q", p.k.i)
	}
	ts, err := a.toNS(p.eventTime, kEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	open, err := a.toNS(p.k.t, kEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	closeT, err := a.toNS(p.k.tc, kEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	if p.k.tc < p.k.t {
		return dst, bridge.Frame{}, malformed("kline close time %d before open time %d", p.k.tc, p.k.t)
	}
	trades := int64(-1)
	if p.k.seen.Has(kpN) {
		trades = p.k.n
	}
	ev := bridge.Event{Type: bridge.EventKline, Interval: iv, Exchange: Name, Symbol: sym, TS: ts, RecvTS: recvTS,
		FirstID: open, LastID: closeT, Price: p.k.c, Qty: p.k.v, Seq: trades}
	ev.More, ev.ID = [3]string{p.k.o, p.k.h, p.k.l}, p.k.q
	if p.k.x {
		ev.Flags = bridge.FlagClosed
	}
	return append(dst, ev), bridge.Frame{Kind: bridge.FrameData}, nil
}

// Klines returns closed bars of symbol with GET /api/v3/klines?symbol=
// &interval=&startTime=&endTime=&limit= (weight 2): the bars whose open
// time is in [fromNS, toNS], ascending, at most limit (max 1000). A bar
// still open at the venue (close time in the future of the venue's clock
// as the response shows: the last row when it ends after toNS) is left
// out. USD-M uses GET /fapi/v1/klines (the same rows), with limit bounded
// to the bars of the range and the weight of that limit (1 below 100).
// Errors: *bridge.RateLimitError, *APIError, bridge.ErrMalformed, ctx and
// transport errors, all wrapped.
func (a *Adapter) Klines(ctx context.Context, symbol string, iv bridge.Interval, fromNS, toNS int64, limit int) ([]bridge.Event, error) {
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	if !iv.Valid() {
		return nil, fmt.Errorf("%w: binance: kline interval %d", bridge.ErrNotSupported, iv)
	}
	if limit <= 0 || limit > MaxKlinesLimit {
		limit = MaxKlinesLimit
	}
	path, weight := "/api/v3/klines", WeightKlines
	if a.usdm {
		path, limit = "/fapi/v1/klines", usdmKlinesLimit(iv, fromNS, toNS, limit)
		weight = usdmKlinesWeight(limit)
	}
	q := url.Values{"symbol": {sym}, "interval": {iv.String()},
		"startTime": {strconv.FormatInt(fromNS/1e6, 10)}, "endTime": {strconv.FormatInt(toNS/1e6, 10)},
		"limit": {strconv.Itoa(limit)}}
	body, err := a.core.Get(ctx, path, q, weight)
	if err != nil {
		return nil, err
	}
	return parseKlines(path, sym, iv, body, a.core.Now().UnixNano(), toNS, a)
}

func parseKlines(path, sym string, iv bridge.Interval, body []byte, recv, toNS int64, a *Adapter) ([]bridge.Event, error) {
	var rows [][]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	out := make([]bridge.Event, 0, len(rows))
	prev := int64(-1)
	for i, r := range rows {
		if len(r) < 11 {
			return nil, a.core.Malformed(path, fmt.Errorf("kline %d: %d elements", i, len(r)))
		}
		var open, closeT, n int64
		var o, h, l, c, v, qv string
		for _, f := range []struct {
			dst any
			i   int
		}{{&open, 0}, {&o, 1}, {&h, 2}, {&l, 3}, {&c, 4}, {&v, 5}, {&closeT, 6}, {&qv, 7}, {&n, 8}} {
			if err := json.Unmarshal(r[f.i], f.dst); err != nil {
				return nil, a.core.Malformed(path, fmt.Errorf("kline %d element %d: %v", i, f.i, err))
			}
		}
		for _, d := range []string{o, h, l, c, v, qv} {
			if !jscan.IsDecimal(d) {
				return nil, a.core.Malformed(path, fmt.Errorf("kline %d: %q is not a decimal", i, d))
			}
		}
		if open <= prev || open < 0 || closeT < open || closeT > (1<<63-1)/1_000_000 {
			return nil, a.core.Malformed(path, fmt.Errorf("kline %d: open time %d / close time %d", i, open, closeT))
		}
		prev = open
		if open*1_000_000 > toNS {
			continue
		}
		ev := bridge.Event{Type: bridge.EventKline, Interval: iv, Flags: bridge.FlagClosed, Exchange: a.core.Name, Symbol: sym,
			TS: closeT * 1_000_000, RecvTS: recv, FirstID: open * 1_000_000, LastID: closeT * 1_000_000,
			Price: c, Qty: v, Seq: n}
		ev.More, ev.ID = [3]string{o, h, l}, qv
		out = append(out, ev)
	}
	return out, nil
}

// isBookTicker reports whether a payload without "e" is a bookTicker
// (keys u, s, b, a with b a string rather than a depth array).
func isBookTicker(p *payload) bool {
	return p.f[kLastID].kind == vNumber && p.f[kBids].kind == vString && p.f[kAsks].kind == vString
}
