package bridge

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/qldata/mdbridge/resilience"
)

// pacer keeps a connection's client messages (control frames, pings, pongs,
// close) under the venue's per-second limit: at most n messages in any
// sliding window. The window carries a 10% safety margin. A nil pacer does
// not limit. Safe for concurrent use.
type pacer struct {
	mu     sync.Mutex
	window time.Duration
	sent   []time.Time // ring of the last n send times
	next   int
}

// newPacer returns a pacer for perSecond messages per second, or nil for
// no limit.
func newPacer(perSecond float64) *pacer {
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return nil
	}
	n := int(perSecond)
	if n < 1 {
		n = 1
	}
	window := time.Duration(float64(n) / perSecond * float64(time.Second))
	return &pacer{window: window + window/10, sent: make([]time.Time, n)}
}

// wait blocks until one more message may be sent and records it as sent.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if oldest := p.sent[p.next]; !oldest.IsZero() {
		if d := time.Until(oldest.Add(p.window)); d > 0 {
			if err := resilience.Sleep(ctx, d); err != nil {
				return err
			}
		}
	}
	p.sent[p.next] = time.Now()
	p.next = (p.next + 1) % len(p.sent)
	return nil
}

// ConnectGate staggers connection attempts to one venue: a token bucket
// from the venue's connect limit (Limits.ConnectsPerWindow per
// ConnectWindow, burst a tenth of it, at least 1) plus a minimum spacing
// between any two attempts, so a restart with many connections does not
// trigger a 429 storm or an IP ban. The venues limit per IP, so a process
// shares one gate among all its streams of a venue (StreamConfig.ConnectGate); a
// stream without one builds its own. Safe for concurrent use.
type ConnectGate = connectGate

// NewConnectGate returns a gate for a venue's limits (the adapter's
// Limits()) with at least spacing between attempts (0: DefaultConnectSpacing).
// It returns an error wrapping ErrConfig for limits it cannot express.
func NewConnectGate(l Limits, spacing time.Duration) (*ConnectGate, error) {
	if spacing <= 0 {
		spacing = DefaultConnectSpacing
	}
	g, err := newConnectGate(l, spacing, true)
	if err != nil {
		return nil, fmt.Errorf("%w: connect rate: %w", ErrConfig, err)
	}
	return g, nil
}

type connectGate struct {
	rl      *resilience.RateLimitManager // nil: no bucket
	spacing time.Duration

	mu   sync.Mutex
	next time.Time // earliest time of the next attempt
}

// newConnectGate builds the gate; withBucket false leaves only the spacing.
func newConnectGate(l Limits, spacing time.Duration, withBucket bool) (*connectGate, error) {
	g := &connectGate{spacing: spacing}
	if withBucket && l.ConnectsPerWindow > 0 && l.ConnectWindow > 0 {
		perMin := int(float64(l.ConnectsPerWindow) * float64(time.Minute) / float64(l.ConnectWindow))
		if perMin < 1 {
			perMin = 1
		}
		burst := l.ConnectsPerWindow / 10
		if burst < 1 {
			burst = 1
		}
		rl, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{RequestsPerMinute: perMin, Burst: burst})
		if err != nil {
			return nil, err
		}
		g.rl = rl
	}
	return g, nil
}

// wait blocks until a connection attempt may start.
func (g *connectGate) wait(ctx context.Context) error {
	if g.rl != nil {
		if err := g.rl.Acquire(ctx); err != nil {
			return err
		}
	}
	g.mu.Lock()
	now := time.Now()
	at := g.next
	if at.Before(now) {
		at = now
	}
	g.next = at.Add(g.spacing)
	g.mu.Unlock()
	return resilience.Sleep(ctx, time.Until(at))
}
