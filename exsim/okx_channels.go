package exsim

import (
	"net/url"
	"strconv"
	"strings"
)

// OKX channels beyond trades and books (EXCHANGES-MORE.md, 4.6-4.8), with
// ground truth as for the Bybit channels (channels.go):
//
//   - bbo-tbt (public): the best level after every book push that changed
//     it, seqId = the books seqId of that push (so OKXSeqReset moves it
//     lower too); the current one on subscribe;
//   - candle<bar> (business): the klines of channels.go under OKX's bar
//     names (UTC-aligned from 6H up), open-bar pushes every KlinePush and
//     the closed bar (confirm "1") when it closes; REST
//     /api/v5/market/candles (the latest okxCandleWindow bars, open bar
//     included) and /api/v5/market/history-candles (closed bars), newest
//     first, paged by after/before;
//   - okx-swap: mark-price, index-tickers (instId = the swap's index,
//     "BTC-USDT" for "BTC-USDT-SWAP"), funding-rate and open-interest, each
//     pushed when its value changed (the ticker state of channels.go moved
//     every TickerPush), and the last value on subscribe; Ticker returns
//     the merged state as last pushed;
//   - okx-swap: liquidation-orders (subscribed by instType SWAP: every swap
//     market's liquidations reach the connection), one message per market
//     and batch; Liquidations returns them.

// OKX channel names of the simulator.
const (
	okxBBO       = "bbo-tbt"
	okxCandle    = "candle"
	okxMark      = "mark-price"
	okxIndex     = "index-tickers"
	okxFunding   = "funding-rate"
	okxOI        = "open-interest"
	okxLiqOrders = "liquidation-orders"
)

// okxCandleWindow is how many recent bars /api/v5/market/candles serves.
const okxCandleWindow = 1440

// okxBars maps normalized interval names to OKX bar names.
var okxBars = map[string]string{
	"1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H", "4h": "4H",
	"6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc", "1M": "1Mutc",
}

// okxBarIndex returns the simIntervals index of an OKX bar name.
func okxBarIndex(bar string) (int, bool) {
	for i, iv := range simIntervals {
		if b, ok := okxBars[iv.name]; ok && b == bar {
			return i, true
		}
	}
	return 0, false
}

// okxIndexOf returns the index of a swap ("BTC-USDT-SWAP" -> "BTC-USDT").
func okxIndexOf(instID string) string { return strings.TrimSuffix(instID, "-SWAP") }

// okxChans is an OKX market's channel subscribers and pushed state.
// Guarded by the market's mu.
type okxChans struct {
	bboSubs                                 []*conn
	bboTop                                  [2]level
	markSubs, idxSubs, fundSubs, oiSubs     []*conn
	markTS, idxTS, fundTS, oiTS             int64 // ms of each part's last push (0: never)
	markSent, idxSent, fundSent, oiSent     int64
	fundTimeSent                            int64 // ms
	lastPartTS                              int64 // ms of the latest part push
	markTruth, idxTruth, fundTruth, oiTruth bool
}

