package bybit

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// Topic kinds.
const (
	topicOther = iota
	topicTrade
	topicBook
)

// tradePrefix starts the public trade frames Decode reads in place.
var tradePrefix = []byte(`{"topic":"publicTrade.`)

// maxTradeIDLen bounds a trade id (spot ids are ~19 digits, linear ids
// 36-character UUIDs).
const maxTradeIDLen = 128

// envelope holds the top-level members of a frame.
type envelope struct {
	seen jscan.Seen // of the env* keys

	topic, typ, op, reqID, retMsg string
	ts                            int64
	success                       bool

	kind     int    // topic kind
	sym      string // topic symbol (raw substring)
	depth    int    // orderbook topic depth
	dataPos  int    // offset of data when it came before topic
	parsed   bool   // data already parsed in place
	book     book
	arena    *jscan.Arena // owns the strings trade events keep
	borrowed bool         // sc reads the caller's frame, not a copy
}

// Top-level keys, as jscan.Seen bits.
const (
	envTopic jscan.Seen = 1 << iota
	envType
	envTS
	envData
	envSuccess
	envOp
	envReqID
	envRetMsg
)

// book holds the members of an orderbook data object.
type book struct {
	seen       jscan.Seen // of the book* keys
	s          string
	bPos, aPos int
	nb, na     int
	u, seq     int64
}

// Orderbook data keys, as jscan.Seen bits.
const (
	bookS jscan.Seen = 1 << iota
	bookB
	bookA
	bookU
	bookSeq
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: bybit: %s", bridge.ErrMalformed, fmt.Sprintf(format, args...))
}

// classify returns the kind, symbol and book depth of a topic:
// "publicTrade.<sym>" or "orderbook.<depth>.<sym>" (a depth that is not a
// positive number makes the topic unknown).
func classify(topic string) (int, string, int) {
	if s, ok := strings.CutPrefix(topic, "publicTrade."); ok {
		return topicTrade, s, 0
	}
	if rest, ok := strings.CutPrefix(topic, "orderbook."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			if d, err := strconv.Atoi(rest[:i]); err == nil && d > 0 {
				return topicBook, rest[i+1:], d
			}
		}
	}
	if k, s, _ := classifyChannel(topic); k != topicOther {
		return k, s, 0
	}
	return topicOther, "", 0
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
	if out, ok := a.fastTrades(frame, recvTS, dst); ok {
		return out, bridge.Frame{Kind: bridge.FrameData}, nil
	}
	if out, ok := a.fastBook(frame, recvTS, dst); ok {
		return out, bridge.Frame{Kind: bridge.FrameData}, nil
	}
	return a.decode(frame, recvTS, dst)
}

// decode is the general decoder, for every frame the fast paths
// (fastTrades, fastBook) do not take.
func (a *Adapter) decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	n0 := len(dst)
	// A public trade frame (Bybit sends its topic first) is read in place:
	// its memory is reused for the next frame, so the strings its events
	// keep are copied into an arena chunk. Every other frame is decoded
	// from an owned copy, so decoders of other topics may keep substrings
	// of it (book levels and control fields are copied again regardless).
	var sc jscan.Scanner
	var env envelope
	if env.borrowed = bytes.HasPrefix(frame, tradePrefix); env.borrowed {
		sc = jscan.New(unsafe.String(unsafe.SliceData(frame), len(frame)))
	} else {
		sc = jscan.New(string(frame))
	}
	env.arena = a.arenas.Get()
	defer a.arenas.Put(env.arena)
	out := dst
	err := sc.Object(func(key string) (err error) {
		out, err = a.member(&sc, &env, key, recvTS, out)
		return err
	})
	if err == nil {
		err = sc.End()
	}
	if err == nil && env.seen.Has(envData) && !env.parsed && inPlace(env.kind) {
		sc.Seek(env.dataPos)
		out, err = a.data(&sc, &env, recvTS, out)
	}
	if err != nil {
		return dst[:n0], bridge.Frame{}, malformed("%v", err)
	}
	switch {
	case env.seen.Has(envTopic):
		switch env.kind {
		case topicTrade:
			if !env.seen.Has(envData) {
				return dst[:n0], bridge.Frame{}, malformed("publicTrade frame without data")
			}
			return out, bridge.Frame{Kind: bridge.FrameData}, nil
		case topicBook:
			if env.depth == 1 && a.cfg.BookDepth != 1 {
				out, err = a.bbo(&sc, &env, recvTS, out)
			} else {
				out, err = a.bookEvent(&sc, &env, recvTS, out)
			}
			if err != nil {
				return dst[:n0], bridge.Frame{}, err
			}
			return out, bridge.Frame{Kind: bridge.FrameData}, nil
		case topicTicker, topicKline, topicLiquidation:
			if out, err = a.channel(sc.Input(), &env, recvTS, out); err != nil {
				return dst[:n0], bridge.Frame{}, err
			}
			return out, bridge.Frame{Kind: bridge.FrameData}, nil
		}
		return dst[:n0], bridge.Frame{Kind: bridge.FrameIgnored}, nil
	case env.seen.Has(envOp):
		return dst[:n0], control(&env), nil
	}
	return dst[:n0], bridge.Frame{Kind: bridge.FrameIgnored}, nil
}

