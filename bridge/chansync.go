package bridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// chanState is one symbol's state for the channels beyond trades and books
// (bbo, kline, ticker, liquidation). Guarded by the shard's mu.
type chanState struct {
	bboLast int64 // update id of the last emitted bbo
	bboTS   int64 // its ts

	klines [numIntervals + 1]*klineState // by interval

	tk        Ticker // merged ticker state (strings owned: cloned)
	tkTS      int64  // ts of the last emitted ticker
	tkStarted bool   // a ticker snapshot was merged
	tkNeedSn  bool   // the current connection has not sent its snapshot yet
	// tkPart is, for venues that push the ticker's fields on separate
	// channels (OKX: Event.Depth = the part's tag), the ts and seq of the
	// last update merged per part.
	tkPart [8]struct{ ts, seq int64 }

	liq *resilience.MessageDeduplicator[string]

	oi     string // open interest polled over REST (OpenInterestPoller), "" before the first answer
	oiTime int64  // its venue time, Unix ms; 0 = none
}

// klineState makes one interval's closed bars exactly once.
type klineState struct {
	next    int64   // open time of the next closed bar to emit; 0 = not started
	openTS  int64   // ts of the last emitted open-bar update
	openKey string  // volume and close of the last emitted open-bar update without a push time (ts == open time: OKX)
	filling bool    // a REST fill runs; live events wait in held
	held    []Event // live events received during a fill (strings cloned)
}

// newChanState returns the state for the channels of c, or nil when c has
// none of them.
func newChanState(c Channel, dcfg resilience.DedupConfig) (*chanState, error) {
	if c&^(ChannelTrade|ChannelBook) == 0 {
		return nil, nil
	}
	cs := &chanState{}
	for _, iv := range c.Intervals() {
		cs.klines[iv] = &klineState{}
	}
	if c&ChannelLiquidation != 0 {
		var err error
		if cs.liq, err = resilience.NewMessageDeduplicator[string](dcfg); err != nil {
			return nil, fmt.Errorf("%w: dedup: %w", ErrConfig, err)
		}
	}
	return cs, nil
}

// reconnected prepares the state for a new primary connection after a loss.
func (cs *chanState) reconnected() {
	cs.tkNeedSn = true
}

// cloneEvent copies the strings a retained event refers to, so it does not
// pin (or, with in-place decoding, alias) a frame buffer.
func cloneEvent(ev Event) Event {
	ev.Price, ev.Qty, ev.ID = strings.Clone(ev.Price), strings.Clone(ev.Qty), strings.Clone(ev.ID)
	for i := range ev.More {
		ev.More[i] = strings.Clone(ev.More[i])
	}
	return ev
}

// processChannel runs one live bbo, kline, ticker or liquidation event of
// sym and appends what may be emitted to sh.out. Called with mu held.
func (sh *shard) processChannel(sym *symbol, ev *Event) {
	cs := sym.ch
	if cs == nil {
		if ev.Type != EventLiquidation { // a venue-wide liquidation stream (OKX) may deliver any symbol
			sh.ctr.malformed.Add(1) // data of a channel not subscribed
		}
		return
	}
	switch ev.Type {
	case EventBBO:
		if ev.LastID <= cs.bboLast && !(ev.Flags&FlagSeqMayReset != 0 && ev.LastID < cs.bboLast && ev.TS > cs.bboTS) {
			sym.ctr.duplicates.Add(1) // a repeat (Bybit re-sends an unchanged L1) or older than the last
			return
		}
		cs.bboLast, cs.bboTS = ev.LastID, ev.TS
		sh.emit(sym, ev)
	case EventKline:
		sh.klineLive(sym, ev)
	case EventTicker:
		sh.ticker(sym, ev)
	case EventLiquidation:
		if cs.liq == nil {
			return // a venue-wide liquidation stream (OKX by instType) delivering a symbol carried here without the channel
		}
		var buf [160]byte
		if !cs.liq.RecordAt(string(ev.AppendMsgID(buf[:0])), time.Unix(0, ev.RecvTS)) {
			sym.ctr.duplicates.Add(1)
			return
		}
		sh.emit(sym, ev)
	}
}

func (sh *shard) emit(sym *symbol, ev *Event) {
	sh.out = append(sh.out, *ev)
	sym.ctr.emitted.Add(1)
}

