package exsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// OKX v5 public market data (EXCHANGES-MORE.md, section 4): the /ws/v5/public
// endpoint serves `trades` (one message per taker order and price, tradeId
// the last of `count` fills) and `books` (400 levels: a snapshot, then
// updates chained by prevSeqId == the previous seqId, checksum 0), the
// /ws/v5/business endpoint `trades-all` (one fill per message). Trade ids
// are consecutive per instrument (the ground truth's SeriesTrade values).
// The books series (SeriesOKXBooks) records push ordinals; the wire seqId
// grows by a few per push, and OKXSeqReset makes it go down once, as OKX's
// maintenance does. After OKXKeepAlive without a change an update with empty
// sides and seqId == prevSeqId is sent. Text "ping" is answered "pong";
// a connection that sends nothing and receives no data for OKXIdleTimeout
// is cut. FaultShutdown sends the 64008 notice before the close.

// SeriesOKXBooks is the series of an OKX market's books pushes (ordinals).
const SeriesOKXBooks Series = "books"

// okxDepth is the depth of the books channel.
const okxDepth = 400

// OKX channels.
const (
	okxTrades    = "trades"
	okxTradesAll = "trades-all"
	okxBooks     = "books"
)

// okxState is an OKX market's channel state. Guarded by the market's mu.
type okxState struct {
	view      *bybitView // the 400-level view; u = push ordinal
	seq       int64      // wire seqId of the last push
	resetTo   int64      // > 0: the seqId of the next push (OKXSeqReset)
	tradeSubs []*conn    // trades (public)
	allSubs   []*conn    // trades-all (business)
	ch        okxChans   // the other channels (okx_channels.go)
}

func (v Venue) isOKX() bool { return v == OKXSpot || v == OKXSwap }

// okxVenueOf returns the market of an instrument id: "-SWAP" instruments
// and expiry futures ("BTC-USD-261225", delivery.go) are okx-swap, the
// derivatives venue.
func okxVenueOf(instID string) Venue {
	if strings.HasSuffix(instID, "-SWAP") || okxFutures(instID) {
		return OKXSwap
	}
	return OKXSpot
}

func (m *market) initOKX(h uint64) {
	m.nextID = 100_000_000 + int64(splitmix64(h)%1_000_000_000)
	seq := 1_000_000_000 + int64(splitmix64(h+1)%100_000_000_000)
	m.okx = &okxState{seq: seq, view: &bybitView{depth: okxDepth, ser: &series{m: m, name: SeriesOKXBooks, first: 1, last: 0}}}
}

// handleOKXWS serves /ws/v5/public and /ws/v5/business.
func (s *Server) handleOKXWS(w http.ResponseWriter, r *http.Request) {
	var biz bool
	switch r.URL.Path {
	case "/ws/v5/public":
	case "/ws/v5/business":
		biz = true
	default:
		http.NotFound(w, r)
		return
	}
	s.accept(w, r, OKXSpot, func(c *conn) { c.okxBiz = biz }, s.okxRead)
}

// okxArg is one subscription arg.
type okxArg struct {
	Channel  string `json:"channel"`
	InstID   string `json:"instId"`
	InstType string `json:"instType"` // liquidation-orders
}

func (a okxArg) topic() string { return a.Channel + ":" + a.InstID }

func parseOKXTopic(t string) (okxArg, bool) {
	ch, inst, ok := strings.Cut(t, ":")
	return okxArg{Channel: ch, InstID: inst}, ok
}

func (c *conn) okxEvent(event, id string, a *okxArg, code, msg string) []byte {
	b := []byte(`{`)
	if id != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, id)
		b = append(b, ',')
	}
	b = append(b, `"event":`...)
	b = appendJSONString(b, event)
	if a != nil {
		b = append(b, `,"arg":{"channel":`...)
		b = appendJSONString(b, a.Channel)
		if a.InstID == "" && a.InstType != "" {
			b = append(b, `,"instType":`...)
			b = appendJSONString(b, a.InstType)
		} else {
			b = append(b, `,"instId":`...)
			b = appendJSONString(b, a.InstID)
		}
		b = append(b, '}')
	}
	if code != "" {
		b = append(b, `,"code":`...)
		b = appendJSONString(b, code)
		b = append(b, `,"msg":`...)
		b = appendJSONString(b, msg)
	}
	b = append(b, `,"connId":"`...)
	b = append(b, c.connID[:8]...)
	return append(b, `"}`...)
}

