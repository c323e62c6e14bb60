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
