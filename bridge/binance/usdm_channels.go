package binance

import (
	"errors"
	"strings"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// The channels of Binance USD-M futures beyond trades and books
// (EXCHANGES-MORE.md 2.5-2.8):
//
//	bbo          <s>@bookTicker     route /public  u, E, T, s, b, B, a, A
//	kline.<iv>   <s>@kline_<iv>     route /market  the Spot kline payload
//	ticker       <s>@markPrice@1s   route /market  E, s, p, i, P, r, T (ap, st)
//	liquidation  <s>@forceOrder     route /market  E, o{s, S, o, f, q, p, ap, X, l, z, T}
//
// The decoders read the members decodeUSDM has already recorded (and the
// "k" or "o" object by offset), so a frame is scanned once and nothing is
// allocated beyond the frame's copy.

// usdmIntervals are the intervals of <s>@kline_<iv> on futures: Spot's
// without 1s (EXCHANGES-MORE.md 2.8).
var usdmIntervals = []bridge.Interval{bridge.Interval1m, bridge.Interval3m, bridge.Interval5m, bridge.Interval15m,
	bridge.Interval30m, bridge.Interval1h, bridge.Interval2h, bridge.Interval4h, bridge.Interval6h,
	bridge.Interval8h, bridge.Interval12h, bridge.Interval1d, bridge.Interval3d, bridge.Interval1w, bridge.Interval1M}

// usdmChannels is what binance-usdm carries.
func usdmChannels() bridge.Channel {
	return bridge.ChannelTrade | bridge.ChannelBook | bridge.ChannelBBO | bridge.ChannelTicker |
		bridge.ChannelLiquidation | bridge.KlineChannels(usdmIntervals...)
}

// usdmChannelStream returns the stream of a bbo, kline, ticker or
// liquidation topic of symbol sym (lower case), or "".
func usdmChannelStream(sym string, c bridge.Channel) string {
	switch c {
	case bridge.ChannelBBO:
		return sym + "@bookTicker"
	case bridge.ChannelTicker:
		return sym + "@markPrice@1s"
	case bridge.ChannelLiquidation:
		return sym + "@forceOrder"
	}
	if iv := c.Interval(); iv.Valid() && iv != bridge.Interval1s {
		return sym + "@kline_" + iv.String()
	}
	return ""
}

// signedDecimal reports whether s is a decimal or a negative decimal.
func signedDecimal(s string) bool {
	return jscan.IsDecimal(strings.TrimPrefix(s, "-"))
}

// uBookTicker decodes a futures bookTicker into one EventBBO: LastID u,
// TS the transaction time T (the event time E when T is absent).
func (a *Adapter) uBookTicker(p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.uSymbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	u, _, err := p.uint(uLastID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	tsKey := uTradeTime
	if p.f[uTradeTime].kind == vAbsent {
		tsKey = uEventTime
	}
	ts, err := p.ms(tsKey)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	ev := bridge.Event{Type: bridge.EventBBO, Exchange: NameUSDM, Symbol: sym, TS: ts, RecvTS: recvTS, LastID: u}
	for _, d := range [...]struct {
		dst *string
		key int
	}{{&ev.Price, uBids}, {&ev.Qty, uBidQty}, {&ev.More[0], uA}, {&ev.More[1], uAskQty}} {
		if *d.dst, err = p.decimal(d.key); err != nil {
			return dst, bridge.Frame{}, err
		}
	}
	return append(dst, ev), bridge.Frame{Kind: bridge.FrameData}, nil
}

// uKline decodes a futures kline (Spot's payload) into one EventKline:
// FirstID the open time, LastID the close time, TS the event time E (the
// bridge sets a closed bar's TS to its close time), FlagClosed when x.
func (a *Adapter) uKline(sc *jscan.Scanner, p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.uSymbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	ts, err := p.ms(uEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	kf := &p.f[uKline]
	if kf.kind != vObject {
		return dst, bridge.Frame{}, malformed("missing or non-object \"k\"")
	}
	var k klinePayload
	sc.Seek(kf.pos)
	if err := sc.Object(func(key string) error { return k.member(sc, key) }); err != nil {
		return dst, bridge.Frame{}, malformed("kline: %v", err)
	}
	if !k.seen.Has(kpAll) {
		return dst, bridge.Frame{}, malformed("kline lacks one of k.t T i o c h l v x q")
	}
	iv, err := bridge.ParseInterval(k.i)
	if err != nil || iv.String() != k.i {
		return dst, bridge.Frame{}, malformed("kline interval %q", k.i)
	}
	const maxMS = (1<<63 - 1) / 1_000_000
	if k.t > maxMS || k.tc > maxMS || k.tc < k.t {
		return dst, bridge.Frame{}, malformed("kline open time %d / close time %d", k.t, k.tc)
	}
	trades := int64(-1)
	if k.seen.Has(kpN) {
		trades = k.n
	}
	ev := bridge.Event{Type: bridge.EventKline, Interval: iv, Exchange: NameUSDM, Symbol: sym, TS: ts, RecvTS: recvTS,
		FirstID: k.t * 1_000_000, LastID: k.tc * 1_000_000, Price: k.c, Qty: k.v, Seq: trades}
	ev.More, ev.ID = [3]string{k.o, k.h, k.l}, k.q
	if k.x {
		ev.Flags = bridge.FlagClosed
	}
	return append(dst, ev), bridge.Frame{Kind: bridge.FrameData}, nil
}

// uMarkPrice decodes a markPriceUpdate into one EventTicker with the full
// state the stream gives: mark price p, index price i, funding rate r
// ("" on non-perpetuals: left out), next funding time T (0: unknown). TS is
// the event time E. The estimated settle price P and the moving average ap
// have no field in the ticker body and are not published. Seq (the id's
// second part) is 0: the event time alone identifies a push.
func (a *Adapter) uMarkPrice(p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.uSymbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	ts, err := p.ms(uEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	next, err := p.ms(uTradeTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	mark, err := p.decimal(uPrice)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	index, err := p.decimal(uIndex)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	r := &p.f[uFunding]
	if r.kind != vString || r.esc || r.raw != "" && !signedDecimal(r.raw) {
		return dst, bridge.Frame{}, malformed("missing or invalid \"r\"")
	}
	ev := bridge.Event{Type: bridge.EventTicker, Exchange: NameUSDM, Symbol: sym, TS: ts, RecvTS: recvTS}
	ev.SetTicker(bridge.Ticker{MarkPrice: mark, IndexPrice: index, FundingRate: r.raw, NextFundingTime: next})
	return append(dst, ev), bridge.Frame{Kind: bridge.FrameData}, nil
}

// forceOrder keys.
const (
	foS jscan.Seen = 1 << iota
	foSide
	foAP
	foZ
	foT
	foAll = foS | foSide | foAP | foZ | foT
)

// uForceOrder decodes a forceOrder into one EventLiquidation: Side the
// liquidation order's side S ("SELL": a long was liquidated), Price the
// average fill price ap, Qty the accumulated filled quantity z, TS the
// order's trade time T. The venue pushes at most one liquidation per
// symbol per second (the latest), so N is always 0.
func (a *Adapter) uForceOrder(sc *jscan.Scanner, p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	of := &p.f[uOrder]
	if of.kind != vObject {
		return dst, bridge.Frame{}, malformed("missing or non-object \"o\"")
	}
	var seen jscan.Seen
	var s, side string
	var t int64
	ev := bridge.Event{Type: bridge.EventLiquidation, Exchange: NameUSDM, RecvTS: recvTS}
	sc.Seek(of.pos)
	err := sc.Object(func(key string) (err error) {
		switch key {
		case "s":
			if err = seen.Add(foS, key); err == nil {
				var esc bool
				if s, esc, err = sc.RawString(); err == nil && esc {
					err = errors.New("escaped symbol")
				}
			}
		case "S":
			if err = seen.Add(foSide, key); err == nil {
				side, err = sc.String()
			}
		case "ap":
			if err = seen.Add(foAP, key); err == nil {
				ev.Price, err = sc.Decimal()
			}
		case "z":
			if err = seen.Add(foZ, key); err == nil {
				ev.Qty, err = sc.Decimal()
			}
		case "T":
			if err = seen.Add(foT, key); err == nil {
				t, _, err = sc.Uint()
			}
		default:
			err = sc.Skip()
		}
		return err
	})
	if err != nil {
		return dst, bridge.Frame{}, malformed("forceOrder: %v", err)
	}
	if !seen.Has(foAll) {
		return dst, bridge.Frame{}, malformed("forceOrder lacks one of o.s S ap z T")
	}
	switch side {
	case "SELL":
		ev.Side = bridge.SideSell
	case "BUY":
		ev.Side = bridge.SideBuy
	default:
		return dst, bridge.Frame{}, malformed("forceOrder side %q", side)
	}
	if t > (1<<63-1)/1_000_000 {
		return dst, bridge.Frame{}, malformed("forceOrder T out of range: %d", t)
	}
	ev.TS = t * 1_000_000
	if ev.Symbol, err = a.core.Syms.Intern(s); err != nil {
		return dst, bridge.Frame{}, malformed("\"o.s\": %v", err)
	}
	return append(dst, ev), bridge.Frame{Kind: bridge.FrameData}, nil
}