// okxChanAddSubLocked subscribes c to a channel beyond trades and books.
// The caller holds m.mu (and, for liquidation-orders, every swap market's).
func (m *market) okxChanAddSubLocked(c *conn, a okxArg, now int64) {
	o := m.okx
	x := &o.ch
	switch {
	case a.Channel == okxBBO:
		x.bboSubs = append(x.bboSubs[:len(x.bboSubs):len(x.bboSubs)], c)
		c.send(outFrame{b: m.encodeOKXBBO(nil, now), m: m, kind: fkOther})
	case a.Channel == okxMark:
		x.markSubs = append(x.markSubs[:len(x.markSubs):len(x.markSubs)], c)
		if x.markTS > 0 {
			c.send(outFrame{b: m.encodeOKXPart(nil, okxMark, x.markTS), m: m, kind: fkOther})
		}
	case a.Channel == okxIndex:
		x.idxSubs = append(x.idxSubs[:len(x.idxSubs):len(x.idxSubs)], c)
		if x.idxTS > 0 {
			c.send(outFrame{b: m.encodeOKXPart(nil, okxIndex, x.idxTS), m: m, kind: fkOther})
		}
	case a.Channel == okxFunding:
		x.fundSubs = append(x.fundSubs[:len(x.fundSubs):len(x.fundSubs)], c)
		if x.fundTS > 0 {
			c.send(outFrame{b: m.encodeOKXPart(nil, okxFunding, x.fundTS), m: m, kind: fkOther})
		}
	case a.Channel == okxOI:
		x.oiSubs = append(x.oiSubs[:len(x.oiSubs):len(x.oiSubs)], c)
		if x.oiTS > 0 {
			c.send(outFrame{b: m.encodeOKXPart(nil, okxOI, x.oiTS), m: m, kind: fkOther})
		}
	case a.Channel == okxLiqOrders:
		m.chs.lSubs = append(m.chs.lSubs[:len(m.chs.lSubs):len(m.chs.lSubs)], c)
	default:
		if i, ok := okxBarIndex(strings.TrimPrefix(a.Channel, okxCandle)); ok {
			ks := m.chs.kl[i]
			ks.subs = append(ks.subs[:len(ks.subs):len(ks.subs)], c)
		}
	}
}

// okxChanRemoveSub is the inverse of okxChanAddSubLocked; the caller holds
// m.mu.
func (m *market) okxChanRemoveSubLocked(c *conn, a okxArg) {
	x := &m.okx.ch
	switch {
	case a.Channel == okxBBO:
		x.bboSubs = removeConn(x.bboSubs, c)
	case a.Channel == okxMark:
		x.markSubs = removeConn(x.markSubs, c)
	case a.Channel == okxIndex:
		x.idxSubs = removeConn(x.idxSubs, c)
	case a.Channel == okxFunding:
		x.fundSubs = removeConn(x.fundSubs, c)
	case a.Channel == okxOI:
		x.oiSubs = removeConn(x.oiSubs, c)
	case a.Channel == okxLiqOrders:
		m.chs.lSubs = removeConn(m.chs.lSubs, c)
	default:
		if i, ok := okxBarIndex(strings.TrimPrefix(a.Channel, okxCandle)); ok {
			ks := m.chs.kl[i]
			ks.subs = removeConn(ks.subs, c)
		}
	}
}

// okxChannelMarkets validates a subscription arg of a channel beyond
// trades and books and returns the markets it covers (every swap market
// for liquidation-orders), or an OKX error code and message.
func (s *Server) okxChannelMarkets(c *conn, a okxArg) (ms []*market, code, msg string) {
	wrong := func() ([]*market, string, string) {
		return nil, "60018", "Wrong URL or channel:" + a.Channel + ",instId:" + a.InstID + " doesn't exist. Please use the correct URL, channel and parameters referring to API document."
	}
	candle := strings.HasPrefix(a.Channel, okxCandle)
	if candle != c.okxBiz {
		if candle {
			return wrong()
		}
		return nil, "64002", "channel:" + a.Channel + " is not supported by business URL."
	}
	switch a.Channel {
	case okxBBO:
		if m := s.markets[okxVenueOf(a.InstID)][a.InstID]; m != nil {
			return []*market{m}, "", ""
		}
	case okxMark, okxFunding, okxOI:
		if m := s.markets[OKXSwap][a.InstID]; m != nil && okxVenueOf(a.InstID) == OKXSwap && !(a.Channel == okxFunding && okxFutures(a.InstID)) {
			return []*market{m}, "", ""
		}
	case okxIndex:
		if m := s.markets[OKXSwap][a.InstID+"-SWAP"]; m != nil {
			return []*market{m}, "", ""
		}
	case okxLiqOrders:
		if a.InstType != "SWAP" {
			return wrong()
		}
		for _, m := range s.mlist {
			if m.venue == OKXSwap && !okxFutures(m.symbol) {
				ms = append(ms, m)
			}
		}
		if len(ms) > 0 {
			return ms, "", ""
		}
	default:
		if _, ok := okxBarIndex(strings.TrimPrefix(a.Channel, okxCandle)); ok && candle {
			if m := s.markets[okxVenueOf(a.InstID)][a.InstID]; m != nil {
				return []*market{m}, "", ""
			}
		}
	}
	return wrong()
}

