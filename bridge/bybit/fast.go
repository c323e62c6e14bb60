package bybit

import (
	"math"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// The one frame layout the fast path reads: a publicTrade frame exactly as
// Bybit sends it (keys in this order, no whitespace; "RPI" and "seq" may
// be absent), with one or more trades. Any other frame, or any doubt about
// this one, goes to the general decoder, which gives the same result for
// every frame the fast path accepts (FuzzFastTrades).
const (
	ftTopic = `{"topic":"publicTrade.`
	ftType  = `","type":"`
	ftTS    = `","ts":`
	ftData  = `,"data":[`
	ftT     = `{"T":`
	ftSym   = `,"s":"`
	ftSide  = `","S":"`
	ftSize  = `","v":"`
	ftPrice = `","p":"`
	ftTick  = `","L":"`
	ftID    = `","i":"`
	ftBT    = `","BT":`
	ftRPI   = `,"RPI":`
	ftSeq   = `,"seq":`
	ftNext  = `},`
	ftEnd   = `}]}`
)

// fastTrades decodes a publicTrade frame read in place (frame is not
// copied); the strings each event keeps (id, price, quantity) are copied
// into a shared arena chunk (jscan.Arenas.Copy3). ok is false, and dst
// unchanged, for any frame it does not fully accept: the caller then runs
// the general decoder.
func (a *Adapter) fastTrades(frame []byte, recvTS int64, dst []bridge.Event) (_ []bridge.Event, ok bool) {
	if len(frame) == 0 {
		return dst, false
	}
	n0 := len(dst)
	f := jscan.NewFast(unsafe.String(&frame[0], len(frame)))
	f.Lit(ftTopic)
	topicSym := f.Str()
	f.Lit(ftType)
	f.Str()
	f.Lit(ftTS)
	f.Uint()
	f.Lit(ftData)
	if !f.OK() || topicSym == "" {
		return dst, false
	}
	sym, err := a.core.Syms.Intern(topicSym)
	if err != nil {
		return dst, false
	}
	for {
		f.Lit(ftT)
		ms, _ := f.Uint()
		f.Lit(ftSym)
		s := f.Str()
		f.Lit(ftSide)
		sideRaw := f.Str()
		f.Lit(ftSize)
		qty := f.Decimal()
		f.Lit(ftPrice)
		price := f.Decimal()
		f.Lit(ftTick)
		f.Str()
		f.Lit(ftID)
		id := f.Str()
		f.Lit(ftBT)
		f.Bool()
		if f.Opt(ftRPI) {
			f.Bool()
		}
		if f.Opt(ftSeq) {
			f.Uint()
		}
		var side bridge.Side
		switch sideRaw {
		case "Buy":
			side = bridge.SideBuy
		case "Sell":
			side = bridge.SideSell
		}
		if !f.OK() || s != topicSym || side == 0 || !validTradeID(id) || ms > math.MaxInt64/1_000_000 {
			return dst[:n0], false
		}
		id, price, qty = a.arenas.Copy3(id, price, qty)
		dst = append(dst, bridge.Event{
			Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, TS: ms * 1_000_000, RecvTS: recvTS,
			ID: id, Price: price, Qty: qty, Side: side,
		})
		if f.Opt(ftEnd) {
			break
		}
		f.Lit(ftNext)
	}
	if !f.Done() {
		return dst[:n0], false
	}
	return dst, true
}

// The orderbook frame layout the fast path reads, exactly as Bybit sends
// it: {"topic":"orderbook.<depth>.<sym>","type":"snapshot"|"delta",
// "ts":..,"data":{"s":..,"b":[..],"a":[..],"u":..,"seq":..},"cts":..}
// ("seq" and "cts" may be absent), with at most fastBookLevels levels in
// all. Anything else goes to the general decoder (FuzzFastBook).
const (
	fbTopic = `{"topic":"orderbook.`
	fbDot   = `.`
	fbType  = `","type":"`
	fbTS    = `","ts":`
	fbData  = `,"data":{"s":"`
	fbBids  = `","b":`
	fbAsks  = `,"a":`
	fbU     = `,"u":`
	fbSeq   = `,"seq":`
	fbCTS   = `},"cts":`
	fbEnd   = `}`
	fbEnd2  = `}}`
)

// fastBookLevels bounds the levels (bids and asks) of a book frame the
// fast path takes: deltas, and the snapshots of small depths; larger
// snapshots are rare and go to the general decoder.
const fastBookLevels = 64

// fastBook decodes an orderbook.<depth> snapshot or delta read in place
// (frame is not copied): its levels are read into a buffer on the stack
// and copied into an arena (jscan.Arena.CopySides), so a frame costs no
// allocation. ok is false, and dst unchanged, for any frame it does not
// fully accept, and for the depth-1 topic when it is decoded as a bbo: the
// caller then runs the general decoder.
func (a *Adapter) fastBook(frame []byte, recvTS int64, dst []bridge.Event) (_ []bridge.Event, ok bool) {
	if len(frame) == 0 {
		return dst, false
	}
	f := jscan.NewFast(unsafe.String(&frame[0], len(frame)))
	f.Lit(fbTopic)
	depth, _ := f.Uint()
	f.Lit(fbDot)
	topicSym := f.Str()
	f.Lit(fbType)
	typ := f.Str()
	f.Lit(fbTS)
	ms, _ := f.Uint()
	f.Lit(fbData)
	s := f.Str()
	f.Lit(fbBids)
	var buf [fastBookLevels]bridge.Level
	bids := f.Levels(buf[:])
	f.Lit(fbAsks)
	asks := f.Levels(buf[len(bids):])
	f.Lit(fbU)
	u, _ := f.Uint()
	var seq int64
	if f.Opt(fbSeq) {
		seq, _ = f.Uint()
	}
	if f.Opt(fbCTS) {
		f.Uint()
		f.Lit(fbEnd)
	} else {
		f.Lit(fbEnd2)
	}
	if !f.Done() || depth == 0 || depth == 1 && a.cfg.BookDepth != 1 || topicSym == "" || s != topicSym ||
		ms > math.MaxInt64/1_000_000 {
		return dst, false
	}
	ev := bridge.Event{Exchange: a.core.Name, TS: ms * 1_000_000, RecvTS: recvTS, LastID: u, Seq: seq, Depth: int(depth)}
	switch typ {
	case "snapshot":
		ev.Type = bridge.EventBookSnapshot
	case "delta":
		ev.Type = bridge.EventBookDelta
		ev.FirstID = u
	default:
		return dst, false
	}
	sym, err := a.core.Syms.Intern(topicSym)
	if err != nil {
		return dst, false
	}
	ev.Symbol = sym
	ar := a.arenas.Get()
	ev.Bids, ev.Asks = ar.CopySides(bids, asks)
	a.arenas.Put(ar)
	return append(dst, ev), true
}
