package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progressEvery is the period of Config.Progress calls.
const progressEvery = 200 * time.Millisecond

// progress reports p to f (Config.Progress or ScaleConfig.Progress), if set.
func progress(f func(Progress), p Progress) {
	if f != nil {
		f(p)
	}
}

// offerResult is what a load generator reports when it stops.
type offerResult struct {
	n   uint64    // messages offered
	end time.Time // when the last was offered
	err error
}

// measure holds a phase's measurements from its start: CPU, memory,
// profile and acknowledgement times.
type measure struct {
	ext  func() time.Duration
	ext0 time.Duration
	// profile, if set, receives the phase's CPU profile.
	profile io.Writer
	tap     *ackTap
	split   *cpuSplit
	reset   bool
	cpu0    time.Duration
	start   time.Time
	acks    []int64 // ack time by stream sequence, from stop to readBack
	writes  []int64 // socket write time by stream sequence (nil: not pairable)
}

// startMeasure collects garbage (so one phase's heap does not inflate the
// next one's RSS), resets the peak RSS, arms the tap, starts the CPU split
// and notes the start.
func startMeasure(cfg Config, tap *ackTap) *measure {
	runtime.GC()
	debug.FreeOSMemory()
	m := &measure{tap: tap, reset: resetPeakRSS()}
	tap.arm(max(cfg.Messages, 1<<16))
	m.split = startCPUSplit(!cfg.NoCPUSplit)
	m.cpu0 = cpuTime()
	if cfg.ExternalCPU != nil {
		m.ext = cfg.ExternalCPU
		m.ext0 = m.ext()
	}
	m.start = time.Now()
	return m
}

// deadline is the end of a Duration-bound phase (zero: none).
func (m *measure) deadline(cfg Config) time.Time {
	if cfg.Duration > 0 {
		return m.start.Add(cfg.Duration)
	}
	return time.Time{}
}

// await waits until the load generator has stopped and acked() reaches the
// number of messages it offered, calling cfg.Progress meanwhile. It
// returns ErrIncomplete when acknowledgements stop arriving for
// cfg.StallTimeout.
func (m *measure) await(ctx context.Context, cfg Config, name string, acked func() uint64, offered <-chan offerResult) (offerResult, error) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var (
		res       offerResult
		offering  = true
		lastN     uint64
		lastMove  = time.Now()
		progAt    = m.start
		progN     uint64
		total     = uint64(cfg.Messages)
		stepName  = "run"
		stallLeft = cfg.StallTimeout
	)
	for {
		select {
		case <-ctx.Done():
			if offering {
				res = <-offered
			}
			return res, ctx.Err()
		case res = <-offered:
			offering, offered = false, nil
			total, stepName = res.n, "drain"
			if res.err != nil {
				return res, res.err
			}
		case now := <-tick.C:
			n := acked()
			if n != lastN {
				lastN, lastMove = n, now
			}
			if !offering && n >= res.n {
				progress(cfg.Progress, Progress{Phase: name, Step: stepName, Done: n, Total: total, Elapsed: now.Sub(m.start)})
				return res, nil
			}
			if now.Sub(lastMove) > stallLeft {
				if offering {
					res = <-offered
				}
				return res, fmt.Errorf("%w: %s: %d of %d messages acknowledged, none for %s", ErrIncomplete, name, n, res.n, cfg.StallTimeout)
			}
			if now.Sub(progAt) >= progressEvery {
				p := Progress{Phase: name, Step: stepName, Done: n, Total: total, Elapsed: now.Sub(m.start),
					Rate: float64(n-progN) / now.Sub(progAt).Seconds()}
				if cfg.Duration > 0 && offering {
					p.Left = max(cfg.Duration-p.Elapsed, 0)
				}
				progress(cfg.Progress, p)
				progAt, progN = now, n
			}
		}
	}
}

// ackCounts are a phase's acknowledgement counters.
type ackCounts struct{ acked, dups, errs uint64 }

// stop ends the measurements and returns the phase with its throughput
// and resource figures (latency comes from readBack).
func (m *measure) stop(name string, res offerResult, c ackCounts) *Phase {
	cpu := cpuTime() - m.cpu0
	split, _ := m.split.stop(m.profile)
	if m.ext != nil {
		ext := m.ext() - m.ext0
		cpu += ext
		if split != nil {
			split[compNATS] += ext.Seconds()
		}
	}
	_, peak := memStatus()
	var lastAck int64
	m.acks, lastAck, m.writes = m.tap.disarm()
	if len(m.writes)-1 != int(res.n) || c.dups != 0 || c.errs != 0 {
		// Retransmissions or other publishes on the connection: the k-th
		// message written is not stream sequence k.
		m.writes = nil
	}
	ph := &Phase{
		Name: name, Messages: res.n, Acked: c.acked, Duplicates: c.dups, Errors: c.errs,
		PeakRSS: peak, PeakRSSReset: m.reset, Goroutines: runtime.NumGoroutine(), CPUSplit: split,
	}
	ph.finish(m.start, lastAck, res.end, cpu)
	return ph
}

// readBack completes ph with the latency distribution read back from the
// stream's headers and the recorded acknowledgement times.
func (m *measure) readBack(ctx context.Context, cfg Config, name string, js jetstream.JetStream, ph *Phase, stages bool) error {
	progress(cfg.Progress, Progress{Phase: name, Step: "readback", Total: ph.Acked})
	lat, st, unmatched, body, err := readBack(ctx, js, StreamName, m.acks, m.writes, stages, func(n uint64) {
		progress(cfg.Progress, Progress{Phase: name, Step: "readback", Done: n, Total: ph.Acked})
	})
	ph.Latency = latencyOf(lat, unmatched)
	if len(st.toRecv) > 0 {
		ph.Stages = &Stages{ToReceive: latencyOf(st.toRecv, 0), ReceiveToAck: latencyOf(st.toAck, 0)}
		if len(st.recvToWire) > 0 {
			w := latencyOf(st.recvToWire, 0)
			ph.Stages.ReceiveToWire = &w
		}
	}
	if len(st.toWire) > 0 {
		w := latencyOf(st.toWire, 0)
		ph.ToWire = &w
	}
	ph.BodyBytes = body
	m.acks, m.writes = nil, nil
	return err
}
