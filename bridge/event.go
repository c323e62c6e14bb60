package bridge

import (
	"strconv"
)

// EventType is the kind of a normalized market-data record.
type EventType uint8

// The event types of the wire contract (header Md-Type, body field "type").
const (
	EventUnknown EventType = iota
	EventTrade
	EventBookSnapshot
	EventBookDelta
	EventBBO         // best bid and offer (ChannelBBO)
	EventKline       // one kline (bar) of one interval (kline channels)
	EventTicker      // derivatives ticker state (ChannelTicker)
	EventLiquidation // one liquidation (ChannelLiquidation)
)

var eventTypeNames = [...]string{
	EventUnknown:      "unknown",
	EventTrade:        "trade",
	EventBookSnapshot: "book.snapshot",
	EventBookDelta:    "book.delta",
	EventBBO:          "bbo",
	EventKline:        "kline",
	EventTicker:       "ticker",
	EventLiquidation:  "liquidation",
}

// String returns the wire name of t ("trade", "book.snapshot", "book.delta",
// "bbo", "kline", "ticker", "liquidation").
func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return "unknown"
}

// ParseEventType returns the EventType for a wire name, or EventUnknown.
func ParseEventType(s string) EventType {
	switch s {
	case "trade":
		return EventTrade
	case "book.snapshot":
		return EventBookSnapshot
	case "book.delta":
		return EventBookDelta
	case "bbo":
		return EventBBO
	case "kline":
		return EventKline
	case "ticker":
		return EventTicker
	case "liquidation":
		return EventLiquidation
	}
	return EventUnknown
}

// Side is the taker's side of a trade.
type Side uint8

// Taker sides.
const (
	SideUnknown Side = iota
	SideBuy
	SideSell
)

// String returns "buy", "sell" or "" for an unknown side.
func (s Side) String() string {
	switch s {
	case SideBuy:
		return "buy"
	case SideSell:
		return "sell"
	}
	return ""
}

// Level is one price level of an order book: price and quantity as the
// exchange's decimal strings. A quantity of "0" removes the level.
type Level [2]string

// SchemaVersion is the body schema version written in field "v".
const SchemaVersion = 1

// Event is the normalized record mdbridge publishes: one trade, one order
// book delta or snapshot, one best bid/offer, one kline, one ticker state or
// one liquidation of one symbol on one exchange.
//
// Prices and quantities are the exchange's decimal strings, never floats.
// Times are Unix nanoseconds. An Event is a value: the runner hands slices of
// them to publishers and handlers, which must not retain the slice after
// returning (copy what they keep).
//
// The channel events reuse the trade and book fields and keep the rest in
// More, so the struct stays small on the trade hot path: read them with
// the accessors BBO, Bar, Ticker and Liquidation rather than field by field.
type Event struct {
	Type     EventType
	Interval Interval // kline events: the bar's interval
	Flags    uint8    // kline: FlagClosed; ticker: FlagDelta and the Has* bits of a venue delta; book.snapshot: FlagIDReset
	Side     Side     // trade: the taker's side; liquidation: the order's side
	Exchange string   // "binance", "bybit", "bybit-linear"
	Symbol   string   // the exchange's upper-case symbol, e.g. "BTCUSDT"
	TS       int64    // exchange event time, Unix ns
	RecvTS   int64    // bridge receive time, Unix ns, local clock

	// Trade fields.
	ID    string // exchange trade id, verbatim
	Seq   int64  // numeric trade id where the exchange's ids are consecutive (Binance), else 0
	Price string
	Qty   string

	// Book fields. FirstID is set on deltas only (Binance U; Bybit u).
	FirstID int64
	LastID  int64
	// Depth names the update-id series FirstID and LastID belong to where a
	// venue has several: the depth of the Bybit orderbook stream (1, 50, 200
	// or 1000) that produced the event. 0 where the venue has one series per
	// symbol (Binance). A snapshot and the deltas after it chain only when
	// their Depth is equal (see BookBuilder).
	Depth int
	// PrevID is, on deltas of venues whose updates chain by the previous
	// update's id, the LastID of the update before this one; 0 otherwise.
	// OKX (BookStreamChained, prevSeqId) also sets FirstID = PrevID+1, so
	// consumers chain its deltas by FirstID/LastID as for every venue, and
	// PrevID stays off the wire. Binance USD-M (pu) keeps the venue's U as
	// FirstID, which is usually several above pu+1: its deltas carry PrevID
	// on the wire as "prev_id" whenever FirstID != PrevID+1, and chain by it
	// (see Continues).
	PrevID int64
	Bids   []Level
	Asks   []Level

	// More holds the decimal fields of the channel events beyond Price,
	// Qty and ID (see the accessors).
	More [3]string
}