// isOKXChannel reports whether ch is a channel of this file.
func isOKXChannel(ch string) bool {
	switch ch {
	case okxBBO, okxMark, okxIndex, okxFunding, okxOI, okxLiqOrders:
		return true
	}
	return strings.HasPrefix(ch, okxCandle)
}

// encodeOKXBBO appends a bbo-tbt push of the current best level.
func (m *market) encodeOKXBBO(dst []byte, now int64) []byte {
	dst = append(dst, `{"arg":{"channel":"bbo-tbt","instId":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `"},"data":[{"asks":`...)
	dst = m.appendOKXLevels(dst, topN(m.book.sides[askSide], 1))
	dst = append(dst, `,"bids":`...)
	dst = m.appendOKXLevels(dst, topN(m.book.sides[bidSide], 1))
	dst = append(dst, `,"ts":"`...)
	dst = strconv.AppendInt(dst, now/1e6, 10)
	dst = append(dst, `","seqId":`...)
	dst = strconv.AppendInt(dst, m.okx.seq, 10)
	return append(dst, `}]}`...)
}

// okxBBOUpdate pushes bbo-tbt when the book push just made changed the
// best level. The caller holds m.mu.
func (m *market) okxBBOUpdate(now int64) {
	x := &m.okx.ch
	top := [2]level{m.top(bidSide), m.top(askSide)}
	if top == x.bboTop {
		return
	}
	x.bboTop = top
	if len(x.bboSubs) > 0 {
		deliver(x.bboSubs, outFrame{b: m.carve(m.encodeOKXBBO(nil, now)), m: m, kind: fkOther})
	}
}

// encodeOKXCandle appends a candle<bar> push of bar b.
func (m *market) encodeOKXCandle(dst []byte, ks *klSeries, b *bar, closed bool) []byte {
	dst = append(dst, `{"arg":{"channel":"candle`...)
	dst = append(dst, okxBars[simIntervals[ks.iv].name]...)
	dst = append(dst, `","instId":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `"},"data":[`...)
	dst = m.appendOKXCandleRow(dst, b, closed)
	return append(dst, "]}"...)
}

// appendOKXCandleRow appends [ts, o, h, l, c, vol, volCcy, volCcyQuote,
// confirm]: spot vol in the base currency and volCcy in the quote; swap
// vol in contracts (the lots), volCcy in the base currency.
func (m *market) appendOKXCandleRow(dst []byte, b *bar, closed bool) []byte {
	dst = append(dst, `["`...)
	dst = strconv.AppendInt(dst, b.open/1e6, 10)
	for _, p := range []int64{b.o, b.h, b.l, b.c} {
		dst = append(dst, `","`...)
		dst = m.appendPx(dst, p)
	}
	dst = append(dst, `","`...)
	if m.venue == OKXSwap {
		dst = strconv.AppendInt(dst, b.vol, 10)
		dst = append(dst, `","`...)
		dst = m.appendQty(dst, b.vol)
	} else {
		dst = m.appendQty(dst, b.vol)
		dst = append(dst, `","`...)
		dst = m.appendQuoteQty(dst, b.quote, 1)
	}
	dst = append(dst, `","`...)
	dst = m.appendQuoteQty(dst, b.quote, 1)
	if closed {
		return append(dst, `","1"]`...)
	}
	return append(dst, `","0"]`...)
}

// okxCandlesJSON answers /api/v5/market/candles (hist false) and
// /api/v5/market/history-candles: bars of bar with open time in
// (before, after) (ms, exclusive, each optional), the newest limit of
// them, newest first. Caller holds mu.
func (m *market) okxCandlesJSON(q url.Values, hist bool) []byte {
	barName := q.Get("bar")
	if barName == "" {
		barName = "1m"
	}
	i, ok := okxBarIndex(barName)
	if !ok || m.chs.kl[i] == nil {
		return okxEnvelope("51000", "Parameter bar error", []byte("[]"))
	}
	maxLimit := 300
	if hist {
		maxLimit = 100
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return okxEnvelope("51000", "Parameter limit error", []byte("[]"))
		}
		limit = min(n, maxLimit)
	}
	lo, hi := int64(-1<<62), int64(1<<62)
	for key, p := range map[string]*int64{"before": &lo, "after": &hi} {
		if s := q.Get(key); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return okxEnvelope("51000", "Parameter "+key+" error", []byte("[]"))
			}
			*p = n
		}
	}
	m.klAdvance(m.srv.nowNs(m.venue))
	ks := m.chs.kl[i]
	all := ks.hist
	if !hist {
		all = append(append([]bar(nil), ks.hist...), ks.cur)
		if len(all) > okxCandleWindow {
			all = all[len(all)-okxCandleWindow:]
		}
	}
	b := []byte{'['}
	n := 0
	for j := len(all) - 1; j >= 0 && n < limit; j-- {
		x := &all[j]
		if ms := x.open / 1e6; ms <= lo || ms >= hi {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = m.appendOKXCandleRow(b, x, x.open != ks.cur.open)
		n++
	}
	return okxEnvelope("0", "", append(b, ']'))
}

