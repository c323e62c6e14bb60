package okx

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// The channels beyond trades and books (EXCHANGES-MORE.md, 4.6-4.8):
//
//   - bbo: bbo-tbt (public; one level, a full snapshot per push; update id
//     = seqId, or the ts in ms when a push lacks it);
//   - kline.<iv>: candle<bar> (business; UTC-aligned bars from 6H up);
//     closed bars are the pushes with confirm "1";
//   - ticker (okx-swap): mark-price, index-tickers (of the instrument's
//     index, e.g. BTC-USDT for BTC-USDT-SWAP), funding-rate and
//     open-interest, merged by the bridge into one full state per
//     instrument;
//   - liquidation (okx-swap): liquidation-orders subscribed by instType
//     SWAP (OKX has no per-instrument subscription), filtered to the
//     instruments subscribed.

// OKX channel names.
const (
	chanBBO          = "bbo-tbt"
	chanCandle       = "candle" // + bar
	chanMark         = "mark-price"
	chanIndex        = "index-tickers"
	chanFunding      = "funding-rate"
	chanOI           = "open-interest"
	chanLiquidations = "liquidation-orders"
)

// Channel kinds of a push beyond trades and books.
const (
	kindBBO = iota + 10
	kindCandle
	kindMark
	kindIndex
	kindFunding
	kindOI
	kindLiquidation
)

// Ticker part tags (bridge.Event.Depth of a ticker part and the low three
// bits of its seq): which OKX channel pushed it.
const (
	partMark    = 1
	partIndex   = 2
	partFunding = 3
	partOI      = 4
)

var (
	_ bridge.ChannelProvider = (*Adapter)(nil)
	_ bridge.KlineFetcher    = (*Adapter)(nil)
	_ bridge.Router          = (*Adapter)(nil)
)

// okxBars maps normalized intervals to OKX's bar names. From 6h up the
// UTC-aligned bars ("6Hutc"): OKX's plain 6H..1M bars open at UTC+8
// midnight, the bridge's (Binance's) at UTC. OKX's 1s (REST paging
// UNCONFIRMED), 3Dutc (alignment UNCONFIRMED) and the bridge's 8h (no OKX
// bar) are not offered.
var okxBars = map[bridge.Interval]string{
	bridge.Interval1m: "1m", bridge.Interval3m: "3m", bridge.Interval5m: "5m", bridge.Interval15m: "15m",
	bridge.Interval30m: "30m", bridge.Interval1h: "1H", bridge.Interval2h: "2H", bridge.Interval4h: "4H",
	bridge.Interval6h: "6Hutc", bridge.Interval12h: "12Hutc", bridge.Interval1d: "1Dutc", bridge.Interval1w: "1Wutc",
	bridge.Interval1M: "1Mutc",
}

// BarName returns OKX's bar name of iv ("1m", "1H", "1Dutc"), or "".
func BarName(iv bridge.Interval) string { return okxBars[iv] }

// barInterval returns the interval of an OKX bar name, or 0.
func barInterval(name string) bridge.Interval {
	for iv, n := range okxBars {
		if n == name {
			return iv
		}
	}
	return 0
}

// Channels returns what the market carries: trade, book, bbo and the
// klines of okxBars; okx-swap adds ticker and liquidation.
func (a *Adapter) Channels() bridge.Channel {
	c := bridge.ChannelTrade | bridge.ChannelBook | bridge.ChannelBBO
	for iv := range okxBars {
		c |= bridge.KlineChannels(iv)
	}
	if a.cfg.Market == MarketSwap {
		c |= bridge.ChannelTicker | bridge.ChannelLiquidation
	}
	return c
}

// Route returns "business" for klines (OKX serves candles on
// /ws/v5/business only) and "public" for the rest. A connection of trades
// only still dials /business for trades-all (see URL).
func (a *Adapter) Route(t bridge.Topic) string {
	if t.Channel.Interval() != 0 {
		return "business"
	}
	return "public"
}

// IndexOf returns the index an OKX swap's index-tickers are published
// under: the instrument id without "-SWAP" and without a margin suffix
// ("BTC-USDT-SWAP" -> "BTC-USDT", "BTC-USD_UM-SWAP" -> "BTC-USD"; the
// latter UNCONFIRMED).
func IndexOf(instID string) string {
	s := strings.TrimSuffix(instID, "-SWAP")
	if i := strings.IndexByte(s, '_'); i > 0 {
		s = s[:i]
	}
	return s
}