// inPlace reports whether a topic kind's data is decoded by the main pass
// (trades, books); the other channels re-read the frame (channels.go).
func inPlace(kind int) bool { return kind == topicTrade || kind == topicBook }

// control classifies an op reply.
func control(env *envelope) bridge.Frame {
	if env.borrowed { // not for op replies, which carry no topic; but never alias the frame
		env.reqID, env.op, env.retMsg = strings.Clone(env.reqID), strings.Clone(env.op), strings.Clone(env.retMsg)
	}
	fail := env.seen.Has(envSuccess) && !env.success
	switch {
	case fail:
		return bridge.Frame{Kind: bridge.FrameError, ReqID: env.reqID, Err: &APIError{Op: env.op, RetMsg: env.retMsg}}
	case env.op == "pong" || env.op == "ping":
		return bridge.Frame{Kind: bridge.FramePong, ReqID: env.reqID}
	case env.seen.Has(envSuccess):
		return bridge.Frame{Kind: bridge.FrameAck, ReqID: env.reqID}
	}
	return bridge.Frame{Kind: bridge.FrameIgnored, ReqID: env.reqID}
}

// envKey returns the bit of a top-level key the decoder reads, or 0.
func envKey(key string) jscan.Seen {
	switch key {
	case "topic":
		return envTopic
	case "type":
		return envType
	case "ts":
		return envTS
	case "data":
		return envData
	case "success":
		return envSuccess
	case "op":
		return envOp
	case "req_id":
		return envReqID
	case "ret_msg":
		return envRetMsg
	}
	return 0
}

// member reads one top-level member into env; trade data that follows
// its topic is decoded in place and appended to dst.
func (a *Adapter) member(sc *jscan.Scanner, env *envelope, key string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	bit := envKey(key)
	if bit == 0 {
		return dst, sc.Skip()
	}
	if err := env.seen.Add(bit, key); err != nil {
		return dst, err
	}
	var err error
	switch bit {
	case envTopic:
		if env.topic, err = sc.String(); err == nil {
			env.kind, env.sym, env.depth = classify(env.topic)
		}
	case envType:
		env.typ, err = sc.String()
	case envTS:
		env.ts, _, err = sc.Uint()
	case envData:
		if env.seen.Has(envTopic) && inPlace(env.kind) {
			env.parsed = true
			return a.data(sc, env, recvTS, dst)
		}
		env.dataPos = sc.Pos()
		err = sc.Skip()
	case envSuccess:
		env.success, err = sc.Bool()
	case envOp:
		env.op, err = sc.String()
	case envReqID:
		env.reqID, err = sc.ID()
	case envRetMsg:
		env.retMsg, err = sc.String()
	}
	return dst, err
}

// data parses the data member of a trade or book frame at the cursor.
func (a *Adapter) data(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if env.kind == topicTrade {
		return a.trades(sc, env.sym, env.arena, recvTS, dst)
	}
	return dst, env.book.object(sc)
}

// Trade item keys, as jscan.Seen bits.
const (
	tT jscan.Seen = 1 << iota
	tSym
	tSide
	tSize
	tPrice
	tID
	tAll = tT | tSym | tSide | tSize | tPrice | tID
)

