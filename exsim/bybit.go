package exsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// maxBybitArgsChars bounds the total length of a public connection's args.
const maxBybitArgsChars = 21000

// parseBybitTopic splits "publicTrade.SYM" (depth 0) or "orderbook.N.SYM".
func parseBybitTopic(t string) (depth int, sym string, ok bool) {
	if s, found := strings.CutPrefix(t, "publicTrade."); found {
		return 0, s, s != ""
	}
	rest, found := strings.CutPrefix(t, "orderbook.")
	if !found {
		return parseBybitChannelTopic(t)
	}
	ds, s, found := strings.Cut(rest, ".")
	if !found || s == "" {
		return 0, "", false
	}
	d, err := strconv.Atoi(ds)
	if err != nil {
		return 0, "", false
	}
	for _, x := range bybitDepths {
		if x == d {
			return d, s, true
		}
	}
	return 0, "", false
}

// handleBybitWS serves /v5/public/spot and /v5/public/linear.
func (s *Server) handleBybitWS(w http.ResponseWriter, r *http.Request) {
	var v Venue
	switch r.URL.Path {
	case "/v5/public/spot":
		v = BybitSpot
	case "/v5/public/linear":
		v = BybitLinear
	default:
		http.NotFound(w, r)
		return
	}
	s.accept(w, r, v, nil, s.bybitRead)
}

// bybitReply builds a control reply.
func (c *conn) bybitReply(success bool, retMsg, reqID, op string, hasReqID bool) []byte {
	b := []byte(`{"success":`)
	b = appendBool(b, success)
	b = append(b, `,"ret_msg":`...)
	b = appendJSONString(b, retMsg)
	b = append(b, `,"conn_id":"`...)
	b = append(b, c.connID...)
	b = append(b, '"')
	if hasReqID {
		b = append(b, `,"req_id":`...)
		b = appendJSONString(b, reqID)
	}
	b = append(b, `,"op":`...)
	b = appendJSONString(b, op)
	return append(b, '}')
}