// klineLive applies one live kline push: closed bars are emitted once, in
// open-time order; a bar skipped (a disconnect, a lost closed push) is
// filled from REST before anything later is emitted; open-bar updates are
// emitted only when asked for.
func (sh *shard) klineLive(sym *symbol, ev *Event) {
	ks := sym.ch.klineOf(ev.Interval)
	if ks == nil {
		sh.ctr.malformed.Add(1)
		return
	}
	if ks.filling {
		ks.held = append(ks.held, cloneEvent(*ev))
		return
	}
	sh.klineApply(sym, ks, ev)
}

func (cs *chanState) klineOf(iv Interval) *klineState {
	if cs == nil || !iv.Valid() {
		return nil
	}
	return cs.klines[iv]
}

// klineApply is klineLive outside a fill. Called with mu held.
func (sh *shard) klineApply(sym *symbol, ks *klineState, ev *Event) {
	open := ev.FirstID
	if ks.next == 0 {
		ks.next = open // the first bar seen starts the series; nothing before it is ours
	}
	switch {
	case open < ks.next:
		sym.ctr.duplicates.Add(1) // a bar already closed and emitted
		return
	case open > ks.next:
		// Closed bars [next, open) were missed: fill them from REST, hold
		// the live events meanwhile.
		if _, ok := sh.st.cfg.Exchange.(KlineFetcher); !ok {
			sym.ctr.gaps.Add(1)
			sym.ctr.missing.Add(1)
			ks.next = open
			break
		}
		sym.ctr.gaps.Add(1)
		ks.filling = true
		ks.held = append(ks.held, cloneEvent(*ev))
		from, iv := ks.next, ev.Interval
		sh.st.goWork(func(ctx context.Context) { sh.klineFill(ctx, sym, ks, iv, from, open-1) })
		return
	}
	if ev.Flags&FlagClosed != 0 {
		ev.TS = ev.LastID // a closed bar's time is its close time, whichever push or REST page carried it
		ks.next = ev.Interval.Next(open)
		ks.openTS, ks.openKey = 0, ""
		sh.emit(sym, ev)
		return
	}
	if !sh.st.cfg.Channels.OpenBars(ev.Interval) {
		return
	}
	if ev.TS == open { // no push time (OKX): emit what differs from the last update
		key := ev.Qty + ":" + ev.Price
		if ks.openTS == open && key == ks.openKey {
			sym.ctr.duplicates.Add(1)
			return
		}
		ks.openTS, ks.openKey = open, key
		sh.emit(sym, ev)
		return
	}
	if ev.TS > ks.openTS {
		ks.openTS = ev.TS
		sh.emit(sym, ev)
	}
}

// klineFill fetches the closed bars of [from, to] over REST, emits them and
// then the live events held meanwhile.
func (sh *shard) klineFill(ctx context.Context, sym *symbol, ks *klineState, iv Interval, from, to int64) {
	kf := sh.st.cfg.Exchange.(KlineFetcher)
	retry := newRetrier(restRetryInitial, restRetryMax)
	var bars []Event
	for next := from; next <= to; {
		page, err := kf.Klines(ctx, sym.name, iv, next, to, 1000)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			sym.log.Warn("kline fill failed; retrying", "interval", iv.String(), "attempt", retry.failures()+1, "err", err)
			if retry.wait(ctx, err) != nil {
				return
			}
			continue
		}
		progressed := false
		for i := range page {
			b := &page[i]
			if b.FirstID < next || b.FirstID > to || b.Flags&FlagClosed == 0 {
				continue
			}
			sh.stamp(b)
			b.Symbol, b.Type, b.Interval, b.TS = sym.name, EventKline, iv, b.LastID
			bars = append(bars, *b)
			next = iv.Next(b.FirstID)
			progressed = true
		}
		if !progressed {
			break
		}
	}
	sh.mu.Lock()
	for i := range bars {
		b := &bars[i]
		if b.FirstID < ks.next {
			continue
		}
		if b.FirstID > ks.next {
			sym.ctr.missing.Add(1) // the venue has no bar for [next, b)
			sym.log.Warn("kline fill lacks bars", "interval", iv.String(), "from", ks.next, "to", b.FirstID)
		}
		ks.next = iv.Next(b.FirstID)
		sym.ctr.backfilled.Add(1)
		sh.emit(sym, b)
	}
	if ks.next <= to {
		sym.ctr.missing.Add(1)
		sym.log.Warn("kline fill ended before the live bar", "interval", iv.String(), "missing_from", ks.next, "live", to+1)
		ks.next = to + 1
	}
	ks.filling = false
	held := ks.held
	ks.held = nil
	for i := range held {
		if ks.filling {
			ks.held = append(ks.held, held[i])
			continue
		}
		sh.klineApply(sym, ks, &held[i])
	}
	sh.unlockPublish()
}

