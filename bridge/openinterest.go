package bridge

import (
	"context"
	"time"
)

// OpenInterestPoller is implemented by adapters whose ticker stream carries
// no open interest but whose REST API has it (Binance USD-M:
// GET /fapi/v1/openInterest). A stream with ChannelTicker then polls each
// symbol every OpenInterestEvery, round robin (one request every
// OpenInterestEvery/n for n symbols of a connection), through the adapter's
// REST limiter, and merges the answer into the symbol's ticker state. It is
// not published by itself: the next ticker push carries it, with the
// ticker's Seq set to the open interest's time (so a changed open interest
// never shares a Nats-Msg-Id, <ts>:<seq>, with an older body).
type OpenInterestPoller interface {
	// OpenInterestEvery is the period of each symbol's poll; 0 or
	// negative: never (open interest stays absent).
	OpenInterestEvery() time.Duration
	// OpenInterest returns symbol's open interest (a decimal string) and
	// the venue's time of it (Unix ms, above 0).
	OpenInterest(ctx context.Context, symbol string) (oi string, timeMS int64, err error)
}

// pollOpenInterest runs the shard's open-interest polls until ctx ends
// (nothing when the adapter is no OpenInterestPoller, the poll is off or
// the shard carries no ticker). A failed poll is logged and keeps the last
// value; the next symbol's turn comes as planned.
func (sh *shard) pollOpenInterest(ctx context.Context) {
	p, ok := sh.st.cfg.Exchange.(OpenInterestPoller)
	if !ok || sh.chans&ChannelTicker == 0 || len(sh.list) == 0 {
		return
	}
	every := p.OpenInterestEvery()
	if every <= 0 {
		return
	}
	step := every / time.Duration(len(sh.list))
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i = (i + 1) % len(sh.list) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sym := sh.list[i]
		oi, ms, err := p.OpenInterest(ctx, sym.name)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			sym.log.Warn("open interest poll failed; keeping the last value", "err", err)
		case sym.ch != nil:
			sh.mu.Lock()
			sym.ch.mergeOpenInterest(oi, ms)
			sh.mu.Unlock()
		}
		t.Reset(step)
	}
}

// mergeOpenInterest keeps oi when it is newer than the value held.
// Called with the shard's mu held.
func (cs *chanState) mergeOpenInterest(oi string, ms int64) {
	if ms > cs.oiTime {
		cs.oi, cs.oiTime = oi, ms
	}
}
