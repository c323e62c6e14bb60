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
		return fmt.Errorf("duplicate key %q", "ePsptqTmUuba"[i:i+1])
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

// object reads the object at the cursor into p.
func (p *payload) object(sc *jscan.Scanner) error {
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
		if i := keyIndex(key); i >= 0 {
			err = p.member(sc, i)
		} else {
			err = sc.Skip()
		}
		if err != nil {
			return err
		}
	}
}

// top holds the members of the top-level object besides payload keys.
type top struct {
	hasStream, hasData, hasResult, hasID, hasError bool
	dataIsObject                                   bool
	stream                                         string
	id                                             string
	errCode                                        int64
	errMsg                                         string
}

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
func (a *Adapter) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	if int64(len(frame)) > a.cfg.MaxFrameBytes {
		return dst, bridge.Frame{}, malformed("frame of %d bytes exceeds the %d-byte limit", len(frame), a.cfg.MaxFrameBytes)
	}
	sc := jscan.New(string(frame))
	var t top
	var raw, data payload
	if err := a.scanTop(&sc, &t, &raw, &data); err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	if err := sc.End(); err != nil {
		return dst, bridge.Frame{}, malformed("%v", err)
	}
	switch {
	case t.hasData:
		if !t.dataIsObject {
			return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
		}
		return a.event(&sc, &data, recvTS, dst)
	case t.hasError:
		return dst, bridge.Frame{Kind: bridge.FrameError, ReqID: t.id, Err: &APIError{Code: int(t.errCode), Msg: t.errMsg}}, nil
	case t.hasResult && t.hasID:
		return dst, bridge.Frame{Kind: bridge.FrameAck, ReqID: t.id}, nil
	case raw.f[kEvent].kind != vAbsent:
		return a.event(&sc, &raw, recvTS, dst)
	}
	return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

func (a *Adapter) scanTop(sc *jscan.Scanner, t *top, raw, data *payload) error {
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
		switch key {
		case "stream":
			if t.hasStream {
				return fmt.Errorf("duplicate key \"stream\"")
			}
			t.hasStream = true
			if sc.Null() {
				break
			}
			t.stream, err = sc.String()
		case "data":
			if t.hasData {
				return fmt.Errorf("duplicate key \"data\"")
			}
			t.hasData = true
			if sc.Peek() == '{' {
				t.dataIsObject = true
				err = data.object(sc)
			} else {
				err = sc.Skip()
			}
		case "result":
			if t.hasResult {
				return fmt.Errorf("duplicate key \"result\"")
			}
			t.hasResult = true
			err = sc.Skip()
		case "id":
			if t.hasID {
				return fmt.Errorf("duplicate key \"id\"")
			}
			t.hasID = true
			switch c := sc.Peek(); {
			case c == '"':
				t.id, err = sc.String()
			case sc.Null():
			default:
				t.id, err = sc.Number()
			}
		case "error":
			if t.hasError {
				return fmt.Errorf("duplicate key \"error\"")
			}
			t.hasError = true
			err = t.scanError(sc)
		default:
			if i := keyIndex(key); i >= 0 {
				err = raw.member(sc, i)
			} else {
				err = sc.Skip()
			}
		}
		if err != nil {
			return err
		}
	}
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
	_ = sc.EnterObject()
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		switch {
		case key == "code" && sc.Peek() != '"':
			t.errCode, err = sc.Int()
		case key == "msg" && sc.Peek() == '"':
			t.errMsg, err = sc.String()
		default:
			err = sc.Skip()
		}
		if err != nil {
			return err
		}
	}
}

// event turns a payload into events according to its "e".
func (a *Adapter) event(sc *jscan.Scanner, p *payload, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	e := &p.f[kEvent]
	if e.kind != vString {
		if e.kind == vAbsent {
			// Partial-depth and bookTicker payloads carry no "e".
			return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
		}
		return dst, bridge.Frame{}, malformed("\"e\" is not a string")
	}
	switch e.raw {
	case "trade":
		return a.trade(p, recvTS, dst)
	case "depthUpdate":
		return a.depth(sc, p, recvTS, dst)
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
	var bids, asks []bridge.Level
	if n := b.n + as.n; n > 0 {
		levels := make([]bridge.Level, n)
		sc.Seek(b.pos)
		if bids, err = sc.Levels(levels[:b.n:b.n]); err != nil {
			return dst, bridge.Frame{}, malformed("\"b\": %v", err)
		}
		sc.Seek(as.pos)
		if asks, err = sc.Levels(levels[b.n:]); err != nil {
			return dst, bridge.Frame{}, malformed("\"a\": %v", err)
		}
		if b.n == 0 {
			bids = nil
		}
		if as.n == 0 {
			asks = nil
		}
	}
	dst = append(dst, bridge.Event{
		Type: bridge.EventBookDelta, Exchange: Name, Symbol: sym, TS: ts, RecvTS: recvTS,
		FirstID: first, LastID: last, Bids: bids, Asks: asks,
	})
	return dst, bridge.Frame{Kind: bridge.FrameData}, nil
}
