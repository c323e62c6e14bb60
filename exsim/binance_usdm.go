package exsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Binance USD-M futures (venue "binance-usdm", EXCHANGES-MORE.md section 2).
//
// WebSocket: the 2026 routed layout. <route>/ws[/<stream>...] carries raw
// payloads and <route>/stream?streams=a/b the combined wrapper, for the
// routes /public (depth, partial depth, bookTicker) and /market (aggTrade
// and everything else). A stream of the other route is accepted (in the
// URL, or acknowledged by SUBSCRIBE and listed by LIST_SUBSCRIPTIONS) but
// never delivers, as the venue does for connections on the wrong route.
// Frames follow the futures shapes: aggTrade without "M" and with "nq";
// depthUpdate with "T" and "pu" (the u of the previous event: update ids
// are not contiguous, each event skips a few); bookTicker with "e", "E",
// "T"; partial depth in the depthUpdate shape; kline as Spot's (no 1s);
// markPriceUpdate and forceOrder (binance_usdm_channels.go). The server pings every
// Config.PingInterval; Config.USDMInboundLimit client messages per second
// and Config.USDMMaxStreams streams per connection.
//
// REST: GET /fapi/v1/depth (weight 2/5/10/20 by limit), /fapi/v1/aggTrades
// (20), /fapi/v1/klines (1/2/5/10 by limit), /fapi/v1/openInterest (1),
// /fapi/v1/time (1),
// /fapi/v1/exchangeInfo (1), under
// Config.USDMWeightLimit per minute per IP.

// usdmRoute is the route a stream kind is served on.
func usdmRoute(kind binKind) string {
	switch kind {
	case bkDepth, bkPartial, bkBookTicker, bkTrade:
		return "public"
	}
	return "market"
}

// routes reports whether c delivers streams of kind (always, but on a
// USD-M connection only those of its route).
func (c *conn) routes(kind binKind) bool {
	return c.route == "" || usdmRoute(kind) == c.route
}

// validStream reports whether name is a stream of venue v: Spot's depth
// speeds are 100ms and 1000ms, futures' 100ms, 250ms (none) and 500ms.
func validStream(v Venue, name string) bool {
	_, kind, levels, ok := parseBinanceStream(name)
	switch {
	case !ok:
		return false
	case v != BinanceUSDM && (kind == bkMarkPrice || kind == bkForceOrder):
		return false // futures streams
	case v == BinanceUSDM && kind == bkKline && simIntervals[levels].dur == time.Second:
		return false // no 1s klines on futures
	}
	at := strings.IndexByte(name, '@')
	speed := ""
	if i := strings.LastIndexByte(name, '@'); i > at {
		speed = name[i+1:]
	}
	if v == BinanceUSDM {
		return speed != "1000ms"
	}
	return speed != "500ms"
}

// maxStreams is the venue's limit of streams per connection.
func (s *Server) maxStreams(v Venue) int {
	if v == BinanceUSDM {
		return s.cfg.USDMMaxStreams
	}
	return s.cfg.MaxStreams
}

// handleUSDMWS serves /public/ws, /public/stream, /market/ws and
// /market/stream (with streams in the path or the query as Spot).
func (s *Server) handleUSDMWS(w http.ResponseWriter, r *http.Request) {
	route, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	combined := rest == "stream"
	var names []string
	switch {
	case combined:
		if q := r.URL.Query().Get("streams"); q != "" {
			names = strings.Split(q, "/")
		}
	case rest == "ws" || strings.HasPrefix(rest, "ws/"):
		if tail := strings.Trim(strings.TrimPrefix(rest, "ws"), "/"); tail != "" {
			names = strings.Split(tail, "/")
		}
	default:
		http.NotFound(w, r)
		return
	}
	for _, n := range names {
		if !validStream(BinanceUSDM, n) {
			writeJSONBytes(w, http.StatusBadRequest, binanceError(-1100, "Invalid stream name: "+n))
			return
		}
	}
	if len(names) > s.cfg.USDMMaxStreams {
		writeJSONBytes(w, http.StatusBadRequest, binanceError(-1101, "Too many streams: at most "+strconv.Itoa(s.cfg.USDMMaxStreams)+"."))
		return
	}
	s.accept(w, r, BinanceUSDM, func(c *conn) {
		c.mu.Lock()
		c.combined, c.route = combined, route
		c.mu.Unlock()
		s.binanceSubscribe(c, names, nil)
	}, s.binanceRead)
}

