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
	names := make(chan string)
	var resumed, failed atomic.Int64
	var wg sync.WaitGroup
	for range min(resumeWorkers, len(s.cfg.Symbols)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
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
	for _, name := range s.cfg.Symbols {
		select {
		case names <- name:
		case <-ctx.Done():
			break feed
		}
	}
	close(names)
	wg.Wait()
	skipped := int64(len(s.cfg.Symbols)) - resumed.Load() - failed.Load()
	if ctx.Err() != nil && skipped > 0 {
		s.log.Warn("trade resume: not every symbol answered in time; those start from the live trades",
			"exchange", s.cfg.exName, "resumed", resumed.Load(), "failed", failed.Load(), "timeout", ResumeTimeout)
	}
	s.log.Info("trade resume: symbols continue after the destination's last trade",
		"exchange", s.cfg.exName, "resumed", resumed.Load(), "symbols", len(s.cfg.Symbols),
		"failed", failed.Load(), "took", time.Since(start).Round(time.Millisecond))
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
	sh := s.symbols[name]
	sym := sh.syms[name]
	if err != nil {
		sym.log.Warn("trade resume: last stored trade unknown; starting from the live trades", "err", err)
		return false, err
	}
	if !ok || id <= 0 {
		sym.log.Debug("trade resume: no stored trade; starting from the live trades")
		return false, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := &sym.trades
	if t.seq.Started() {
		return false, nil // live trades came first (not possible before Run's connections)
	}
	t.seq.ResetTo(id)
	t.resumed = true
	sym.log.Info("trade resume: continuing after the last stored trade", "last_id", id)
	return true, nil
}
