package okx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// Channel kinds of a push.
const (
	kindOther = iota
	kindTrades
	kindTradesAll
	kindBooks
)

// maxTradeIDLen bounds a trade id.
const maxTradeIDLen = 64

// envelope holds the top-level members of a frame.
type envelope struct {
	seen jscan.Seen

	kind                         int
	iv                           bridge.Interval // kindCandle: the bar's interval
	channel, instID              string          // raw substrings (validated when used)
	action, event, code, msg, id string
	dataPos                      int
	parsed                       bool     // data was parsed in place (arg came first)
	book                         bookData // a books push's data object
}

// Top-level keys, as jscan.Seen bits.
const (
	envArg jscan.Seen = 1 << iota
	envAction
	envData
	envEvent
	envCode
	envMsg
	envID
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: okx: %s", bridge.ErrMalformed, fmt.Sprintf(format, args...))
}

func envKey(key string) jscan.Seen {
	switch key {
	case "arg":
		return envArg
	case "action":
		return envAction
	case "data":
		return envData
	case "event":
		return envEvent
	case "code":
		return envCode
	case "msg":
		return envMsg
	case "id":
		return envID
	}
	return 0
}

// Decode parses one inbound frame:
//
//   - the text "pong": FramePong;
//   - a trades-all push: one EventTrade per fill, ID = tradeId and Seq =
//     its numeric value (consecutive per instrument); a trades push: one
//     EventTrade per aggregate, ID = its last tradeId, Seq 0; FrameData;
//   - a books push: an EventBookSnapshot (action "snapshot", LastID =
//     seqId) or an EventBookDelta (action "update": PrevID = prevSeqId,
//     FirstID = prevSeqId+1, LastID = seqId); FrameData;
//   - a subscribe/unsubscribe event: FrameAck with ReqID = id;
//   - an error event: FrameError with an *APIError, and Symbol when the
//     message names an instrument ("instId:XYZ");
//   - the 64008 notice: FrameShutdown (the connection closes in 60 s);
//   - other well-formed frames: FrameIgnored.
//
// Invalid JSON, wrong types, missing fields and frames over MaxFrameBytes
// return an error wrapping bridge.ErrMalformed and leave dst unchanged.
func (a *Adapter) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	if int64(len(frame)) > a.cfg.MaxFrameBytes {
		return dst, bridge.Frame{}, malformed("frame of %d bytes exceeds the %d-byte limit", len(frame), a.cfg.MaxFrameBytes)
	}
	if string(frame) == "pong" {
		return dst, bridge.Frame{Kind: bridge.FramePong}, nil
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
// (fastTrades, fastBook) do not take. It reads an owned copy of the frame.
func (a *Adapter) decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	n0 := len(dst)
	sc := jscan.New(string(frame))
	var env envelope
	out := dst
	var dataErr error // an error of the data member, reported with the channel
	err := sc.Object(func(key string) error {
		if key == "data" && env.seen.Has(envArg) && env.kind != kindOther && !env.seen.Has(envData) {
			// OKX sends arg first: parse the data in place, one pass.
			env.seen |= envData
			env.parsed = true
			out, dataErr = a.data(&sc, &env, recvTS, out)
			return dataErr
		}
		return member(&sc, &env, key)
	})
	if err == nil {
		err = sc.End()
	}
	if err != nil {
		if dataErr != nil {
			return dst[:n0], bridge.Frame{}, malformed("%s %s: %v", env.channel, env.instID, dataErr)
		}
		return dst[:n0], bridge.Frame{}, malformed("%v", err)
	}
	if env.seen.Has(envEvent) {
		return dst, control(&env), nil
	}
	if !env.seen.Has(envArg) || env.kind == kindOther {
		return dst, bridge.Frame{Kind: bridge.FrameIgnored}, nil
	}
	if !env.seen.Has(envData) {
		return dst, bridge.Frame{}, malformed("%s push without data", env.channel)
	}
	if !env.parsed {
		sc.Seek(env.dataPos)
		out, err = a.data(&sc, &env, recvTS, out)
	}
	if err == nil && env.kind == kindBooks {
		out, err = a.bookEvent(&sc, &env, recvTS, out)
	}
	if err != nil {
		return dst[:n0], bridge.Frame{}, malformed("%s %s: %v", env.channel, env.instID, err)
	}
	return out, bridge.Frame{Kind: bridge.FrameData}, nil
}

