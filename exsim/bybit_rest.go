package exsim

import (
	"net/http"
	"strconv"
)

// bybitEnvelope wraps a result in Bybit's REST envelope.
func bybitEnvelope(code int, msg string, result []byte, nowNs int64) []byte {
	b := []byte(`{"retCode":`)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"retMsg":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	b = append(b, `,"retExtInfo":{},"time":`...)
	b = strconv.AppendInt(b, nowNs/1e6, 10)
	return append(b, '}')
}

// handleBybitREST serves /v5/market/time, /v5/market/orderbook and
// /v5/market/recent-trade.
func (s *Server) handleBybitREST(w http.ResponseWriter, r *http.Request) {
	drainBody(r)
	q := r.URL.Query()
	now := s.clock()
	cat := q.Get("category")
	v := BybitSpot
	if cat == "linear" {
		v = BybitLinear
	}
	if f := s.faults.restFault(v); f != nil {
		s.writeRESTFault(w, v, f)
		return
	}
	status, left, reset := s.bybitCharge(clientIP(r), now)
	if status == http.StatusForbidden {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("access too frequent"))
		return
	}
	h := w.Header()
	h.Set("X-Bapi-Limit", strconv.Itoa(s.cfg.BybitRequestLimit))
	h.Set("X-Bapi-Limit-Status", strconv.Itoa(left))
	h.Set("X-Bapi-Limit-Reset-Timestamp", strconv.FormatInt(reset.UnixMilli(), 10))
	nowNs := s.nowNs(v)
	fail := func(code int, msg string) {
		writeJSONBytes(w, http.StatusOK, bybitEnvelope(code, msg, []byte("{}"), nowNs))
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSONBytes(w, http.StatusMethodNotAllowed, bybitEnvelope(10004, "method not allowed", []byte("{}"), nowNs))
		return
	}
	if r.URL.Path == "/v5/market/time" {
		res := []byte(`{"timeSecond":"`)
		res = strconv.AppendInt(res, nowNs/1e9, 10)
		res = append(res, `","timeNano":"`...)
		res = strconv.AppendInt(res, nowNs, 10)
		res = append(res, `"}`...)
		writeJSONBytes(w, http.StatusOK, bybitEnvelope(0, "OK", res, nowNs))
		return
	}
	if r.URL.Path == "/v5/market/instruments-info" {
		if cat != "spot" && cat != "linear" {
			fail(10001, "Illegal category")
			return
		}
		code, msg, res := s.bybitInstruments(v, q)
		if code != 0 {
			fail(code, msg)
			return
		}
		writeJSONBytes(w, http.StatusOK, bybitEnvelope(0, "OK", res, nowNs))
		return
	}
	if r.URL.Path != "/v5/market/orderbook" && r.URL.Path != "/v5/market/recent-trade" && r.URL.Path != "/v5/market/kline" {
		http.NotFound(w, r)
		return
	}
	if cat != "spot" && cat != "linear" {
		fail(10001, "Illegal category")
		return
	}
	sym := q.Get("symbol")
	m := s.markets[v][sym]
	if m == nil {
		fail(10001, "params error: symbol invalid")
		return
	}
	if r.URL.Path == "/v5/market/kline" {
		res, err := m.bybitKlinesJSON(cat, q)
		if err != nil {
			fail(10001, "params error: "+err.Error()+" invalid")
			return
		}
		writeJSONBytes(w, http.StatusOK, bybitEnvelope(0, "OK", res, nowNs))
		return
	}
	defLimit, maxLimit := 1, 1000
	if r.URL.Path == "/v5/market/orderbook" {
		if v == BybitLinear {
			defLimit, maxLimit = 25, 500
		}
	} else {
		defLimit, maxLimit = 60, 60
		if v == BybitLinear {
			defLimit, maxLimit = 500, 1000
		}
	}
	limit := defLimit
	if lv := q.Get("limit"); lv != "" {
		n, err := strconv.Atoi(lv)
		if err != nil || n < 1 {
			fail(10001, "params error: limit invalid")
			return
		}
		limit = min(n, maxLimit)
	}
	var res []byte
	if r.URL.Path == "/v5/market/orderbook" {
		res = m.bybitBookJSON(limit, nowNs)
	} else {
		res = m.bybitTradesJSON(cat, limit)
	}
	writeJSONBytes(w, http.StatusOK, bybitEnvelope(0, "OK", res, nowNs))
}

// bybitBookJSON is the REST order book result: u is the update id of the
// 1000-level stream, seq the cross sequence.
func (m *market) bybitBookJSON(limit int, now int64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.view(1000)
	b := []byte(`{"s":"`)
	b = append(b, m.symbol...)
	b = append(b, `","b":`...)
	b = m.appendLevels(b, topN(m.book.sides[bidSide], limit))
	b = append(b, `,"a":`...)
	b = m.appendLevels(b, topN(m.book.sides[askSide], limit))
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, now/1e6, 10)
	b = append(b, `,"u":`...)
	b = strconv.AppendInt(b, v.u, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.updateID, 10)
	b = append(b, `,"cts":`...)
	b = strconv.AppendInt(b, now/1e6-1, 10)
	return append(b, '}')
}

// bybitTradesJSON is the REST recent-trade result, newest first.
func (m *market) bybitTradesJSON(cat string, limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := []byte(`{"category":"`)
	b = append(b, cat...)
	b = append(b, `","list":[`...)
	span := m.ring.span()
	for id, n := span.Last, 0; id >= span.First && n < limit; id, n = id-1, n+1 {
		rec, _ := m.ring.get(id)
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"execId":"`...)
		b = m.appendBybitTradeID(b, id)
		b = append(b, `","symbol":"`...)
		b = append(b, m.symbol...)
		b = append(b, `","price":"`...)
		b = m.appendPx(b, rec.px)
		b = append(b, `","size":"`...)
		b = m.appendQty(b, rec.qty)
		b = append(b, `","side":"`...)
		b = append(b, bybitSide(rec.maker)...)
		b = append(b, `","time":"`...)
		b = strconv.AppendInt(b, rec.ns/1e6, 10)
		b = append(b, `","isBlockTrade":false,"isRPITrade":false,"seq":"`...)
		b = strconv.AppendInt(b, rec.agg, 10)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}
