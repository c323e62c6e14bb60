package bybit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// Topic kinds.
const (
	topicOther = iota
	topicTrade
	topicBook
)

// maxTradeIDLen bounds a trade id (spot ids are ~19 digits, linear ids
// 36-character UUIDs).
const maxTradeIDLen = 128

// envelope holds the top-level members of a frame.
type envelope struct {
	hasTopic, hasType, hasTS, hasData, hasSuccess, hasOp, hasReqID, hasRetMsg bool

	topic, typ, op, reqID, retMsg string
	ts                            int64
	success                       bool

	kind    int    // topic kind
	sym     string // topic symbol (raw substring)
	dataPos int    // offset of data when it came before topic
	parsed  bool   // data already parsed in place
	book    book
}

// book holds the members of an orderbook data object.
type book struct {
	have       uint8 // bitmask of bS, bB, bA, bU, bSeq
	s          string
	bPos, aPos int
	nb, na     int
	u, seq     int64
}

const (
	bS = 1 << iota
	bB
	bA
	bU
	bSeq
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: bybit: %s", bridge.ErrMalformed, fmt.Sprintf(format, args...))
}

// classify returns the kind and symbol of a topic: "publicTrade.<sym>" or
// "orderbook.<depth>.<sym>".
func classify(topic string) (int, string) {
	if s, ok := strings.CutPrefix(topic, "publicTrade."); ok {
		return topicTrade, s
	}
	if rest, ok := strings.CutPrefix(topic, "orderbook."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			return topicBook, rest[i+1:]
		}
	}
	return topicOther, ""
}

// Decode parses one inbound frame. publicTrade appends one EventTrade per
// trade (ascending as sent); orderbook appends an EventBookSnapshot
// (LastID = u) or an EventBookDelta (FirstID = LastID = u), with Seq = the
// cross sequence seq; both FrameData. A ping reply is FramePong; a
// successful subscribe/unsubscribe reply FrameAck with ReqID; a failed one
// FrameError with an *APIError; other well-formed frames (unknown topics)
// FrameIgnored. Invalid JSON, wrong types, missing fields, a data symbol
// that differs from the topic's, and frames over MaxFrameBytes return an
// error wrapping bridge.ErrMalformed and leave dst unchanged (a frame is
// all or nothing).
func (a *Adapter) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	if int64(len(frame)) > a.cfg.MaxFrameBytes {
		return dst, bridge.Frame{}, malformed("frame of %d bytes exceeds the %d-byte limit", len(frame), a.cfg.MaxFrameBytes)
	}
	n0 := len(dst)
	sc := jscan.New(string(frame))
	var env envelope
	out, err := a.scanTop(&sc, &env, recvTS, dst)
	if err == nil {
		err = sc.End()
	}
	if err == nil && env.hasData && !env.parsed && env.kind != topicOther {
		sc.Seek(env.dataPos)
		out, err = a.data(&sc, &env, recvTS, out)
	}
	if err != nil {
		return dst[:n0], bridge.Frame{}, malformed("%v", err)
	}
	switch {
	case env.hasTopic:
		switch env.kind {
		case topicTrade:
			if !env.hasData {
				return dst[:n0], bridge.Frame{}, malformed("publicTrade frame without data")
			}
			return out, bridge.Frame{Kind: bridge.FrameData}, nil
		case topicBook:
			out, err = a.bookEvent(&sc, &env, recvTS, out)
			if err != nil {
				return dst[:n0], bridge.Frame{}, err
			}
			return out, bridge.Frame{Kind: bridge.FrameData}, nil
		}
		return dst[:n0], bridge.Frame{Kind: bridge.FrameIgnored}, nil
	case env.hasOp:
		return dst[:n0], control(&env), nil
	}
	return dst[:n0], bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

// control classifies an op reply.
func control(env *envelope) bridge.Frame {
	fail := env.hasSuccess && !env.success
	switch {
	case fail:
		return bridge.Frame{Kind: bridge.FrameError, ReqID: env.reqID, Err: &APIError{Op: env.op, RetMsg: env.retMsg}}
	case env.op == "pong" || env.op == "ping":
		return bridge.Frame{Kind: bridge.FramePong, ReqID: env.reqID}
	case env.hasSuccess:
		return bridge.Frame{Kind: bridge.FrameAck, ReqID: env.reqID}
	}
	return bridge.Frame{Kind: bridge.FrameIgnored, ReqID: env.reqID}
}