// bybitRead handles one client frame: subscribe, unsubscribe or ping.
func (s *Server) bybitRead(c *conn, mt int, data []byte) {
	var req map[string]json.RawMessage
	if mt != websocket.TextMessage || json.Unmarshal(data, &req) != nil {
		c.sendControl(c.bybitReply(false, "error:request must be a JSON object", "", "", false))
		return
	}
	reqID, hasReqID := "", false
	if raw := bytes.TrimSpace(req["req_id"]); len(raw) > 0 && !bytes.Equal(raw, jsonNull) {
		hasReqID = true
		if json.Unmarshal(raw, &reqID) != nil {
			reqID = string(raw)
		}
	}
	var op string
	if json.Unmarshal(req["op"], &op) != nil || op == "" {
		c.sendControl(c.bybitReply(false, "error:op is required", reqID, "", hasReqID))
		return
	}
	reply := func(ok bool, msg string) { c.sendControl(c.bybitReply(ok, msg, reqID, op, hasReqID)) }
	switch op {
	case "ping":
		if p := c.pol.Load(); p != nil && p.dropPongs {
			return
		}
		c.lastActive.Store(c.srv.clock().UnixNano())
		reply(true, "pong")
		return
	case "subscribe", "unsubscribe":
	default:
		reply(false, "error:unsupported op: "+op)
		return
	}
	var args []string
	if raw := req["args"]; len(raw) > 0 && json.Unmarshal(raw, &args) != nil {
		reply(false, "error:args must be an array of strings")
		return
	}
	if len(args) == 0 {
		reply(false, "error:args is empty")
		return
	}
	okMsg := op
	if c.venue == BybitLinear {
		okMsg = ""
	}
	if op == "unsubscribe" {
		c.mu.Lock()
		for _, t := range args {
			if !contains(c.topics, t) {
				c.mu.Unlock()
				reply(false, "error:not subscribed,topic:"+t)
				return
			}
		}
		for _, t := range args {
			for i, x := range c.topics {
				if x == t {
					c.topics = append(c.topics[:i], c.topics[i+1:]...)
					c.argChars -= len(t)
					s.bybitUnsubscribe(c, t)
					break
				}
			}
		}
		c.mu.Unlock()
		reply(true, okMsg)
		return
	}
	if c.venue == BybitSpot && s.cfg.BybitMaxArgs > 0 && len(args) > s.cfg.BybitMaxArgs {
		reply(false, "error:args size >"+strconv.Itoa(s.cfg.BybitMaxArgs))
		return
	}
	c.mu.Lock()
	chars := c.argChars
	for i, t := range args {
		depth, sym, ok := parseBybitTopic(t)
		msg := ""
		switch {
		case !ok, depth == bybitTickers && c.venue != BybitLinear, depth == bybitLiquidation && c.venue != BybitLinear:
			msg = "error:handler not found,topic:" + t
		case s.markets[c.venue][sym] == nil:
			msg = "error:Invalid symbol :[" + t + "]"
		case contains(c.topics, t) || contains(args[:i], t):
			msg = "error:already subscribed,topic:" + t
		}
		_ = depth
		chars += len(t)
		if msg == "" && chars > maxBybitArgsChars {
			msg = "error:args length exceeds " + strconv.Itoa(maxBybitArgsChars)
		}
		if msg != "" {
			c.mu.Unlock()
			reply(false, msg)
			return
		}
	}
	// The ack is queued with the markets locked: every event after it
	// reaches the client, and snapshots follow the ack.
	var syms []string
	var ms []*market
	for _, t := range args {
		_, sym, _ := parseBybitTopic(t)
		ms = append(ms, s.markets[c.venue][sym])
	}
	unlock := lockMarkets(ms)
	reply(true, okMsg)
	if !c.closed {
		for _, t := range args {
			depth, sym, _ := parseBybitTopic(t)
			c.topics = append(c.topics, t)
			c.argChars += len(t)
			s.markets[c.venue][sym].bybitAddSubLocked(c, depth)
			syms = append(syms, sym)
		}
	}
	unlock()
	c.mu.Unlock()
	for _, sym := range syms {
		s.faults.onSubscribe(s, c, sym)
	}
}

// bybitUnsubscribe removes c from the market of topic t.
func (s *Server) bybitUnsubscribe(c *conn, t string) {
	depth, sym, ok := parseBybitTopic(t)
	if !ok {
		return
	}
	if m := s.markets[c.venue][sym]; m != nil {
		m.bybitRemoveSub(c, depth)
	}
}

// bybitResnapshot sends c a fresh snapshot of each orderbook topic it has
// (of symbol, or all when symbol is "").
func (s *Server) bybitResnapshot(c *conn, symbol string) {
	if !c.venue.isBybit() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.topics {
		depth, sym, ok := parseBybitTopic(t)
		if !ok || depth <= 0 || symbol != "" && sym != symbol {
			continue
		}
		if m := s.markets[c.venue][sym]; m != nil {
			m.mu.Lock()
			m.bybitSnapshotTo(c, m.view(depth))
			m.mu.Unlock()
		}
	}
}

func (m *market) view(depth int) *bybitView {
	for _, v := range m.views {
		if v.depth == depth {
			return v
		}
	}
	return nil
}

// bybitAddSubLocked subscribes c to the trades (depth 0) or the orderbook
// view of depth; an orderbook subscription starts with a snapshot. The
// caller holds m.mu.
func (m *market) bybitAddSubLocked(c *conn, depth int) {
	if depth < 0 {
		m.bybitChanAddSubLocked(c, depth)
		return
	}
	if depth == 0 {
		m.tradeSubs = append(m.tradeSubs[:len(m.tradeSubs):len(m.tradeSubs)], c)
		return
	}
	v := m.view(depth)
	m.bybitSnapshotTo(c, v)
	v.subs = append(v.subs[:len(v.subs):len(v.subs)], c)
	if depth == 1 {
		v.lastPush = time.Now() // the next unchanged re-send is 3 s away
	}
}

