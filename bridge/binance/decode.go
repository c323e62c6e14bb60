package binance

import (
	"fmt"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// Payload keys the decoder reads. Binance keys differ only in case, so they
// are matched byte for byte.
const (
	kEvent     = iota // e: event type
	kEventTime        // E: event time
	kSymbol           // s
	kTradeID          // t
	kPrice            // p
	kQty              // q
	kTradeTime        // T
	kMaker            // m: buyer is maker
	kFirstID          // U
	kLastID           // u
	kBids             // b
	kAsks             // a
	nKeys
)

func keyIndex(k string) int {
	if len(k) != 1 {
		return -1
	}
	switch k[0] {
	case 'e':
		return kEvent
	case 'E':
		return kEventTime
	case 's':
		return kSymbol
	case 't':
		return kTradeID
	case 'p':
		return kPrice
	case 'q':
		return kQty
	case 'T':
		return kTradeTime
	case 'm':
		return kMaker
	case 'U':
		return kFirstID
	case 'u':
		return kLastID
	case 'b':
		return kBids
	case 'a':
		return kAsks
	}
	return -1
}

// Value kinds of a recorded field.
const (
	vAbsent = iota
	vString
	vNumber
	vTrue
	vFalse
	vArray
	vOther
	vObject // USD-M only: an object member, pos its offset (see field.read)
)

// field is one recorded payload member: its kind and raw text (strings
// without quotes, escapes undecoded), or for arrays their offset and length.
type field struct {
	kind uint8
	esc  bool
	raw  string
	pos  int
	n    int
}

// payload holds the known members of one event object. Types are checked
// only once the event type is known, so unknown events with differently
// typed fields are ignored rather than rejected.
type payload struct {
	f   [nKeys]field
	any bool // at least one known key seen
}

// member records the value at the cursor under key k (already known to be
// a payload key, index i).
func (p *payload) member(sc *jscan.Scanner, i int) error {
	f := &p.f[i]
	if f.kind != vAbsent {
		return fmt.Errorf("duplicate key %q", keyNames[i])
	}
	p.any = true
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
	default:
		f.kind = vOther
		err = sc.Skip()
	}
	return err
}

// key records the member at the cursor if key is a payload key and skips
// it otherwise.
func (p *payload) key(sc *jscan.Scanner, key string) error {
	if i := keyIndex(key); i >= 0 {
		return p.member(sc, i)
	}
	return sc.Skip()
}

// top holds the members of the top-level object besides payload keys.
type top struct {
	seen         jscan.Seen // of the top* keys
	dataIsObject bool
	stream       string
	id           string
	errCode      int64
	errMsg       string
}

// Top-level keys, as jscan.Seen bits.
const (
	topStream jscan.Seen = 1 << iota
	topData
	topResult
	topID
	topError
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: binance: %s", bridge.ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode parses one inbound frame: a combined-stream wrapper
// {"stream":..,"data":{..}} or a raw payload. trade appends one
// EventTrade, depthUpdate one EventBookDelta (FrameData); serverShutdown
// returns FrameShutdown; {"result":..,"id":N} FrameAck with ReqID N; an
// {"error":{..},"id":N} reply FrameError with an *APIError; any other
// well-formed frame FrameIgnored. Invalid JSON, wrong field types, missing
// fields and frames over MaxFrameBytes return an error wrapping
// bridge.ErrMalformed and leave dst unchanged.
//
// A combined-stream trade in Binance's own layout is read in place
// (fastTrade: no copy of the frame; its id, price and quantity are copied
// into an arena chunk shared by many trades), and so is a depthUpdate of
// at most 64 levels (fastDepth: its levels are copied into an arena), and
// a USD-M depthUpdate of at most 64 levels (fastUSDMDepth); every other
// frame is copied once and decoded from the copy.
func (a *Adapter) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	if int64(len(frame)) > a.cfg.MaxFrameBytes {
		return dst, bridge.Frame{}, malformed("frame of %d bytes exceeds the %d-byte limit", len(frame), a.cfg.MaxFrameBytes)
	}
	if a.usdm {
		if out, ok := a.fastUSDMDepth(frame, recvTS, dst); ok {
			return out, bridge.Frame{Kind: bridge.FrameData}, nil
		}
		return a.decodeUSDM(frame, recvTS, dst) // reads an owned copy
	}
	if out, ok := a.fastTrade(frame, recvTS, dst); ok {
		return out, bridge.Frame{Kind: bridge.FrameData}, nil
	}
	if out, ok := a.fastDepth(frame, recvTS, dst); ok {
		return out, bridge.Frame{Kind: bridge.FrameData}, nil
	}
	return a.decode(frame, recvTS, dst)
}

