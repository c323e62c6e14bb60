package binance

import (
	"math"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// The USD-M depthUpdate layout the fast path reads, exactly as the futures
// streams send it on a combined stream (diff and partial depth share it),
// with at most fastDepthLevels levels in all and the optional trailing
// "ps" (a string) and "st" (an integer) members the decoder ignores.
// Anything else goes to the general decoder (FuzzFastUSDMDepth).
const (
	fuData = `","data":{"e":"depthUpdate","E":`
	fuTime = `,"T":`
	fuSym  = `,"s":"`
	fuU    = `","U":`
	fuLast = `,"u":`
	fuPrev = `,"pu":`
	fuPS   = `,"ps":"`
	fuPSE  = `"`
	fuST   = `,"st":`
)

// fastUSDMDepth is fastDepth for a USD-M depthUpdate (with T and pu): read
// in place (frame is not copied), its levels read into a buffer on the
// stack and copied into an arena (jscan.Arena.CopySides), so a frame costs
// no allocation. ok is false, and dst unchanged, for any frame it does not
// fully accept, or that the general decoder would refuse (U > u, pu >= u):
// the caller then runs the general decoder.
func (a *Adapter) fastUSDMDepth(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bool) {
	if len(frame) == 0 {
		return dst, false
	}
	f := jscan.NewFast(unsafe.String(&frame[0], len(frame)))
	f.Lit(ftStream)
	f.Str()
	f.Lit(fuData)
	et, _ := f.Uint()
	f.Lit(fuTime)
	f.Uint() // T, not published
	f.Lit(fuSym)
	symRaw := f.Str()
	f.Lit(fuU)
	first, _ := f.Uint()
	f.Lit(fuLast)
	last, _ := f.Uint()
	f.Lit(fuPrev)
	prev, _ := f.Uint()
	f.Lit(fdBids)
	var buf [fastDepthLevels]bridge.Level
	bids := f.Levels(buf[:])
	f.Lit(fdAsks)
	asks := f.Levels(buf[len(bids):])
	if f.Opt(fuPS) {
		f.Str()
		f.Lit(fuPSE)
	}
	if f.Opt(fuST) {
		f.Uint()
	}
	f.Lit(fdEnd)
	if !f.Done() || symRaw == "" || first > last || prev >= last || et > math.MaxInt64/1_000_000 {
		return dst, false
	}
	return a.fastDepthEvent(dst, bridge.Event{Type: bridge.EventBookDelta, Exchange: NameUSDM, TS: et * 1_000_000, RecvTS: recvTS,
		FirstID: first, LastID: last, PrevID: prev}, symRaw, bids, asks)
}