// encodeOKXPart appends a mark-price, index-tickers, funding-rate or
// open-interest push of the state as last pushed, with ts ms.
func (m *market) encodeOKXPart(dst []byte, ch string, ms int64) []byte {
	x := &m.okx.ch
	inst := m.symbol
	if ch == okxIndex {
		inst = okxIndexOf(m.symbol)
	}
	dst = append(dst, `{"arg":{"channel":"`...)
	dst = append(dst, ch...)
	dst = append(dst, `","instId":"`...)
	dst = append(dst, inst...)
	dst = append(dst, `"},"data":[{`...)
	switch ch {
	case okxMark:
		dst = append(dst, `"instType":"SWAP","instId":"`...)
		dst = append(dst, inst...)
		dst = append(dst, `","markPx":"`...)
		dst = m.appendPx(dst, x.markSent)
	case okxIndex:
		dst = append(dst, `"instId":"`...)
		dst = append(dst, inst...)
		dst = append(dst, `","idxPx":"`...)
		dst = m.appendPx(dst, x.idxSent)
		dst = append(dst, `","high24h":"0","low24h":"0","open24h":"0","sodUtc0":"0","sodUtc8":"0`...)
	case okxFunding:
		dst = append(dst, `"formulaType":"withRate","fundingRate":"`...)
		dst = appendDecimal(dst, x.fundSent, 6, 6)
		dst = append(dst, `","fundingTime":"`...)
		dst = strconv.AppendInt(dst, x.fundTimeSent, 10)
		dst = append(dst, `","instId":"`...)
		dst = append(dst, inst...)
		dst = append(dst, `","instType":"SWAP","method":"current_period","nextFundingRate":"","nextFundingTime":"`...)
		dst = strconv.AppendInt(dst, x.fundTimeSent+8*3600*1000, 10)
		dst = append(dst, `","settState":"settled`...)
	case okxOI:
		dst = append(dst, `"instType":"SWAP","instId":"`...)
		dst = append(dst, inst...)
		dst = append(dst, `","oi":"`...)
		dst = m.appendQty(dst, x.oiSent)
		dst = append(dst, `","oiCcy":"0","oiUsd":"0`...)
	}
	dst = append(dst, `","ts":"`...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, `"}]}`...)
}