// okxNotice is the 64008 service notice.
func (c *conn) okxNotice() []byte {
	return c.okxEvent("notice", "", nil, "64008", "The connection will soon be closed for a service upgrade. Please reconnect.")
}

// okxRead handles one client frame: "ping", subscribe or unsubscribe.
func (s *Server) okxRead(c *conn, mt int, data []byte) {
	if mt == websocket.TextMessage && string(data) == "ping" {
		if p := c.pol.Load(); p != nil && p.dropPongs {
			return
		}
		c.lastActive.Store(c.srv.clock().UnixNano())
		c.sendControl([]byte("pong"))
		return
	}
	var req struct {
		ID   string          `json:"id"`
		Op   string          `json:"op"`
		Args json.RawMessage `json:"args"`
	}
	if mt != websocket.TextMessage || json.Unmarshal(data, &req) != nil {
		c.sendControl(c.okxEvent("error", "", nil, "60012", "Invalid request: "+string(data)))
		return
	}
	c.lastActive.Store(c.srv.clock().UnixNano())
	if req.Op != "subscribe" && req.Op != "unsubscribe" {
		c.sendControl(c.okxEvent("error", req.ID, nil, "60019", "Invalid op: op :"+req.Op))
		return
	}
	var args []okxArg
	if json.Unmarshal(req.Args, &args) != nil || len(args) == 0 {
		c.sendControl(c.okxEvent("error", req.ID, nil, "60013", "Invalid args"))
		return
	}
	if req.Op == "unsubscribe" {
		c.mu.Lock()
		for i := range args {
			t := args[i].topic()
			for j, x := range c.topics {
				if x == t {
					c.topics = append(c.topics[:j], c.topics[j+1:]...)
					s.okxUnsubscribe(c, args[i])
					break
				}
			}
		}
		for i := range args {
			c.sendControl(c.okxEvent("unsubscribe", req.ID, &args[i], "", ""))
		}
		c.mu.Unlock()
		return
	}
	// Validate every arg first: one bad arg fails the request.
	var ms []*market
	var chMs [][]*market // per arg, the markets of a channel of okx_channels.go
	var lock []*market
	for _, a := range args {
		code, msg := "", ""
		if isOKXChannel(a.Channel) {
			var cms []*market
			if cms, code, msg = s.okxChannelMarkets(c, a); code != "" {
				c.sendControl(c.okxEvent("error", req.ID, nil, code, msg))
				return
			}
			ms, chMs, lock = append(ms, cms[0]), append(chMs, cms), append(lock, cms...)
			continue
		}
		switch {
		case a.Channel == okxTradesAll && !c.okxBiz:
			code, msg = "60018", "Wrong URL or channel:"+a.Channel+",instId:"+a.InstID+" doesn't exist. Please use the correct URL, channel and parameters referring to API document."
		case (a.Channel == okxTrades || a.Channel == okxBooks) && c.okxBiz:
			code, msg = "64002", "channel:"+a.Channel+" is not supported by business URL."
		case a.Channel != okxTrades && a.Channel != okxTradesAll && a.Channel != okxBooks,
			s.markets[okxVenueOf(a.InstID)][a.InstID] == nil:
			code, msg = "60018", "Wrong URL or channel:"+a.Channel+",instId:"+a.InstID+" doesn't exist. Please use the correct URL, channel and parameters referring to API document."
		}
		if code != "" {
			c.sendControl(c.okxEvent("error", req.ID, nil, code, msg))
			return
		}
		ms = append(ms, s.markets[okxVenueOf(a.InstID)][a.InstID])
		chMs, lock = append(chMs, nil), append(lock, ms[len(ms)-1])
	}
	c.mu.Lock()
	unlock := lockMarkets(lock)
	var syms []string
	for i, a := range args {
		c.sendControl(c.okxEvent("subscribe", req.ID, &args[i], "", ""))
		if c.closed || contains(c.topics, a.topic()) {
			continue
		}
		c.topics = append(c.topics, a.topic())
		if chMs[i] != nil {
			for _, m := range chMs[i] {
				m.okxChanAddSubLocked(c, a, s.nowNs(m.venue))
			}
			if a.Channel != okxLiqOrders {
				syms = append(syms, ms[i].symbol)
			}
			continue
		}
		ms[i].okxAddSubLocked(c, a.Channel)
		syms = append(syms, a.InstID)
	}
	unlock()
	c.mu.Unlock()
	for _, sym := range syms {
		s.faults.onSubscribe(s, c, sym)
	}
}

