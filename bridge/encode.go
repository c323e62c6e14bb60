package bridge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the event's wire body (schema version SchemaVersion) to
// dst and returns the extended buffer. It does not allocate when dst has room.
//
//	{"v":1,"type":"trade","exchange":"binance","symbol":"BTCUSDT","ts":..,"recv_ts":..,
//	 "id":"12345","price":"50000.10","qty":"0.001","side":"buy"}
//	{"v":1,"type":"book.delta",...,"first_id":10,"last_id":12,"bids":[["p","q"]],"asks":[]}
//	{"v":1,"type":"book.delta",...,"first_id":10,"prev_id":9,"last_id":12,...} (binance-usdm)
//	{"v":1,"type":"book.snapshot",...,"last_id":12,"bids":[...],"asks":[...]}
//	{"v":1,"type":"book.snapshot",...,"last_id":3,"reset":true,...} (after a venue id reset, FlagIDReset)
//
// Book events of a venue with several update-id series per symbol (Bybit)
// carry "depth" after "last_id". bbo, kline, ticker and liquidation bodies:
// see appendChannelJSON and schema/.
func (e *Event) AppendJSON(dst []byte) []byte {
	// Each step is a single append or a strconv-equivalent formatter
	// (appendInt, appendJSONString with a word-at-a-time check): the
	// output is byte for byte that of the plain strconv encoder
	// (TestAppendJSONReference, FuzzAppendJSONReference).
	if e.Type == EventTrade {
		dst = append(dst, tradeBodyStart...)
	} else {
		dst = append(dst, bodyStart...)
		dst = append(dst, e.Type.String()...)
		dst = append(dst, `","exchange":`...)
	}
	dst = appendJSONString(dst, e.Exchange)
	dst = append(dst, `,"symbol":`...)
	dst = appendJSONString(dst, e.Symbol)
	dst = append(dst, `,"ts":`...)
	dst = appendInt(dst, e.TS)
	dst = append(dst, `,"recv_ts":`...)
	dst = appendInt(dst, e.RecvTS)
	switch e.Type {
	case EventTrade:
		dst = append(dst, `,"id":`...)
		dst = appendJSONString(dst, e.ID)
		dst = append(dst, `,"price":`...)
		dst = appendJSONString(dst, e.Price)
		dst = append(dst, `,"qty":`...)
		dst = appendJSONString(dst, e.Qty)
		dst = append(dst, `,"side":"`...)
		dst = append(dst, e.Side.String()...)
		dst = append(dst, '"')
	case EventBookDelta, EventBookSnapshot:
		if e.Type == EventBookDelta {
			dst = append(dst, `,"first_id":`...)
			dst = strconv.AppendInt(dst, e.FirstID, 10)
			if e.PrevID > 0 && e.FirstID != e.PrevID+1 { // first_id alone does not chain it (binance-usdm)
				dst = append(dst, `,"prev_id":`...)
				dst = strconv.AppendInt(dst, e.PrevID, 10)
			}
		}
		dst = append(dst, `,"last_id":`...)
		dst = strconv.AppendInt(dst, e.LastID, 10)
		if e.Depth != 0 {
			dst = append(dst, `,"depth":`...)
			dst = strconv.AppendInt(dst, int64(e.Depth), 10)
		}
		if e.Type == EventBookSnapshot && e.Flags&FlagIDReset != 0 {
			dst = append(dst, `,"reset":true`...)
		}
		dst = append(dst, `,"bids":`...)
		dst = appendLevels(dst, e.Bids)
		dst = append(dst, `,"asks":`...)
		dst = appendLevels(dst, e.Asks)
	default:
		dst = e.appendChannelJSON(dst)
	}
	return append(dst, '}')
}

func appendLevels(dst []byte, levels []Level) []byte {
	dst = append(dst, '[')
	for i, l := range levels {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendJSONString(dst, l[0])
		dst = append(dst, ',')
		dst = appendJSONString(dst, l[1])
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// bodyStart is every body's opening up to the type name; tradeBodyStart
// is a trade body's up to the exchange's value.
var (
	bodyStart      = `{"v":` + strconv.Itoa(SchemaVersion) + `,"type":"`
	tradeBodyStart = bodyStart + EventTrade.String() + `","exchange":`
)

const hexDigits = "0123456789abcdef"

// jsonSafe marks the bytes a JSON string holds as they are: printable
// ASCII other than '"' and '\\'.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string literal. Decimal strings and
// validated identifiers take the fast path (no escaping needed).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Fast path: nothing to escape (decimals, identifiers), one append.
	i := safePrefix(s)
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// wireEvent is the decoded form of the wire body, used by DecodeJSON.
type wireEvent struct {
	V        int        `json:"v"`
	Type     string     `json:"type"`
	Exchange string     `json:"exchange"`
	Symbol   string     `json:"symbol"`
	TS       int64      `json:"ts"`
	RecvTS   int64      `json:"recv_ts"`
	ID       string     `json:"id"`
	Price    string     `json:"price"`
	Qty      string     `json:"qty"`
	Side     string     `json:"side"`
	FirstID  int64      `json:"first_id"`
	PrevID   int64      `json:"prev_id"`
	LastID   int64      `json:"last_id"`
	Depth    int        `json:"depth"`
	Reset    bool       `json:"reset"`
	Bids     [][]string `json:"bids"`
	Asks     [][]string `json:"asks"`
	wireChannel
}

// DecodeJSON parses a wire body produced by AppendJSON. Consumers (the CLI's
// tail, tests, Go users of the stream) use it; it is not on the bridge's hot
// path. It returns ErrBadEvent (wrapped) for a body that does not follow the
// schema.
func DecodeJSON(body []byte) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if w.V != SchemaVersion {
		return Event{}, fmt.Errorf("%w: schema version %d, want %d", ErrBadEvent, w.V, SchemaVersion)
	}
	e := Event{
		Type: ParseEventType(w.Type), Exchange: w.Exchange, Symbol: w.Symbol,
		TS: w.TS, RecvTS: w.RecvTS, ID: w.ID, Price: w.Price, Qty: w.Qty,
		FirstID: w.FirstID, LastID: w.LastID,
	}
	if e.Type == EventUnknown {
		return Event{}, fmt.Errorf("%w: unknown type %q", ErrBadEvent, w.Type)
	}
	switch w.Side {
	case "buy":
		e.Side = SideBuy
	case "sell":
		e.Side = SideSell
	}
	if e.Type == EventBookDelta || e.Type == EventBookSnapshot {
		e.Depth = w.Depth
	}
	if e.Type == EventBookSnapshot && w.Reset {
		e.Flags |= FlagIDReset
	}
	if err := w.fill(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if e.Type == EventBookDelta {
		e.PrevID = w.PrevID
	}
	if e.Type == EventTrade && (e.Exchange == "binance" || e.Exchange == "binance-usdm") { // consecutive ids
		if n, err := strconv.ParseInt(e.ID, 10, 64); err == nil {
			e.Seq = n
		}
	}
	var err error
	if e.Bids, err = toLevels(w.Bids); err != nil {
		return Event{}, err
	}
	if e.Asks, err = toLevels(w.Asks); err != nil {
		return Event{}, err
	}
	return e, nil
}

func toLevels(in [][]string) ([]Level, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Level, len(in))
	for i, l := range in {
		if len(l) != 2 {
			return nil, fmt.Errorf("%w: level with %d elements", ErrBadEvent, len(l))
		}
		out[i] = Level{l[0], l[1]}
	}
	return out, nil
}