// data parses the data member at the cursor: trades are appended to dst,
// a books object is kept in env.book for bookEvent (which needs the
// action, which may come later).
func (a *Adapter) data(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if env.kind >= kindBBO {
		return a.channelData(sc, env, recvTS, dst)
	}
	if env.instID == "" {
		return dst, errors.New("push without instId")
	}
	if env.kind == kindBooks {
		return dst, env.book.array(sc)
	}
	sym, err := a.core.Syms.Intern(env.instID)
	if err != nil {
		return dst, fmt.Errorf("instId: %w", err)
	}
	return a.trades(sc, env, sym, recvTS, dst)
}

// member reads one top-level member into env; data is only located.
func member(sc *jscan.Scanner, env *envelope, key string) error {
	bit := envKey(key)
	if bit == 0 {
		return sc.Skip()
	}
	if err := env.seen.Add(bit, key); err != nil {
		return err
	}
	var err error
	switch bit {
	case envArg:
		err = env.arg(sc)
	case envAction:
		env.action, err = sc.String()
	case envData:
		env.dataPos = sc.Pos()
		err = sc.Skip()
	case envEvent:
		env.event, err = sc.String()
	case envCode:
		env.code, err = sc.ID() // documented as a string; accept a number
	case envMsg:
		env.msg, err = sc.String()
	case envID:
		env.id, err = sc.ID()
	}
	return err
}

// arg reads the arg object: channel and instId (other keys, e.g.
// instType, are skipped).
func (env *envelope) arg(sc *jscan.Scanner) error {
	var seen jscan.Seen
	return sc.Object(func(key string) (err error) {
		switch key {
		case "channel":
			if err = seen.Add(1, key); err == nil {
				var esc bool
				if env.channel, esc, err = sc.RawString(); err == nil && esc {
					err = errors.New("escaped channel")
				}
				switch env.channel {
				case chanTrades:
					env.kind = kindTrades
				case chanTradesAll:
					env.kind = kindTradesAll
				case chanBooks:
					env.kind = kindBooks
				default:
					env.classify(env.channel)
				}
			}
		case "instId":
			if err = seen.Add(2, key); err == nil {
				var esc bool
				if env.instID, esc, err = sc.RawString(); err == nil && esc {
					err = errors.New("escaped instId")
				}
			}
		default:
			err = sc.Skip()
		}
		return err
	})
}

// control classifies an event frame.
func control(env *envelope) bridge.Frame {
	switch env.event {
	case "subscribe", "unsubscribe":
		return bridge.Frame{Kind: bridge.FrameAck, ReqID: env.id}
	case "error":
		return bridge.Frame{Kind: bridge.FrameError, ReqID: env.id, Err: &APIError{Code: env.code, Msg: env.msg},
			Symbol: instIDOf(env.msg)}
	case "notice":
		if env.code == CodeNotice {
			return bridge.Frame{Kind: bridge.FrameShutdown}
		}
	}
	return bridge.Frame{Kind: bridge.FrameIgnored, ReqID: env.id}
}

// instIDOf returns the instrument an error message names ("...,instId:XYZ
// doesn't exist..."), upper-cased, or "" when it names none or an invalid
// one.
func instIDOf(msg string) string {
	_, rest, ok := strings.Cut(msg, "instId:")
	if !ok {
		return ""
	}
	n := 0
	for n < len(rest) && bridge.IsIdentChar(rest[n]) {
		n++
	}
	s := strings.ToUpper(rest[:n])
	if bridge.ValidateIdent(s) != nil {
		return ""
	}
	return s
}