// decode is the general decoder, for every frame the fast path does not
// take. It reads an owned copy of the frame: its events, Frame and errors
// may keep substrings of it.
func (a *Adapter) decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sc := jscan.New(string(frame))
	var t top
	var raw, data payload
	if err := members(&sc, &t, &raw, &data); err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	if err := sc.End(); err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	switch {
	case t.seen.Has(topData):
		if !t.dataIsObject {
			return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
		}
		return a.event(&sc, &data, recvTS, dst)
	case t.seen.Has(topError):
		return dst, bridge.Frame{Kind: bridge.FrameError, ReqID: t.id, Err: &APIError{Code: int(t.errCode), Msg: t.errMsg}}, nil
	case t.seen.Has(topResult | topID):
		return dst, bridge.Frame{Kind: bridge.FrameAck, ReqID: t.id}, nil
	case raw.f[kEvent].kind != vAbsent || isBookTicker(&raw):
		return a.event(&sc, &raw, recvTS, dst)
	}
	return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

// members reads an object's members: the frame's top level into t (a
// payload key of a raw stream into raw, the data object into data), or,
// with t nil, the data object into data. A direct loop rather than
// jscan.Object's callback: it runs for every member of every frame
// (about 40 ns per trade frame saved).
func members(sc *jscan.Scanner, t *top, raw, data *payload) error {
	if err := sc.EnterObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil || !ok {
			return err
		}
		if t != nil {
			err = t.member(sc, key, raw, data)
		} else {
			err = data.key(sc, key)
		}
		if err != nil {
			return err
		}
	}
}

// member reads one top-level member: a wrapper or control key into t, a
// payload key of a raw stream into raw, the data object into data.
func (t *top) member(sc *jscan.Scanner, key string, raw, data *payload) error {
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
		err = members(sc, nil, nil, data)
	case topResult:
		err = sc.Skip()
	case topID:
		t.id, err = sc.ID()
	case topError:
		err = t.scanError(sc)
	}
	return err
}

// scanError reads {"code":N,"msg":"..."}; other shapes are kept as text.
func (t *top) scanError(sc *jscan.Scanner) error {
	if sc.Peek() != '{' {
		start := sc.Pos()
		if err := sc.Skip(); err != nil {
			return err
		}
		t.errMsg = sc.Input()[start:sc.Pos()]
		return nil
	}
	return sc.Object(func(key string) (err error) {
		switch {
		case key == "code" && sc.Peek() != '"':
			t.errCode, err = sc.Int()
		case key == "msg" && sc.Peek() == '"':
			t.errMsg, err = sc.String()
		default:
			err = sc.Skip()
		}
		return err
	})
}