func (s *Server) okxUnsubscribe(c *conn, a okxArg) {
	if isOKXChannel(a.Channel) {
		var ms []*market
		switch a.Channel {
		case okxLiqOrders:
			for _, m := range s.mlist {
				if m.venue == OKXSwap && !okxFutures(m.symbol) {
					ms = append(ms, m)
				}
			}
		case okxIndex:
			ms = append(ms, s.markets[OKXSwap][a.InstID+"-SWAP"])
		default:
			ms = append(ms, s.markets[okxVenueOf(a.InstID)][a.InstID])
		}
		for _, m := range ms {
			if m != nil {
				m.mu.Lock()
				m.okxChanRemoveSubLocked(c, a)
				m.mu.Unlock()
			}
		}
		return
	}
	m := s.markets[okxVenueOf(a.InstID)][a.InstID]
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.okx
	switch a.Channel {
	case okxTrades:
		o.tradeSubs = removeConn(o.tradeSubs, c)
	case okxTradesAll:
		o.allSubs = removeConn(o.allSubs, c)
	case okxBooks:
		o.view.subs = removeConn(o.view.subs, c)
	}
}

// okxAddSubLocked subscribes c to a channel; books start with a snapshot
// (unless Config.OKXNoSnapshot). The caller holds m.mu.
func (m *market) okxAddSubLocked(c *conn, ch string) {
	o := m.okx
	switch ch {
	case okxTrades:
		o.tradeSubs = append(o.tradeSubs[:len(o.tradeSubs):len(o.tradeSubs)], c)
	case okxTradesAll:
		o.allSubs = append(o.allSubs[:len(o.allSubs):len(o.allSubs)], c)
	case okxBooks:
		if !m.srv.cfg.OKXNoSnapshot {
			b := m.encodeOKXBook(nil, m.srv.nowNs(m.venue), true, -1)
			c.send(outFrame{b: b, ser: o.view.ser, lo: o.view.u, hi: o.view.u, m: m, kind: fkSnapshot})
		}
		o.view.subs = append(o.view.subs[:len(o.view.subs):len(o.view.subs)], c)
	}
}

// appendOKXLevels appends [["px","sz","0","n"],...].
func (m *market) appendOKXLevels(dst []byte, lv []level) []byte {
	dst = append(dst, '[')
	for i, l := range lv {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `["`...)
		dst = m.appendPx(dst, l.px)
		dst = append(dst, `","`...)
		dst = m.appendQty(dst, l.qty)
		dst = append(dst, `","0","`...)
		n := int64(0)
		if l.qty > 0 {
			n = 1 + l.px%7
		}
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, `"]`...)
	}
	return append(dst, ']')
}

// encodeOKXBook appends a books push: a snapshot of the top 400 levels, or
// the view's delta (empty sides for a keep-alive). prev is the prevSeqId.
func (m *market) encodeOKXBook(dst []byte, now int64, snapshot bool, prev int64) []byte {
	o := m.okx
	dst = append(dst, `{"arg":{"channel":"books","instId":"`...)
	dst = append(dst, m.symbol...)
	if snapshot {
		dst = append(dst, `"},"action":"snapshot","data":[{"asks":`...)
		dst = m.appendOKXLevels(dst, topN(m.book.sides[askSide], okxDepth))
		dst = append(dst, `,"bids":`...)
		dst = m.appendOKXLevels(dst, topN(m.book.sides[bidSide], okxDepth))
	} else {
		dst = append(dst, `"},"action":"update","data":[{"asks":`...)
		dst = m.appendOKXLevels(dst, o.view.delta[askSide])
		dst = append(dst, `,"bids":`...)
		dst = m.appendOKXLevels(dst, o.view.delta[bidSide])
	}
	dst = append(dst, `,"ts":"`...)
	dst = strconv.AppendInt(dst, now/1e6, 10)
	dst = append(dst, `","checksum":0,"prevSeqId":`...)
	dst = strconv.AppendInt(dst, prev, 10)
	dst = append(dst, `,"seqId":`...)
	dst = strconv.AppendInt(dst, o.seq, 10)
	return append(dst, `}]}`...)
}