// ticker merges a venue ticker snapshot or delta into the symbol's full
// state and emits that state. Deltas before the connection's snapshot and
// updates not newer than the last (the other connection of a rotation) are
// dropped.
func (sh *shard) ticker(sym *symbol, ev *Event) {
	cs := sym.ch
	if ev.Depth > 0 {
		sh.tickerPart(sym, ev)
		return
	}
	delta := ev.Flags&FlagDelta != 0
	if delta && (!cs.tkStarted || cs.tkNeedSn) {
		sym.ctr.dropped.Add(1)
		return
	}
	if cs.tkStarted && (ev.TS < cs.tkTS || ev.TS == cs.tkTS && ev.LastID <= cs.tk.Seq) {
		if !delta {
			cs.tkNeedSn = false
		}
		sym.ctr.duplicates.Add(1)
		return
	}
	in := ev.Ticker()
	t := &cs.tk
	set := func(dst *string, v string, bit uint8) {
		if !delta || ev.Flags&bit != 0 {
			if *dst != v {
				*dst = strings.Clone(v)
			}
		}
	}
	set(&t.LastPrice, in.LastPrice, HasLast)
	set(&t.MarkPrice, in.MarkPrice, HasMark)
	set(&t.IndexPrice, in.IndexPrice, HasIndex)
	set(&t.FundingRate, in.FundingRate, HasFunding)
	set(&t.OpenInterest, in.OpenInterest, HasOpenInterest)
	if !delta || ev.Flags&HasNextFunding != 0 {
		t.NextFundingTime = in.NextFundingTime
	}
	t.Seq = in.Seq
	if cs.oiTime > 0 { // polled (OpenInterestPoller): the id's seq is its time
		t.OpenInterest, t.Seq = cs.oi, cs.oiTime
	}
	cs.tkTS, cs.tkStarted = ev.TS, true
	if !delta {
		cs.tkNeedSn = false
	}
	out := *ev
	out.Flags = 0
	out.SetTicker(*t)
	sh.emit(sym, &out)
}

// tickerPart merges one part of a ticker pushed on its own venue channel
// (OKX: mark-price, index-tickers, funding-rate, open-interest; the part's
// tag in ev.Depth, its FlagDelta and Has* bits saying which fields it
// carries) into the symbol's full state and emits that state. A part
// update older than the part's last, or equal to it (same ts and seq: the
// other connection of a rotation, a repeat), is dropped; no snapshot is
// needed first (fields not pushed yet are omitted).
func (sh *shard) tickerPart(sym *symbol, ev *Event) {
	cs := sym.ch
	if ev.Depth >= len(cs.tkPart) || ev.Flags&FlagDelta == 0 {
		sh.ctr.malformed.Add(1)
		return
	}
	p := &cs.tkPart[ev.Depth]
	if ev.TS < p.ts || ev.TS == p.ts && ev.LastID == p.seq {
		sym.ctr.duplicates.Add(1)
		return
	}
	p.ts, p.seq = ev.TS, ev.LastID
	in := ev.Ticker()
	t := &cs.tk
	set := func(dst *string, v string, bit uint8) {
		if ev.Flags&bit != 0 && *dst != v {
			*dst = strings.Clone(v)
		}
	}
	set(&t.LastPrice, in.LastPrice, HasLast)
	set(&t.MarkPrice, in.MarkPrice, HasMark)
	set(&t.IndexPrice, in.IndexPrice, HasIndex)
	set(&t.FundingRate, in.FundingRate, HasFunding)
	set(&t.OpenInterest, in.OpenInterest, HasOpenInterest)
	if ev.Flags&HasNextFunding != 0 {
		t.NextFundingTime = in.NextFundingTime
	}
	t.Seq = in.Seq
	cs.tkStarted = true
	out := *ev
	out.Flags, out.Depth = 0, 0
	out.SetTicker(*t)
	sh.emit(sym, &out)
}
