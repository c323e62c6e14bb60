package exsim

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// tradeRec is one generated trade as kept for REST.
type tradeRec struct {
	px, qty, ns, agg int64 // agg: Binance aggregate id; Bybit cross sequence
	maker            bool  // buyer is maker: the taker sold
	tick             uint8 // Bybit tick direction (tickPlus...)
}

// Bybit tick directions.
const (
	tickPlus uint8 = iota
	tickZeroPlus
	tickMinus
	tickZeroMinus
)

var tickNames = [...]string{"PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"}

// tradeRing keeps the most recent trades by id.
type tradeRing struct {
	buf    []tradeRec
	size   int
	head   int   // index of the oldest record once the ring is full
	oldest int64 // id of the oldest record
}

func (r *tradeRing) push(id int64, rec tradeRec) {
	if len(r.buf) == 0 {
		r.oldest = id
	}
	if len(r.buf) < r.size {
		r.buf = append(r.buf, rec)
		return
	}
	r.buf[r.head] = rec
	r.head = (r.head + 1) % r.size
	r.oldest++
}

// span returns the ids held: [oldest, newest].
func (r *tradeRing) span() Range {
	return Range{r.oldest, r.oldest + int64(len(r.buf)) - 1}
}

func (r *tradeRing) get(id int64) (tradeRec, bool) {
	if id < r.oldest || id >= r.oldest+int64(len(r.buf)) {
		return tradeRec{}, false
	}
	i := int(id - r.oldest)
	if len(r.buf) == r.size {
		i = (r.head + i) % r.size
	}
	return r.buf[i], true
}

// series is one id sequence of a market (see Series) with the range of ids
// generated so far. Guarded by the market's mutex.
type series struct {
	m           *market
	name        Series
	first, last int64 // generated: [first, last]; last = first-1 before any
}

func (s *series) generated() Range { return Range{s.first, s.last} }

// bybitView is the depth-limited view a Bybit orderbook.<depth> topic
// publishes, with its own update id u.
type bybitView struct {
	depth    int
	ser      *series
	u        int64 // u of the last push (snapshot or delta)
	seq      int64 // book sequence at the last push
	subs     []*conn
	lastPush time.Time
	oldB     [2]int64
	delta    [2][]level
}

// market is one simulated symbol on one venue: its generator state, its
// subscribers and its history. All fields after mu are guarded by mu; the
// generator, REST handlers and subscription changes all take it, which is
// what keeps snapshots and streams coherent.
type market struct {
	srv    *Server
	idx    int // position in Server.mlist: the order markets are locked in
	venue  Venue
	symbol string
	lower  string
	in     instrument
	log    *slog.Logger
	wake   chan struct{}

	// tick is held by a generator tick from reading the rates to the end
	// of its step, and by setRates while it changes them: once setRates
	// returns, no tick at the old rates is still generating. Taken before
	// mu.
	tick sync.Mutex

	mu                  sync.Mutex
	tradeRate, bookRate float64
	tradeRNG, bookRNG   *rand.Rand

	nextID, nextAgg int64 // next trade id (Binance) or ordinal (Bybit); next agg id / Bybit seq
	lastPx          int64
	lastDir         int8
	ring            tradeRing
	trades          *series
	idBase          uint64 // Bybit wire id derivation

	book     book
	updateID int64   // last book update id (Binance U/u, Bybit cross sequence)
	depth    *series // Binance depth update ids
	views    []*bybitView
	okx      *okxState // OKX venues
	lastTop  [2]level
	books    int64 // book updates generated so far

	streams   map[string]*binStream
	byKind    [numBinKinds][]*binStream
	tradeSubs []*conn

	ch      []change
	scratch [2][]byte
	wbuf    []byte
	arena   []byte
	batch   []int64 // Bybit trade ordinals waiting for the next publicTrade frame
	lv      [2][]level

	chs *chanSim // klines, ticker, liquidations (channels.go)
}

const arenaChunk = 64 << 10