// chanRegistry holds what the decoder needs beyond the symbol table: the
// instruments subscribed to liquidation (liquidation-orders delivers every
// SWAP) and the swaps of each index (index-tickers is per index). Only
// grows: an instrument dropped from a subscription set reaches the runner,
// which ignores liquidations of symbols it does not carry.
type chanRegistry struct {
	mu      sync.RWMutex
	liq     map[string]string   // instId -> canonical
	indexOf map[string][]string // index -> canonical instIds
}

func (r *chanRegistry) addLiq(sym string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.liq == nil {
		r.liq = map[string]string{}
	}
	if _, ok := r.liq[sym]; !ok {
		s := strings.Clone(sym)
		r.liq[s] = s
	}
}

func (r *chanRegistry) addIndex(sym string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.indexOf == nil {
		r.indexOf = map[string][]string{}
	}
	idx := IndexOf(sym)
	for _, s := range r.indexOf[idx] {
		if s == sym {
			return
		}
	}
	// A new slice: decoders iterate the old one outside the lock.
	r.indexOf[strings.Clone(idx)] = append(slices.Clone(r.indexOf[idx]), strings.Clone(sym))
}

func (r *chanRegistry) liqSymbol(instID string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.liq[instID]
	return s, ok
}

func (r *chanRegistry) swapsOf(index string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.indexOf[index]
}

// channelArg returns the subscription arg(s) of a bbo, kline, ticker or
// liquidation topic, or "". A ticker is four args (comma-separated, as one
// request carries them).
func (a *Adapter) channelArg(t bridge.Topic) string {
	sym := strings.ToUpper(t.Symbol)
	one := func(ch, inst string) string { return `{"channel":"` + ch + `","instId":"` + inst + `"}` }
	switch t.Channel {
	case bridge.ChannelBBO:
		return one(chanBBO, sym)
	case bridge.ChannelTicker:
		if a.cfg.Market != MarketSwap {
			return ""
		}
		a.reg.addIndex(sym)
		return one(chanMark, sym) + "," + one(chanFunding, sym) + "," + one(chanOI, sym) + "," + one(chanIndex, IndexOf(sym))
	case bridge.ChannelLiquidation:
		if a.cfg.Market != MarketSwap {
			return ""
		}
		a.reg.addLiq(sym)
		return `{"channel":"` + chanLiquidations + `","instType":"SWAP"}`
	}
	if bar := okxBars[t.Channel.Interval()]; bar != "" && t.Channel == bridge.KlineChannel(t.Channel.Interval()) {
		return one(chanCandle+bar, sym)
	}
	return ""
}

// classify sets env.kind (and env.iv) for a channel beyond trades and books.
func (env *envelope) classify(ch string) {
	switch ch {
	case chanBBO:
		env.kind = kindBBO
	case chanMark:
		env.kind = kindMark
	case chanIndex:
		env.kind = kindIndex
	case chanFunding:
		env.kind = kindFunding
	case chanOI:
		env.kind = kindOI
	case chanLiquidations:
		env.kind = kindLiquidation
	default:
		if bar, ok := strings.CutPrefix(ch, chanCandle); ok {
			if iv := barInterval(bar); iv != 0 {
				env.kind, env.iv = kindCandle, iv
			}
		}
	}
}

// channelData decodes the data array of a channel push at the cursor.
func (a *Adapter) channelData(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if env.kind == kindLiquidation {
		return a.liquidations(sc, recvTS, dst)
	}
	if env.instID == "" {
		return dst, errors.New("push without instId")
	}
	if env.kind == kindIndex {
		return a.indexTickers(sc, env, recvTS, dst)
	}
	sym, err := a.core.Syms.Intern(env.instID)
	if err != nil {
		return dst, fmt.Errorf("instId: %w", err)
	}
	switch env.kind {
	case kindBBO:
		return a.bbo(sc, sym, recvTS, dst)
	case kindCandle:
		return a.candles(sc, sym, env.iv, recvTS, dst)
	}
	return a.tickerParts(sc, env, sym, recvTS, dst)
}