func (m *market) bybitRemoveSub(c *conn, depth int) {
	if depth < 0 {
		m.bybitChanRemoveSub(c, depth)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if depth == 0 {
		m.tradeSubs = removeConn(m.tradeSubs, c)
		return
	}
	v := m.view(depth)
	v.subs = removeConn(v.subs, c)
}

// bybitSnapshotTo sends view v's snapshot to c alone (under m.mu).
func (m *market) bybitSnapshotTo(c *conn, v *bybitView) {
	b := m.encodeBybitBook(nil, v, m.srv.nowNs(m.venue), true)
	c.send(outFrame{b: b, ser: v.ser, lo: v.u, hi: v.u, m: m, kind: fkSnapshot})
}

// encodeBybitBook appends an orderbook frame of view v: a snapshot of its
// top levels, or the delta computed by the last update.
func (m *market) encodeBybitBook(dst []byte, v *bybitView, now int64, snapshot bool) []byte {
	dst = append(dst, `{"topic":"orderbook.`...)
	dst = strconv.AppendInt(dst, int64(v.depth), 10)
	dst = append(dst, '.')
	dst = append(dst, m.symbol...)
	if snapshot {
		dst = append(dst, `","type":"snapshot","ts":`...)
	} else {
		dst = append(dst, `","type":"delta","ts":`...)
	}
	dst = strconv.AppendInt(dst, now/1e6, 10)
	dst = append(dst, `,"data":{"s":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `","b":`...)
	if snapshot {
		dst = m.appendLevels(dst, topN(m.book.sides[bidSide], v.depth))
		dst = append(dst, `,"a":`...)
		dst = m.appendLevels(dst, topN(m.book.sides[askSide], v.depth))
	} else {
		dst = m.appendLevels(dst, v.delta[bidSide])
		dst = append(dst, `,"a":`...)
		dst = m.appendLevels(dst, v.delta[askSide])
	}
	dst = append(dst, `,"u":`...)
	dst = strconv.AppendInt(dst, v.u, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, v.seq, 10)
	dst = append(dst, `},"cts":`...)
	dst = strconv.AppendInt(dst, now/1e6-1, 10)
	return append(dst, '}')
}

// fanBybitBook publishes view v's current push to its subscribers.
func (m *market) fanBybitBook(v *bybitView, now int64, snapshot bool) {
	if len(v.subs) == 0 {
		return
	}
	m.wbuf = m.encodeBybitBook(m.wbuf[:0], v, now, snapshot)
	fk := fkDepth
	if snapshot {
		fk = fkSnapshot
	}
	deliver(v.subs, outFrame{b: m.carve(m.wbuf), ser: v.ser, lo: v.u, hi: v.u, m: m, kind: fk})
}

// flushBybitTrades publishes the trades generated since the last flush in
// publicTrade frames of at most 1024 trades.
func (m *market) flushBybitTrades(now int64) {
	batch := m.batch
	m.batch = m.batch[:0]
	if len(m.tradeSubs) == 0 {
		return
	}
	for len(batch) > 0 {
		n := min(len(batch), 1024)
		chunk := batch[:n]
		batch = batch[n:]
		b := append(m.wbuf[:0], `{"topic":"publicTrade.`...)
		b = append(b, m.symbol...)
		b = append(b, `","type":"snapshot","ts":`...)
		b = strconv.AppendInt(b, now/1e6, 10)
		b = append(b, `,"data":[`...)
		for i, id := range chunk {
			rec, _ := m.ring.get(id)
			if i > 0 {
				b = append(b, ',')
			}
			b = m.appendBybitTrade(b, id, rec)
		}
		b = append(b, "]}"...)
		m.wbuf = b
		deliver(m.tradeSubs, outFrame{b: m.carve(b), ser: m.trades, lo: chunk[0], hi: chunk[n-1], m: m, kind: fkTrade})
	}
}

// appendBybitTrade appends one publicTrade item.
func (m *market) appendBybitTrade(b []byte, ord int64, rec tradeRec) []byte {
	b = append(b, `{"T":`...)
	b = strconv.AppendInt(b, rec.ns/1e6, 10)
	b = append(b, `,"s":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","S":"`...)
	b = append(b, bybitSide(rec.maker)...)
	b = append(b, `","v":"`...)
	b = m.appendQty(b, rec.qty)
	b = append(b, `","p":"`...)
	b = m.appendPx(b, rec.px)
	if m.venue == BybitLinear {
		b = append(b, `","L":"`...)
		b = append(b, tickNames[rec.tick]...)
	}
	b = append(b, `","i":"`...)
	b = m.appendBybitTradeID(b, ord)
	b = append(b, `","BT":false,"RPI":false,"seq":`...)
	b = strconv.AppendInt(b, rec.agg, 10)
	return append(b, '}')
}

func bybitSide(maker bool) string {
	if maker {
		return "Sell"
	}
	return "Buy"
}

// Bybit spot trade ids are numeric, increasing and not consecutive: a base,
// plus 1000 per ordinal, plus a pseudo-random jitter below 1000.
const bybitSpotIDBase = 2_280_000_000_000_000_000

func (m *market) spotIDBase() int64 { return bybitSpotIDBase + int64(m.idBase%1_000_000_000_000_000) }

// appendBybitTradeID appends the wire id `i` of trade ordinal ord: numeric
// on spot, UUID-shaped on linear; both are invertible (bybitOrdinal).
func (m *market) appendBybitTradeID(b []byte, ord int64) []byte {
	if m.venue == BybitSpot {
		return strconv.AppendInt(b, m.spotIDBase()+ord*1000+int64(splitmix64(m.idBase^uint64(ord))%1000), 10)
	}
	h := splitmix64(m.idBase ^ uint64(ord))
	low := uint64(ord) ^ (m.idBase & 0xffffffffffff)
	hex := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			b = append(b, "0123456789abcdef"[(v>>(4*uint(i)))&0xf])
		}
	}
	hex(h>>32, 8)
	b = append(b, '-')
	hex(h>>16, 4)
	b = append(b, '-', '5')
	hex(h, 3)
	b = append(b, '-')
	hex(splitmix64(h)>>48|0x8000, 4)
	b = append(b, '-')
	hex(low, 12)
	return b
}

