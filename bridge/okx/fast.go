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

// The books push layout the fast path reads, exactly as OKX sends it:
// {"arg":{"channel":"books","instId":..},"action":"snapshot"|"update",
// "data":[{"asks":[..],"bids":[..],"ts":"..","checksum":..,"prevSeqId":..,
// "seqId":..}]} with ["px","sz","0","orders"] levels, at most
// fastBookLevels in all. Anything else goes to the general decoder
// (FuzzFastBook).
const (
	fbArg    = `{"arg":{"channel":"books","instId":"`
	fbAction = `"},"action":"`
	fbAsks   = `","data":[{"asks":`
	fbBids   = `,"bids":`
	fbTS     = `,"ts":"`
	fbSum    = `","checksum":`
	fbPrev   = `,"prevSeqId":`
	fbSeq    = `,"seqId":`
	fbEnd    = `}]}`
)

// fastBookLevels bounds the levels (asks and bids) of a books push the
// fast path takes: updates, not the 400-level snapshots.
const fastBookLevels = 64

// fastBook decodes a books snapshot or update read in place (frame is not
// copied): its levels are read into a buffer on the stack and copied into
// an arena (jscan.Arena.CopySides), so a push costs no allocation. ok is
// false, and dst unchanged, for any frame it does not fully accept: the
// caller then runs the general decoder.
func (a *Adapter) fastBook(frame []byte, recvTS int64, dst []bridge.Event) (_ []bridge.Event, ok bool) {
	if len(frame) == 0 {
		return dst, false
	}
	f := jscan.NewFast(unsafe.String(&frame[0], len(frame)))
	f.Lit(fbArg)
	inst := f.Str()
	f.Lit(fbAction)
	action := f.Str()
	f.Lit(fbAsks)
	var buf [fastBookLevels]bridge.Level
	asks := f.LevelsExtra(buf[:], 2)
	f.Lit(fbBids)
	bids := f.LevelsExtra(buf[len(asks):], 2)
	f.Lit(fbTS)
	ms, _ := f.Uint()
	f.Lit(fbSum)
	f.Int()
	f.Lit(fbPrev)
	prev := f.Int()
	f.Lit(fbSeq)
	seq, _ := f.Uint()
	f.Lit(fbEnd)
	if !f.Done() || inst == "" || ms > math.MaxInt64/1_000_000 {
		return dst, false
	}
	ev := bridge.Event{Exchange: a.core.Name, TS: ms * 1_000_000, RecvTS: recvTS, LastID: seq}
	switch {
	case action == "snapshot":
		ev.Type = bridge.EventBookSnapshot
	case action == "update" && prev >= 0:
		ev.Type = bridge.EventBookDelta
		ev.PrevID = prev
		ev.FirstID = prev + 1
	default:
		return dst, false
	}
	sym, err := a.core.Syms.Intern(inst)
	if err != nil {
		return dst, false
	}
	ev.Symbol = sym
	ar := a.arenas.Get()
	ev.Bids, ev.Asks = ar.CopySides(bids, asks)
	a.arenas.Put(ar)
	return append(dst, ev), true
}