// genUSDMOrder generates one taker order of k fills at px as one aggregate
// trade: the trade series of USD-M is the aggregate id.
func (m *market) genUSDMOrder(now int64, k int, px int64, maker bool) int {
	r := m.tradeRNG
	rec := tradeRec{px: px, ns: now, maker: maker}
	for range k {
		rec.qty += 1 + r.Int64N(max(m.in.maxLot/10, 1))
	}
	first := m.nextAgg // fill ids f..l
	m.nextAgg += int64(k)
	rec.agg = first
	m.lastPx = px
	id := m.nextID
	m.nextID++
	m.ring.push(id, rec)
	m.klTrade(id, rec)
	m.trades.last = id
	if m.hasSubs(bkAggTrade) {
		ev := binEvent{agg: id, first: first, last: first + int64(k) - 1, rec: rec, now: rec.ns}
		m.fanBinance(&ev, bkAggTrade, fkTrade, m.trades, id, id)
	}
	return k
}

// genUSDMBook publishes the update in m.ch as a futures depthUpdate: its
// ids start a few after the previous event's u (futures ids are not
// contiguous), pu is that u, and the frame covers pu+1..u in the truth.
func (m *market) genUSDMBook(now int64) {
	prev := m.updateID
	first := prev + 1 + int64(m.bookRNG.IntN(3))
	m.updateID = first + int64(len(m.ch)) - 1
	m.depth.last = m.updateID
	ev := binEvent{first: first, last: m.updateID, prev: prev, now: now}
	if m.hasSubs(bkDepth) {
		m.fanBinance(&ev, bkDepth, fkDepth, m.depth, prev+1, m.updateID)
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

// encodeUSDM appends the futures payload of the current event.
func (m *market) encodeUSDM(dst []byte, ev *binEvent, kind binKind, levels int) []byte {
	switch kind {
	case bkAggTrade:
		dst = append(dst, `{"e":"aggTrade","E":`...)
		dst = appendTime(dst, ev.now, false)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		dst = append(dst, `","a":`...)
		dst = strconv.AppendInt(dst, ev.agg, 10)
		dst = append(dst, `,"p":"`...)
		dst = m.appendPx(dst, ev.rec.px)
		dst = append(dst, `","q":"`...)
		dst = m.appendQty(dst, ev.rec.qty)
		dst = append(dst, `","nq":"`...)
		dst = m.appendQty(dst, ev.rec.qty)
		dst = append(dst, `","f":`...)
		dst = strconv.AppendInt(dst, ev.first, 10)
		dst = append(dst, `,"l":`...)
		dst = strconv.AppendInt(dst, ev.last, 10)
		dst = append(dst, `,"T":`...)
		dst = appendTime(dst, ev.rec.ns, false)
		dst = append(dst, `,"m":`...)
		dst = appendBool(dst, ev.rec.maker)
		return append(dst, `,"st":1}`...)
	case bkDepth, bkPartial:
		var b, a []level
		if kind == bkPartial {
			b, a = topN(m.book.sides[bidSide], levels), topN(m.book.sides[askSide], levels)
		} else {
			lv := m.sortedChanges()
			b, a = lv[bidSide], lv[askSide]
		}
		dst = append(dst, `{"e":"depthUpdate","E":`...)
		dst = appendTime(dst, ev.now, false)
		dst = append(dst, `,"T":`...)
		dst = appendTime(dst, ev.now, false)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		dst = append(dst, `","U":`...)
		dst = strconv.AppendInt(dst, ev.first, 10)
		dst = append(dst, `,"u":`...)
		dst = strconv.AppendInt(dst, ev.last, 10)
		dst = append(dst, `,"pu":`...)
		dst = strconv.AppendInt(dst, ev.prev, 10)
		dst = append(dst, `,"b":`...)
		dst = m.appendLevels(dst, b)
		dst = append(dst, `,"a":`...)
		dst = m.appendLevels(dst, a)
		return append(dst, `,"st":1}`...)
	case bkBookTicker:
		b, a := m.top(bidSide), m.top(askSide)
		dst = append(dst, `{"e":"bookTicker","u":`...)
		dst = strconv.AppendInt(dst, m.updateID, 10)
		dst = append(dst, `,"E":`...)
		dst = appendTime(dst, ev.now, false)
		dst = append(dst, `,"T":`...)
		dst = appendTime(dst, ev.now, false)
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
		return append(dst, `","st":1}`...)
	case bkKline:
		return m.encodeBinanceKline(dst, ev, false)
	case bkMarkPrice:
		return m.encodeMarkPrice(dst, &m.chs.sent)
	case bkForceOrder:
		return m.encodeForceOrder(dst, ev)
	}
	return dst
}
