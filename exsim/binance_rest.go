package exsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Binance REST endpoint weights (EXCHANGES.md).
const (
	weightTime         = 1
	weightPing         = 1
	weightExchangeInfo = 20
	weightTrades       = 25
	weightAggTrades    = 4
)

// binanceDepthWeight is the weight of GET /api/v3/depth by limit.
func binanceDepthWeight(limit int) int {
	switch {
	case limit <= 100:
		return 5
	case limit <= 500:
		return 25
	case limit <= 1000:
		return 50
	}
	return 250
}

const msgMandatorySymbol = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."

// handleBinanceREST serves /api/v3/*.
func (s *Server) handleBinanceREST(w http.ResponseWriter, r *http.Request) {
	drainBody(r)
	path := r.URL.Path
	q := r.URL.Query()
	now := s.clock()
	ip := clientIP(r)

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "0")
		writeJSONBytes(w, http.StatusMethodNotAllowed, binanceError(-1000, "Method not allowed."))
		return
	}
	// Weight depends on the request: compute it before charging.
	weight := 1
	limit := 0
	var perr []byte
	switch path {
	case "/api/v3/ping":
		weight = weightPing
	case "/api/v3/time":
		weight = weightTime
	case "/api/v3/exchangeInfo":
		weight = weightExchangeInfo
	case "/api/v3/depth":
		limit, perr = intParam(q, "limit", 100, 1, 5000)
		weight = binanceDepthWeight(limit)
	case "/api/v3/trades", "/api/v3/historicalTrades":
		weight = weightTrades
		limit, perr = intParam(q, "limit", 500, 1, 1000)
	case "/api/v3/aggTrades":
		weight = weightAggTrades
		limit, perr = intParam(q, "limit", 500, 1, 1000)
	case "/api/v3/klines":
		weight = 2
	default:
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "0")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f := s.faults.restFault(Binance); f != nil {
		s.writeRESTFault(w, Binance, f)
		return
	}
	status, used, retry := s.binanceCharge(ip, weight, now)
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
		writeJSONBytes(w, status, binanceError(-1003, "Too much request weight used; current limit is "+
			strconv.Itoa(s.cfg.BinanceWeightLimit)+" request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."))
		return
	case http.StatusTeapot:
		w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
		until := now.Add(secondsDur(retry)).UnixMilli()
		writeJSONBytes(w, status, binanceError(-1003, "Way too much request weight used; IP banned until "+
			strconv.FormatInt(until, 10)+". Please use WebSocket Streams for live updates to avoid bans."))
		return
	}
	if perr != nil {
		writeJSONBytes(w, http.StatusBadRequest, perr)
		return
	}
	switch path {
	case "/api/v3/ping":
		writeJSONBytes(w, http.StatusOK, []byte("{}"))
	case "/api/v3/time":
		b := strconv.AppendInt([]byte(`{"serverTime":`), s.nowNs(Binance)/1e6, 10)
		writeJSONBytes(w, http.StatusOK, append(b, '}'))
	case "/api/v3/exchangeInfo":
		s.binanceExchangeInfo(w, q)
	default:
		sym := q.Get("symbol")
		if sym == "" {
			writeJSONBytes(w, http.StatusBadRequest, binanceError(-1102, msgMandatorySymbol))
			return
		}
		m := s.markets[Binance][sym]
		if m == nil {
			writeJSONBytes(w, http.StatusBadRequest, binanceError(-1121, "Invalid symbol."))
			return
		}
		switch path {
		case "/api/v3/depth":
			writeJSONBytes(w, http.StatusOK, m.binanceDepthJSON(limit))
		case "/api/v3/trades":
			writeJSONBytes(w, http.StatusOK, m.binanceTradesJSON(-1, limit))
		case "/api/v3/historicalTrades":
			from := int64(-1)
			if v := q.Get("fromId"); v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					writeJSONBytes(w, http.StatusBadRequest, illegalParam("fromId"))
					return
				}
				from = n
			}
			writeJSONBytes(w, http.StatusOK, m.binanceTradesJSON(from, limit))
		case "/api/v3/klines":
			body, perr := m.binanceKlinesJSON(q)
			if perr != nil {
				writeJSONBytes(w, http.StatusBadRequest, perr)
				return
			}
			writeJSONBytes(w, http.StatusOK, body)
		case "/api/v3/aggTrades":
			body, err := m.binanceAggTradesJSON(q, limit)
			if err != nil {
				writeJSONBytes(w, http.StatusBadRequest, err)
				return
			}
			writeJSONBytes(w, http.StatusOK, body)
		}
	}
}

func illegalParam(name string) []byte {
	return binanceError(-1100, "Illegal characters found in parameter '"+name+"'; legal range is '^[0-9]{1,20}$'.")
}

