package exsim

import (
	"fmt"
	"strconv"
	"time"
)

// The binance-usdm channels beyond klines (which share Spot's code in
// channels.go): <s>@markPrice[@1s] and <s>@forceOrder on the /market
// route, with ground truth for Server.Ticker and Server.Liquidations.
//
// The mark price moves and is pushed every 10 Config.TickerPush (1 s by
// default, the venue's @1s speed; the plain stream gets the same pushes).
// The open interest (GET /fapi/v1/openInterest, weight 1) changes at a
// quarter of those steps; its answer's time is when it took its value.
// Liquidations are generated at Config.LiquidationRate, but as on the venue
// only the latest of each second is pushed (and recorded as truth).

// usdmLiq is a liquidation with the order's limit price ("p", which the
// bridge does not publish: it takes the average price "ap").
type usdmLiq struct {
	LiquidationTruth
	orderPx string
}

// usdmKlinesWeight is the weight of GET /fapi/v1/klines by limit.
func usdmKlinesWeight(limit int) int {
	switch {
	case limit < 100:
		return 1
	case limit < 500:
		return 2
	case limit <= 1000:
		return 5
	}
	return 10
}

// usdmChanTick moves the mark price and generates liquidations. Caller
// holds mu.
func (m *market) usdmChanTick(wall time.Time, now int64) {
	cs := m.chs
	cfg := &m.srv.cfg
	r := cs.rng
	if wall.Sub(cs.tkAt) >= 10*cfg.TickerPush {
		cs.tkAt = wall
		t := &cs.tk
		t.mark = max(m.lastPx+r.Int64N(5)-2, 1)
		t.index = max(m.lastPx+r.Int64N(7)-3, 1)
		if r.IntN(20) == 0 {
			t.funding += r.Int64N(41) - 20
		}
		if ms := now / 1e6; r.IntN(4) == 0 && ms > m.chs.usdmOI.timeMS {
			m.setOpenInterest(max(t.oi+r.Int64N(11)-5, 0), ms)
		}
		if ms := now / 1e6; ms > cs.sent.ts {
			t.ts, t.nextFunding = ms, nextFundingMS(ms)
			if m.usdmQuarterly() {
				t.nextFunding = 0
			}
			cs.sent = *t
			if m.hasSubs(bkMarkPrice) {
				m.fanBinance(&binEvent{now: now}, bkMarkPrice, fkOther, nil, 0, 0)
			}
		}
	}
	if cs.liqLast.IsZero() {
		cs.liqLast = wall
	}
	cs.liqAcc += cfg.LiquidationRate * wall.Sub(cs.liqLast).Seconds()
	cs.liqLast = wall
	for ; cs.liqAcc >= 1; cs.liqAcc-- {
		px := max(m.lastPx+r.Int64N(21)-10, 2)
		l := &usdmLiq{LiquidationTruth: LiquidationTruth{TS: now / 1e6 * 1e6, Long: r.IntN(2) == 0}}
		l.Price = string(m.appendPx(nil, px))
		l.Qty = string(m.appendQty(nil, 1+r.Int64N(max(m.in.maxLot/10, 1))))
		if l.Long { // a SELL order, limit below the fill price
			l.orderPx = string(m.appendPx(nil, px-1))
		} else {
			l.orderPx = string(m.appendPx(nil, px+1))
		}
		cs.usdmLiq = l // the venue keeps only the latest of the second
	}
	if cs.usdmLiq != nil && wall.Sub(cs.liqAt) >= time.Second {
		cs.liqAt = wall
		cs.liqHist = append(cs.liqHist, cs.usdmLiq.LiquidationTruth)
		if len(cs.liqHist) > 100_000 {
			cs.liqHist = append(cs.liqHist[:0], cs.liqHist[len(cs.liqHist)-50_000:]...)
		}
		if m.hasSubs(bkForceOrder) {
			m.fanBinance(&binEvent{now: now, liq: cs.usdmLiq}, bkForceOrder, fkOther, nil, 0, 0)
		}
		cs.usdmLiq = nil
	}
}