// bybitOrdinal inverts appendBybitTradeID.
func (m *market) bybitOrdinal(id string) (int64, bool) {
	if m.venue == BybitSpot {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < m.spotIDBase() {
			return 0, false
		}
		ord := (n - m.spotIDBase()) / 1000
		return ord, string(m.appendBybitTradeID(nil, ord)) == id
	}
	if len(id) != 36 {
		return 0, false
	}
	low, err := strconv.ParseUint(id[24:], 16, 64)
	if err != nil {
		return 0, false
	}
	ord := int64(low ^ (m.idBase & 0xffffffffffff))
	return ord, string(m.appendBybitTradeID(nil, ord)) == id
}

// BybitTradeID returns the wire trade id `i` of trade ordinal ord of a
// Bybit market (ordinals are what the ground truth records). Returns
// errors wrapping ErrUnknownMarket.
func (s *Server) BybitTradeID(v Venue, symbol string, ord int64) (string, error) {
	m, err := s.market(v, symbol)
	if err != nil || !v.isBybit() {
		return "", errorOr(err, ErrUnknownMarket)
	}
	return string(m.appendBybitTradeID(nil, ord)), nil
}

// BybitTradeOrdinal maps a Bybit wire trade id back to its ordinal; ok is
// false for ids the market never makes.
func (s *Server) BybitTradeOrdinal(v Venue, symbol, id string) (ord int64, ok bool) {
	m, err := s.market(v, symbol)
	if err != nil || !v.isBybit() {
		return 0, false
	}
	return m.bybitOrdinal(id)
}

func errorOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
