package exsim

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file simulates the channels beyond trades and books: klines on
// every market (Binance <s>@kline_<i>, Bybit kline.<i>.<S>, REST
// /api/v3/klines and /v5/market/kline), Bybit linear tickers (snapshot then
// deltas of the changed fields) and allLiquidation. bookTicker and
// orderbook.1 (best bid/offer) live with the books. Each keeps ground truth
// for tests: the closed bars, the ticker state as last pushed, every
// liquidation generated.
//
// Kline time runs Config.KlineSpeed times faster than the wall clock from
// the server's start, so a test sees 1m bars close every second at speed
// 60. Bar open and close times are on that clock; event and trade times
// are not.

// simInterval is a kline interval with its wire names.
type simInterval struct {
	name  string        // normalized and Binance name: "1m", "1h", "1M"
	bybit string        // Bybit's name, "" when Bybit lacks it
	dur   time.Duration // 0: calendar month
}

var simIntervals = []simInterval{
	{"1s", "", time.Second}, {"1m", "1", time.Minute}, {"3m", "3", 3 * time.Minute}, {"5m", "5", 5 * time.Minute},
	{"15m", "15", 15 * time.Minute}, {"30m", "30", 30 * time.Minute}, {"1h", "60", time.Hour}, {"2h", "120", 2 * time.Hour},
	{"4h", "240", 4 * time.Hour}, {"6h", "360", 6 * time.Hour}, {"8h", "", 8 * time.Hour}, {"12h", "720", 12 * time.Hour},
	{"1d", "D", 24 * time.Hour}, {"3d", "", 72 * time.Hour}, {"1w", "W", 7 * 24 * time.Hour}, {"1M", "M", 0},
}

// intervalIndex returns the index of an interval by its venue name.
func intervalIndex(v Venue, name string) (int, bool) {
	for i, iv := range simIntervals {
		if v == Binance && iv.name == name || v == BinanceUSDM && iv.name == name && iv.dur != time.Second ||
			v != Binance && v != BinanceUSDM && iv.bybit != "" && iv.bybit == name {
			return i, true
		}
	}
	return 0, false
}

const day = 24 * time.Hour

// alignOpen returns the open time of the bar of interval i containing t
// (ns). Weeks start on Monday, months on the 1st, 00:00 UTC.
func alignOpen(i int, t int64) int64 {
	switch d := simIntervals[i].dur; {
	case d == 0:
		u := time.Unix(0, t).UTC()
		return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC).UnixNano()
	case d == 7*day:
		off := int64(4 * day) // 1970-01-01 was a Thursday; Monday is 4 days later
		return t - (t-off)%int64(d)
	default:
		return t - t%int64(d)
	}
}

// nextOpen returns the open time of the bar after the one opening at open.
func nextOpen(i int, open int64) int64 {
	if simIntervals[i].dur == 0 {
		return time.Unix(0, open).UTC().AddDate(0, 1, 0).UnixNano()
	}
	return open + int64(simIntervals[i].dur)
}

// bar is one kline in integer units of the market.
type bar struct {
	open, end     int64 // kline-clock ns: [open, end)
	o, h, l, c    int64
	vol, quote, n int64 // base volume (lots), quote volume (px*qty units), trades
	first, lastID int64 // Binance trade ids in the bar, -1 when none
}

// klSeries is one interval of one market.
type klSeries struct {
	iv      int
	cur     bar
	started bool
	hist    []bar // closed bars, oldest first, at most klHistory
	subs    []*conn
}

const klHistory = 5000

// chanSim is a market's channel state. Guarded by the market's mu.
type chanSim struct {
	epoch int64 // server start, ns: where kline time and wall time meet
	kl    []*klSeries
	klAt  time.Time // last open-bar push

	rng   *rand.Rand
	tk    tickerState // current
	sent  tickerState // as last pushed (the state a subscriber holds)
	tkAt  time.Time
	tSubs []*conn

	liqAcc  float64
	liqBuf  []LiquidationTruth // generated since the last push
	liqHist []LiquidationTruth
	liqAt   time.Time
	lSubs   []*conn
	liqLast time.Time

	usdmOI  usdmOpenInterest // binance-usdm: the open interest's history
	usdmLiq *usdmLiq         // binance-usdm: the latest liquidation of the current second, pushed at its end
}

