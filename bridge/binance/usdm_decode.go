package binance

import (
	"fmt"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// USD-M payload keys. "a" is the aggregate trade id in aggTrade (a number)
// and the asks in depthUpdate (an array): its kind is checked per event.
const (
	uEvent     = iota // e
	uEventTime        // E
	uTradeTime        // T
	uSymbol           // s
	uA                // a: aggregate id / asks
	uPrice            // p
	uQty              // q
	uMaker            // m
	uFirstID          // U
	uLastID           // u
	uPrevID           // pu
	uBids             // b: bids / best bid price (bookTicker)
	uBidQty           // B: best bid qty (bookTicker)
	uAskQty           // A: best ask qty (bookTicker)
	uIndex            // i: index price (markPriceUpdate)
	uFunding          // r: funding rate (markPriceUpdate)
	uKline            // k: the kline object
	uOrder            // o: the forceOrder order object
	nUKeys
)

var uKeyNames = [nUKeys]string{"e", "E", "T", "s", "a", "p", "q", "m", "U", "u", "pu", "b", "B", "A", "i", "r", "k", "o"}

func uKeyIndex(k string) int {
	if len(k) == 2 {
		if k == "pu" {
			return uPrevID
		}
		return -1
	}
	if len(k) != 1 {
		return -1
	}
	switch k[0] {
	case 'e':
		return uEvent
	case 'E':
		return uEventTime
	case 'T':
		return uTradeTime
	case 's':
		return uSymbol
	case 'a':
		return uA
	case 'p':
		return uPrice
	case 'q':
		return uQty
	case 'm':
		return uMaker
	case 'U':
		return uFirstID
	case 'u':
		return uLastID
	case 'b':
		return uBids
	case 'B':
		return uBidQty
	case 'A':
		return uAskQty
	case 'i':
		return uIndex
	case 'r':
		return uFunding
	case 'k':
		return uKline
	case 'o':
		return uOrder
	}
	return -1
}

// uPayload holds the known members of one USD-M event object.
type uPayload struct {
	f [nUKeys]field
}

// read records the value at the cursor into f (see payload.member).
func (f *field) read(sc *jscan.Scanner) error {
	var err error
	switch c := sc.Peek(); {
	case c == '"':
		f.kind = vString
		f.raw, f.esc, err = sc.RawString()
	case c == '-' || c >= '0' && c <= '9':
		f.kind = vNumber
		f.raw, err = sc.Number()
	case c == 't' || c == 'f':
		var b bool
		b, err = sc.Bool()
		f.kind = vFalse
		if b {
			f.kind = vTrue
		}
	case c == '[':
		f.kind = vArray
		f.pos = sc.Pos()
		f.n, err = sc.SkipCount()
	case c == '{':
		f.kind = vObject
		f.pos = sc.Pos()
		err = sc.Skip()
	default:
		f.kind = vOther
		err = sc.Skip()
	}
	return err
}

func (p *uPayload) key(sc *jscan.Scanner, key string) error {
	i := uKeyIndex(key)
	if i < 0 {
		return sc.Skip()
	}
	if p.f[i].kind != vAbsent {
		return fmt.Errorf("duplicate key %q", key)
	}
	return p.f[i].read(sc)
}

// uObject reads an event object's members into p.
func uObject(sc *jscan.Scanner, p *uPayload) error {
	if err := sc.EnterObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil || !ok {
			return err
		}
		if err := p.key(sc, key); err != nil {
			return err
		}
	}
}

// decodeUSDM is Decode for Market "usdm": the same wrapper, control replies
// and raw payloads as Spot; aggTrade appends one EventTrade (id = the
// aggregate id "a", Seq the same number, TS the trade time "T"),
// depthUpdate one EventBookDelta with FirstID U, LastID u, PrevID pu and TS
// the event time E; bookTicker, kline, markPriceUpdate and forceOrder one
// EventBBO, EventKline, EventTicker or EventLiquidation (usdm_channels.go).
// Other events are FrameIgnored. Unknown keys (st, ps, nq, f, l, ap, P)
// are ignored.
func (a *Adapter) decodeUSDM(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sc := jscan.New(string(frame))
	var t top
	var raw, data uPayload
	if err := sc.EnterObject(); err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err == nil && ok {
			err = t.uMember(&sc, key, &raw, &data)
		}
		if err != nil {
			return dst, bridge.Frame{}, malformed("%v", err)
		}
		if !ok {
			break
		}
	}
	if err := sc.End(); err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	switch {
	case t.seen.Has(topData):
		if !t.dataIsObject {
			return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
		}
		return a.uEvent(&sc, &data, recvTS, dst)
	case t.seen.Has(topError):
		return dst, bridge.Frame{Kind: bridge.FrameError, ReqID: t.id, Err: &APIError{Code: int(t.errCode), Msg: t.errMsg}}, nil
	case t.seen.Has(topResult | topID):
		return dst, bridge.Frame{Kind: bridge.FrameAck, ReqID: t.id}, nil
	case raw.f[uEvent].kind != vAbsent:
		return a.uEvent(&sc, &raw, recvTS, dst)
	}
	return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