// Trade item keys.
const (
	tInst jscan.Seen = 1 << iota
	tID
	tPx
	tSz
	tSide
	tTS
	tAll = tInst | tID | tPx | tSz | tSide | tTS
)

// trades parses a trades or trades-all data array.
func (a *Adapter) trades(sc *jscan.Scanner, env *envelope, sym string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, RecvTS: recvTS}
		if err := trade(sc, env.instID, &ev); err != nil {
			return dst, err
		}
		if env.kind == kindTradesAll {
			// Consecutive per instrument: the runner's gap detection and
			// id backfill. A non-numeric id falls back to id dedup.
			if n, err := strconv.ParseInt(ev.ID, 10, 64); err == nil && n > 0 {
				ev.Seq = n
			}
		}
		dst = append(dst, ev)
	}
}

func trade(sc *jscan.Scanner, instID string, ev *bridge.Event) error {
	var seen jscan.Seen
	err := sc.Object(func(key string) (err error) {
		switch key {
		case "instId":
			if err = seen.Add(tInst, key); err == nil {
				var s string
				var esc bool
				if s, esc, err = sc.RawString(); err == nil && (esc || s != instID) {
					err = fmt.Errorf("trade instId %q differs from the arg's %q", s, instID)
				}
			}
		case "tradeId":
			if err = seen.Add(tID, key); err == nil {
				var esc bool
				if ev.ID, esc, err = sc.RawString(); err == nil && (esc || !validTradeID(ev.ID)) {
					err = fmt.Errorf("invalid tradeId %q", ev.ID)
				}
			}
		case "px":
			if err = seen.Add(tPx, key); err == nil {
				ev.Price, err = sc.Decimal()
			}
		case "sz":
			if err = seen.Add(tSz, key); err == nil {
				ev.Qty, err = sc.Decimal()
			}
		case "side":
			if err = seen.Add(tSide, key); err == nil {
				ev.Side, err = readSide(sc, "trade")
			}
		case "ts":
			if err = seen.Add(tTS, key); err == nil {
				ev.TS, err = msString(sc)
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
		return errors.New("trade lacks one of instId, tradeId, px, sz, side, ts")
	}
	return nil
}

// msString reads a string of Unix milliseconds and returns nanoseconds.
func msString(sc *jscan.Scanner) (int64, error) {
	s, esc, err := sc.RawString()
	if err != nil {
		return 0, err
	}
	ms, perr := strconv.ParseInt(s, 10, 64)
	if esc || perr != nil || ms < 0 || ms > (1<<63-1)/1_000_000 {
		return 0, fmt.Errorf("invalid ms time %q", s)
	}
	return ms * 1_000_000, nil
}

// validTradeID: 1..64 characters of [A-Za-z0-9_.-].
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

// Book data keys.
const (
	bAsks jscan.Seen = 1 << iota
	bBids
	bTS
	bPrev
	bSeq
	bChecksum
)

// bookData is the one object of a books push.
type bookData struct {
	seen               jscan.Seen
	askPos, bidPos     int
	na, nb             int
	ts, prev, seq, sum int64
}

// array parses a books data array: exactly one object.
func (d *bookData) array(sc *jscan.Scanner) error {
	if err := sc.EnterArray(); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil {
			return err
		}
		if !ok {
			if first {
				return errors.New("empty data")
			}
			return nil
		}
		if !first {
			return errors.New("more than one data object")
		}
		if err := d.object(sc); err != nil {
			return err
		}
	}
}

// bookEvent builds the event of a books push from env.book.
func (a *Adapter) bookEvent(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	sym, err := a.core.Syms.Intern(env.instID)
	if err != nil {
		return dst, fmt.Errorf("instId: %w", err)
	}
	d := &env.book
	if !d.seen.Has(bAsks | bBids | bTS | bSeq) {
		return dst, errors.New("book data lacks one of asks, bids, ts, seqId")
	}
	ev := bridge.Event{Exchange: a.core.Name, Symbol: sym, TS: d.ts, RecvTS: recvTS, LastID: d.seq}
	switch env.action {
	case "snapshot":
		ev.Type = bridge.EventBookSnapshot
	case "update":
		if !d.seen.Has(bPrev) || d.prev < 0 {
			return dst, fmt.Errorf("update without a valid prevSeqId (%d)", d.prev)
		}
		ev.Type = bridge.EventBookDelta
		ev.PrevID = d.prev
		ev.FirstID = d.prev + 1
	default:
		return dst, fmt.Errorf("action %q", env.action)
	}
	if d.seq < 0 {
		return dst, fmt.Errorf("negative seqId %d", d.seq)
	}
	if ev.Bids, ev.Asks, err = sides(sc, d.bidPos, d.nb, d.askPos, d.na); err != nil {
		return dst, err
	}
	return append(dst, ev), nil
}

func (d *bookData) object(sc *jscan.Scanner) error {
	return sc.Object(func(key string) (err error) {
		switch key {
		case "asks":
			if err = d.seen.Add(bAsks, key); err == nil {
				d.askPos = sc.Pos()
				d.na, err = sc.SkipCount()
			}
		case "bids":
			if err = d.seen.Add(bBids, key); err == nil {
				d.bidPos = sc.Pos()
				d.nb, err = sc.SkipCount()
			}
		case "ts":
			if err = d.seen.Add(bTS, key); err == nil {
				d.ts, err = msString(sc)
			}
		case "prevSeqId":
			if err = d.seen.Add(bPrev, key); err == nil {
				d.prev, err = sc.Int()
			}
		case "seqId":
			if err = d.seen.Add(bSeq, key); err == nil {
				d.seq, err = sc.Int()
			}
		case "checksum":
			if err = d.seen.Add(bChecksum, key); err == nil {
				d.sum, err = sc.Int()
			}
		default:
			err = sc.Skip()
		}
		return err
	})
}

// sides reads OKX levels ([px, sz, "0", numOrders]: the first two are
// kept, at least two required) of both sides into one allocation.
func sides(sc *jscan.Scanner, bidPos, nb, askPos, na int) (bids, asks []bridge.Level, err error) {
	if nb+na == 0 {
		return nil, nil, nil
	}
	levels := make([]bridge.Level, nb+na)
	sc.Seek(bidPos)
	if err = readLevels(sc, levels[:nb]); err != nil {
		return nil, nil, fmt.Errorf("bids: %w", err)
	}
	sc.Seek(askPos)
	if err = readLevels(sc, levels[nb:]); err != nil {
		return nil, nil, fmt.Errorf("asks: %w", err)
	}
	if nb > 0 {
		bids = levels[:nb:nb]
	}
	if na > 0 {
		asks = levels[nb:]
	}
	return bids, asks, nil
}

func readLevels(sc *jscan.Scanner, dst []bridge.Level) error {
	if err := sc.EnterArray(); err != nil {
		return err
	}
	n := 0
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil {
			return err
		}
		if !ok {
			if n != len(dst) {
				return errors.New("fewer levels than counted")
			}
			return nil
		}
		if n >= len(dst) {
			return errors.New("more levels than counted")
		}
		if err := sc.EnterArray(); err != nil {
			return err
		}
		for i := 0; ; i++ {
			ok, err := sc.Element(i == 0)
			if err != nil {
				return err
			}
			if !ok {
				if i < 2 {
					return errors.New("level without price and size")
				}
				break
			}
			switch i {
			case 0:
				dst[n][0], err = sc.Decimal()
			case 1:
				dst[n][1], err = sc.Decimal()
			default:
				err = sc.Skip()
			}
			if err != nil {
				return err
			}
		}
		n++
	}
}

// readSide reads OKX's "buy"/"sell" as a bridge side; what names the
// object in the error.
func readSide(sc *jscan.Scanner, what string) (bridge.Side, error) {
	s, _, err := sc.RawString()
	if err != nil {
		return 0, err
	}
	switch s {
	case "buy":
		return bridge.SideBuy, nil
	case "sell":
		return bridge.SideSell, nil
	}
	return 0, fmt.Errorf("%s side %q", what, s)
}