// tickerState is a Bybit linear ticker.
type tickerState struct {
	last, mark, index, oi, funding int64 // funding in 1e-6
	nextFunding                    int64 // ms
	ts, cs                         int64 // ms, cross sequence of the push
}

func newChanSim(m *market, seed uint64) *chanSim {
	cs := &chanSim{epoch: time.Now().UnixNano(), rng: rand.New(rand.NewPCG(seed, marketHash(seed, m.venue, m.symbol, "channels")))}
	for i, iv := range simIntervals {
		if m.venue == Binance || m.venue == BinanceUSDM && iv.dur != time.Second ||
			m.venue.isOKX() && okxBars[iv.name] != "" || m.venue != BinanceUSDM && !m.venue.isOKX() && iv.bybit != "" {
			cs.kl = append(cs.kl, &klSeries{iv: i})
		} else {
			cs.kl = append(cs.kl, nil)
		}
	}
	p := m.in.base
	cs.tk = tickerState{last: p, mark: p, index: p, oi: 1000 * max(m.in.maxLot, 1), funding: 100, ts: time.Now().UnixMilli(), cs: m.updateID}
	cs.tk.nextFunding = nextFundingMS(cs.tk.ts)
	cs.sent = cs.tk
	return cs
}

func nextFundingMS(ms int64) int64 {
	const p = 8 * 3600 * 1000
	return ms - ms%p + p
}

// klineNow returns the kline clock for venue time now (ns).
func (m *market) klineNow(now int64) int64 {
	sp := m.srv.cfg.KlineSpeed
	if sp == 1 {
		return now
	}
	return m.chs.epoch + int64(float64(now-m.chs.epoch)*sp)
}

// klAdvance closes the bars that ended by kline time kt (pushing the
// closed bar to subscribers) and opens the next ones. Caller holds mu.
func (m *market) klAdvance(now int64) {
	kt := m.klineNow(now)
	for _, ks := range m.chs.kl {
		if ks == nil {
			continue
		}
		if !ks.started {
			o := alignOpen(ks.iv, kt)
			ks.cur = bar{open: o, end: nextOpen(ks.iv, o), o: m.lastPx, h: m.lastPx, l: m.lastPx, c: m.lastPx, first: -1, lastID: -1}
			ks.started = true
			continue
		}
		for kt >= ks.cur.end {
			m.pushKline(ks, now, true)
			ks.hist = append(ks.hist, ks.cur)
			if len(ks.hist) > klHistory {
				ks.hist = append(ks.hist[:0], ks.hist[len(ks.hist)-klHistory/2:]...)
			}
			c := ks.cur.c
			ks.cur = bar{open: ks.cur.end, end: nextOpen(ks.iv, ks.cur.end), o: c, h: c, l: c, c: c, first: -1, lastID: -1}
		}
	}
}

// klTrade adds one trade to the open bars. Caller holds mu.
func (m *market) klTrade(id int64, rec tradeRec) {
	for _, ks := range m.chs.kl {
		if ks == nil {
			continue
		}
		b := &ks.cur
		if b.n == 0 {
			b.o, b.h, b.l = rec.px, rec.px, rec.px
			b.first = id
		}
		b.h, b.l, b.c = max(b.h, rec.px), min(b.l, rec.px), rec.px
		b.vol += rec.qty
		b.quote += rec.px * rec.qty
		b.n++
		b.lastID = id
	}
}

