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
)

var eventTypeNames = [...]string{
	EventUnknown:      "unknown",
	EventTrade:        "trade",
	EventBookSnapshot: "book.snapshot",
	EventBookDelta:    "book.delta",
}

// String returns the wire name of t ("trade", "book.snapshot", "book.delta").
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
// book delta or one order book snapshot of one symbol on one exchange.
//
// Prices and quantities are the exchange's decimal strings, never floats.
// Times are Unix nanoseconds. An Event is a value: the runner hands slices of
// them to publishers and handlers, which must not retain the slice after
// returning (copy what they keep).
type Event struct {
	Type     EventType
	Exchange string // "binance", "bybit", "bybit-linear"
	Symbol   string // the exchange's upper-case symbol, e.g. "BTCUSDT"
	TS       int64  // exchange event time, Unix ns
	RecvTS   int64  // bridge receive time, Unix ns, local clock

	// Trade fields.
	ID    string // exchange trade id, verbatim
	Seq   int64  // numeric trade id where the exchange's ids are consecutive (Binance), else 0
	Price string
	Qty   string
	Side  Side

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
	// update's id (BookStreamChained: OKX prevSeqId), the LastID of the
	// update before this one; 0 otherwise. It is not part of the wire
	// body: such adapters also set FirstID = PrevID+1 so consumers chain
	// deltas by FirstID/LastID as for every venue.
	PrevID int64
	Bids   []Level
	Asks   []Level
}

// MsgIDKey returns the id part of the Nats-Msg-Id: the trade id for trades,
// the last update id for book deltas and snapshots.
func (e *Event) appendIDPart(dst []byte) []byte {
	if e.Type == EventTrade {
		return append(dst, e.ID...)
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

// AppendSubject appends the data subject "<prefix>.<exchange>.<symbol>" to dst.
func (e *Event) AppendSubject(dst []byte, prefix string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '.')
	dst = append(dst, e.Exchange...)
	dst = append(dst, '.')
	return append(dst, e.Symbol...)
}
