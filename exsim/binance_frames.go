package exsim

import (
	"strconv"
	"strings"
)

// binKind is a kind of Binance stream.
type binKind uint8

const (
	bkTrade binKind = iota
	bkAggTrade
	bkDepth      // <s>@depth, <s>@depth@100ms, <s>@depth@1000ms: diffs
	bkPartial    // <s>@depth<5|10|20>[@100ms|@1000ms]: top levels
	bkBookTicker // <s>@bookTicker
	bkKline      // <s>@kline_<interval>: levels is the interval index (channels.go)
	bkMarkPrice  // USD-M <s>@markPrice, <s>@markPrice@1s
	bkForceOrder // USD-M <s>@forceOrder
	numBinKinds
)

// binStream is one Binance stream name of a market and its subscribers,
// indexed by [combined][microseconds].
type binStream struct {
	name   string
	kind   binKind
	levels int // bkPartial: 5, 10 or 20
	subs   [2][2][]*conn
	n      int
}

// parseBinanceStream splits a stream name like "btcusdt@depth@100ms".
func parseBinanceStream(name string) (sym string, kind binKind, levels int, ok bool) {
	at := -1
	for i := 0; i < len(name); i++ {
		if name[i] == '@' {
			at = i
			break
		}
	}
	if at <= 0 || at > 27 { // 20 characters, or a quarterly's 20 + "_YYMMDD"
		return "", 0, 0, false
	}
	sym, rest := name[:at], name[at+1:]
	for i := 0; i < len(sym); i++ {
		if c := sym[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "", 0, 0, false
		}
	}
	switch rest {
	case "trade":
		return sym, bkTrade, 0, true
	case "aggTrade":
		return sym, bkAggTrade, 0, true
	case "bookTicker":
		return sym, bkBookTicker, 0, true
	case "markPrice", "markPrice@1s":
		return sym, bkMarkPrice, 0, true
	case "forceOrder":
		return sym, bkForceOrder, 0, true
	case "depth", "depth@100ms", "depth@1000ms":
		return sym, bkDepth, 0, true
	}
	if name, ok := strings.CutPrefix(rest, "kline_"); ok {
		if i, ok := intervalIndex(Binance, name); ok {
			return sym, bkKline, i, true
		}
	}
	for _, n := range [...]int{5, 10, 20} {
		p := "depth" + strconv.Itoa(n)
		if rest == p || rest == p+"@100ms" || rest == p+"@1000ms" {
			return sym, bkPartial, n, true
		}
	}
	return "", 0, 0, false
}

// appendTime appends a Unix-ns time in ms or µs.
func appendTime(dst []byte, ns int64, micro bool) []byte {
	if micro {
		return strconv.AppendInt(dst, ns/1e3, 10)
	}
	return strconv.AppendInt(dst, ns/1e6, 10)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendLevels appends [["p","q"],...].
func (m *market) appendLevels(dst []byte, lv []level) []byte {
	dst = append(dst, '[')
	for i, l := range lv {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `["`...)
		dst = appendDecimal(dst, l.px, m.in.pxDec, m.in.outPx)
		dst = append(dst, `","`...)
		dst = appendDecimal(dst, l.qty, m.in.qtyDec, m.in.outQty)
		dst = append(dst, `"]`...)
	}
	return append(dst, ']')
}

func (m *market) appendPx(dst []byte, px int64) []byte {
	return appendDecimal(dst, px, m.in.pxDec, m.in.outPx)
}

func (m *market) appendQty(dst []byte, q int64) []byte {
	return appendDecimal(dst, q, m.in.qtyDec, m.in.outQty)
}

// binEvent is the event being fanned out, read by encodeBinance.
type binEvent struct {
	id, first, last int64 // trade id; agg first/last trade ids; depth U/u
	prev            int64 // USD-M depth pu
	agg             int64
	rec             tradeRec
	now             int64
	kline           *klSeries // bkKline: the series whose bar is pushed
	klClosed        bool
	liq             *usdmLiq // bkForceOrder: the liquidation pushed
}