// chanTick runs the channel generators once per generator tick: bar
// closes, open-bar pushes every KlinePush, ticker deltas every TickerPush,
// liquidations (linear) batched every 500 ms.
func (m *market) chanTick(wall time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.srv.nowNs(m.venue)
	m.klAdvance(now)
	cs := m.chs
	cfg := &m.srv.cfg
	if wall.Sub(cs.klAt) >= cfg.KlinePush {
		cs.klAt = wall
		for _, ks := range cs.kl {
			if ks != nil {
				m.pushKline(ks, now, false)
			}
		}
	}
	if m.venue == BinanceUSDM {
		m.usdmChanTick(wall, now)
		return
	}
	if m.venue != BybitLinear && m.venue != OKXSwap {
		return
	}
	if wall.Sub(cs.tkAt) >= cfg.TickerPush {
		cs.tkAt = wall
		if m.okx != nil {
			m.okxTickerStep(now)
		} else {
			m.tickerStep(now)
		}
	}
	if cs.liqLast.IsZero() {
		cs.liqLast = wall
	}
	cs.liqAcc += cfg.LiquidationRate * wall.Sub(cs.liqLast).Seconds()
	cs.liqLast = wall
	for ; cs.liqAcc >= 1; cs.liqAcc-- {
		r := cs.rng
		l := LiquidationTruth{TS: now / 1e6 * 1e6, Long: r.IntN(2) == 0}
		l.Price = string(m.appendPx(nil, max(m.lastPx+r.Int64N(21)-10, 1)))
		l.Qty = string(m.appendQty(nil, 1+r.Int64N(max(m.in.maxLot/10, 1))))
		cs.liqBuf = append(cs.liqBuf, l)
		if r.IntN(10) == 0 { // an identical twin in the same message: numbered by n
			cs.liqBuf = append(cs.liqBuf, l)
		}
	}
	if len(cs.liqBuf) > 0 && wall.Sub(cs.liqAt) >= 500*time.Millisecond {
		cs.liqAt = wall
		cs.liqHist = append(cs.liqHist, cs.liqBuf...)
		if len(cs.liqHist) > 100_000 {
			cs.liqHist = append(cs.liqHist[:0], cs.liqHist[len(cs.liqHist)-50_000:]...)
		}
		if len(cs.lSubs) > 0 && m.okx != nil {
			deliver(cs.lSubs, outFrame{b: m.carve(m.encodeOKXLiquidations(nil, cs.liqBuf)), m: m, kind: fkOther})
		} else if len(cs.lSubs) > 0 {
			deliver(cs.lSubs, outFrame{b: m.carve(m.encodeLiquidations(nil, cs.liqBuf, now)), m: m, kind: fkOther})
		}
		cs.liqBuf = cs.liqBuf[:0]
	}
}

// pushKline sends the current bar of ks (closed or open) to its
// subscribers. Caller holds mu.
func (m *market) pushKline(ks *klSeries, now int64, closed bool) {
	if m.venue == Binance || m.venue == BinanceUSDM {
		if !m.hasKlineSubs(ks.iv) {
			return
		}
		ev := binEvent{now: now, kline: ks, klClosed: closed}
		m.fanBinance(&ev, bkKline, fkOther, nil, 0, 0)
		return
	}
	if len(ks.subs) == 0 {
		return
	}
	if m.okx != nil {
		deliver(ks.subs, outFrame{b: m.carve(m.encodeOKXCandle(nil, ks, &ks.cur, closed)), m: m, kind: fkOther})
		return
	}
	deliver(ks.subs, outFrame{b: m.carve(m.encodeBybitKline(nil, ks, &ks.cur, now, closed)), m: m, kind: fkOther})
}

func (m *market) hasKlineSubs(iv int) bool {
	for _, st := range m.byKind[bkKline] {
		if st.levels == iv && st.n > 0 {
			return true
		}
	}
	return false
}

