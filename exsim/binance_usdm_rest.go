package exsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// USD-M REST weights (EXCHANGES-MORE.md 2.9).
const (
	weightUSDMTime         = 1
	weightUSDMExchangeInfo = 1
	weightUSDMAggTrades    = 20
)

// usdmDepthWeight is the weight of GET /fapi/v1/depth by limit.
func usdmDepthWeight(limit int) int {
	switch {
	case limit <= 50:
		return 2
	case limit <= 100:
		return 5
	case limit <= 500:
		return 10
	}
	return 20
}

// handleUSDMREST serves /fapi/v1/{depth,aggTrades,klines,openInterest,time,ping,exchangeInfo}.
func (s *Server) handleUSDMREST(w http.ResponseWriter, r *http.Request) {
	drainBody(r)
	path := r.URL.Path
	q := r.URL.Query()
	now := s.clock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "0")
		writeJSONBytes(w, http.StatusMethodNotAllowed, binanceError(-1000, "Method not allowed."))
		return
	}
	weight, limit := 1, 0
	var perr []byte
	switch path {
	case "/fapi/v1/ping", "/fapi/v1/time":
		weight = weightUSDMTime
	case "/fapi/v1/exchangeInfo":
		weight = weightUSDMExchangeInfo
	case "/fapi/v1/depth":
		limit, perr = usdmDepthLimit(q.Get("limit"))
		weight = usdmDepthWeight(limit)
	case "/fapi/v1/aggTrades":
		weight = weightUSDMAggTrades
		limit, perr = intParam(q, "limit", 500, 1, 1000)
	case "/fapi/v1/klines":
		limit, perr = intParam(q, "limit", 500, 1, 1500)
		weight = usdmKlinesWeight(limit)
	case "/fapi/v1/openInterest":
		weight = 1
	default:
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "0")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f := s.faults.restFault(BinanceUSDM); f != nil {
		s.writeRESTFault(w, BinanceUSDM, f)
		return
	}
	status, used, retry := s.binanceChargeIn(s.limits.usd, s.cfg.USDMWeightLimit, clientIP(r), weight, now)
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
		writeJSONBytes(w, status, binanceError(-1003, "Too many requests; current limit of IP is "+
			strconv.Itoa(s.cfg.USDMWeightLimit)+" requests per minute. Please use the websocket for live updates to avoid polling the API."))
		return
	case http.StatusTeapot:
		w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
		until := now.Add(secondsDur(retry)).UnixMilli()
		writeJSONBytes(w, status, binanceError(-1003, "Way too many requests; IP banned until "+
			strconv.FormatInt(until, 10)+". Please use the websocket for live updates to avoid bans."))
		return
	}
	if perr != nil {
		writeJSONBytes(w, http.StatusBadRequest, perr)
		return
	}
	switch path {
	case "/fapi/v1/ping":
		writeJSONBytes(w, http.StatusOK, []byte("{}"))
		return
	case "/fapi/v1/time":
		b := strconv.AppendInt([]byte(`{"serverTime":`), s.nowNs(BinanceUSDM)/1e6, 10)
		writeJSONBytes(w, http.StatusOK, append(b, '}'))
		return
	case "/fapi/v1/exchangeInfo":
		s.usdmExchangeInfo(w)
		return
	}
	sym := q.Get("symbol")
	if sym == "" {
		writeJSONBytes(w, http.StatusBadRequest, binanceError(-1102, msgMandatorySymbol))
		return
	}
	m := s.markets[BinanceUSDM][sym]
	if m == nil {
		writeJSONBytes(w, http.StatusBadRequest, binanceError(-1121, "Invalid symbol."))
		return
	}
	switch path {
	case "/fapi/v1/depth":
		writeJSONBytes(w, http.StatusOK, m.usdmDepthJSON(limit))
	case "/fapi/v1/aggTrades":
		from := int64(-1)
		if v := q.Get("fromId"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeJSONBytes(w, http.StatusBadRequest, illegalParam("fromId"))
				return
			}
			from = n
		}
		writeJSONBytes(w, http.StatusOK, m.usdmAggTradesJSON(from, limit))
	case "/fapi/v1/klines":
		body, perr := m.binanceKlinesJSON(q)
		if perr != nil {
			writeJSONBytes(w, http.StatusBadRequest, perr)
			return
		}
		writeJSONBytes(w, http.StatusOK, body)
	case "/fapi/v1/openInterest":
		writeJSONBytes(w, http.StatusOK, m.usdmOpenInterestJSON())
	}
}

// usdmDepthLimit parses limit of /fapi/v1/depth: one of 5, 10, 20, 50,
// 100, 500, 1000 (default 500).
func usdmDepthLimit(v string) (int, []byte) {
	if v == "" {
		return 500, nil
	}
	n, err := strconv.Atoi(v)
	if err == nil {
		switch n {
		case 5, 10, 20, 50, 100, 500, 1000:
			return n, nil
		}
	}
	return 500, binanceError(-1130, "Data sent for parameter 'limit' is not valid.")
}