// okxBookUpdate publishes the book change just generated (m.ch) as a books
// update. The caller holds m.mu.
func (m *market) okxBookUpdate(now int64) {
	o := m.okx
	v := o.view
	m.book.viewDelta(v.depth, v.oldB, m.ch, &v.delta)
	if len(v.delta[0]) == 0 && len(v.delta[1]) == 0 {
		return
	}
	prev := o.seq
	if o.resetTo > 0 { // after OKXSeqReset: the new range starts low
		o.seq, o.resetTo = o.resetTo, 0
	} else {
		o.seq += 1 + int64(len(m.ch))%4
	}
	v.u++
	v.ser.last = v.u
	v.lastPush = time.Now()
	m.okxBBOUpdate(now)
	if len(v.subs) == 0 {
		return
	}
	m.wbuf = m.encodeOKXBook(m.wbuf[:0], now, false, prev)
	deliver(v.subs, outFrame{b: m.carve(m.wbuf), ser: v.ser, lo: v.u, hi: v.u, m: m, kind: fkDepth})
}

// okxKeepAlive sends the keep-alive update (seqId == prevSeqId, empty
// sides) when the book has not changed for Config.OKXKeepAlive.
func (m *market) okxKeepAlive(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.okx
	v := o.view
	if len(v.subs) == 0 || now.Sub(v.lastPush) < m.srv.cfg.OKXKeepAlive {
		return
	}
	v.lastPush = now
	v.delta[0], v.delta[1] = v.delta[0][:0], v.delta[1][:0]
	m.wbuf = m.encodeOKXBook(m.wbuf[:0], m.srv.nowNs(m.venue), false, o.seq)
	deliver(v.subs, outFrame{b: m.carve(m.wbuf), m: m, kind: fkOther})
}

// fanOKXFill publishes one fill on trades-all.
func (m *market) fanOKXFill(id int64, rec tradeRec) {
	o := m.okx
	if len(o.allSubs) == 0 {
		return
	}
	b := append(m.wbuf[:0], `{"arg":{"channel":"trades-all","instId":"`...)
	b = append(b, m.symbol...)
	b = append(b, `"},"data":[`...)
	b = m.appendOKXTrade(b, id, rec, 0)
	b = append(b, "]}"...)
	m.wbuf = b
	deliver(o.allSubs, outFrame{b: m.carve(b), ser: m.trades, lo: id, hi: id, m: m, kind: fkTrade})
}

// fanOKXOrder publishes a taker order's fills first..last (one price) as one
// aggregated trades message.
func (m *market) fanOKXOrder(first, last int64, agg tradeRec) {
	o := m.okx
	if len(o.tradeSubs) == 0 {
		return
	}
	b := append(m.wbuf[:0], `{"arg":{"channel":"trades","instId":"`...)
	b = append(b, m.symbol...)
	b = append(b, `"},"data":[`...)
	b = m.appendOKXTrade(b, last, agg, last-first+1)
	b = append(b, "]}"...)
	m.wbuf = b
	deliver(o.tradeSubs, outFrame{b: m.carve(b), ser: m.trades, lo: first, hi: last, m: m, kind: fkTrade})
}

// appendOKXTrade appends one trade object; count > 0 adds the aggregate's
// count and seqId (trades), 0 is a trades-all fill.
func (m *market) appendOKXTrade(b []byte, id int64, rec tradeRec, count int64) []byte {
	b = append(b, `{"instId":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","tradeId":"`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `","px":"`...)
	b = m.appendPx(b, rec.px)
	b = append(b, `","sz":"`...)
	b = m.appendQty(b, rec.qty)
	b = append(b, `","side":"`...)
	if rec.maker {
		b = append(b, "sell"...)
	} else {
		b = append(b, "buy"...)
	}
	b = append(b, `","source":"0","ts":"`...)
	b = strconv.AppendInt(b, rec.ns/1e6, 10)
	b = append(b, '"')
	if count > 0 {
		b = append(b, `,"count":"`...)
		b = strconv.AppendInt(b, count, 10)
		b = append(b, `","seqId":`...)
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, '}')
}