// encodeBinanceKline appends a kline payload.
func (m *market) encodeBinanceKline(dst []byte, ev *binEvent, micro bool) []byte {
	b := &ev.kline.cur
	dst = append(dst, `{"e":"kline","E":`...)
	dst = appendTime(dst, ev.now, micro)
	dst = append(dst, `,"s":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `","k":{"t":`...)
	dst = appendTime(dst, b.open, micro)
	dst = append(dst, `,"T":`...)
	dst = appendTime(dst, b.end-int64(time.Millisecond), micro)
	dst = append(dst, `,"s":"`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `","i":"`...)
	dst = append(dst, simIntervals[ev.kline.iv].name...)
	dst = append(dst, `","f":`...)
	dst = strconv.AppendInt(dst, b.first, 10)
	dst = append(dst, `,"L":`...)
	dst = strconv.AppendInt(dst, b.lastID, 10)
	dst = m.appendBarValues(dst, b, `,"o":"`, `","c":"`, `","h":"`, `","l":"`, `","v":"`)
	dst = append(dst, `","n":`...)
	dst = strconv.AppendInt(dst, b.n, 10)
	dst = append(dst, `,"x":`...)
	dst = appendBool(dst, ev.klClosed)
	dst = append(dst, `,"q":"`...)
	dst = m.appendQuoteQty(dst, b.quote, 1)
	return append(dst, `","V":"0","Q":"0","B":"0"}}`...)
}

func (m *market) appendBarValues(dst []byte, b *bar, ko, kc, kh, kl, kv string) []byte {
	dst = append(dst, ko...)
	dst = m.appendPx(dst, b.o)
	dst = append(dst, kc...)
	dst = m.appendPx(dst, b.c)
	dst = append(dst, kh...)
	dst = m.appendPx(dst, b.h)
	dst = append(dst, kl...)
	dst = m.appendPx(dst, b.l)
	dst = append(dst, kv...)
	return m.appendQty(dst, b.vol)
}

// encodeBybitKline appends a kline frame of one bar.
func (m *market) encodeBybitKline(dst []byte, ks *klSeries, b *bar, now int64, closed bool) []byte {
	name := simIntervals[ks.iv].bybit
	dst = append(dst, `{"topic":"kline.`...)
	dst = append(dst, name...)
	dst = append(dst, '.')
	dst = append(dst, m.symbol...)
	dst = append(dst, `","data":[{"start":`...)
	dst = strconv.AppendInt(dst, b.open/1e6, 10)
	dst = append(dst, `,"end":`...)
	dst = strconv.AppendInt(dst, b.end/1e6-1, 10)
	dst = append(dst, `,"interval":"`...)
	dst = append(dst, name...)
	dst = m.appendBarValues(dst, b, `","open":"`, `","close":"`, `","high":"`, `","low":"`, `","volume":"`)
	dst = append(dst, `","turnover":"`...)
	dst = m.appendQuoteQty(dst, b.quote, 1)
	dst = append(dst, `","confirm":`...)
	dst = appendBool(dst, closed)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, now/1e6, 10)
	dst = append(dst, `}],"ts":`...)
	dst = strconv.AppendInt(dst, now/1e6, 10)
	return append(dst, `,"type":"snapshot"}`...)
}

// tickerStep moves the ticker and pushes a delta of the changed fields.
func (m *market) tickerStep(now int64) {
	cs := m.chs
	r := cs.rng
	t := &cs.tk
	t.last = m.lastPx
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
	if t.last == cs.sent.last && t.mark == cs.sent.mark && t.index == cs.sent.index && t.oi == cs.sent.oi &&
		t.funding == cs.sent.funding && t.nextFunding == cs.sent.nextFunding || ms <= cs.sent.ts {
		return
	}
	t.ts, t.cs = ms, max(m.updateID, cs.sent.cs+1)
	b := m.encodeTicker(nil, t, &cs.sent, false)
	cs.sent = *t
	if len(cs.tSubs) > 0 {
		deliver(cs.tSubs, outFrame{b: m.carve(b), m: m, kind: fkOther})
	}
}