// encodeBinance appends the raw payload of the current event for a stream.
func (m *market) encodeBinance(dst []byte, ev *binEvent, kind binKind, levels int, micro bool) []byte {
	if m.venue == BinanceUSDM {
		return m.encodeUSDM(dst, ev, kind, levels)
	}
	switch kind {
	case bkTrade:
		dst = append(dst, `{"e":"trade","E":`...)
		dst = appendTime(dst, ev.now, micro)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		dst = append(dst, `","t":`...)
		dst = strconv.AppendInt(dst, ev.id, 10)
		dst = append(dst, `,"p":"`...)
		dst = m.appendPx(dst, ev.rec.px)
		dst = append(dst, `","q":"`...)
		dst = m.appendQty(dst, ev.rec.qty)
		dst = append(dst, `","T":`...)
		dst = appendTime(dst, ev.rec.ns, micro)
		dst = append(dst, `,"m":`...)
		dst = appendBool(dst, ev.rec.maker)
		return append(dst, `,"M":true}`...)
	case bkAggTrade:
		dst = append(dst, `{"e":"aggTrade","E":`...)
		dst = appendTime(dst, ev.now, micro)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		dst = append(dst, `","a":`...)
		dst = strconv.AppendInt(dst, ev.agg, 10)
		dst = append(dst, `,"p":"`...)
		dst = m.appendPx(dst, ev.rec.px)
		dst = append(dst, `","q":"`...)
		dst = m.appendQty(dst, ev.rec.qty)
		dst = append(dst, `","f":`...)
		dst = strconv.AppendInt(dst, ev.first, 10)
		dst = append(dst, `,"l":`...)
		dst = strconv.AppendInt(dst, ev.last, 10)
		dst = append(dst, `,"T":`...)
		dst = appendTime(dst, ev.rec.ns, micro)
		dst = append(dst, `,"m":`...)
		dst = appendBool(dst, ev.rec.maker)
		return append(dst, `,"M":true}`...)
	case bkDepth:
		lv := m.sortedChanges()
		dst = append(dst, `{"e":"depthUpdate","E":`...)
		dst = appendTime(dst, ev.now, micro)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		dst = append(dst, `","U":`...)
		dst = strconv.AppendInt(dst, ev.first, 10)
		dst = append(dst, `,"u":`...)
		dst = strconv.AppendInt(dst, ev.last, 10)
		dst = append(dst, `,"b":`...)
		dst = m.appendLevels(dst, lv[bidSide])
		dst = append(dst, `,"a":`...)
		dst = m.appendLevels(dst, lv[askSide])
		return append(dst, '}')
	case bkPartial:
		return m.appendBinanceDepth(dst, levels)
	case bkBookTicker:
		b, a := m.top(bidSide), m.top(askSide)
		dst = append(dst, `{"u":`...)
		dst = strconv.AppendInt(dst, m.updateID, 10)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		dst = append(dst, `","b":"`...)
		dst = m.appendPx(dst, b.px)
		dst = append(dst, `","B":"`...)
		dst = m.appendQty(dst, b.qty)
		dst = append(dst, `","a":"`...)
		dst = m.appendPx(dst, a.px)
		dst = append(dst, `","A":"`...)
		dst = m.appendQty(dst, a.qty)
		return append(dst, `"}`...)
	case bkKline:
		return m.encodeBinanceKline(dst, ev, micro)
	}
	return dst
}

// appendBinanceDepth appends the top levels of the book as Binance's
// partial depth stream and GET /api/v3/depth both write it:
// {"lastUpdateId":N,"bids":[...],"asks":[...]}. The caller holds m.mu.
func (m *market) appendBinanceDepth(dst []byte, levels int) []byte {
	dst = append(dst, `{"lastUpdateId":`...)
	dst = strconv.AppendInt(dst, m.updateID, 10)
	dst = append(dst, `,"bids":`...)
	dst = m.appendLevels(dst, topN(m.book.sides[bidSide], levels))
	dst = append(dst, `,"asks":`...)
	dst = m.appendLevels(dst, topN(m.book.sides[askSide], levels))
	return append(dst, '}')
}

func topN(lv []level, n int) []level {
	if len(lv) > n {
		return lv[:n]
	}
	return lv
}