func newMarket(s *Server, mc MarketConfig) *market {
	seed := s.cfg.Seed
	m := &market{
		srv:       s,
		venue:     mc.Venue,
		symbol:    mc.Symbol,
		lower:     toLower(mc.Symbol),
		in:        newInstrument(mc.Venue, mc.Symbol),
		log:       s.log.With("venue", string(mc.Venue), "symbol", mc.Symbol),
		wake:      make(chan struct{}, 1),
		tradeRate: mc.TradeRate,
		bookRate:  mc.BookRate,
		tradeRNG:  rand.New(rand.NewPCG(seed, marketHash(seed, mc.Venue, mc.Symbol, "trade"))),
		bookRNG:   rand.New(rand.NewPCG(seed, marketHash(seed, mc.Venue, mc.Symbol, "book"))),
		streams:   map[string]*binStream{},
	}
	m.ring.size = s.cfg.TradeHistory
	h := marketHash(seed, mc.Venue, mc.Symbol, "ids")
	if mc.Venue.isBinance() {
		m.nextID = 1_000_000_000 + int64(h%4_000_000_000)
		m.nextAgg = 500_000_000 + int64(splitmix64(h)%2_000_000_000)
		m.updateID = 10_000_000_000 + int64(splitmix64(h+1)%60_000_000_000)
	} else if mc.Venue.isOKX() {
		m.initOKX(h)
	} else {
		m.nextID = 1
		m.nextAgg = 1_000_000_000 + int64(splitmix64(h)%100_000_000_000)
		m.updateID = 1_000_000_000 + int64(splitmix64(h+1)%100_000_000_000)
		m.idBase = splitmix64(h + 2)
	}
	m.trades = &series{m: m, name: SeriesTrade, first: m.nextID, last: m.nextID - 1}
	m.lastPx = m.in.base
	m.book.init(m.bookRNG, m.in.base, s.cfg.BookLevels, m.in.maxLot)
	m.lastTop = [2]level{m.top(bidSide), m.top(askSide)}
	m.chs = newChanSim(m, seed)
	if mc.Venue.isBinance() {
		m.depth = &series{m: m, name: SeriesDepth, first: m.updateID + 1, last: m.updateID}
	} else if !mc.Venue.isOKX() {
		for i, d := range bybitDepths {
			u := 1_000_000 + int64(splitmix64(h+3+uint64(i))%100_000_000)
			m.views = append(m.views, &bybitView{
				depth: d,
				ser:   &series{m: m, name: SeriesOrderbook(d), first: u, last: u},
				u:     u,
				seq:   m.updateID,
			})
		}
	}
	return m
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (m *market) top(side uint8) level {
	if lv := m.book.sides[side]; len(lv) > 0 {
		return lv[0]
	}
	return level{}
}

// seriesByName returns the market's series called name, or nil.
func (m *market) seriesByName(name Series) *series {
	switch {
	case name == SeriesTrade:
		return m.trades
	case name == SeriesDepth:
		return m.depth
	}
	for _, v := range m.views {
		if v.ser.name == name {
			return v.ser
		}
	}
	if m.okx != nil && name == SeriesOKXBooks {
		return m.okx.view.ser
	}
	return nil
}

func (m *market) allSeries() []*series {
	out := []*series{m.trades}
	if m.depth != nil {
		out = append(out, m.depth)
	}
	for _, v := range m.views {
		out = append(out, v.ser)
	}
	if m.okx != nil {
		out = append(out, m.okx.view.ser)
	}
	return out
}

// carve copies b into the market's frame arena and returns the copy. Frames
// are immutable once carved and shared by every connection they go to;
// carving amortizes allocation over 64 KiB.
func (m *market) carve(b []byte) []byte {
	if len(b) > arenaChunk/4 {
		return append([]byte(nil), b...)
	}
	if cap(m.arena)-len(m.arena) < len(b) {
		m.arena = make([]byte, 0, arenaChunk)
	}
	s := len(m.arena)
	m.arena = append(m.arena, b...)
	return m.arena[s:len(m.arena):len(m.arena)]
}

// setRates changes the generation rates and wakes the generator. A tick
// that read the old rates has finished when it returns.
func (m *market) setRates(trade, book float64) {
	m.tick.Lock()
	m.mu.Lock()
	m.tradeRate, m.bookRate = trade, book
	m.mu.Unlock()
	m.tick.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *market) rates() (float64, float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tradeRate, m.bookRate
}

// run generates events at the configured rates until ctx ends.
func (m *market) run(ctx context.Context) {
	last := time.Now()
	var tAcc, bAcc float64
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
		}
		m.tick.Lock()
		now := time.Now()
		el := now.Sub(last).Seconds()
		last = now
		tr, br := m.rates()
		tAcc = accumulate(tAcc, tr, el)
		bAcc = accumulate(bAcc, br, el)
		nt, nb := max(int(tAcc), 0), int(bAcc) // tAcc < 0: trades ahead of schedule
		tAcc -= float64(nt)
		bAcc -= float64(nb)
		if nt > 0 || nb > 0 {
			// A taker order is generated whole, so a step may produce a
			// trade or two more than asked; they count against the next
			// ticks, or the trade rate would overshoot by a third.
			tAcc -= float64(m.step(nt, nb))
		}
		m.tick.Unlock()
		if m.venue.isBybit() {
			m.resendTop(now)
		}
		if m.okx != nil {
			m.okxKeepAlive(now)
		}
		m.chanTick(now)
		t.Reset(tickInterval(tr, br))
	}
}