// encodeTicker appends a tickers frame: a snapshot of t, or a delta of the
// fields of t that differ from prev.
func (m *market) encodeTicker(dst []byte, t, prev *tickerState, snapshot bool) []byte {
	dst = append(dst, `{"topic":"tickers.`...)
	dst = append(dst, m.symbol...)
	if snapshot {
		dst = append(dst, `","type":"snapshot","data":{"symbol":"`...)
	} else {
		dst = append(dst, `","type":"delta","data":{"symbol":"`...)
	}
	dst = append(dst, m.symbol...)
	dst = append(dst, '"')
	px := func(key string, v, old int64) {
		if snapshot || v != old {
			dst = append(dst, key...)
			dst = m.appendPx(dst, v)
			dst = append(dst, '"')
		}
	}
	px(`,"lastPrice":"`, t.last, prev.last)
	px(`,"markPrice":"`, t.mark, prev.mark)
	px(`,"indexPrice":"`, t.index, prev.index)
	if snapshot || t.oi != prev.oi {
		dst = append(dst, `,"openInterest":"`...)
		dst = m.appendQty(dst, t.oi)
		dst = append(dst, '"')
	}
	if snapshot || t.funding != prev.funding {
		dst = append(dst, `,"fundingRate":"`...)
		dst = appendDecimal(dst, t.funding, 6, 6)
		dst = append(dst, '"')
	}
	if snapshot || t.nextFunding != prev.nextFunding {
		dst = append(dst, `,"nextFundingTime":"`...)
		dst = strconv.AppendInt(dst, t.nextFunding, 10)
		dst = append(dst, '"')
	}
	if snapshot {
		dst = append(dst, `,"tickDirection":"PlusTick","volume24h":"0","turnover24h":"0"`...)
	}
	dst = append(dst, `},"cs":`...)
	dst = strconv.AppendInt(dst, t.cs, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, t.ts, 10)
	return append(dst, '}')
}

// encodeLiquidations appends an allLiquidation frame.
func (m *market) encodeLiquidations(dst []byte, ls []LiquidationTruth, now int64) []byte {
	dst = append(dst, `{"topic":"allLiquidation.`...)
	dst = append(dst, m.symbol...)
	dst = append(dst, `","type":"snapshot","ts":`...)
	dst = strconv.AppendInt(dst, now/1e6, 10)
	dst = append(dst, `,"data":[`...)
	for i, l := range ls {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"T":`...)
		dst = strconv.AppendInt(dst, l.TS/1e6, 10)
		dst = append(dst, `,"s":"`...)
		dst = append(dst, m.symbol...)
		if l.Long {
			dst = append(dst, `","S":"Buy","v":"`...)
		} else {
			dst = append(dst, `","S":"Sell","v":"`...)
		}
		dst = append(dst, l.Qty...)
		dst = append(dst, `","p":"`...)
		dst = append(dst, l.Price...)
		dst = append(dst, `"}`...)
	}
	return append(dst, "]}"...)
}

// Bybit channel topic codes (parseBybitTopic's depth for these topics).
const (
	bybitTickers        = -1
	bybitLiquidation    = -2
	bybitKlineBase      = -100 // -100 - interval index
	bybitKlineCodeFloor = bybitKlineBase - 64
)

// parseBybitChannelTopic parses tickers.S, allLiquidation.S and
// kline.<i>.S into a negative topic code.
func parseBybitChannelTopic(t string) (code int, sym string, ok bool) {
	if s, found := strings.CutPrefix(t, "tickers."); found {
		return bybitTickers, s, s != ""
	}
	if s, found := strings.CutPrefix(t, "allLiquidation."); found {
		return bybitLiquidation, s, s != ""
	}
	if rest, found := strings.CutPrefix(t, "kline."); found {
		name, s, found := strings.Cut(rest, ".")
		if i, ok := intervalIndex(BybitSpot, name); found && ok && s != "" {
			return bybitKlineBase - i, s, true
		}
	}
	return 0, "", false
}

// bybitChanAddSubLocked subscribes c to a channel topic; tickers start
// with a snapshot of the state last pushed. Caller holds m.mu.
func (m *market) bybitChanAddSubLocked(c *conn, code int) {
	cs := m.chs
	switch {
	case code == bybitTickers:
		c.send(outFrame{b: m.encodeTicker(nil, &cs.sent, &cs.sent, true), m: m, kind: fkOther})
		cs.tSubs = append(cs.tSubs[:len(cs.tSubs):len(cs.tSubs)], c)
	case code == bybitLiquidation:
		cs.lSubs = append(cs.lSubs[:len(cs.lSubs):len(cs.lSubs)], c)
	default:
		ks := cs.kl[bybitKlineBase-code]
		ks.subs = append(ks.subs[:len(ks.subs):len(ks.subs)], c)
	}
}