// Event flags.
const (
	FlagClosed      uint8 = 1 << iota // kline: the bar is closed (final)
	FlagDelta                         // ticker: a venue delta (only the Has* fields are set); never published
	HasLast                           // ticker delta: last price present
	HasMark                           // ticker delta: mark price present
	HasIndex                          // ticker delta: index price present
	HasFunding                        // ticker delta: funding rate present
	HasOpenInterest                   // ticker delta: open interest present
	HasNextFunding                    // ticker delta: next funding time present
	hasAll          = HasLast | HasMark | HasIndex | HasFunding | HasOpenInterest | HasNextFunding
)

// FlagIDReset marks a book snapshot published right after the venue reset
// its update-id sequence lower (OKX maintenance): its LastID may be below
// the ids published before it, and a consumer resets its book to it
// whatever its id, forgetting retained deltas (wire "reset":true; see
// BookBuilder). Flag bits are per event type: it shares its bit with
// FlagClosed, which only klines carry.
const FlagIDReset uint8 = 1 << 0

// FlagSeqMayReset marks a bbo event whose update id is a venue sequence
// that may restart lower (OKX seqId after maintenance): a bbo with a lower
// update id but a newer ts than the last one emitted restarts the series
// instead of being dropped as old. Never on the wire (a bbo event's flags
// are not published).
const FlagSeqMayReset uint8 = 1 << 1

// BBO is the best bid and offer of a bbo event.
type BBO struct {
	BidPrice, BidQty, AskPrice, AskQty string
	UpdateID                           int64 // the venue's update id (Binance u, Bybit u)
}

// BBO returns the payload of a bbo event.
func (e *Event) BBO() BBO {
	return BBO{BidPrice: e.Price, BidQty: e.Qty, AskPrice: e.More[0], AskQty: e.More[1], UpdateID: e.LastID}
}

// SetBBO fills the payload of a bbo event.
func (e *Event) SetBBO(b BBO) {
	e.Price, e.Qty, e.More[0], e.More[1], e.LastID = b.BidPrice, b.BidQty, b.AskPrice, b.AskQty, b.UpdateID
}

// Bar is the payload of a kline event.
type Bar struct {
	Interval               Interval
	OpenTime, CloseTime    int64 // Unix ns; CloseTime = next open time - 1 ms as the venues send it
	Open, High, Low, Close string
	Volume                 string // base volume
	QuoteVolume            string // quote volume (Bybit "turnover")
	Trades                 int64  // number of trades; -1 where the venue does not say (Bybit)
	Closed                 bool
}

// Bar returns the payload of a kline event.
func (e *Event) Bar() Bar {
	return Bar{Interval: e.Interval, OpenTime: e.FirstID, CloseTime: e.LastID,
		Open: e.More[0], High: e.More[1], Low: e.More[2], Close: e.Price,
		Volume: e.Qty, QuoteVolume: e.ID, Trades: e.Seq, Closed: e.Flags&FlagClosed != 0}
}

// SetBar fills the payload of a kline event.
func (e *Event) SetBar(b Bar) {
	e.Interval, e.FirstID, e.LastID = b.Interval, b.OpenTime, b.CloseTime
	e.More, e.ID = [3]string{b.Open, b.High, b.Low}, b.QuoteVolume
	e.Price, e.Qty, e.Seq = b.Close, b.Volume, b.Trades
	e.Flags &^= FlagClosed
	if b.Closed {
		e.Flags |= FlagClosed
	}
}

// Ticker is the payload of a ticker event: the full derivatives ticker
// state after the venue's update. Fields the venue has not sent yet are "".
type Ticker struct {
	LastPrice, MarkPrice, IndexPrice string
	FundingRate                      string
	OpenInterest                     string // in contracts (base units for linear)
	NextFundingTime                  int64  // Unix ns; 0 when unknown
	Seq                              int64  // the venue's sequence (Bybit cs)
}

// Ticker returns the payload of a ticker event.
func (e *Event) Ticker() Ticker {
	return Ticker{LastPrice: e.Price, MarkPrice: e.More[0], IndexPrice: e.More[1], FundingRate: e.More[2],
		OpenInterest: e.ID, NextFundingTime: e.Seq, Seq: e.LastID}
}

