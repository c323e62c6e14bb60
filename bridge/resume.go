package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// TradeResumer tells a starting stream where its trades left off in the
// destination (the publisher reads it from the JetStream stream), so that
// trades the venue published while no replica ran are backfilled after a
// restart instead of being skipped. Implementations must be safe for
// concurrent use.
type TradeResumer interface {
	// LastTradeID returns the highest consecutive trade id (Event.Seq)
	// stored for the symbol, ok=false when none is known.
	LastTradeID(ctx context.Context, exchange, symbol string) (id int64, ok bool, err error)
}

// BatchTradeResumer is an optional capability of a TradeResumer: the last
// trade ids of many symbols of one exchange in one call, much cheaper than
// one LastTradeID per symbol when a replica starts hundreds of symbols at
// once (a handover). A starting stream calls it once, then LastTradeID for
// the symbols it left out.
type BatchTradeResumer interface {
	// LastTradeIDs returns, per symbol it could answer, the highest trade
	// id stored, 0 when the symbol has no stored trade. A symbol it could
	// not tell is left out of the map; it must never be given 0 falsely (a
	// false "no trade" leaves a hole). An error may come with a partial
	// map, whose entries hold.
	LastTradeIDs(ctx context.Context, exchange string, symbols []string) (map[string]int64, error)
}

// Bounds of the start-up resume queries.
const (
	// ResumeTimeout bounds the TradeResumer queries of all symbols at start.
	ResumeTimeout = 10 * time.Second
	// resumeWorkers is how many symbols are queried concurrently.
	resumeWorkers = 4
)

// resumable reports whether the stream's trades can be resumed by id:
// trades subscribed, sequence tracking on, and a venue with consecutive
// trade ids (venues without them implement RecentTrader instead).
func (s *Stream) resumable() bool {
	if s.resumer == nil || s.cfg.Channels&ChannelTrade == 0 || !s.cfg.res.SequenceTracking {
		return false
	}
	_, byID := s.cfg.Exchange.(RecentTrader)
	return !byID
}

// resumeTrades seeds every symbol's trade sequence with the destination's
// last trade id before the connections open. Symbols whose query fails or
// does not answer within ResumeTimeout start without it.
func (s *Stream) resumeTrades(ctx context.Context) {
	if !s.resumable() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ResumeTimeout)
	defer cancel()
	start := time.Now()
	var resumed, failed, asked atomic.Int64
	rest := s.cfg.Symbols
	batched := 0
	if br, ok := s.resumer.(BatchTradeResumer); ok && len(rest) > 0 {
		ids, err := br.LastTradeIDs(ctx, s.cfg.exName, rest)
		if err != nil {
			s.log.Warn("trade resume: batch query incomplete; asking per symbol for the rest",
				"exchange", s.cfg.exName, "answered", len(ids), "symbols", len(rest), "err", err)
		}
		rest = make([]string, 0, max(0, len(s.cfg.Symbols)-len(ids)))
		for _, name := range s.cfg.Symbols {
			id, ok := ids[name]
			if !ok {
				rest = append(rest, name)
				continue
			}
			batched++
			if s.seedTrades(name, id) {
				resumed.Add(1)
			}
		}
	}
	names := make(chan string)
	var wg sync.WaitGroup
	for range min(resumeWorkers, len(rest)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				asked.Add(1)
				switch ok, err := s.resumeSymbol(ctx, name); {
				case err != nil:
					failed.Add(1)
				case ok:
					resumed.Add(1)
				}
			}
		}()
	}
feed:
	for _, name := range rest {
		select {
		case names <- name:
		case <-ctx.Done():
			break feed
		}
	}
	close(names)
	wg.Wait()
	skipped := int64(len(rest)) - asked.Load()
	if ctx.Err() != nil && skipped > 0 {
		s.log.Warn("trade resume: not every symbol answered in time; those start from the live trades",
			"exchange", s.cfg.exName, "resumed", resumed.Load(), "failed", failed.Load(), "timeout", ResumeTimeout)
	}
	s.log.Info("trade resume: symbols continue after the destination's last trade",
		"exchange", s.cfg.exName, "resumed", resumed.Load(), "symbols", len(s.cfg.Symbols),
		"batch_answered", batched, "failed", failed.Load(), "took", time.Since(start).Round(time.Millisecond))
	for _, sh := range s.shards {
		sh.mu.Lock()
		for _, sym := range sh.list {
			if sym.trades.resumed {
				// A quiet symbol would not reveal the trades after R by a
				// live trade: verify it over REST (QuietCheck).
				sh.scheduleQuietCheck()
				break
			}
		}
		sh.mu.Unlock()
	}
}

// resumeSymbol asks the resumer for one symbol and seeds its trade
// sequence. It reports whether the symbol was seeded; errors are logged.
func (s *Stream) resumeSymbol(ctx context.Context, name string) (bool, error) {
	id, ok, err := s.resumer.LastTradeID(ctx, s.cfg.exName, name)
	if err != nil {
		s.symbols[name].syms[name].log.Warn("trade resume: last stored trade unknown; starting from the live trades", "err", err)
		return false, err
	}
	if !ok {
		id = 0
	}
	return s.seedTrades(name, id), nil
}

// seedTrades seeds the symbol's trade sequence with the last stored trade
// id (id ≤ 0: none stored). It reports whether the symbol was seeded.
func (s *Stream) seedTrades(name string, id int64) bool {
	sh := s.symbols[name]
	sym := sh.syms[name]
	if id <= 0 {
		sym.log.Debug("trade resume: no stored trade; starting from the live trades")
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := &sym.trades
	if t.seq.Started() {
		return false // live trades came first (not possible before Run's connections)
	}
	t.seq.ResetTo(id)
	t.resumed = true
	sym.log.Info("trade resume: continuing after the last stored trade", "last_id", id)
	return true
}
