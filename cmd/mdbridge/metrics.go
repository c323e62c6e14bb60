package main

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qldata/mdbridge/bridge"
)

// connStates are the values of the state label of mdbridge_connection_state.
var connStates = []string{"DISCONNECTED", "CONNECTING", "CONNECTED", "RECONNECTING", "FAILED"}

// streamCollector exports the counters of the bridge's streams at scrape
// time (no work on the per-message path).
type streamCollector struct {
	streams []*bridge.Stream

	frames, received, emitted, duplicates, gaps, snapshots, backfilled, missing,
	dropped, malformed, reconnects, rotations, connState, clockOffset *prometheus.Desc
}

func newStreamCollector(streams []*bridge.Stream) *streamCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("mdbridge_"+name, help, append([]string{"exchange"}, labels...), nil)
	}
	return &streamCollector{
		streams:     streams,
		frames:      d("frames_received_total", "Inbound WebSocket frames."),
		received:    d("events_received_total", "Events decoded from exchange frames."),
		emitted:     d("events_emitted_total", "Events handed to the publisher (including backfilled trades and snapshots)."),
		duplicates:  d("duplicates_dropped_total", "Events dropped locally as duplicates (duplicate frames, reconnect and rotation overlap)."),
		gaps:        d("gaps_total", "Sequence gaps detected (trades and books)."),
		snapshots:   d("snapshots_total", "Order book snapshots emitted or requested."),
		backfilled:  d("backfilled_trades_total", "Trades recovered over REST after a gap."),
		missing:     d("missing_trades_total", "Trades known missed and not recoverable."),
		dropped:     d("events_dropped_total", "Events dropped because a bounded buffer overflowed."),
		malformed:   d("malformed_frames_total", "Frames dropped as malformed, oversized or unexpected."),
		reconnects:  d("reconnects_total", "Connection losses followed by a reconnect."),
		rotations:   d("rotations_total", "Make-before-break connection rotations completed."),
		connState:   d("connection_state", "1 for the current state of each connection slot.", "shard", "state"),
		clockOffset: d("clock_offset_seconds", "Exchange clock minus local clock."),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, ex string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), ex)
	}
	// Several streams may serve one exchange (one per channel set): sum them.
	type agg struct {
		st     bridge.Stats
		offset float64
		conns  []bridge.ConnStats
	}
	byEx := map[string]*agg{}
	var order []string
	for _, s := range c.streams {
		ex := s.Exchange()
		a, ok := byEx[ex]
		if !ok {
			a = &agg{}
			byEx[ex] = a
			order = append(order, ex)
		}
		st := s.Stats()
		a.st.Frames += st.Frames
		a.st.Received += st.Received
		a.st.Emitted += st.Emitted
		a.st.Duplicates += st.Duplicates
		a.st.Gaps += st.Gaps
		a.st.Snapshots += st.Snapshots
		a.st.Backfilled += st.Backfilled
		a.st.Missing += st.Missing
		a.st.Dropped += st.Dropped
		a.st.Malformed += st.Malformed
		a.st.Reconnects += st.Reconnects
		a.st.Rotations += st.Rotations
		a.conns = append(a.conns, st.Connections...)
		a.offset = s.ClockOffset().Seconds()
	}
	for _, ex := range order {
		a := byEx[ex]
		counter(c.frames, a.st.Frames, ex)
		counter(c.received, a.st.Received, ex)
		counter(c.emitted, a.st.Emitted, ex)
		counter(c.duplicates, a.st.Duplicates, ex)
		counter(c.gaps, a.st.Gaps, ex)
		counter(c.snapshots, a.st.Snapshots, ex)
		counter(c.backfilled, a.st.Backfilled, ex)
		counter(c.missing, a.st.Missing, ex)
		counter(c.dropped, a.st.Dropped, ex)
		counter(c.malformed, a.st.Malformed, ex)
		counter(c.reconnects, a.st.Reconnects, ex)
		counter(c.rotations, a.st.Rotations, ex)
		ch <- prometheus.MustNewConstMetric(c.clockOffset, prometheus.GaugeValue, a.offset, ex)
		for i, cs := range a.conns {
			shard := strconv.Itoa(i)
			for _, s := range connStates {
				v := 0.0
				if cs.State == s {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(c.connState, prometheus.GaugeValue, v, ex, shard, s)
			}
		}
	}
}

// ingestMetrics measures ingest latency (exchange event time to hand-off to
// the publisher) on the way through. The publisher's own counters and
// publish latency come from publisher.NewCollector.
type ingestMetrics struct {
	ingest prometheus.Histogram
}

func newIngestMetrics() *ingestMetrics {
	return &ingestMetrics{ingest: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mdbridge_ingest_latency_seconds",
		Help:    "Exchange event time to hand-off to the publisher (includes the exchange clock offset).",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
	})}
}

// wrap returns a bridge.Publisher that observes ingest latency and forwards.
func (m *ingestMetrics) wrap(p bridge.Publisher) bridge.Publisher {
	return publisherFunc(func(ctx context.Context, evs []bridge.Event) error {
		now := time.Now().UnixNano()
		for i := range evs {
			if ts := evs[i].TS; ts > 0 {
				m.ingest.Observe(float64(now-ts) / 1e9)
			}
		}
		return p.Publish(ctx, evs)
	})
}

type publisherFunc func(ctx context.Context, evs []bridge.Event) error

func (f publisherFunc) Publish(ctx context.Context, evs []bridge.Event) error { return f(ctx, evs) }
