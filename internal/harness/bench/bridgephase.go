package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
)

// connectTimeout bounds the wait for the bridge's connections before a
// throughput phase.
const connectTimeout = 60 * time.Second

// generator drives the simulator's Binance markets with Server.Generate
// and counts the trades actually generated (a taker order may add up to
// two trades to what was asked).
type generator struct {
	sim     *exsim.Server
	symbols []string
	counts  []int64 // trades generated so far per symbol
	cursor  int
}

// gen generates about k trades of symbol i and returns how many it did.
func (g *generator) gen(i, k int) int {
	if k <= 0 {
		return 0
	}
	sym := g.symbols[i]
	if err := g.sim.Generate(exsim.Binance, sym, k, 0); err != nil {
		return 0
	}
	r, err := g.sim.Generated(exsim.Binance, sym, exsim.SeriesTrade)
	if err != nil {
		return 0
	}
	d := r.Len() - g.counts[i]
	g.counts[i] = r.Len()
	return int(d)
}

// spread generates k trades spread evenly over the symbols.
func (g *generator) spread(k int) int {
	n := len(g.symbols)
	q, rem := k/n, k%n
	done := 0
	for j := range n {
		i := (g.cursor + j) % n
		kk := q
		if j < rem {
			kk++
		}
		done += g.gen(i, kk)
	}
	g.cursor = (g.cursor + rem) % n
	return done
}

// run offers the load: at a fixed rate from one goroutine, or at
// saturation from one goroutine per symbol (a symbol whose connection is
// backed up must not hold the others back).
func (g *generator) run(ctx context.Context, cfg Config, deadline time.Time) int {
	if cfg.Rate > 0 {
		return pace(ctx, cfg.Rate, cfg.Messages, deadline, 0, g.spread)
	}
	n := len(g.symbols)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for i := range n {
		limit := 0
		if cfg.Messages > 0 {
			limit = cfg.Messages / n
			if i < cfg.Messages%n {
				limit++
			}
		}
		wg.Go(func() {
			d := pace(ctx, 0, limit, deadline, 256, func(k int) int { return g.gen(i, k) })
			mu.Lock()
			total += d
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// runBridge measures the bridge end to end: simulator -> WebSocket ->
// bridge -> publisher -> JetStream.
func runBridge(ctx context.Context, env *natsEnv, cfg Config, name string) (ph *Phase, err error) {
	symbols, err := symbolNames(cfg.Symbols, cfg.Size)
	if err != nil {
		return nil, err
	}
	progress(cfg.Progress, Progress{Phase: name, Step: "setup"})
	markets := make([]exsim.MarketConfig, len(symbols))
	for i, s := range symbols {
		markets[i] = exsim.MarketConfig{Venue: exsim.Binance, Symbol: s}
	}
	tap := newAckTap(nil)
	r, err := startRig(ctx, env, rigConfig{
		markets: markets, channels: bridge.ChannelTrade, connections: cfg.Connections,
		backpressure: true, pcfg: cfg.publisherConfig(), tap: tap,
	}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := r.shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("%w: shutting down the bridge: %w", ErrIncomplete, serr)
		}
	}()
	if _, err := r.waitConnected(ctx, time.Now(), connectTimeout, nil); err != nil {
		return nil, err
	}
	sim, ok := r.sim.(*exsim.Server)
	if !ok {
		return nil, fmt.Errorf("%w: the bridge phase drives an in-process simulator", ErrSetup)
	}
	g := &generator{sim: sim, symbols: symbols, counts: make([]int64, len(symbols))}
	m := startMeasure(cfg, tap)
	m.profile = cfg.CPUProfile
	offered := make(chan offerResult, 1)
	goComponent(ctx, compSim, func(ctx context.Context) {
		n := g.run(ctx, cfg, m.deadline(cfg))
		offered <- offerResult{n: uint64(n), end: time.Now()}
	})
	res, werr := m.await(ctx, cfg, name, func() uint64 {
		ps := r.pub.Stats()
		return ps.Acked + ps.Dropped + ps.Rejected
	}, offered)
	ps := r.pub.Stats()
	ph = m.stop(name, res, ackCounts{ps.Acked, ps.Duplicates, ps.Failures + ps.Dropped + ps.Rejected})
	ph.Bridge = r.counters()
	if cfg.MemProfile != nil {
		if err := pprof.Lookup("allocs").WriteTo(cfg.MemProfile, 0); err != nil {
			return ph, fmt.Errorf("bench: memory profile: %w", err)
		}
	}
	if werr != nil {
		return ph, werr
	}
	return ph, m.readBack(ctx, cfg, name, r.js, ph, true)
}