func dup(key string) error { return fmt.Errorf("duplicate key %q", key) }

func (a *Adapter) scanTop(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterObject(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil {
			return dst, err
		}
		if !ok {
			return dst, nil
		}
		switch key {
		case "topic":
			if env.hasTopic {
				return dst, dup(key)
			}
			env.hasTopic = true
			if env.topic, err = sc.String(); err == nil {
				env.kind, env.sym = classify(env.topic)
			}
		case "type":
			if env.hasType {
				return dst, dup(key)
			}
			env.hasType = true
			env.typ, err = sc.String()
		case "ts":
			if env.hasTS {
				return dst, dup(key)
			}
			env.hasTS = true
			env.ts, _, err = sc.Uint()
		case "data":
			if env.hasData {
				return dst, dup(key)
			}
			env.hasData = true
			if env.hasTopic && env.kind != topicOther {
				env.parsed = true
				dst, err = a.data(sc, env, recvTS, dst)
			} else {
				env.dataPos = sc.Pos()
				err = sc.Skip()
			}
		case "success":
			if env.hasSuccess {
				return dst, dup(key)
			}
			env.hasSuccess = true
			env.success, err = sc.Bool()
		case "op":
			if env.hasOp {
				return dst, dup(key)
			}
			env.hasOp = true
			env.op, err = sc.String()
		case "req_id":
			if env.hasReqID {
				return dst, dup(key)
			}
			env.hasReqID = true
			switch c := sc.Peek(); {
			case c == '"':
				env.reqID, err = sc.String()
			case sc.Null():
			default:
				env.reqID, err = sc.Number()
			}
		case "ret_msg":
			if env.hasRetMsg {
				return dst, dup(key)
			}
			env.hasRetMsg = true
			env.retMsg, err = sc.String()
		default:
			err = sc.Skip()
		}
		if err != nil {
			return dst, err
		}
	}
}

// data parses the data member of a trade or book frame at the cursor.
func (a *Adapter) data(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if env.kind == topicTrade {
		return a.trades(sc, env.sym, recvTS, dst)
	}
	return dst, env.book.object(sc)
}

// Trade item keys.
const (
	tT = 1 << iota
	tSym
	tSide
	tSize
	tPrice
	tID
	tAll = tT | tSym | tSide | tSize | tPrice | tID
)

// trades parses the publicTrade data array, appending one event per item.
func (a *Adapter) trades(sc *jscan.Scanner, topicSym string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	sym, err := a.core.Syms.Intern(topicSym)
	if err != nil {
		return dst, fmt.Errorf("topic symbol: %w", err)
	}
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil {
			return dst, err
		}
		if !ok {
			return dst, nil
		}
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, RecvTS: recvTS}
		if err := a.trade(sc, topicSym, &ev); err != nil {
			return dst, err
		}
		dst = append(dst, ev)
	}
}

func (a *Adapter) trade(sc *jscan.Scanner, topicSym string, ev *bridge.Event) error {
	if err := sc.EnterObject(); err != nil {
		return err
	}
	var have uint8
	set := func(bit uint8, key string) error {
		if have&bit != 0 {
			return dup(key)
		}
		have |= bit
		return nil
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch key {
		case "T":
			if err = set(tT, key); err == nil {
				var ms int64
				if ms, _, err = sc.Uint(); err == nil {
					ev.TS, err = msToNS(ms)
				}
			}
		case "s":
			if err = set(tSym, key); err == nil {
				var s string
				var esc bool
				if s, esc, err = sc.RawString(); err == nil && (esc || s != topicSym) {
					err = fmt.Errorf("trade symbol %q differs from topic symbol %q", s, topicSym)
				}
			}
		case "S":
			if err = set(tSide, key); err == nil {
				var s string
				if s, _, err = sc.RawString(); err == nil {
					switch s {
					case "Buy":
						ev.Side = bridge.SideBuy
					case "Sell":
						ev.Side = bridge.SideSell
					default:
						err = fmt.Errorf("trade side %q", s)
					}
				}
			}
		case "v":
			if err = set(tSize, key); err == nil {
				ev.Qty, err = sc.Decimal()
			}
		case "p":
			if err = set(tPrice, key); err == nil {
				ev.Price, err = sc.Decimal()
			}
		case "i":
			if err = set(tID, key); err == nil {
				var esc bool
				if ev.ID, esc, err = sc.RawString(); err == nil && (esc || !validTradeID(ev.ID)) {
					err = fmt.Errorf("invalid trade id %q", ev.ID)
				}
			}
		default:
			err = sc.Skip()
		}
		if err != nil {
			return err
		}
	}
	if have != tAll {
		return errors.New("trade lacks one of T, s, S, v, p, i")
	}
	return nil
}