// bbo decodes a bbo-tbt data array: one object with asks, bids (at most
// the best level each is read; an empty side gives "" price and size),
// ts and seqId. The update id is seqId, shared with the books channel and
// reset lower by OKX maintenance (FlagSeqMayReset); a push without seqId
// (not documented for bbo-tbt before 2026) uses its ts in ms.
func (a *Adapter) bbo(sc *jscan.Scanner, sym string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	var d bookData
	if err := d.array(sc); err != nil {
		return dst, err
	}
	if !d.seen.Has(bAsks | bBids | bTS) {
		return dst, errors.New("bbo data lacks one of asks, bids, ts")
	}
	end := sc.Pos()
	defer sc.Seek(end)
	ev := bridge.Event{Type: bridge.EventBBO, Exchange: a.core.Name, Symbol: sym, TS: d.ts, RecvTS: recvTS,
		Flags: bridge.FlagSeqMayReset}
	switch {
	case d.seen.Has(bSeq) && d.seq >= 0:
		ev.LastID = d.seq
	case d.seen.Has(bSeq):
		return dst, fmt.Errorf("negative seqId %d", d.seq)
	default:
		ev.LastID = d.ts / 1_000_000
	}
	var l [1]bridge.Level
	var err error
	if ev.Price, ev.Qty, err = bestLevel(sc, d.bidPos, d.nb, l[:]); err != nil {
		return dst, fmt.Errorf("bids: %w", err)
	}
	if ev.More[0], ev.More[1], err = bestLevel(sc, d.askPos, d.na, l[:]); err != nil {
		return dst, fmt.Errorf("asks: %w", err)
	}
	return append(dst, ev), nil
}

// bestLevel reads the first level of the level array at pos (n levels).
func bestLevel(sc *jscan.Scanner, pos, n int, buf []bridge.Level) (px, sz string, err error) {
	if n == 0 {
		return "", "", nil
	}
	sc.Seek(pos)
	if err := sc.EnterArray(); err != nil {
		return "", "", err
	}
	if ok, err := sc.Element(true); err != nil || !ok {
		return "", "", errors.New("empty level array")
	}
	// readLevels wants the whole array; read the first level by hand.
	if err := sc.EnterArray(); err != nil {
		return "", "", err
	}
	for i := 0; ; i++ {
		ok, err := sc.Element(i == 0)
		if err != nil {
			return "", "", err
		}
		if !ok {
			if i < 2 {
				return "", "", errors.New("level without price and size")
			}
			break
		}
		switch i {
		case 0:
			buf[0][0], err = sc.Decimal()
		case 1:
			buf[0][1], err = sc.Decimal()
		default:
			err = sc.Skip()
		}
		if err != nil {
			return "", "", err
		}
	}
	return buf[0][0], buf[0][1], nil
}

// candles decodes a candle<bar> data array: rows [ts, o, h, l, c, vol,
// volCcy, volCcyQuote, confirm] (all strings). Volume is the base
// currency's (spot vol; swap volCcy, vol being contracts), quote volume
// volCcyQuote; OKX gives no trade count (Trades -1). An open bar's TS is
// its open time (OKX sends no push time: see Event.AppendMsgID).
func (a *Adapter) candles(sc *jscan.Scanner, sym string, iv bridge.Interval, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		var row [9]string
		if err := candleRow(sc, &row); err != nil {
			return dst, err
		}
		ev, err := a.candleEvent(sym, iv, &row, recvTS)
		if err != nil {
			return dst, err
		}
		dst = append(dst, ev)
	}
}

// candleRow reads one candle array of at least nine strings (more are
// skipped: OKX may add columns).
func candleRow(sc *jscan.Scanner, row *[9]string) error {
	if err := sc.EnterArray(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		ok, err := sc.Element(i == 0)
		if err != nil {
			return err
		}
		if !ok {
			if i < len(row) {
				return fmt.Errorf("candle of %d values, want 9", i)
			}
			return nil
		}
		if i >= len(row) {
			if err := sc.Skip(); err != nil {
				return err
			}
			continue
		}
		var esc bool
		if row[i], esc, err = sc.RawString(); err != nil {
			return err
		}
		if esc {
			return fmt.Errorf("escaped candle value %d", i)
		}
	}
}

