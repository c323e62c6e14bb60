package publisher

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// reprovisionTimeout bounds one background EnsureStream.
const reprovisionTimeout = 10 * time.Second

// provisioner re-creates the stream in the background when JetStream stops
// answering for it: a server restarted without its store, or an operator
// deleted the stream. At most one attempt runs at a time; stop cancels it
// and waits. js is set before the pump starts and never changes.
type provisioner struct {
	js     jetstream.JetStream
	cfg    Config
	log    *slog.Logger
	busy   atomic.Bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func newProvisioner(cfg Config, log *slog.Logger) *provisioner {
	p := &provisioner{cfg: cfg, log: log}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// trigger starts an attempt unless one is running.
func (p *provisioner) trigger() {
	if p.js == nil || !p.busy.CompareAndSwap(false, true) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.busy.Store(false)
		ctx, cancel := context.WithTimeout(p.ctx, reprovisionTimeout)
		defer cancel()
		if _, err := ensureStream(ctx, p.js, p.cfg); err != nil {
			p.log.Warn("stream not available; will retry", "err", err)
		}
	}()
}

// stop cancels a running attempt and waits for it.
func (p *provisioner) stop() {
	p.cancel()
	p.wg.Wait()
}