// usdmDepthJSON is {"lastUpdateId":N,"E":ms,"T":ms,"bids":[..],"asks":[..]}.
func (m *market) usdmDepthJSON(limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.srv.nowNs(BinanceUSDM)
	b := make([]byte, 0, 96+limit*40)
	b = append(b, `{"lastUpdateId":`...)
	b = strconv.AppendInt(b, m.updateID, 10)
	b = append(b, `,"E":`...)
	b = appendTime(b, now, false)
	b = append(b, `,"T":`...)
	b = appendTime(b, now, false)
	b = append(b, `,"bids":`...)
	b = m.appendLevels(b, topN(m.book.sides[bidSide], limit))
	b = append(b, `,"asks":`...)
	b = m.appendLevels(b, topN(m.book.sides[askSide], limit))
	return append(b, '}')
}

// usdmAggTradesJSON returns up to limit aggregate trades from id from (-1:
// the most recent ones), ascending: rows {a,p,q,nq,f,l,T,m}.
func (m *market) usdmAggTradesJSON(from int64, limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	span := m.ring.span()
	if span.Empty() {
		return []byte("[]")
	}
	if from < 0 {
		from = span.Last - int64(limit) + 1
	}
	from = max(from, span.First)
	b := make([]byte, 0, 2+limit*140)
	b = append(b, '[')
	for id := from; id <= span.Last && id < from+int64(limit); id++ {
		rec, _ := m.ring.get(id)
		if id > from {
			b = append(b, ',')
		}
		b = append(b, `{"a":`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `,"p":"`...)
		b = m.appendPx(b, rec.px)
		b = append(b, `","q":"`...)
		b = m.appendQty(b, rec.qty)
		b = append(b, `","nq":"`...)
		b = m.appendQty(b, rec.qty)
		b = append(b, `","f":`...)
		b = strconv.AppendInt(b, rec.agg, 10)
		b = append(b, `,"l":`...)
		b = strconv.AppendInt(b, rec.agg, 10)
		b = append(b, `,"T":`...)
		b = strconv.AppendInt(b, rec.ns/1e6, 10)
		b = append(b, `,"m":`...)
		b = appendBool(b, rec.maker)
		b = append(b, '}')
	}
	return append(b, ']')
}

// usdmExchangeInfo serves /fapi/v1/exchangeInfo: rateLimits and the
// perpetual symbols, status TRADING or, delisted (SetListed), SETTLING.
func (s *Server) usdmExchangeInfo(w http.ResponseWriter) {
	type rateLimit struct {
		RateLimitType string `json:"rateLimitType"`
		Interval      string `json:"interval"`
		IntervalNum   int    `json:"intervalNum"`
		Limit         int    `json:"limit"`
	}
	type symbolInfo struct {
		Symbol            string `json:"symbol"`
		Pair              string `json:"pair"`
		ContractType      string `json:"contractType"`
		Status            string `json:"status"`
		BaseAsset         string `json:"baseAsset"`
		QuoteAsset        string `json:"quoteAsset"`
		MarginAsset       string `json:"marginAsset"`
		PricePrecision    int    `json:"pricePrecision"`
		QuantityPrecision int    `json:"quantityPrecision"`
		DeliveryDate      int64  `json:"deliveryDate"`
		OnboardDate       int64  `json:"onboardDate"`
		Filters           []any  `json:"filters"`
	}
	syms := []symbolInfo{}
	for _, m := range s.mlist {
		if m.venue != BinanceUSDM {
			continue
		}
		base, quote := baseAsset(m.symbol)
		pair, typ, status, delivery := s.usdmContract(m.symbol)
		syms = append(syms, symbolInfo{Symbol: m.symbol, Pair: pair, ContractType: typ, Status: status,
			BaseAsset: base, QuoteAsset: quote, MarginAsset: quote, PricePrecision: m.in.pxDec, QuantityPrecision: m.in.qtyDec,
			DeliveryDate: delivery, OnboardDate: 1569398400000, Filters: []any{}})
	}
	body, _ := json.Marshal(struct {
		Timezone   string       `json:"timezone"`
		ServerTime int64        `json:"serverTime"`
		RateLimits []rateLimit  `json:"rateLimits"`
		Assets     []any        `json:"assets"`
		Symbols    []symbolInfo `json:"symbols"`
	}{
		Timezone: "UTC", ServerTime: s.nowNs(BinanceUSDM) / int64(time.Millisecond),
		RateLimits: []rateLimit{
			{"REQUEST_WEIGHT", "MINUTE", 1, s.cfg.USDMWeightLimit},
			{"ORDERS", "MINUTE", 1, 1200},
			{"ORDERS", "SECOND", 10, 300},
		},
		Assets: []any{}, Symbols: syms,
	})
	writeJSONBytes(w, http.StatusOK, body)
}