func (m *market) bybitChanRemoveSub(c *conn, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.chs
	switch {
	case code == bybitTickers:
		cs.tSubs = removeConn(cs.tSubs, c)
	case code == bybitLiquidation:
		cs.lSubs = removeConn(cs.lSubs, c)
	default:
		ks := cs.kl[bybitKlineBase-code]
		ks.subs = removeConn(ks.subs, c)
	}
}

// barsIn returns the bars of interval i (closed, then the open one) with
// open time in [from, to] (ns), oldest first, at most limit; with from < 0
// the most recent limit. Caller holds mu.
func (m *market) barsIn(i int, from, to int64, limit int) ([]bar, int) {
	ks := m.chs.kl[i]
	all := append(append([]bar(nil), ks.hist...), ks.cur)
	var out []bar
	for _, b := range all {
		if (from < 0 || b.open >= from) && b.open <= to {
			out = append(out, b)
		}
	}
	if len(out) > limit {
		if from < 0 {
			out = out[len(out)-limit:]
		} else {
			out = out[:limit]
		}
	}
	return out, len(ks.hist)
}

// klinesQuery reads interval, start/end (ms) and limit.
func klinesQuery(v Venue, q url.Values, startKey, endKey string, def int) (iv int, from, to int64, limit int, err error) {
	iv, ok := intervalIndex(v, q.Get("interval"))
	if !ok {
		return 0, 0, 0, 0, fmt.Errorf("interval")
	}
	from, to, limit = -1, 1<<62, def
	if s := q.Get(startKey); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, 0, fmt.Errorf("%s", startKey)
		}
		from = n * 1e6
	}
	if s := q.Get(endKey); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, 0, fmt.Errorf("%s", endKey)
		}
		to = n*1e6 + 999_999
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, 0, 0, fmt.Errorf("limit")
		}
		limit = min(n, 1000)
	}
	return iv, from, to, limit, nil
}