// encodeMarkPrice appends a markPriceUpdate of t.
func (m *market) encodeMarkPrice(dst []byte, t *tickerState) []byte {
	dst = append(dst, `{"e":"markPriceUpdate","E":`...)
	dst = strconv.AppendInt(dst, t.ts, 10)
	dst = append(dst, `,"s":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `","p":"`...)
	dst = m.appendPx(dst, t.mark)
	dst = append(dst, `","P":"`...)
	dst = m.appendPx(dst, t.mark)
	dst = append(dst, `","i":"`...)
	dst = m.appendPx(dst, t.index)
	dst = append(dst, `","r":"`...)
	if !m.usdmQuarterly() {
		dst = appendDecimal(dst, t.funding, 6, 8)
	}
	dst = append(dst, `","T":`...)
	dst = strconv.AppendInt(dst, t.nextFunding, 10)
	dst = append(dst, `,"ap":"`...)
	dst = m.appendPx(dst, t.mark)
	return append(dst, `","st":1}`...)
}

// encodeForceOrder appends a forceOrder of ev.liq (filled at once: l = z = q).
func (m *market) encodeForceOrder(dst []byte, ev *binEvent) []byte {
	l := ev.liq
	dst = append(dst, `{"e":"forceOrder","E":`...)
	dst = appendTime(dst, ev.now, false)
	dst = append(dst, `,"o":{"s":"`...)
	dst = append(dst, m.symbol...)
	if l.Long {
		dst = append(dst, `","S":"SELL"`...)
	} else {
		dst = append(dst, `","S":"BUY"`...)
	}
	dst = append(dst, `,"o":"LIMIT","f":"IOC","q":"`...)
	dst = append(dst, l.Qty...)
	dst = append(dst, `","p":"`...)
	dst = append(dst, l.orderPx...)
	dst = append(dst, `","ap":"`...)
	dst = append(dst, l.Price...)
	dst = append(dst, `","X":"FILLED","l":"`...)
	dst = append(dst, l.Qty...)
	dst = append(dst, `","z":"`...)
	dst = append(dst, l.Qty...)
	dst = append(dst, `","T":`...)
	dst = appendTime(dst, l.TS, false)
	return append(dst, `}}`...)
}

// usdmOpenInterest is a binance-usdm market's open interest history.
type usdmOpenInterest struct {
	timeMS int64               // of the current value
	hist   []OpenInterestTruth // every value, oldest first (the last 10,000)
}

// setOpenInterest changes the open interest at ms. Caller holds mu.
func (m *market) setOpenInterest(oi, ms int64) {
	m.chs.tk.oi = oi
	m.chs.usdmOI.timeMS = ms
	m.chs.usdmOI.hist = append(m.chs.usdmOI.hist, OpenInterestTruth{TimeMS: ms, OpenInterest: string(m.appendQty(nil, oi))})
	if len(m.chs.usdmOI.hist) > 10_000 {
		m.chs.usdmOI.hist = append(m.chs.usdmOI.hist[:0], m.chs.usdmOI.hist[len(m.chs.usdmOI.hist)-5_000:]...)
	}
}

// usdmOpenInterestJSON answers GET /fapi/v1/openInterest: the current
// value and the time it took it.
func (m *market) usdmOpenInterestJSON() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.chs.usdmOI.timeMS == 0 {
		m.setOpenInterest(m.chs.tk.oi, m.srv.nowNs(m.venue)/1e6)
	}
	b := append([]byte(`{"openInterest":"`), m.appendQty(nil, m.chs.tk.oi)...)
	b = append(b, `","symbol":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","time":`...)
	b = strconv.AppendInt(b, m.chs.usdmOI.timeMS, 10)
	return append(b, '}')
}

// OpenInterestTruth is one open interest value of a binance-usdm market
// and the time (Unix ms) it took effect, as /fapi/v1/openInterest reports
// it.
type OpenInterestTruth struct {
	TimeMS       int64
	OpenInterest string
}

// OpenInterest returns the open interest values of a binance-usdm market,
// oldest first (at most the last 10,000).
func (s *Server) OpenInterest(v Venue, symbol string) ([]OpenInterestTruth, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return nil, err
	}
	if v != BinanceUSDM {
		return nil, fmt.Errorf("%w: no open interest endpoint on %s", ErrConfig, v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]OpenInterestTruth(nil), m.chs.usdmOI.hist...), nil
}

// usdmTickerTruth is the last markPriceUpdate as a TickerTruth.
func (m *market) usdmTickerTruth() TickerTruth {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.chs.sent
	funding := ""
	if !m.usdmQuarterly() {
		funding = string(appendDecimal(nil, t.funding, 6, 8))
	}
	return TickerTruth{MarkPrice: string(m.appendPx(nil, t.mark)), IndexPrice: string(m.appendPx(nil, t.index)),
		FundingRate: funding, NextFundingTime: t.nextFunding * 1e6, TS: t.ts * 1e6}
}

// usdmQuarterly reports whether m is a Binance USD-M delivery contract,
// whose markPriceUpdate carries no funding: "r" is "" and "T" is 0
// (EXCHANGES-MORE.md §2, UNCONFIRMED for UM quarterlies, stated for COIN-M).
func (m *market) usdmQuarterly() bool {
	return m.venue == BinanceUSDM && validUSDMQuarterly(m.symbol)
}