// accumulate adds rate*el events to acc, without letting a backlog build
// when the generator falls behind (the rate is then simply lower). acc may
// be negative: events generated ahead of schedule.
func accumulate(acc, rate, el float64) float64 {
	acc += rate * el
	if lim := max(rate*0.05, 2); acc > lim {
		acc = lim
	}
	return acc
}

// tickInterval is the generator's period: one event per tick at low rates,
// a batch per millisecond at high ones, and at least once a second.
func tickInterval(tr, br float64) time.Duration {
	r := max(tr, br)
	if r <= 1 {
		return time.Second
	}
	iv := time.Duration(float64(time.Second) / r)
	return max(iv, time.Millisecond)
}

// step generates trades trades (whole taker orders, so possibly a couple
// more) and books book updates, interleaved, and fans them out. It returns
// how many trades it generated beyond trades.
func (m *market) step(trades, books int) int {
	for trades > 0 || books > 0 {
		m.mu.Lock()
		now := m.srv.nowNs(m.venue)
		for budget := 256; budget > 0 && (trades > 0 || books > 0); {
			if trades > 0 && trades >= books {
				k := m.genOrder(now)
				trades -= k
				budget -= k
			} else {
				m.genBook(now)
				books--
				budget--
			}
		}
		if m.venue.isBybit() {
			m.flushBybitTrades(now)
		}
		m.mu.Unlock()
	}
	return -trades
}

// genOrder generates one taker order of one to three trades at one price
// and returns the number of trades.
func (m *market) genOrder(now int64) int {
	r := m.tradeRNG
	maker := r.IntN(2) == 0
	k := 1
	switch x := r.IntN(10); {
	case x >= 9:
		k = 3
	case x >= 7:
		k = 2
	}
	step := r.Int64N(5) - 2
	// Mean reversion keeps the walk within a few percent of the start.
	if dev := m.lastPx - m.in.base; dev*50 > m.in.base && step > 0 || -dev*50 > m.in.base && step < 0 {
		step = -step
	}
	px := max(m.lastPx+step, 1)
	m.klAdvance(now) // trades land in the bar of their time
	if m.venue == BinanceUSDM {
		return m.genUSDMOrder(now, k, px, maker)
	}
	first := m.nextID
	var sum int64
	agg := m.nextAgg
	m.nextAgg++
	if m.venue.isBybit() {
		m.updateID++
		agg = m.updateID
	}
	for range k {
		rec := tradeRec{px: px, qty: 1 + r.Int64N(max(m.in.maxLot/10, 1)), ns: now, agg: agg, maker: maker}
		switch {
		case px > m.lastPx:
			m.lastDir = 1
			rec.tick = tickPlus
		case px < m.lastPx:
			m.lastDir = -1
			rec.tick = tickMinus
		case m.lastDir >= 0:
			rec.tick = tickZeroPlus
		default:
			rec.tick = tickZeroMinus
		}
		m.lastPx = px
		sum += rec.qty
		id := m.nextID
		m.nextID++
		m.ring.push(id, rec)
		m.klTrade(id, rec)
		m.trades.last = id
		if m.venue == Binance {
			m.fanBinanceTrade(id, rec)
		} else if m.okx != nil {
			m.fanOKXFill(id, rec)
		} else {
			m.batch = append(m.batch, id)
		}
	}
	if m.venue == Binance {
		m.fanBinanceAgg(agg, first, m.nextID-1, tradeRec{px: px, qty: sum, ns: now, maker: maker})
	}
	if m.okx != nil {
		m.fanOKXOrder(first, m.nextID-1, tradeRec{px: px, qty: sum, ns: now, maker: maker})
	}
	return k
}