// binanceKlinesJSON answers GET /api/v3/klines.
func (m *market) binanceKlinesJSON(q url.Values) ([]byte, []byte) {
	iv, from, to, limit, err := klinesQuery(m.venue, q, "startTime", "endTime", 500)
	if err != nil {
		return nil, illegalParam(err.Error())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.klAdvance(m.srv.nowNs(m.venue))
	bars, _ := m.barsIn(iv, from, to, limit)
	b := []byte{'['}
	for i := range bars {
		x := &bars[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, x.open/1e6, 10)
		for _, p := range []int64{x.o, x.h, x.l, x.c} {
			b = append(b, `,"`...)
			b = m.appendPx(b, p)
			b = append(b, '"')
		}
		b = append(b, `,"`...)
		b = m.appendQty(b, x.vol)
		b = append(b, `",`...)
		b = strconv.AppendInt(b, x.end/1e6-1, 10)
		b = append(b, `,"`...)
		b = m.appendQuoteQty(b, x.quote, 1)
		b = append(b, `",`...)
		b = strconv.AppendInt(b, x.n, 10)
		b = append(b, `,"0","0","0"]`...)
	}
	return append(b, ']'), nil
}

// bybitKlinesJSON answers GET /v5/market/kline: newest first.
func (m *market) bybitKlinesJSON(cat string, q url.Values) ([]byte, error) {
	iv, from, to, limit, err := klinesQuery(m.venue, q, "start", "end", 200)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.klAdvance(m.srv.nowNs(m.venue))
	bars, _ := m.barsIn(iv, from, to, limit)
	b := []byte(`{"category":"`)
	b = append(b, cat...)
	b = append(b, `","symbol":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","list":[`...)
	for i := len(bars) - 1; i >= 0; i-- {
		x := &bars[i]
		if i < len(bars)-1 {
			b = append(b, ',')
		}
		b = append(b, `["`...)
		b = strconv.AppendInt(b, x.open/1e6, 10)
		for _, p := range []int64{x.o, x.h, x.l, x.c} {
			b = append(b, `","`...)
			b = m.appendPx(b, p)
		}
		b = append(b, `","`...)
		b = m.appendQty(b, x.vol)
		b = append(b, `","`...)
		b = m.appendQuoteQty(b, x.quote, 1)
		b = append(b, `"]`...)
	}
	return append(b, "]}"...), nil
}

// KlineTruth is one closed bar as the simulator generated it, with the
// values as the venue's wire writes them.
type KlineTruth struct {
	OpenTime, CloseTime    int64 // Unix ns on the kline clock; CloseTime = next open - 1 ms
	Open, High, Low, Close string
	Volume, QuoteVolume    string
	Trades                 int64
}

// Klines returns the closed bars of interval (normalized name, e.g. "1m")
// of a market, oldest first (at most the last few thousand).
func (s *Server) Klines(v Venue, symbol, interval string) ([]KlineTruth, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return nil, err
	}
	i := -1
	for k, iv := range simIntervals {
		if iv.name == interval && m.chs.kl[k] != nil {
			i = k
		}
	}
	if i < 0 {
		return nil, fmt.Errorf("%w: interval %q on %s", ErrConfig, interval, v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.klAdvance(s.nowNs(v))
	out := make([]KlineTruth, 0, len(m.chs.kl[i].hist))
	for _, b := range m.chs.kl[i].hist {
		out = append(out, KlineTruth{OpenTime: b.open, CloseTime: b.end - int64(time.Millisecond),
			Open: string(m.appendPx(nil, b.o)), High: string(m.appendPx(nil, b.h)), Low: string(m.appendPx(nil, b.l)),
			Close: string(m.appendPx(nil, b.c)), Volume: string(m.appendQty(nil, b.vol)),
			QuoteVolume: string(m.appendQuoteQty(nil, b.quote, 1)), Trades: b.n})
	}
	return out, nil
}

// TickerTruth is a Bybit linear ticker's state as last pushed (binance-usdm:
// its last markPriceUpdate, with LastPrice and OpenInterest "" and Seq 0).
type TickerTruth struct {
	LastPrice, MarkPrice, IndexPrice, FundingRate, OpenInterest string
	NextFundingTime                                             int64 // Unix ns
	TS                                                          int64 // Unix ns of the push
	Seq                                                         int64 // its cs
}

// Ticker returns the ticker state of a Bybit linear or Binance USD-M market
// as last pushed.
func (s *Server) Ticker(v Venue, symbol string) (TickerTruth, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return TickerTruth{}, err
	}
	if v == BinanceUSDM {
		return m.usdmTickerTruth(), nil
	}
	if v != BybitLinear && v != OKXSwap {
		return TickerTruth{}, fmt.Errorf("%w: no ticker on %s", ErrConfig, v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.okx != nil {
		return m.okxTickerTruth(), nil
	}
	t := m.chs.sent
	return TickerTruth{LastPrice: string(m.appendPx(nil, t.last)), MarkPrice: string(m.appendPx(nil, t.mark)),
		IndexPrice: string(m.appendPx(nil, t.index)), FundingRate: string(appendDecimal(nil, t.funding, 6, 6)),
		OpenInterest: string(m.appendQty(nil, t.oi)), NextFundingTime: t.nextFunding * 1e6, TS: t.ts * 1e6, Seq: t.cs}, nil
}

// LiquidationTruth is one generated liquidation.
type LiquidationTruth struct {
	TS         int64 // Unix ns (ms precision)
	Long       bool  // a long position was liquidated (Bybit S "Buy")
	Price, Qty string
}

// Liquidations returns the liquidations pushed so far on a Bybit linear or
// Binance USD-M market, oldest first (at most the last 100,000). On
// binance-usdm these are the pushed ones only: the latest of each second.
func (s *Server) Liquidations(v Venue, symbol string) ([]LiquidationTruth, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]LiquidationTruth(nil), m.chs.liqHist...), nil
}