// event turns a payload into events according to its "e".
func (a *Adapter) event(sc *jscan.Scanner, p *payload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	e := &p.f[kEvent]
	if e.kind != vString {
		if e.kind == vAbsent {
			// Partial-depth and bookTicker payloads carry no "e".
			if isBookTicker(p) {
				return a.bookTicker(sc.Input(), recvTS, dst)
			}
			return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
		}
		return dst, bridge.Frame{}, malformed("\"e\" is not a string")
	}
	switch e.raw {
	case "trade":
		return a.trade(p, recvTS, dst)
	case "depthUpdate":
		return a.depth(sc, p, recvTS, dst)
	case "kline":
		return a.kline(sc.Input(), recvTS, dst)
	case "serverShutdown":
		return dst, bridge.Frame{Kind: bridge.FrameShutdown}, nil
	}
	return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

var keyNames = [nKeys]string{"e", "E", "s", "t", "p", "q", "T", "m", "U", "u", "b", "a"}

func (p *payload) uint(i int) (int64, string, error) {
	f := &p.f[i]
	if f.kind == vAbsent {
		return 0, "", malformed("missing %q", keyNames[i])
	}
	if f.kind != vNumber {
		return 0, "", malformed("%q is not a number", keyNames[i])
	}
	n, ok := parseUint(f.raw)
	if !ok {
		return 0, "", malformed("%q is not a non-negative integer: %s", keyNames[i], f.raw)
	}
	return n, f.raw, nil
}

func (p *payload) decimal(i int) (string, error) {
	f := &p.f[i]
	if f.kind == vAbsent {
		return "", malformed("missing %q", keyNames[i])
	}
	if f.kind != vString || f.esc || !jscan.IsDecimal(f.raw) {
		return "", malformed("%q is not a decimal string", keyNames[i])
	}
	return f.raw, nil
}

func (a *Adapter) symbol(p *payload) (string, error) {
	f := &p.f[kSymbol]
	if f.kind != vString || f.esc {
		return "", malformed("missing or non-string \"s\"")
	}
	s, err := a.core.Syms.Intern(f.raw)
	if err != nil {
		return "", malformed("\"s\": %v", err)
	}
	return s, nil
}

// parseUint parses the digits of a JSON integer (no sign, fraction or
// exponent) into a non-negative int64.
func parseUint(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// toNS converts an event time in the stream's unit to Unix ns.
func (a *Adapter) toNS(v int64, key int) (int64, error) {
	mul := int64(1_000_000)
	if a.cfg.MicrosecondTimestamps {
		mul = 1_000
	}
	if v > (1<<63-1)/mul {
		return 0, malformed("%q out of range: %d", keyNames[key], v)
	}
	return v * mul, nil
}

func (a *Adapter) trade(p *payload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.symbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	seq, id, err := p.uint(kTradeID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	price, err := p.decimal(kPrice)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	qty, err := p.decimal(kQty)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	tt, _, err := p.uint(kTradeTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	ts, err := a.toNS(tt, kTradeTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	side := bridge.SideBuy
	switch p.f[kMaker].kind {
	case vTrue: // buyer is maker: the taker sold
		side = bridge.SideSell
	case vFalse:
	case vAbsent:
		return dst, bridge.Frame{}, malformed("missing \"m\"")
	default:
		return dst, bridge.Frame{}, malformed("\"m\" is not a boolean")
	}
	dst = append(dst, bridge.Event{
		Type: bridge.EventTrade, Exchange: Name, Symbol: sym, TS: ts, RecvTS: recvTS,
		ID: id, Seq: seq, Price: price, Qty: qty, Side: side,
	})
	return dst, bridge.Frame{Kind: bridge.FrameData}, nil
}

func (a *Adapter) depth(sc *jscan.Scanner, p *payload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	sym, err := a.symbol(p)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	first, _, err := p.uint(kFirstID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	last, _, err := p.uint(kLastID)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	if first > last {
		return dst, bridge.Frame{}, malformed("\"U\" %d > \"u\" %d", first, last)
	}
	et, _, err := p.uint(kEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	ts, err := a.toNS(et, kEventTime)
	if err != nil {
		return dst, bridge.Frame{}, err
	}
	b, as := &p.f[kBids], &p.f[kAsks]
	if b.kind != vArray || as.kind != vArray {
		return dst, bridge.Frame{}, malformed("\"b\" and \"a\" must be arrays")
	}
	bids, asks, err := sc.Sides(b.pos, b.n, as.pos, as.n)
	if err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	dst = append(dst, bridge.Event{
		Type: bridge.EventBookDelta, Exchange: Name, Symbol: sym, TS: ts, RecvTS: recvTS,
		FirstID: first, LastID: last, Bids: bids, Asks: asks,
	})
	return dst, bridge.Frame{Kind: bridge.FrameData}, nil
}