// validTradeID: 1..128 characters of [A-Za-z0-9_.-].
func validTradeID(s string) bool {
	if len(s) == 0 || len(s) > maxTradeIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func msToNS(ms int64) (int64, error) {
	if ms > (1<<63-1)/1_000_000 {
		return 0, fmt.Errorf("time %d ms out of range", ms)
	}
	return ms * 1_000_000, nil
}

// object reads an orderbook data object, recording level arrays by offset.
func (b *book) object(sc *jscan.Scanner) error {
	if err := sc.EnterObject(); err != nil {
		return err
	}
	set := func(bit uint8, key string) error {
		if b.have&bit != 0 {
			return dup(key)
		}
		b.have |= bit
		return nil
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
		case "s":
			if err = set(bS, key); err == nil {
				var esc bool
				if b.s, esc, err = sc.RawString(); err == nil && esc {
					err = errors.New("escaped symbol")
				}
			}
		case "b":
			if err = set(bB, key); err == nil {
				b.bPos = sc.Pos()
				b.nb, err = sc.SkipCount()
			}
		case "a":
			if err = set(bA, key); err == nil {
				b.aPos = sc.Pos()
				b.na, err = sc.SkipCount()
			}
		case "u":
			if err = set(bU, key); err == nil {
				b.u, _, err = sc.Uint()
			}
		case "seq":
			if err = set(bSeq, key); err == nil {
				b.seq, _, err = sc.Uint()
			}
		default:
			err = sc.Skip()
		}
		if err != nil {
			return err
		}
	}
}

// bookEvent builds the snapshot or delta event of an orderbook frame.
func (a *Adapter) bookEvent(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	b := &env.book
	if !env.hasData {
		return dst, malformed("orderbook frame without data")
	}
	if b.have&(bS|bB|bA|bU) != bS|bB|bA|bU {
		return dst, malformed("orderbook data lacks one of s, b, a, u")
	}
	if b.s != env.sym {
		return dst, malformed("orderbook symbol %q differs from topic %q", b.s, env.topic)
	}
	if !env.hasTS {
		return dst, malformed("orderbook frame without ts")
	}
	ts, err := msToNS(env.ts)
	if err != nil {
		return dst, malformed("%v", err)
	}
	sym, err := a.core.Syms.Intern(env.sym)
	if err != nil {
		return dst, malformed("topic symbol: %v", err)
	}
	ev := bridge.Event{Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recvTS, LastID: b.u, Seq: b.seq}
	switch env.typ {
	case "snapshot":
		ev.Type = bridge.EventBookSnapshot
	case "delta":
		ev.Type = bridge.EventBookDelta
		ev.FirstID = b.u
	default:
		return dst, malformed("orderbook type %q", env.typ)
	}
	if n := b.nb + b.na; n > 0 {
		levels := make([]bridge.Level, n)
		sc.Seek(b.bPos)
		if ev.Bids, err = sc.Levels(levels[:b.nb:b.nb]); err != nil {
			return dst, malformed("\"b\": %v", err)
		}
		sc.Seek(b.aPos)
		if ev.Asks, err = sc.Levels(levels[b.nb:]); err != nil {
			return dst, malformed("\"a\": %v", err)
		}
		if b.nb == 0 {
			ev.Bids = nil
		}
		if b.na == 0 {
			ev.Asks = nil
		}
	}
	return append(dst, ev), nil
}