// trades parses the publicTrade data array, appending one event per item.
func (a *Adapter) trades(sc *jscan.Scanner, topicSym string, ar *jscan.Arena, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	sym, err := a.core.Syms.Intern(topicSym)
	if err != nil {
		return dst, fmt.Errorf("topic symbol: %w", err)
	}
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, RecvTS: recvTS}
		if err := trade(sc, topicSym, &ev); err != nil {
			return dst, err
		}
		ev.ID, ev.Price, ev.Qty = ar.Copy(ev.ID), ar.Copy(ev.Price), ar.Copy(ev.Qty)
		dst = append(dst, ev)
	}
}

func trade(sc *jscan.Scanner, topicSym string, ev *bridge.Event) error {
	var seen jscan.Seen
	err := sc.Object(func(key string) (err error) {
		switch key {
		case "T":
			if err = seen.Add(tT, key); err == nil {
				var ms int64
				if ms, _, err = sc.Uint(); err == nil {
					ev.TS, err = msToNS(ms)
				}
			}
		case "s":
			if err = seen.Add(tSym, key); err == nil {
				var s string
				var esc bool
				if s, esc, err = sc.RawString(); err == nil && (esc || s != topicSym) {
					err = fmt.Errorf("trade symbol %q differs from topic symbol %q", s, topicSym)
				}
			}
		case "S":
			if err = seen.Add(tSide, key); err == nil {
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
			if err = seen.Add(tSize, key); err == nil {
				ev.Qty, err = sc.Decimal()
			}
		case "p":
			if err = seen.Add(tPrice, key); err == nil {
				ev.Price, err = sc.Decimal()
			}
		case "i":
			if err = seen.Add(tID, key); err == nil {
				var esc bool
				if ev.ID, esc, err = sc.RawString(); err == nil && (esc || !validTradeID(ev.ID)) {
					err = fmt.Errorf("invalid trade id %q", ev.ID)
				}
			}
		default:
			err = sc.Skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if !seen.Has(tAll) {
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
	return sc.Object(func(key string) (err error) {
		switch key {
		case "s":
			if err = b.seen.Add(bookS, key); err == nil {
				var esc bool
				if b.s, esc, err = sc.RawString(); err == nil && esc {
					err = errors.New("escaped symbol")
				}
			}
		case "b":
			if err = b.seen.Add(bookB, key); err == nil {
				b.bPos = sc.Pos()
				b.nb, err = sc.SkipCount()
			}
		case "a":
			if err = b.seen.Add(bookA, key); err == nil {
				b.aPos = sc.Pos()
				b.na, err = sc.SkipCount()
			}
		case "u":
			if err = b.seen.Add(bookU, key); err == nil {
				b.u, _, err = sc.Uint()
			}
		case "seq":
			if err = b.seen.Add(bookSeq, key); err == nil {
				b.seq, _, err = sc.Uint()
			}
		default:
			err = sc.Skip()
		}
		return err
	})
}

// bookEvent builds the snapshot or delta event of an orderbook frame.
func (a *Adapter) bookEvent(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	b := &env.book
	if !env.seen.Has(envData) {
		return dst, malformed("orderbook frame without data")
	}
	if !b.seen.Has(bookS | bookB | bookA | bookU) {
		return dst, malformed("orderbook data lacks one of s, b, a, u")
	}
	if b.s != env.sym {
		return dst, malformed("orderbook symbol %q differs from topic %q", b.s, env.topic)
	}
	if !env.seen.Has(envTS) {
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
	ev := bridge.Event{Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recvTS, LastID: b.u, Seq: b.seq, Depth: env.depth}
	switch env.typ {
	case "snapshot":
		ev.Type = bridge.EventBookSnapshot
	case "delta":
		ev.Type = bridge.EventBookDelta
		ev.FirstID = b.u
	default:
		return dst, malformed("orderbook type %q", env.typ)
	}
	// Book frames are decoded from a copy (their topic is not publicTrade);
	// should one be read in place, its levels come from a copy of the
	// frame at the same offsets.
	own := sc
	if env.borrowed {
		c := jscan.New(strings.Clone(sc.Input()))
		own = &c
	}
	if ev.Bids, ev.Asks, err = own.Sides(b.bPos, b.nb, b.aPos, b.na); err != nil {
		return dst, malformed("%v", err)
	}
	return append(dst, ev), nil
}