// okxTickerStep moves the ticker state (as tickerStep does) and pushes
// each part whose value changed. The caller holds m.mu.
func (m *market) okxTickerStep(now int64) {
	cs := m.chs
	r := cs.rng
	t := &cs.tk
	x := &m.okx.ch
	if r.IntN(2) == 0 {
		t.mark = max(m.lastPx+r.Int64N(5)-2, 1)
	}
	if r.IntN(3) == 0 {
		t.index = max(m.lastPx+r.Int64N(7)-3, 1)
	}
	if r.IntN(4) == 0 {
		t.oi = max(t.oi+r.Int64N(11)-5, 0)
	}
	if r.IntN(20) == 0 {
		t.funding += r.Int64N(41) - 20
	}
	ms := now / 1e6
	t.nextFunding = nextFundingMS(ms)
	if ms <= x.lastPartTS {
		return
	}
	push := func(ch string, subs []*conn, ts *int64) {
		*ts, x.lastPartTS = ms, ms
		if len(subs) > 0 {
			deliver(subs, outFrame{b: m.carve(m.encodeOKXPart(nil, ch, ms)), m: m, kind: fkOther})
		}
	}
	if t.mark != x.markSent || x.markTS == 0 {
		x.markSent = t.mark
		push(okxMark, x.markSubs, &x.markTS)
	}
	if t.index != x.idxSent || x.idxTS == 0 {
		x.idxSent = t.index
		push(okxIndex, x.idxSubs, &x.idxTS)
	}
	if t.funding != x.fundSent || t.nextFunding != x.fundTimeSent || x.fundTS == 0 {
		x.fundSent, x.fundTimeSent = t.funding, t.nextFunding
		push(okxFunding, x.fundSubs, &x.fundTS)
	}
	if t.oi != x.oiSent || x.oiTS == 0 {
		x.oiSent = t.oi
		push(okxOI, x.oiSubs, &x.oiTS)
	}
}

// okxTickerTruth is Ticker for okx-swap: the four parts as last pushed;
// TS is the latest push's, Seq 0 (the bridge numbers OKX parts itself).
// The caller holds m.mu.
func (m *market) okxTickerTruth() TickerTruth {
	x := &m.okx.ch
	var t TickerTruth
	if x.markTS > 0 {
		t.MarkPrice = string(m.appendPx(nil, x.markSent))
	}
	if x.idxTS > 0 {
		t.IndexPrice = string(m.appendPx(nil, x.idxSent))
	}
	if x.fundTS > 0 {
		t.FundingRate = string(appendDecimal(nil, x.fundSent, 6, 6))
		t.NextFundingTime = x.fundTimeSent * 1e6
	}
	if x.oiTS > 0 {
		t.OpenInterest = string(m.appendQty(nil, x.oiSent))
	}
	t.TS = x.lastPartTS * 1e6
	return t
}

// encodeOKXLiquidations appends a liquidation-orders push of ls (one
// market's batch).
func (m *market) encodeOKXLiquidations(dst []byte, ls []LiquidationTruth) []byte {
	idx := okxIndexOf(m.symbol)
	dst = append(dst, `{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[`...)
	for i, l := range ls {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"bkLoss":"0","bkPx":"`...)
		dst = append(dst, l.Price...)
		if l.Long {
			dst = append(dst, `","ccy":"","posSide":"long","side":"sell","sz":"`...)
		} else {
			dst = append(dst, `","ccy":"","posSide":"short","side":"buy","sz":"`...)
		}
		dst = append(dst, l.Qty...)
		dst = append(dst, `","ts":"`...)
		dst = strconv.AppendInt(dst, l.TS/1e6, 10)
		dst = append(dst, `"}`...)
	}
	dst = append(dst, `],"instFamily":"`...)
	dst = append(dst, idx...)
	dst = append(dst, `","instId":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `","instType":"SWAP","uly":"`...)
	dst = append(dst, idx...)
	return append(dst, `"}]}`...)
}
