package binance

import (
	"math"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// The one frame layout the fast path reads: a combined-stream trade exactly
// as Binance sends it (keys in this order, no whitespace). Any other frame,
// or any doubt about this one, goes to the general decoder, which gives the
// same result for every frame the fast path accepts (FuzzFastTrade).
const (
	ftStream = `{"stream":"`
	ftData   = `","data":{"e":"trade","E":`
	ftSym    = `,"s":"`
	ftID     = `","t":`
	ftPrice  = `,"p":"`
	ftQty    = `","q":"`
	ftTime   = `","T":`
	ftMaker  = `,"m":`
	ftMatch  = `,"M":`
	ftEnd    = `}}`
)

// fastTrade decodes a combined-stream trade frame read in place (frame is
// not copied); the strings the event keeps (id, price, quantity) are copied
// into a shared arena chunk in one go (Arenas.Copy3: a range reserved with
// one atomic add, safe for concurrent connections). ok is false, and dst unchanged, for any
// frame it does not fully accept: the caller then runs the general decoder.
func (a *Adapter) fastTrade(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bool) {
	if len(frame) == 0 {
		return dst, false
	}
	f := jscan.NewFast(unsafe.String(&frame[0], len(frame)))
	f.Lit(ftStream)
	f.Str()
	f.Lit(ftData)
	f.Uint() // E
	f.Lit(ftSym)
	symRaw := f.Str()
	f.Lit(ftID)
	seq, id := f.Uint()
	f.Lit(ftPrice)
	price := f.Decimal()
	f.Lit(ftQty)
	qty := f.Decimal()
	f.Lit(ftTime)
	tt, _ := f.Uint()
	f.Lit(ftMaker)
	maker := f.Bool()
	f.Lit(ftMatch)
	f.Bool()
	f.Lit(ftEnd)
	if !f.Done() || symRaw == "" {
		return dst, false
	}
	maxT := int64(math.MaxInt64 / 1_000_000) // tt * a.tsMul() must not overflow (constant divisions)
	if a.cfg.MicrosecondTimestamps {
		maxT = math.MaxInt64 / 1_000
	}
	if tt > maxT {
		return dst, false
	}
	sym, err := a.core.Syms.Intern(symRaw)
	if err != nil {
		return dst, false
	}
	// id, price and qty go to the arena back to back (not the separators
	// between them: fewer bytes per trade, fewer collections).
	id, price, qty = a.arenas.Copy3(id, price, qty) // one atomic add, no Get/Put
	side := bridge.SideBuy
	if maker { // buyer is maker: the taker sold
		side = bridge.SideSell
	}
	// The event is written in its slot: a literal appended would be built
	// on the stack and copied over (240 bytes, and write barriers for every
	// pointer word of it while the GC marks).
	n := len(dst)
	if n < cap(dst) {
		dst = dst[:n+1]
	} else {
		dst = append(dst, bridge.Event{})
	}
	e := &dst[n]
	*e = bridge.Event{}
	e.Type, e.Side = bridge.EventTrade, side
	e.Exchange, e.Symbol = Name, sym
	e.TS, e.RecvTS = tt*a.tsMul(), recvTS
	e.ID, e.Seq, e.Price, e.Qty = id, seq, price, qty
	return dst, true
}

// tsMul is the factor from the stream's time unit to ns.
func (a *Adapter) tsMul() int64 {
	if a.cfg.MicrosecondTimestamps {
		return 1_000
	}
	return 1_000_000
}

// The depthUpdate layout the fast path reads, exactly as Binance sends it
// on a combined stream, with at most fastDepthLevels levels in all.
// Anything else goes to the general decoder (FuzzFastDepth).
const (
	fdData = `","data":{"e":"depthUpdate","E":`
	fdSym  = `,"s":"`
	fdU    = `","U":`
	fdLast = `,"u":`
	fdBids = `,"b":`
	fdAsks = `,"a":`
	fdEnd  = `}}`
)

// fastDepthLevels bounds the levels (bids and asks) of a depthUpdate the
// fast path takes; larger ones go to the general decoder.
const fastDepthLevels = 64

// fastDepth decodes a combined-stream depthUpdate read in place (frame is
// not copied): its levels are read into a buffer on the stack and copied
// into an arena (jscan.Arena.CopySides), so a frame costs no allocation.
// ok is false, and dst unchanged, for any frame it does not fully accept:
// the caller then runs the general decoder.
func (a *Adapter) fastDepth(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bool) {
	if len(frame) == 0 {
		return dst, false
	}
	f := jscan.NewFast(unsafe.String(&frame[0], len(frame)))
	f.Lit(ftStream)
	f.Str()
	f.Lit(fdData)
	et, _ := f.Uint()
	f.Lit(fdSym)
	symRaw := f.Str()
	f.Lit(fdU)
	first, _ := f.Uint()
	f.Lit(fdLast)
	last, _ := f.Uint()
	f.Lit(fdBids)
	var buf [fastDepthLevels]bridge.Level
	bids := f.Levels(buf[:])
	f.Lit(fdAsks)
	asks := f.Levels(buf[len(bids):])
	f.Lit(fdEnd)
	if !f.Done() || symRaw == "" || first > last || et > math.MaxInt64/a.tsMul() {
		return dst, false
	}
	return a.fastDepthEvent(dst, bridge.Event{Type: bridge.EventBookDelta, Exchange: Name, TS: et * a.tsMul(), RecvTS: recvTS,
		FirstID: first, LastID: last}, symRaw, bids, asks)
}

// fastDepthEvent completes a depth update a fast path accepted (Spot and
// USD-M): ev with its symbol interned from symRaw and its levels copied
// from the stack into an arena, appended to dst. ok is false, dst
// unchanged, for a symbol the table refuses.
func (a *Adapter) fastDepthEvent(dst []bridge.Event, ev bridge.Event, symRaw string, bids, asks []bridge.Level) ([]bridge.Event, bool) {
	sym, err := a.core.Syms.Intern(symRaw)
	if err != nil {
		return dst, false
	}
	// The copies go to other variables than bids and asks: escape analysis
	// does not tell the two apart, and would move the caller's stack
	// buffer to the heap.
	ar := a.arenas.Get()
	ob, oa := ar.CopySides(bids, asks)
	a.arenas.Put(ar)
	ev.Symbol, ev.Bids, ev.Asks = sym, ob, oa
	return append(dst, ev), true
}
