package bridge

// Silent-feed detection: a connection whose heartbeat is fine (pings and
// pongs flow) but that delivers no data. The heartbeat cannot tell a quiet
// market from a feed that stopped; the venue can: after SilenceCheck
// without data the bridge asks it over REST (or, for a stream-snapshot
// book, by a resubscribe) whether there is data the connection did not
// deliver, and replaces the connection only if there is.

import (
	"context"
	"fmt"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// silenceSlack is how long data the venue has must stay undelivered to
// count as lost by the connection: until then it may be on its way over
// the socket.
const silenceSlack = 2 * time.Second

// maxSilenceProbes bounds the symbols asked per probe.
const maxSilenceProbes = 3

// recentProbeTrades is how many of the venue's newest trades a probe of a
// venue without consecutive ids reads.
const recentProbeTrades = 1

// silenceProbe is one question to the venue about one symbol.
type silenceProbe struct {
	sym    *symbol
	kind   int
	lastID int64  // last trade id (consecutive ids) or book update id emitted
	lastTr string // last trade id emitted (venues without consecutive ids)
	lastTS int64  // exchange time of that trade
}

const (
	probeTradeByID  = iota // Exchange.Trades from the last id on
	probeRecent            // RecentTrader: the newest trade
	probeRESTBook          // a REST snapshot's update id
	probeStreamBook        // a resubscribe must answer with a snapshot
)

// probeSilence runs on a worker when c delivered no data for SilenceCheck:
// if the venue has data c did not deliver, c is replaced; otherwise the
// symbols are quiet and the next check is SilenceCheck later.
func (sh *shard) probeSilence(ctx context.Context, c *conn) {
	defer func() {
		sh.mu.Lock()
		sh.probing = false
		sh.mu.Unlock()
	}()
	sh.ctr.silence.Add(1)
	start := sh.st.now()
	silentFor := start.Sub(time.Unix(0, c.dataAt.Load()))
	why := sh.venueMoved(ctx, sh.silenceProbes())
	if why == "" {
		c.dataAt.CompareAndSwap(c.dataAt.Load(), sh.st.now().UnixNano()) // quiet: ask again after SilenceCheck
		return
	}
	// The venue has data the connection did not deliver: if it is on its
	// way, it arrives within the slack.
	if resilience.Sleep(ctx, silenceSlack) != nil || c.ctx.Err() != nil || c.dataAt.Load() >= start.UnixNano() {
		return
	}
	sh.ctr.silent.Add(1)
	sh.log.Warn("silent feed: the venue has data this connection did not deliver; replacing it",
		"conn", c.id, "silent_for", silentFor.Round(time.Millisecond), "evidence", why)
	// Closed at once: nothing arrived for the probe's whole duration, and
	// frames read from now on would move the trades past the hole the
	// reconnect's backfill must fill (after the last delivered trade).
	c.closeGraceful(fmt.Errorf("%w for %s: %s", ErrSilent, silentFor.Round(time.Second), why))
}

// silenceProbes picks what to ask the venue: the trades of up to
// maxSilenceProbes symbols, or without trades their books.
func (sh *shard) silenceProbes() []silenceProbe {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, canRecent := sh.st.cfg.Exchange.(RecentTrader)
	var trades, books []silenceProbe
	for _, sym := range sh.list {
		t := &sym.trades
		switch {
		case len(trades) >= maxSilenceProbes:
		case t.repairing:
		case !t.byID && t.seq.Started():
			trades = append(trades, silenceProbe{sym: sym, kind: probeTradeByID, lastID: t.seq.Last()})
		case t.byID && canRecent:
			trades = append(trades, silenceProbe{sym: sym, kind: probeRecent, lastTr: t.lastID, lastTS: t.lastTS})
		}
		switch {
		case len(books) >= maxSilenceProbes:
		case sym.rest != nil && sym.rest.state == bookLive && !sym.rest.fetching:
			books = append(books, silenceProbe{sym: sym, kind: probeRESTBook, lastID: sym.rest.lastID})
		case sym.stream != nil && sym.stream.state == bookLive && len(books) == 0:
			books = append(books, silenceProbe{sym: sym, kind: probeStreamBook}) // one resubscribe answers for the connection
		}
	}
	if len(trades) > 0 {
		return trades
	}
	return books
}

// venueMoved asks the venue; it returns why the connection is silent, or
// "" when nothing shows that it is (errors included: a failed probe is no
// evidence).
func (sh *shard) venueMoved(ctx context.Context, probes []silenceProbe) string {
	cfg := sh.st.cfg
	for _, p := range probes {
		name := p.sym.name
		switch p.kind {
		case probeTradeByID:
			page, err := cfg.Exchange.Trades(ctx, name, p.lastID+1, 1)
			if err == nil && len(page) > 0 {
				return fmt.Sprintf("%s: trade %s at the venue after the last delivered (%d)", name, page[0].ID, p.lastID)
			}
		case probeRecent:
			// The newest trades: is one newer than the last delivered?
			page, err := cfg.Exchange.(RecentTrader).RecentTrades(ctx, name, recentProbeTrades)
			for i := range page {
				if tr := &page[i]; err == nil && tr.ID != p.lastTr && tr.TS > p.lastTS {
					return fmt.Sprintf("%s: trade %s at the venue newer than the last delivered (%s)", name, tr.ID, p.lastTr)
				}
			}
		case probeRESTBook:
			ev, err := sh.st.snaps.fetch(ctx, name, nil)
			if err == nil && ev.LastID > p.lastID {
				return fmt.Sprintf("%s: book at update %d at the venue, %d delivered", name, ev.LastID, p.lastID)
			}
		case probeStreamBook:
			pctx, cancel := context.WithTimeout(ctx, cfg.ResyncTimeout)
			_, err := sh.streamSnapshot(pctx, name)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Sprintf("%s: no book snapshot within %s of a resubscribe", name, cfg.ResyncTimeout)
			}
		}
		if ctx.Err() != nil {
			return ""
		}
	}
	return ""
}