// candleEvent builds the EventKline of a candle row (WebSocket or REST).
func (a *Adapter) candleEvent(sym string, iv bridge.Interval, row *[9]string, recvTS int64) (bridge.Event, error) {
	open, err := parseMS(row[0])
	if err != nil {
		return bridge.Event{}, err
	}
	for i := 1; i < 8; i++ {
		if !jscan.IsDecimal(row[i]) {
			return bridge.Event{}, fmt.Errorf("candle value %d is not a decimal: %q", i, row[i])
		}
	}
	next := iv.Next(open)
	if next <= open {
		return bridge.Event{}, fmt.Errorf("candle open time %d out of range", open)
	}
	ev := bridge.Event{Type: bridge.EventKline, Exchange: a.core.Name, Symbol: sym, TS: open, RecvTS: recvTS}
	vol := row[5]
	if a.cfg.Market == MarketSwap {
		vol = row[6] // vol is in contracts; volCcy in the base currency
	}
	b := bridge.Bar{Interval: iv, OpenTime: open, CloseTime: next - 1_000_000, Open: row[1], High: row[2], Low: row[3],
		Close: row[4], Volume: vol, QuoteVolume: row[7], Trades: -1}
	switch row[8] {
	case "1":
		b.Closed = true
	case "0":
	default:
		return bridge.Event{}, fmt.Errorf("candle confirm %q", row[8])
	}
	ev.SetBar(b)
	return ev, nil
}

// tickerPart is one decoded ticker part.
type tickerPart struct {
	seen   jscan.Seen
	instID string
	v1, v2 string // the part's values (mark px; idx px; funding rate, funding time; oi)
	next   string
	ts     int64
}

const (
	tpInst jscan.Seen = 1 << iota
	tpV1
	tpTime
	tpNext
	tpTS
)

// tickerParts decodes a mark-price, funding-rate or open-interest data
// array: one ticker part event per object (FlagDelta, the part's Has*
// bits, Depth = the part's tag, TS = the push's ts, LastID = seq).
func (a *Adapter) tickerParts(sc *jscan.Scanner, env *envelope, sym string, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	return a.parts(sc, env.kind, env.instID, recvTS, dst, []string{sym})
}

// indexTickers decodes an index-tickers data array: each object becomes
// one ticker part event per swap of that index.
func (a *Adapter) indexTickers(sc *jscan.Scanner, env *envelope, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := bridge.ValidateIdent(env.instID); err != nil {
		return dst, fmt.Errorf("instId: %w", err)
	}
	return a.parts(sc, kindIndex, env.instID, recvTS, dst, a.reg.swapsOf(env.instID))
}

func (a *Adapter) parts(sc *jscan.Scanner, kind int, instID string, recvTS int64, dst []bridge.Event, syms []string) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		var p tickerPart
		if err := p.object(sc, kind); err != nil {
			return dst, err
		}
		if p.instID != instID {
			return dst, fmt.Errorf("data instId %q differs from the arg's %q", p.instID, instID)
		}
		ev := bridge.Event{Type: bridge.EventTicker, Exchange: a.core.Name, TS: p.ts, RecvTS: recvTS, Flags: bridge.FlagDelta}
		var tag int64
		switch kind {
		case kindMark:
			tag, ev.More[0] = partMark, p.v1
			ev.Flags |= bridge.HasMark
		case kindIndex:
			tag, ev.More[1] = partIndex, p.v1
			ev.Flags |= bridge.HasIndex
		case kindFunding:
			tag, ev.More[2] = partFunding, p.v1
			ev.Flags |= bridge.HasFunding
			// The settlement the rate applies to is fundingTime (the
			// next one); nextFundingTime is the one after it.
			t := p.v2
			if t == "" {
				t = p.next
			}
			if t != "" {
				ns, err := parseMS(t)
				if err != nil {
					return dst, fmt.Errorf("fundingTime: %w", err)
				}
				ev.Seq = ns
				ev.Flags |= bridge.HasNextFunding
			}
		case kindOI:
			tag, ev.ID = partOI, p.v1
			ev.Flags |= bridge.HasOpenInterest
		}
		ev.Depth = int(tag)
		ev.LastID = partSeq(tag, p.v1, p.v2)
		for _, s := range syms {
			ev.Symbol = s
			dst = append(dst, ev)
		}
	}
}

// partSeq is a ticker part's seq: the FNV-1a (32 bit) of its values above
// the tag in the low three bits. With the push's ts it is the part's
// msg-ID: the same push gives the same id everywhere; two pushes of
// different channels or values at one ts never share one.
func partSeq(tag int64, v1, v2 string) int64 {
	h := fnv.New32a()
	h.Write([]byte(v1))
	h.Write([]byte{0})
	h.Write([]byte(v2))
	return int64(h.Sum32())<<3 | tag
}