// fanBinance encodes the current event for every subscribed stream of
// kind, once per variant (raw or combined, ms or µs), and enqueues it.
func (m *market) fanBinance(ev *binEvent, kind binKind, fk frameKind, ser *series, lo, hi int64) {
	var raw [2][]byte
	var encoded [2]bool
	cached := -1
	for _, st := range m.byKind[kind] {
		if st.n == 0 || kind == bkKline && st.levels != ev.kline.iv {
			continue
		}
		if st.levels != cached {
			encoded = [2]bool{}
			raw = [2][]byte{}
			cached = st.levels
		}
		for micro := 0; micro < 2; micro++ {
			rawSubs, combSubs := st.subs[0][micro], st.subs[1][micro]
			if len(rawSubs) == 0 && len(combSubs) == 0 {
				continue
			}
			if !encoded[micro] {
				m.scratch[micro] = m.encodeBinance(m.scratch[micro][:0], ev, kind, st.levels, micro == 1)
				encoded[micro] = true
			}
			f := outFrame{ser: ser, lo: lo, hi: hi, m: m, kind: fk}
			if len(rawSubs) > 0 {
				if raw[micro] == nil {
					raw[micro] = m.carve(m.scratch[micro])
				}
				f.b = raw[micro]
				deliver(rawSubs, f)
			}
			if len(combSubs) > 0 {
				w := append(m.wbuf[:0], `{"stream":"`...)
				w = append(w, st.name...)
				w = append(w, `","data":`...)
				w = append(w, m.scratch[micro]...)
				w = append(w, '}')
				m.wbuf = w
				f.b = m.carve(w)
				deliver(combSubs, f)
			}
		}
	}
}

func (m *market) hasSubs(kind binKind) bool {
	for _, st := range m.byKind[kind] {
		if st.n > 0 {
			return true
		}
	}
	return false
}

func (m *market) fanBinanceTrade(id int64, rec tradeRec) {
	if !m.hasSubs(bkTrade) {
		return
	}
	ev := binEvent{id: id, rec: rec, now: rec.ns}
	m.fanBinance(&ev, bkTrade, fkTrade, m.trades, id, id)
}

func (m *market) fanBinanceAgg(agg, first, last int64, rec tradeRec) {
	if !m.hasSubs(bkAggTrade) {
		return
	}
	ev := binEvent{agg: agg, first: first, last: last, rec: rec, now: rec.ns}
	m.fanBinance(&ev, bkAggTrade, fkTrade, m.trades, first, last)
}

func (m *market) fanBinanceDepth(first, last, now int64) {
	ev := binEvent{first: first, last: last, now: now}
	if m.hasSubs(bkDepth) {
		m.fanBinance(&ev, bkDepth, fkDepth, m.depth, first, last)
	}
	if m.hasSubs(bkPartial) {
		m.fanBinance(&ev, bkPartial, fkOther, nil, 0, 0)
	}
	top := [2]level{m.top(bidSide), m.top(askSide)}
	if top != m.lastTop {
		m.lastTop = top
		if m.hasSubs(bkBookTicker) {
			m.fanBinance(&ev, bkBookTicker, fkOther, nil, 0, 0)
		}
	}
}

// binAddSub registers c on stream name of the market.
func (m *market) binAddSub(c *conn, name string, kind binKind, levels int, combined, micro bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.binAddSubLocked(c, name, kind, levels, combined, micro)
}

// binAddSubLocked is binAddSub for a caller holding m.mu.
func (m *market) binAddSubLocked(c *conn, name string, kind binKind, levels int, combined, micro bool) {
	st := m.streams[name]
	if st == nil {
		st = &binStream{name: name, kind: kind, levels: levels}
		m.streams[name] = st
		m.byKind[kind] = append(m.byKind[kind], st)
	}
	ci, mi := b2i(combined), b2i(micro)
	st.subs[ci][mi] = append(st.subs[ci][mi][:len(st.subs[ci][mi]):len(st.subs[ci][mi])], c)
	st.n++
}

// binRemoveSub unregisters c from stream name.
func (m *market) binRemoveSub(c *conn, name string, combined, micro bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.streams[name]
	if st == nil {
		return
	}
	ci, mi := b2i(combined), b2i(micro)
	before := len(st.subs[ci][mi])
	st.subs[ci][mi] = removeConn(st.subs[ci][mi], c)
	if len(st.subs[ci][mi]) < before {
		st.n--
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
