package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// rawMsg is one pooled message of the raw phase. m must stay the first
// field: the ack callback gets &m back and recovers the rawMsg from it.
type rawMsg struct {
	m       nats.Msg
	vals    [3]string // msg id, type, exchange ts: the header values
	body    []byte
	scratch []byte
}

// rawPublisher publishes the bridge's wire messages straight to JetStream
// with PublishMsgAsync: the baseline. Its buffers are pooled, as the
// bridge's publisher pools its own, so the baseline is not slowed by
// allocations the bridge avoids.
type rawPublisher struct {
	js       jetstream.JetStream
	symbols  []string
	subjects []string
	next     []int64 // next trade id per symbol
	cursor   int
	opts     []jetstream.PublishOpt
	pool     sync.Pool

	acked, dups, errs atomic.Uint64
}

func newRawPublisher(nc *nats.Conn, cfg Config, symbols []string) (*rawPublisher, error) {
	// A full window blocks PublishMsgAsync (up to the stall timeout) rather
	// than failing: the baseline waits for room as the bridge's publisher
	// does.
	p := &rawPublisher{symbols: symbols, opts: []jetstream.PublishOpt{
		jetstream.WithRetryAttempts(0), jetstream.WithStallWait(cfg.StallTimeout),
	}}
	for range symbols {
		p.next = append(p.next, firstRawID)
	}
	for _, s := range symbols {
		ev := bridge.Event{Exchange: "binance", Symbol: s}
		p.subjects = append(p.subjects, string(ev.AppendSubject(nil, SubjectPrefix)))
	}
	p.pool.New = func() any {
		r := &rawMsg{}
		r.m.Header = nats.Header{
			publisher.HeaderMsgID:      r.vals[0:1:1],
			publisher.HeaderType:       r.vals[1:2:2],
			publisher.HeaderExchangeTS: r.vals[2:3:3],
		}
		return r
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(publisher.DefaultAckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream: %w", ErrSetup, err)
	}
	p.js = js
	return p, nil
}

func (p *rawPublisher) recycle(m *nats.Msg) {
	r := (*rawMsg)(unsafe.Pointer(m)) // m is rawMsg's first field
	r.m.Subject, r.m.Reply, r.vals = "", "", [3]string{}
	p.pool.Put(r)
}

func (p *rawPublisher) onAck(_ jetstream.JetStream, m *nats.Msg, a *jetstream.PubAck) {
	p.acked.Add(1)
	if a.Duplicate {
		p.dups.Add(1)
	}
	p.recycle(m)
}

func (p *rawPublisher) onErr(_ jetstream.JetStream, m *nats.Msg, _ error) {
	p.errs.Add(1)
	p.recycle(m)
}

// publish publishes k messages, round-robin over the symbols, stamped with
// the current time, and returns how many were handed to NATS.
func (p *rawPublisher) publish(k int) int {
	now := time.Now().UnixNano()
	for i := range k {
		s := p.cursor
		p.cursor = (p.cursor + 1) % len(p.symbols)
		id := p.next[s]
		p.next[s]++
		ev := sampleTrade(p.symbols[s], id)
		ev.TS, ev.RecvTS = now, now
		r := p.pool.Get().(*rawMsg)
		r.body = ev.AppendJSON(r.body[:0])
		b := ev.AppendMsgID(r.scratch[:0])
		idLen := len(b)
		b = strconv.AppendInt(b, ev.TS, 10)
		r.scratch = b
		str := string(b)
		r.vals[0], r.vals[1], r.vals[2] = str[:idLen], bridge.EventTrade.String(), str[idLen:]
		r.m.Subject, r.m.Data = p.subjects[s], r.body
		if _, err := p.js.PublishMsgAsync(&r.m, p.opts...); err != nil {
			p.errs.Add(1)
			p.pool.Put(r)
			return i
		}
	}
	return k
}

// runRaw measures the raw baseline.
func runRaw(ctx context.Context, env *natsEnv, cfg Config, name string) (*Phase, error) {
	symbols, err := symbolNames(cfg.Symbols, cfg.Size)
	if err != nil {
		return nil, err
	}
	progress(cfg.Progress, Progress{Phase: name, Step: "setup"})
	tap := newAckTap(nil)
	var (
		nc  *nats.Conn
		pub *rawPublisher
	)
	withComponent(ctx, compRaw, func(context.Context) {
		if nc, err = env.connect(ctx, "mdbridge-bench-raw", tap); err == nil {
			pub, err = newRawPublisher(nc, cfg, symbols)
		}
	})
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := freshStream(ctx, pub.js, cfg.publisherConfig()); err != nil {
		return nil, err
	}
	m := startMeasure(cfg, tap)
	offered := make(chan offerResult, 1)
	goComponent(ctx, compRaw, func(ctx context.Context) {
		n := pace(ctx, cfg.Rate, cfg.Messages, m.deadline(cfg), 256, pub.publish)
		offered <- offerResult{n: uint64(n), end: time.Now()}
	})
	res, werr := m.await(ctx, cfg, name, func() uint64 { return pub.acked.Load() + pub.errs.Load() }, offered)
	ph := m.stop(name, res, ackCounts{pub.acked.Load(), pub.dups.Load(), pub.errs.Load()})
	if werr != nil {
		return ph, werr
	}
	select {
	case <-pub.js.PublishAsyncComplete():
	case <-time.After(5 * time.Second):
	}
	return ph, m.readBack(ctx, cfg, name, pub.js, ph, false)
}
