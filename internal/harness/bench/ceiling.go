package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// ceilingFeed hands the bridge's publisher pre-built trades, one event per
// Publish call as the bridge hands over one Binance trade frame: the
// bridge's own publishing path without the simulator, the WebSocket and
// the decode. Events are built once per symbol; publishing one sets its id
// (a preformatted string), Seq and TS (the creation time read back as
// latency, as the raw phase stamps its messages).
type ceilingFeed struct {
	pub  bridge.Publisher
	evs  []bridge.Event // one template per symbol
	next []int64        // next trade id per symbol
	ids  [][]string     // preformatted ids per symbol, refilled in blocks
}

// idBlock is how many ids the feed formats at a time (outside the timed
// path's per-event work as far as a long run allows).
const idBlock = 4096

func newCeilingFeed(pub bridge.Publisher, symbols []string) *ceilingFeed {
	f := &ceilingFeed{pub: pub}
	for _, s := range symbols {
		f.evs = append(f.evs, sampleTrade(s, firstRawID))
		f.next = append(f.next, firstRawID)
		f.ids = append(f.ids, nil)
	}
	return f
}

// id returns symbol i's next trade id, formatting a block when needed.
func (f *ceilingFeed) id(i int) (int64, string) {
	if len(f.ids[i]) == 0 {
		b := make([]string, idBlock)
		for j := range b {
			b[j] = strconv.FormatInt(f.next[i]+int64(j), 10)
		}
		f.ids[i] = b
	}
	n := f.next[i]
	s := f.ids[i][0]
	f.ids[i] = f.ids[i][1:]
	f.next[i]++
	return n, s
}

// gen publishes k trades of symbol i, one per Publish call, and returns how
// many the publisher took. Only one goroutine may call gen for a symbol.
func (f *ceilingFeed) gen(ctx context.Context, i, k int) int {
	ev := f.evs[i : i+1 : i+1]
	for j := range k {
		seq, id := f.id(i)
		now := time.Now().UnixNano()
		ev[0].ID, ev[0].Seq, ev[0].TS, ev[0].RecvTS = id, seq, now, now
		if err := f.pub.Publish(ctx, ev); err != nil {
			return j
		}
	}
	return k
}

// run offers the load like the bridge phase's generator: at a fixed rate
// from one goroutine (round-robin over the symbols), or at saturation from
// one goroutine per symbol.
func (f *ceilingFeed) run(ctx context.Context, cfg Config, deadline time.Time) int {
	n := len(f.evs)
	if cfg.Rate > 0 {
		cursor := 0
		return pace(ctx, cfg.Rate, cfg.Messages, deadline, 0, func(k int) int {
			done := 0
			for range k {
				done += f.gen(ctx, cursor, 1)
				cursor = (cursor + 1) % n
			}
			return done
		})
	}
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
			d := pace(ctx, 0, limit, deadline, 256, func(k int) int { return f.gen(ctx, i, k) })
			mu.Lock()
			total += d
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// runCeiling measures the ceiling: the bridge's publisher (publisher.JetStream,
// the configuration of the bridge phase, on a tapped connection of its own)
// fed pre-built events. bridge/ceiling is then what the rest of the bridge
// (WebSocket, decode, dedup, sequencing) costs in throughput.
func runCeiling(ctx context.Context, env *natsEnv, cfg Config, name string) (ph *Phase, err error) {
	symbols, err := symbolNames(cfg.Symbols, cfg.Size)
	if err != nil {
		return nil, err
	}
	progress(cfg.Progress, Progress{Phase: name, Step: "setup"})
	tap := newAckTap(nil)
	var (
		pubNC, ctlNC *nats.Conn
		js           jetstream.JetStream
		pub          *publisher.JetStream
	)
	defer func() {
		if pub != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if serr := pub.Shutdown(sctx); serr != nil && err == nil {
				err = fmt.Errorf("%w: shutting down the publisher: %w", ErrIncomplete, serr)
			}
		}
		for _, nc := range []*nats.Conn{pubNC, ctlNC} {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	withComponent(ctx, compCeiling, func(ctx context.Context) {
		if pubNC, err = env.connect(ctx, "mdbridge-bench-ceiling", tap); err != nil {
			return
		}
		if ctlNC, err = env.connect(ctx, "mdbridge-bench-ceiling-control", nil); err != nil {
			return
		}
		if js, err = jetstream.New(ctlNC); err != nil {
			err = fmt.Errorf("%w: %w", ErrSetup, err)
			return
		}
		if err = freshStream(ctx, js, cfg.publisherConfig()); err != nil {
			return
		}
		if pub, err = publisher.NewJetStream(ctx, pubNC, cfg.publisherConfig(), cfg.Logger); err != nil {
			err = fmt.Errorf("%w: %w", ErrSetup, err)
		}
	})
	if err != nil {
		return nil, err
	}
	feed := newCeilingFeed(pub, symbols)
	m := startMeasure(cfg, tap)
	offered := make(chan offerResult, 1)
	goComponent(ctx, compCeiling, func(ctx context.Context) {
		n := feed.run(ctx, cfg, m.deadline(cfg))
		offered <- offerResult{n: uint64(n), end: time.Now()}
	})
	res, werr := m.await(ctx, cfg, name, func() uint64 {
		ps := pub.Stats()
		return ps.Acked + ps.Dropped + ps.Rejected
	}, offered)
	ps := pub.Stats()
	ph = m.stop(name, res, ackCounts{ps.Acked, ps.Duplicates, ps.Failures + ps.Dropped + ps.Rejected})
	if werr != nil {
		return ph, werr
	}
	return ph, m.readBack(ctx, cfg, name, js, ph, false)
}
