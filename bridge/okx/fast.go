package okx

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// The one frame layout the fast path reads: a trades or trades-all push
// exactly as OKX sends it (keys in this order, no whitespace; "source",
// "count" and "seqId" may be absent), with one or more trades. Any other
// frame, or any doubt about this one, goes to the general decoder, which
// gives the same result for every frame the fast path accepts
// (FuzzFastTrades).
const (
	ftArg     = `{"arg":{"channel":"`
	ftInstID  = `","instId":"`
	ftData    = `"},"data":[`
	ftInst    = `{"instId":"`
	ftID      = `","tradeId":"`
	ftPx      = `","px":"`
	ftSz      = `","sz":"`
	ftSide    = `","side":"`
	ftSource  = `","source":"`
	ftTS      = `","ts":"`
	ftQuote   = `"`
	ftCount   = `,"count":"`
	ftSource2 = `,"source":"`
	ftSeqID   = `,"seqId":`
	ftNext    = `},`
	ftEnd     = `}]}`
)

// fastTrades decodes a trades or trades-all push read in place (frame is not
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
	f.Lit(ftArg)
	channel := f.Str()
	f.Lit(ftInstID)
	inst := f.Str()
	f.Lit(ftData)
	if !f.OK() || inst == "" || channel != chanTrades && channel != chanTradesAll {
		return dst, false
	}
	sym, err := a.core.Syms.Intern(inst)
	if err != nil {
		return dst, false
	}
	for {
		f.Lit(ftInst)
		s := f.Str()
		f.Lit(ftID)
		id := f.Str()
		f.Lit(ftPx)
		price := f.Decimal()
		f.Lit(ftSz)
		qty := f.Decimal()
		f.Lit(ftSide)
		sideRaw := f.Str()
		if f.Opt(ftSource) {
			f.Str()
		}
		f.Lit(ftTS)
		ms, _ := f.Uint()
		f.Lit(ftQuote)
		if f.Opt(ftCount) { // trades: fills aggregated into this one
			f.Str()
			f.Lit(ftQuote)
		}
		if f.Opt(ftSource2) {
			f.Str()
			f.Lit(ftQuote)
		}
		if f.Opt(ftSeqID) {
			f.Uint()
		}
		var side bridge.Side
		switch sideRaw {
		case "buy":
			side = bridge.SideBuy
		case "sell":
			side = bridge.SideSell
		}
		if !f.OK() || s != inst || side == 0 || !validTradeID(id) || ms > math.MaxInt64/1_000_000 {
			return dst[:n0], false
		}
		var seq int64 // trades-all ids are consecutive per instrument, as the general decoder sets it
		if channel == chanTradesAll {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > 0 {
				seq = n
			}
		}
		id, price, qty = a.arenas.Copy3(id, price, qty)
		dst = append(dst, bridge.Event{
			Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, TS: ms * 1_000_000, RecvTS: recvTS,
			ID: id, Seq: seq, Price: price, Qty: qty, Side: side,
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