// intParam parses an optional integer parameter, clamping it to max.
func intParam(q url.Values, name string, def, lo, hi int) (int, []byte) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return def, illegalParam(name)
	}
	if n < lo {
		return def, binanceError(-1100, "Illegal characters found in parameter '"+name+"'; legal range is '"+strconv.Itoa(lo)+"-"+strconv.Itoa(hi)+"'.")
	}
	return min(n, hi), nil
}

// binanceDepthJSON is the REST order book snapshot.
func (m *market) binanceDepthJSON(limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appendBinanceDepth(make([]byte, 0, 64+limit*80), limit)
}

// appendQuoteQty appends price*qty, trimmed of trailing zeros.
func (m *market) appendQuoteQty(dst []byte, px, qty int64) []byte {
	start := len(dst)
	dst = appendDecimal(dst, px*qty, m.in.pxDec+m.in.qtyDec, m.in.pxDec+m.in.qtyDec)
	if dec := m.in.pxDec + m.in.qtyDec; dec > 0 {
		for len(dst) > start && dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
		if dst[len(dst)-1] == '.' {
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// binanceTradesJSON returns up to limit trades from id from (-1: the most
// recent ones), ascending.
func (m *market) binanceTradesJSON(from int64, limit int) []byte {
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
	b := make([]byte, 0, 2+limit*160)
	b = append(b, '[')
	for id := from; id <= span.Last && id < from+int64(limit); id++ {
		rec, _ := m.ring.get(id)
		if id > from {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `,"price":"`...)
		b = m.appendPx(b, rec.px)
		b = append(b, `","qty":"`...)
		b = m.appendQty(b, rec.qty)
		b = append(b, `","quoteQty":"`...)
		b = m.appendQuoteQty(b, rec.px, rec.qty)
		b = append(b, `","time":`...)
		b = strconv.AppendInt(b, rec.ns/1e6, 10)
		b = append(b, `,"isBuyerMaker":`...)
		b = appendBool(b, rec.maker)
		b = append(b, `,"isBestMatch":true}`...)
	}
	return append(b, ']')
}

// binanceAggTradesJSON serves /api/v3/aggTrades from the trade history:
// fromId, or startTime/endTime (ms), or the most recent limit.
func (m *market) binanceAggTradesJSON(q url.Values, limit int) ([]byte, []byte) {
	parse := func(name string) (int64, bool, []byte) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false, illegalParam(name)
		}
		return n, true, nil
	}
	fromID, hasFrom, e1 := parse("fromId")
	start, hasStart, e2 := parse("startTime")
	end, hasEnd, e3 := parse("endTime")
	for _, e := range [][]byte{e1, e2, e3} {
		if e != nil {
			return nil, e
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	span := m.ring.span()
	type agg struct {
		a, f, l, qty int64
		rec          tradeRec
	}
	var aggs []agg
	for id := span.First; id <= span.Last; id++ {
		rec, _ := m.ring.get(id)
		if n := len(aggs); n > 0 && aggs[n-1].a == rec.agg {
			aggs[n-1].l = id
			aggs[n-1].qty += rec.qty
			continue
		}
		aggs = append(aggs, agg{a: rec.agg, f: id, l: id, qty: rec.qty, rec: rec})
	}
	// Once the ring has evicted trades, its oldest group may be missing
	// some: drop it rather than report a wrong first id.
	if len(aggs) > 0 && span.First > m.trades.first {
		aggs = aggs[1:]
	}
	var sel []agg
	switch {
	case hasFrom:
		for _, g := range aggs {
			if g.a >= fromID && len(sel) < limit {
				sel = append(sel, g)
			}
		}
	case hasStart || hasEnd:
		if !hasEnd {
			end = start + 3600_000
		}
		if !hasStart {
			start = end - 3600_000
		}
		for _, g := range aggs {
			t := g.rec.ns / 1e6
			if t >= start && t <= end && len(sel) < limit {
				sel = append(sel, g)
			}
		}
	default:
		sel = aggs[max(0, len(aggs)-limit):]
	}
	b := []byte{'['}
	for i, g := range sel {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"a":`...)
		b = strconv.AppendInt(b, g.a, 10)
		b = append(b, `,"p":"`...)
		b = m.appendPx(b, g.rec.px)
		b = append(b, `","q":"`...)
		b = m.appendQty(b, g.qty)
		b = append(b, `","f":`...)
		b = strconv.AppendInt(b, g.f, 10)
		b = append(b, `,"l":`...)
		b = strconv.AppendInt(b, g.l, 10)
		b = append(b, `,"T":`...)
		b = strconv.AppendInt(b, g.rec.ns/1e6, 10)
		b = append(b, `,"m":`...)
		b = appendBool(b, g.rec.maker)
		b = append(b, `,"M":true}`...)
	}
	return append(b, ']'), nil
}

// binanceExchangeInfo serves /api/v3/exchangeInfo[?symbol=|symbols=].
func (s *Server) binanceExchangeInfo(w http.ResponseWriter, q url.Values) {
	type filter map[string]any
	type symbolInfo struct {
		Symbol                     string     `json:"symbol"`
		Status                     string     `json:"status"`
		BaseAsset                  string     `json:"baseAsset"`
		BaseAssetPrecision         int        `json:"baseAssetPrecision"`
		QuoteAsset                 string     `json:"quoteAsset"`
		QuotePrecision             int        `json:"quotePrecision"`
		QuoteAssetPrecision        int        `json:"quoteAssetPrecision"`
		BaseCommissionPrecision    int        `json:"baseCommissionPrecision"`
		QuoteCommissionPrecision   int        `json:"quoteCommissionPrecision"`
		OrderTypes                 []string   `json:"orderTypes"`
		IcebergAllowed             bool       `json:"icebergAllowed"`
		OcoAllowed                 bool       `json:"ocoAllowed"`
		QuoteOrderQtyMarketAllowed bool       `json:"quoteOrderQtyMarketAllowed"`
		AllowTrailingStop          bool       `json:"allowTrailingStop"`
		CancelReplaceAllowed       bool       `json:"cancelReplaceAllowed"`
		IsSpotTradingAllowed       bool       `json:"isSpotTradingAllowed"`
		IsMarginTradingAllowed     bool       `json:"isMarginTradingAllowed"`
		Filters                    []filter   `json:"filters"`
		Permissions                []string   `json:"permissions"`
		PermissionSets             [][]string `json:"permissionSets"`
	}
	type rateLimit struct {
		RateLimitType string `json:"rateLimitType"`
		Interval      string `json:"interval"`
		IntervalNum   int    `json:"intervalNum"`
		Limit         int    `json:"limit"`
	}
	want := map[string]bool{}
	if v := q.Get("symbol"); v != "" {
		want[v] = true
	}
	if v := q.Get("symbols"); v != "" {
		var list []string
		if json.Unmarshal([]byte(v), &list) != nil {
			writeJSONBytes(w, http.StatusBadRequest, binanceError(-1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'."))
			return
		}
		for _, x := range list {
			want[x] = true
		}
	}
	for sym := range want {
		if s.markets[Binance][sym] == nil {
			writeJSONBytes(w, http.StatusBadRequest, binanceError(-1121, "Invalid symbol."))
			return
		}
	}
	var syms []symbolInfo
	for _, m := range s.mlist {
		if m.venue != Binance || len(want) > 0 && !want[m.symbol] {
			continue
		}
		base, quote := baseAsset(m.symbol)
		tick := appendDecimal(nil, 1, m.in.pxDec, 8)
		step := appendDecimal(nil, 1, m.in.qtyDec, 8)
		syms = append(syms, symbolInfo{
			Symbol: m.symbol, Status: s.binanceStatus(m.symbol), BaseAsset: base, BaseAssetPrecision: 8,
			QuoteAsset: quote, QuotePrecision: 8, QuoteAssetPrecision: 8,
			BaseCommissionPrecision: 8, QuoteCommissionPrecision: 8,
			OrderTypes:     []string{"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"},
			IcebergAllowed: true, OcoAllowed: true, QuoteOrderQtyMarketAllowed: true,
			AllowTrailingStop: true, CancelReplaceAllowed: true, IsSpotTradingAllowed: true,
			Filters: []filter{
				{"filterType": "PRICE_FILTER", "minPrice": string(tick), "maxPrice": "1000000.00000000", "tickSize": string(tick)},
				{"filterType": "LOT_SIZE", "minQty": string(step), "maxQty": "9000.00000000", "stepSize": string(step)},
			},
			Permissions:    []string{},
			PermissionSets: [][]string{{"SPOT"}},
		})
	}
	if syms == nil {
		syms = []symbolInfo{}
	}
	body, _ := json.Marshal(struct {
		Timezone        string       `json:"timezone"`
		ServerTime      int64        `json:"serverTime"`
		RateLimits      []rateLimit  `json:"rateLimits"`
		ExchangeFilters []string     `json:"exchangeFilters"`
		Symbols         []symbolInfo `json:"symbols"`
	}{
		Timezone:   "UTC",
		ServerTime: s.nowNs(Binance) / 1e6,
		RateLimits: []rateLimit{
			{"REQUEST_WEIGHT", "MINUTE", 1, s.cfg.BinanceWeightLimit},
			{"ORDERS", "SECOND", 10, 100},
			{"ORDERS", "DAY", 1, 200000},
			{"RAW_REQUESTS", "MINUTE", 5, 61000},
		},
		ExchangeFilters: []string{},
		Symbols:         syms,
	})
	writeJSONBytes(w, http.StatusOK, body)
}

// secondsDur converts whole seconds to a Duration.
func secondsDur(sec int64) time.Duration { return time.Duration(sec) * time.Second }