// SetTicker fills the payload of a ticker event.
func (e *Event) SetTicker(t Ticker) {
	e.Price, e.More, e.ID, e.Seq, e.LastID = t.LastPrice, [3]string{t.MarkPrice, t.IndexPrice, t.FundingRate}, t.OpenInterest, t.NextFundingTime, t.Seq
}

// Liquidation is the payload of a liquidation event.
type Liquidation struct {
	// Side of the liquidation order: "sell" when a long position was
	// liquidated, "buy" for a short.
	Side       Side
	Price, Qty string // bankruptcy price, executed quantity
	// N numbers identical liquidations (same time, side, price and
	// quantity) within one venue message, from 0.
	N int64
}

// Liquidation returns the payload of a liquidation event.
func (e *Event) Liquidation() Liquidation {
	return Liquidation{Side: e.Side, Price: e.Price, Qty: e.Qty, N: e.Seq}
}

// appendIDPart appends the id part of the Nats-Msg-Id: the trade id for
// trades, the last update id for book deltas, snapshots and bbo, and the
// forms documented in README (Channels) for kline, ticker and liquidation.
func (e *Event) appendIDPart(dst []byte) []byte {
	switch e.Type {
	case EventTrade:
		return append(dst, e.ID...)
	case EventKline:
		// closed: "<iv>:<open_time>"; open bar: "<iv>:<open_time>:open:<ts>",
		// or, when ts is the open time itself (OKX candles carry no push
		// time), "<iv>:<open_time>:open:v<volume>:<close>": within one bar
		// the volume only grows and the close only moves with a trade, so
		// two different updates never share it.
		dst = append(dst, e.Interval.String()...)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, e.FirstID, 10)
		if e.Flags&FlagClosed == 0 {
			dst = append(dst, ":open:"...)
			if e.TS == e.FirstID {
				dst = append(dst, 'v')
				dst = append(dst, e.Qty...)
				dst = append(dst, ':')
				return append(dst, e.Price...)
			}
			dst = strconv.AppendInt(dst, e.TS, 10)
		}
		return dst
	case EventTicker:
		// "<ts>:<seq>"
		dst = strconv.AppendInt(dst, e.TS, 10)
		dst = append(dst, ':')
		return strconv.AppendInt(dst, e.LastID, 10)
	case EventLiquidation:
		// "<ts>:<side>:<price>:<qty>:<n>"
		dst = strconv.AppendInt(dst, e.TS, 10)
		dst = append(dst, ':')
		dst = append(dst, e.Side.String()...)
		dst = append(dst, ':')
		dst = append(dst, e.Price...)
		dst = append(dst, ':')
		dst = append(dst, e.Qty...)
		dst = append(dst, ':')
		return strconv.AppendInt(dst, e.Seq, 10)
	}
	return strconv.AppendInt(dst, e.LastID, 10)
}

// AppendMsgID appends the event's Nats-Msg-Id,
// "<exchange>:<symbol>:<type>:<id>", to dst. The same exchange event always
// gets the same ID on every replica and after every reconnect.
func (e *Event) AppendMsgID(dst []byte) []byte {
	dst = append(dst, e.Exchange...)
	dst = append(dst, ':')
	dst = append(dst, e.Symbol...)
	dst = append(dst, ':')
	dst = append(dst, e.Type.String()...)
	dst = append(dst, ':')
	return e.appendIDPart(dst)
}

// MsgID returns the event's Nats-Msg-Id. It allocates; hot paths use AppendMsgID.
func (e *Event) MsgID() string { return string(e.AppendMsgID(nil)) }

// AppendSubject appends the data subject to dst: "<prefix>.<exchange>.<symbol>"
// for trades and books (the original contract), and a channel suffix for
// the other events: ".bbo", ".kline.<interval>", ".ticker", ".liquidation".
func (e *Event) AppendSubject(dst []byte, prefix string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '.')
	dst = append(dst, e.Exchange...)
	dst = append(dst, '.')
	dst = append(dst, e.Symbol...)
	switch e.Type {
	case EventBBO, EventTicker, EventLiquidation:
		dst = append(dst, '.')
		dst = append(dst, e.Type.String()...)
	case EventKline:
		dst = append(dst, ".kline."...)
		dst = append(dst, e.Interval.String()...)
	}
	return dst
}