func (p *tickerPart) object(sc *jscan.Scanner, kind int) error {
	valueKey, timeKey := "", ""
	signed := false
	switch kind {
	case kindMark:
		valueKey = "markPx"
	case kindIndex:
		valueKey = "idxPx"
	case kindFunding:
		valueKey, timeKey, signed = "fundingRate", "fundingTime", true
	case kindOI:
		valueKey = "oi"
	}
	err := sc.Object(func(key string) (err error) {
		str := func(bit jscan.Seen, d *string) {
			if err = p.seen.Add(bit, key); err == nil {
				var esc bool
				if *d, esc, err = sc.RawString(); err == nil && esc {
					err = fmt.Errorf("escaped %s", key)
				}
			}
		}
		switch key {
		case "instId":
			str(tpInst, &p.instID)
		case valueKey:
			str(tpV1, &p.v1)
		case "ts":
			if err = p.seen.Add(tpTS, key); err == nil {
				p.ts, err = msString(sc)
			}
		default:
			switch {
			case timeKey != "" && key == timeKey:
				str(tpTime, &p.v2)
			case kind == kindFunding && key == "nextFundingTime":
				str(tpNext, &p.next)
			default:
				err = sc.Skip()
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if !p.seen.Has(tpInst | tpV1 | tpTS) {
		return fmt.Errorf("%s data lacks one of instId, %s, ts", valueKey, valueKey)
	}
	v := p.v1
	if signed {
		v = strings.TrimPrefix(v, "-")
	}
	if !jscan.IsDecimal(v) {
		return fmt.Errorf("%s is not a decimal: %q", valueKey, p.v1)
	}
	return nil
}

// liquidations decodes a liquidation-orders data array: objects {instId,
// details: [{side, bkPx, sz, ts, ...}]}; instruments not subscribed are
// skipped. side is the liquidation order's side, bkPx the bankruptcy
// price, sz in contracts. Identical details (ts, side, price, size) of one
// instrument in one push are numbered by N.
func (a *Adapter) liquidations(sc *jscan.Scanner, recvTS int64, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	n0 := len(dst)
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		var inst string
		var detPos int
		var seen jscan.Seen
		err = sc.Object(func(key string) (err error) {
			switch key {
			case "instId":
				if err = seen.Add(1, key); err == nil {
					var esc bool
					if inst, esc, err = sc.RawString(); err == nil && esc {
						err = errors.New("escaped instId")
					}
				}
			case "details":
				if err = seen.Add(2, key); err == nil {
					detPos = sc.Pos()
					err = sc.Skip()
				}
			default:
				err = sc.Skip()
			}
			return err
		})
		if err != nil {
			return dst, err
		}
		if !seen.Has(3) {
			return dst, errors.New("liquidation data lacks instId or details")
		}
		sym, ok := a.reg.liqSymbol(inst)
		if !ok {
			continue // an instrument not subscribed
		}
		end := sc.Pos()
		sc.Seek(detPos)
		if dst, err = a.liqDetails(sc, sym, recvTS, n0, dst); err != nil {
			return dst, err
		}
		sc.Seek(end)
	}
}

const (
	lqSide jscan.Seen = 1 << iota
	lqPx
	lqSz
	lqTS
	lqAll = lqSide | lqPx | lqSz | lqTS
)

func (a *Adapter) liqDetails(sc *jscan.Scanner, sym string, recvTS int64, n0 int, dst []bridge.Event) ([]bridge.Event, error) {
	if err := sc.EnterArray(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil || !ok {
			return dst, err
		}
		var seen jscan.Seen
		ev := bridge.Event{Type: bridge.EventLiquidation, Exchange: a.core.Name, Symbol: sym, RecvTS: recvTS}
		err = sc.Object(func(key string) (err error) {
			switch key {
			case "side":
				if err = seen.Add(lqSide, key); err == nil {
					ev.Side, err = readSide(sc, "liquidation")
				}
			case "bkPx":
				if err = seen.Add(lqPx, key); err == nil {
					ev.Price, err = sc.Decimal()
				}
			case "sz":
				if err = seen.Add(lqSz, key); err == nil {
					ev.Qty, err = sc.Decimal()
				}
			case "ts":
				if err = seen.Add(lqTS, key); err == nil {
					ev.TS, err = msString(sc)
				}
			default:
				err = sc.Skip()
			}
			return err
		})
		if err != nil {
			return dst, err
		}
		if !seen.Has(lqAll) {
			return dst, errors.New("liquidation detail lacks one of side, bkPx, sz, ts")
		}
		for i := n0; i < len(dst); i++ {
			p := &dst[i]
			if p.Symbol == sym && p.TS == ev.TS && p.Side == ev.Side && p.Price == ev.Price && p.Qty == ev.Qty {
				ev.Seq++
			}
		}
		dst = append(dst, ev)
	}
}