// uMember reads one top-level member of a USD-M frame.
func (t *top) uMember(sc *jscan.Scanner, key string, raw, data *uPayload) error {
	var bit jscan.Seen
	switch key {
	case "stream":
		bit = topStream
	case "data":
		bit = topData
	case "result":
		bit = topResult
	case "id":
		bit = topID
	case "error":
		bit = topError
	default:
		return raw.key(sc, key)
	}
	if err := t.seen.Add(bit, key); err != nil {
		return err
	}
	var err error
	switch bit {
	case topStream:
		if !sc.Null() {
			t.stream, err = sc.String()
		}
	case topData:
		if sc.Peek() != '{' {
			return sc.Skip()
		}
		t.dataIsObject = true
		err = uObject(sc, data)
	case topResult:
		err = sc.Skip()
	case topID:
		t.id, err = sc.ID()
	case topError:
		err = t.scanError(sc)
	}
	return err
}

func (a *Adapter) uEvent(sc *jscan.Scanner, p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	e := &p.f[uEvent]
	if e.kind != vString {
		if e.kind == vAbsent {
			return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
		}
		return dst, bridge.Frame{}, malformed("\"e\" is not a string")
	}
	switch e.raw {
	case "aggTrade":
		return a.aggTrade(p, recvTS, dst)
	case "depthUpdate":
		return a.uDepth(sc, p, recvTS, dst)
	case "bookTicker":
		return a.uBookTicker(p, recvTS, dst)
	case "kline":
		return a.uKline(sc, p, recvTS, dst)
	case "markPriceUpdate":
		return a.uMarkPrice(p, recvTS, dst)
	case "forceOrder":
		return a.uForceOrder(sc, p, recvTS, dst)
	case "serverShutdown":
		return dst, bridge.Frame{Kind: bridge.FrameShutdown}, nil
	}
	return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

func (p *uPayload) uint(i int) (int64, string, error) {
	f := &p.f[i]
	if f.kind == vAbsent {
		return 0, "", malformed("missing %q", uKeyNames[i])
	}
	if f.kind != vNumber {
		return 0, "", malformed("%q is not a number", uKeyNames[i])
	}
	n, ok := parseUint(f.raw)
	if !ok {
		return 0, "", malformed("%q is not a non-negative integer: %s", uKeyNames[i], f.raw)
	}
	return n, f.raw, nil
}

func (p *uPayload) decimal(i int) (string, error) {
	f := &p.f[i]
	if f.kind == vAbsent {
		return "", malformed("missing %q", uKeyNames[i])
	}
	if f.kind != vString || f.esc || !jscan.IsDecimal(f.raw) {
		return "", malformed("%q is not a decimal string", uKeyNames[i])
	}
	return f.raw, nil
}

// ms converts a millisecond time of key i to Unix ns.
func (p *uPayload) ms(i int) (int64, error) {
	v, _, err := p.uint(i)
	if err != nil {
		return 0, err
	}
	if v > (1<<63-1)/1_000_000 {
		return 0, malformed("%q out of range: %d", uKeyNames[i], v)
	}
	return v * 1_000_000, nil
}

func (a *Adapter) uSymbol(p *uPayload) (string, error) {
	f := &p.f[uSymbol]
	if f.kind != vString || f.esc {
		return "", malformed("missing or non-string \"s\"")
	}
	s, err := a.core.Syms.Intern(f.raw)
	if err != nil {
		return "", malformed("\"s\": %v", err)
	}
	return s, nil
}

func (a *Adapter) aggTrade(p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.uSymbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	seq, id, err := p.uint(uA)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	price, err := p.decimal(uPrice)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	qty, err := p.decimal(uQty)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	ts, err := p.ms(uTradeTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	side := bridge.SideBuy
	switch p.f[uMaker].kind {
	case vTrue: // buyer is maker: the taker sold
		side = bridge.SideSell
	case vFalse:
	case vAbsent:
		return dst, bridge.Frame{}, malformed("missing \"m\"")
	default:
		return dst, bridge.Frame{}, malformed("\"m\" is not a boolean")
	}
	dst = append(dst, bridge.Event{
		Type: bridge.EventTrade, Exchange: NameUSDM, Symbol: sym, TS: ts, RecvTS: recvTS,
		ID: id, Seq: seq, Price: price, Qty: qty, Side: side,
	})
	return dst, bridge.Frame{Kind: bridge.FrameData}, nil
}

func (a *Adapter) uDepth(sc *jscan.Scanner, p *uPayload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.uSymbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	first, _, err := p.uint(uFirstID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	last, _, err := p.uint(uLastID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	prev, _, err := p.uint(uPrevID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	if first > last {
		return dst, bridge.Frame{}, malformed("\"U\" %d > \"u\" %d", first, last)
	}
	if prev >= last {
		return dst, bridge.Frame{}, malformed("\"pu\" %d not below \"u\" %d", prev, last)
	}
	ts, err := p.ms(uEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	b, as := &p.f[uBids], &p.f[uA]
	if b.kind != vArray || as.kind != vArray {
		return dst, bridge.Frame{}, malformed("\"b\" and \"a\" must be arrays")
	}
	bids, asks, err := sc.Sides(b.pos, b.n, as.pos, as.n)
	if err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	dst = append(dst, bridge.Event{
		Type: bridge.EventBookDelta, Exchange: NameUSDM, Symbol: sym, TS: ts, RecvTS: recvTS,
		FirstID: first, LastID: last, PrevID: prev, Bids: bids, Asks: asks,
	})
	return dst, bridge.Frame{Kind: bridge.FrameData}, nil
}