// genBook generates and publishes one book update.
func (m *market) genBook(now int64) {
	for _, v := range m.views {
		v.oldB = [2]int64{m.book.boundary(bidSide, v.depth), m.book.boundary(askSide, v.depth)}
	}
	if m.okx != nil {
		v := m.okx.view
		v.oldB = [2]int64{m.book.boundary(bidSide, v.depth), m.book.boundary(askSide, v.depth)}
	}
	m.ch = m.book.update(m.bookRNG, m.ch[:0])
	m.books++
	if m.venue == BinanceUSDM {
		m.genUSDMBook(now)
		return
	}
	first := m.updateID + 1
	m.updateID += int64(len(m.ch))
	if m.venue == Binance {
		m.depth.last = m.updateID
		m.fanBinanceDepth(first, m.updateID, now)
		return
	}
	if m.okx != nil {
		m.okxBookUpdate(now)
		return
	}
	for _, v := range m.views {
		m.book.viewDelta(v.depth, v.oldB, m.ch, &v.delta)
		if len(v.delta[0]) == 0 && len(v.delta[1]) == 0 {
			continue
		}
		v.u++
		v.ser.last = v.u
		v.seq = m.updateID
		v.lastPush = time.Now()
		m.fanBybitBook(v, now, v.depth == 1)
	}
}

// resendTop re-sends Bybit's depth-1 snapshot when it has not changed for
// 3 s, as the venue does.
func (m *market) resendTop(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.views {
		if v.depth != 1 || len(v.subs) == 0 || now.Sub(v.lastPush) < 3*time.Second {
			continue
		}
		v.lastPush = now
		m.fanBybitBook(v, m.srv.nowNs(m.venue), true)
	}
}

// sortedChanges splits m.ch into bids (descending) and asks (ascending).
func (m *market) sortedChanges() *[2][]level {
	m.lv[0], m.lv[1] = m.lv[0][:0], m.lv[1][:0]
	for _, c := range m.ch {
		m.lv[c.side] = append(m.lv[c.side], level{c.px, c.qty})
	}
	for side := uint8(0); side < 2; side++ {
		lv := m.lv[side]
		for i := 1; i < len(lv); i++ { // insertion sort: at most a few levels
			for j := i; j > 0 && better(side, lv[j].px, lv[j-1].px); j-- {
				lv[j], lv[j-1] = lv[j-1], lv[j]
			}
		}
	}
	return &m.lv
}

// deliver enqueues f to every connection of subs.
func deliver(subs []*conn, f outFrame) {
	for _, c := range subs {
		c.send(f)
	}
}

// removeConn returns subs without c (copying, since slices are shared with
// nobody but the market; order is kept).
func removeConn(subs []*conn, c *conn) []*conn {
	for i, x := range subs {
		if x == c {
			return append(subs[:i:i], subs[i+1:]...)
		}
	}
	return subs
}

// lockMarkets locks the distinct markets of ms in index order (so that
// concurrent callers cannot deadlock) and returns the unlock function.
func lockMarkets(ms []*market) func() {
	sorted := make([]*market, 0, len(ms))
	for _, m := range ms {
		dup := false
		for _, x := range sorted {
			dup = dup || x == m
		}
		if !dup {
			sorted = append(sorted, m)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].idx < sorted[j].idx })
	for _, m := range sorted {
		m.mu.Lock()
	}
	return func() {
		for i := len(sorted) - 1; i >= 0; i-- {
			sorted[i].mu.Unlock()
		}
	}
}
