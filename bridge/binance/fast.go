package binance

import (
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

// fastScan walks a frame that should have the fast path's layout.
type fastScan struct {
	s   string
	pos int
	ok  bool
}

// lit consumes lit or marks the scan failed.
func (f *fastScan) lit(lit string) {
	if f.ok && len(f.s)-f.pos >= len(lit) && f.s[f.pos:f.pos+len(lit)] == lit {
		f.pos += len(lit)
		return
	}
	f.ok = false
}

// str consumes the body of a string up to (not including) its closing
// quote: no escapes, no control characters.
func (f *fastScan) str() string {
	if !f.ok {
		return ""
	}
	i := f.pos
	for i < len(f.s) && f.s[i] != '"' {
		if c := f.s[i]; c == '\\' || c < 0x20 {
			f.ok = false
			return ""
		}
		i++
	}
	s := f.s[f.pos:i]
	f.pos = i
	return s
}

// uint consumes a JSON integer of 1..18 digits (no leading zero), which
// always fits in an int64; longer ones are left to the general decoder.
func (f *fastScan) uint() (int64, string) {
	if !f.ok {
		return 0, ""
	}
	start := f.pos
	end := min(len(f.s), start+19)
	var n int64
	i := start
	for ; i < end; i++ {
		c := f.s[i] - '0'
		if c > 9 {
			break
		}
		n = n*10 + int64(c)
	}
	if i == start || i-start > 18 || f.s[start] == '0' && i-start > 1 {
		f.ok = false
		return 0, ""
	}
	f.pos = i
	return n, f.s[start:i]
}

// decimal consumes the body of a string up to its closing quote that must
// satisfy jscan.IsDecimal.
func (f *fastScan) decimal() string {
	if !f.ok {
		return ""
	}
	start := f.pos
	dot := -1
	i := start
	for ; i < len(f.s); i++ {
		c := f.s[i]
		if c-'0' <= 9 {
			continue
		}
		if c == '.' && dot < 0 {
			dot = i
			continue
		}
		break
	}
	if i == start || i-start > jscan.MaxDecimalLen || dot == start || dot == i-1 || i == len(f.s) || f.s[i] != '"' {
		f.ok = false
		return ""
	}
	f.pos = i
	return f.s[start:i]
}

// bool consumes true or false.
func (f *fastScan) bool() bool {
	if !f.ok {
		return false
	}
	switch {
	case len(f.s)-f.pos >= 4 && f.s[f.pos:f.pos+4] == "true":
		f.pos += 4
		return true
	case len(f.s)-f.pos >= 5 && f.s[f.pos:f.pos+5] == "false":
		f.pos += 5
		return false
	}
	f.ok = false
	return false
}

// fastTrade decodes a combined-stream trade frame read in place (frame is
// not copied); the strings the event keeps (id, price, quantity) are copied
// into an arena chunk in one go. ok is false, and dst unchanged, for any
// frame it does not fully accept: the caller then runs the general decoder.
func (a *Adapter) fastTrade(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bool) {
	if len(frame) == 0 {
		return dst, false
	}
	f := fastScan{s: unsafe.String(&frame[0], len(frame)), ok: true}
	f.lit(ftStream)
	f.str()
	f.lit(ftData)
	f.uint() // E
	f.lit(ftSym)
	symRaw := f.str()
	f.lit(ftID)
	idAt := f.pos
	seq, id := f.uint()
	f.lit(ftPrice)
	price := f.decimal()
	f.lit(ftQty)
	qty := f.decimal()
	end := f.pos
	f.lit(ftTime)
	tt, _ := f.uint()
	f.lit(ftMaker)
	maker := f.bool()
	f.lit(ftMatch)
	f.bool()
	f.lit(ftEnd)
	if !f.ok || f.pos != len(f.s) || symRaw == "" {
		return dst, false
	}
	if tt > (1<<63-1)/a.tsMul() {
		return dst, false
	}
	sym, err := a.core.Syms.Intern(symRaw)
	if err != nil {
		return dst, false
	}
	// id, price and qty lie in f.s[idAt:end]: copy that span once and take
	// the three from the copy.
	ar := a.arenas.Get()
	span := ar.Copy(f.s[idAt:end])
	a.arenas.Put(ar)
	pAt := len(id) + len(ftPrice)
	qAt := pAt + len(price) + len(ftQty)
	side := bridge.SideBuy
	if maker { // buyer is maker: the taker sold
		side = bridge.SideSell
	}
	dst = append(dst, bridge.Event{
		Type: bridge.EventTrade, Exchange: Name, Symbol: sym, TS: tt * a.tsMul(), RecvTS: recvTS,
		ID: span[:len(id)], Seq: seq, Price: span[pAt : pAt+len(price)], Qty: span[qAt : qAt+len(qty)], Side: side,
	})
	return dst, true
}

// tsMul is the factor from the stream's time unit to ns.
func (a *Adapter) tsMul() int64 {
	if a.cfg.MicrosecondTimestamps {
		return 1_000
	}
	return 1_000_000
}