// OKXSeqReset makes the next books push of an OKX market carry a seqId
// below the previous one (its prevSeqId still chains), as OKX's
// maintenance does; the following pushes chain normally from there.
// Returns errors wrapping ErrUnknownMarket.
func (s *Server) OKXSeqReset(v Venue, symbol string) error {
	m, err := s.market(v, symbol)
	if err != nil || !v.isOKX() {
		return errorOr(err, ErrUnknownMarket)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.okx.resetTo = max(m.okx.seq/2, 1)
	return nil
}

// OKXSeqID returns the seqId of an OKX market's last books push.
func (s *Server) OKXSeqID(v Venue, symbol string) (int64, error) {
	m, err := s.market(v, symbol)
	if err != nil || !v.isOKX() {
		return 0, errorOr(err, ErrUnknownMarket)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.okx.seq, nil
}

// okxEnvelope builds a REST answer.
func okxEnvelope(code, msg string, data []byte) []byte {
	b := []byte(`{"code":`)
	b = appendJSONString(b, code)
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// handleOKXREST serves /api/v5/market/books, /api/v5/market/history-trades,
// /api/v5/market/candles, /api/v5/market/history-candles,
// /api/v5/public/time and /api/v5/public/instruments (listing.go).
func (s *Server) handleOKXREST(w http.ResponseWriter, r *http.Request) {
	drainBody(r)
	q := r.URL.Query()
	inst := q.Get("instId")
	v := okxVenueOf(inst)
	if f := s.faults.restFault(v); f != nil {
		s.writeRESTFault(w, v, f)
		return
	}
	if r.URL.Path == "/api/v5/public/instruments" {
		code, msg, data := s.okxInstruments(q)
		writeJSONBytes(w, http.StatusOK, okxEnvelope(code, msg, data))
		return
	}
	if r.URL.Path == "/api/v5/public/time" {
		b := strconv.AppendInt([]byte(`[{"ts":"`), s.nowNs(OKXSpot)/1e6, 10)
		writeJSONBytes(w, http.StatusOK, okxEnvelope("0", "", append(b, `"}]`...)))
		return
	}
	m := s.markets[v][inst]
	candles := r.URL.Path == "/api/v5/market/candles" || r.URL.Path == "/api/v5/market/history-candles"
	switch {
	case r.URL.Path != "/api/v5/market/books" && r.URL.Path != "/api/v5/market/history-trades" && !candles:
		writeJSONBytes(w, http.StatusNotFound, okxEnvelope("50000", "Not found", []byte("[]")))
		return
	case m == nil:
		writeJSONBytes(w, http.StatusOK, okxEnvelope("51001", "Instrument ID, Instrument ID code, or Spread ID doesn't exist.", []byte("[]")))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := s.nowNs(v)
	if candles {
		writeJSONBytes(w, http.StatusOK, m.okxCandlesJSON(q, r.URL.Path == "/api/v5/market/history-candles"))
		return
	}
	if r.URL.Path == "/api/v5/market/books" {
		sz := 1
		if n, err := strconv.Atoi(q.Get("sz")); err == nil && n > 0 {
			sz = min(n, okxDepth)
		}
		b := []byte(`[{"asks":`)
		b = m.appendOKXLevels(b, topN(m.book.sides[askSide], sz))
		b = append(b, `,"bids":`...)
		b = m.appendOKXLevels(b, topN(m.book.sides[bidSide], sz))
		b = append(b, `,"ts":"`...)
		b = strconv.AppendInt(b, now/1e6, 10)
		b = append(b, `","seqId":`...)
		b = strconv.AppendInt(b, m.okx.seq, 10)
		writeJSONBytes(w, http.StatusOK, okxEnvelope("0", "", append(b, "}]"...)))
		return
	}
	limit := 100
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n < 100 {
		limit = n
	}
	span := m.ring.span()
	hi := span.Last
	if after, err := strconv.ParseInt(q.Get("after"), 10, 64); err == nil {
		hi = min(hi, after-1)
	}
	b := []byte{'['}
	for id, n := hi, 0; id >= span.First && n < limit; id, n = id-1, n+1 {
		rec, ok := m.ring.get(id)
		if !ok {
			break
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = m.appendOKXTrade(b, id, rec, 0)
	}
	writeJSONBytes(w, http.StatusOK, okxEnvelope("0", "", append(b, ']')))
}

// writeOKXRESTFault answers a REST fault: 429 with code 50011 (OKX's rate
// limit; Retry-After as configured), other statuses with code 50001.
func writeOKXRESTFault(w http.ResponseWriter, st int, retry string) {
	if st == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retry)
		writeJSONBytes(w, st, okxEnvelope("50011", "Too Many Requests", []byte("[]")))
		return
	}
	writeJSONBytes(w, st, okxEnvelope("50001", "Service temporarily unavailable. Please try again later.", []byte("[]")))
}
