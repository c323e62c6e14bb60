package main

import (
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qldata/mdbridge/bridge"
)

// connStates are the values of the state label of mdbridge_connection_state.
var connStates = []string{"DISCONNECTED", "CONNECTING", "CONNECTED", "RECONNECTING", "FAILED"}

// streamCollector exports the counters of the bridge's streams at scrape
// time (no work on the per-message path).
type streamCollector struct {
	streams func() []*bridge.Stream // read at each scrape (cluster mode changes them)
	now     func() time.Time        // the scrape's clock (time.Now; tests fix it)

	counters                                   []streamCounter
	connState, clockOffset, dataAge, dataStale *prometheus.Desc
}

// streamCounter is one counter of bridge.Stats, labelled by exchange.
type streamCounter struct {
	desc  *prometheus.Desc
	field func(*bridge.Stats) *uint64
}

func newStreamCollector(streams []*bridge.Stream) *streamCollector {
	return newStreamsCollector(func() []*bridge.Stream { return streams })
}

// newStreamsCollector is newStreamCollector over the streams list() returns
// at each scrape.
func newStreamsCollector(list func() []*bridge.Stream) *streamCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("mdbridge_"+name, help, append([]string{"exchange"}, labels...), nil)
	}
	c := func(name, help string, field func(*bridge.Stats) *uint64) streamCounter {
		return streamCounter{d(name, help), field}
	}
	return &streamCollector{
		streams: list,
		now:     time.Now,
		counters: []streamCounter{
			c("frames_received_total", "Inbound WebSocket frames.", func(s *bridge.Stats) *uint64 { return &s.Frames }),
			c("events_received_total", "Events decoded from exchange frames.", func(s *bridge.Stats) *uint64 { return &s.Received }),
			c("events_emitted_total", "Events handed to the publisher (including backfilled trades and snapshots).", func(s *bridge.Stats) *uint64 { return &s.Emitted }),
			c("duplicates_dropped_total", "Events dropped locally as duplicates (duplicate frames, reconnect and rotation overlap).", func(s *bridge.Stats) *uint64 { return &s.Duplicates }),
			c("gaps_total", "Sequence gaps detected (trades and books).", func(s *bridge.Stats) *uint64 { return &s.Gaps }),
			c("snapshots_total", "Order book snapshots emitted or requested.", func(s *bridge.Stats) *uint64 { return &s.Snapshots }),
			c("backfilled_trades_total", "Trades recovered over REST after a gap.", func(s *bridge.Stats) *uint64 { return &s.Backfilled }),
			c("missing_trades_total", "Trades known missed and not recoverable.", func(s *bridge.Stats) *uint64 { return &s.Missing }),
			c("events_dropped_total", "Events dropped because a bounded buffer overflowed.", func(s *bridge.Stats) *uint64 { return &s.Dropped }),
			c("malformed_frames_total", "Frames dropped as malformed, oversized or unexpected.", func(s *bridge.Stats) *uint64 { return &s.Malformed }),
			c("reconnects_total", "Connection losses followed by a reconnect.", func(s *bridge.Stats) *uint64 { return &s.Reconnects }),
			c("rotations_total", "Make-before-break connection rotations completed.", func(s *bridge.Stats) *uint64 { return &s.Rotations }),
			c("silence_probes_total", "Venue checks of connections that delivered no data for the silence check interval.", func(s *bridge.Stats) *uint64 { return &s.SilenceProbes }),
			c("silent_feeds_total", "Connections replaced because the venue had data they did not deliver (silent feed).", func(s *bridge.Stats) *uint64 { return &s.SilentFeeds }),
			c("stale_alerts_total", "Times a symbol's channel went stale (no message for MDB_STALE_AFTER or its channel's threshold).", func(s *bridge.Stats) *uint64 { return &s.StaleAlerts }),
			c("book_snapshot_busy_total", "Book snapshot requests of this bridge refused busy by the snapshot service and asked again after its retry_after.", func(s *bridge.Stats) *uint64 { return &s.SnapshotBusy }),
			c("superseded_events_total", "Events a replaced connection delivered after its replacement took over (carried by the replacement).", func(s *bridge.Stats) *uint64 { return &s.Superseded }),
		},
		connState:   d("connection_state", "1 for the current state of each connection slot.", "shard", "state"),
		clockOffset: d("clock_offset_seconds", "Exchange clock minus local clock."),
		dataAge: d("data_age_seconds", "Seconds since the last message received for the symbol on the channel "+
			"(the oldest over the streams carrying it); NaN until every one of them has received one.", "symbol", "channel"),
		dataStale: d("data_stale", "1 while the symbol's channel is stale (no message for its threshold, MDB_STALE_AFTER or "+
			"MDB_STALE_AFTER_CHANNELS; from the start if none arrived yet), else 0.", "symbol", "channel"),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	// Several streams may serve one exchange (one per channel set): sum them.
	type agg struct {
		st     bridge.Stats
		offset float64
		conns  []bridge.ConnStats
	}
	byEx := map[string]*agg{}
	var order []string
	for _, s := range c.streams() {
		ex := s.Exchange()
		a, ok := byEx[ex]
		if !ok {
			a = &agg{}
			byEx[ex] = a
			order = append(order, ex)
		}
		st := s.Stats()
		for _, k := range c.counters {
			*k.field(&a.st) += *k.field(&st)
		}
		a.conns = append(a.conns, st.Connections...)
		a.offset = s.ClockOffset().Seconds()
	}
	for _, ex := range order {
		a := byEx[ex]
		for _, k := range c.counters {
			ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(*k.field(&a.st)), ex)
		}
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
	var states []bridge.SymbolState
	for _, s := range c.streams() {
		states = append(states, s.States()...)
	}
	now := c.now()
	for _, a := range dataAges(states, now) {
		ch <- prometheus.MustNewConstMetric(c.dataAge, prometheus.GaugeValue, a.seconds, a.exchange, a.symbol, a.channel)
		stale := 0.0
		if a.stale {
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(c.dataStale, prometheus.GaugeValue, stale, a.exchange, a.symbol, a.channel)
	}
}

// symbolAge is the data age of one exchange, symbol and channel.
type symbolAge struct {
	exchange, symbol, channel string
	seconds                   float64
	stale                     bool // stale on any stream carrying it
}

// dataAges returns, per exchange, symbol and channel in first-seen order
// (channels by name within a state), now minus the time of the last message
// received on the channel (SymbolState.Channels' LastMessageTS, local
// receive time). When several streams carry a symbol's channel the oldest
// counts; a channel that has received nothing yet on one of them is NaN
// (the series exists from the start, and a stale-data alert can match it
// with x != x). A clock stepping back gives 0, not a negative age.
func dataAges(states []bridge.SymbolState, now time.Time) []symbolAge {
	type key struct{ exchange, symbol, channel string }
	idx := map[key]int{}
	var out []symbolAge
	var last []int64 // oldest LastMessageTS per entry of out; 0 = none yet
	for _, st := range states {
		for _, name := range slices.Sorted(maps.Keys(st.Channels)) {
			cs := st.Channels[name]
			k := key{st.Exchange, st.Symbol, name}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				out = append(out, symbolAge{exchange: st.Exchange, symbol: st.Symbol, channel: name, stale: cs.Stale})
				last = append(last, cs.LastMessageTS)
				continue
			}
			out[i].stale = out[i].stale || cs.Stale
			if last[i] != 0 && (cs.LastMessageTS == 0 || cs.LastMessageTS < last[i]) {
				last[i] = cs.LastMessageTS
			}
		}
	}
	for i := range out {
		if last[i] == 0 {
			out[i].seconds = math.NaN()
			continue
		}
		out[i].seconds = max(0, now.Sub(time.Unix(0, last[i])).Seconds())
	}
	return out
}

// natsCollector exports the state of the process's NATS connection: whether
// it is connected (alerts: NATS disconnected) and how often it reconnected.
type natsCollector struct {
	conn                  func() *nats.Conn // nil before the connection exists
	connected, reconnects *prometheus.Desc
}

func newNATSCollector(conn func() *nats.Conn) *natsCollector {
	return &natsCollector{
		conn:       conn,
		connected:  prometheus.NewDesc("mdbridge_nats_connected", "1 while the NATS connection is connected, else 0.", nil, nil),
		reconnects: prometheus.NewDesc("mdbridge_nats_reconnects_total", "Reconnects of the NATS connection.", nil, nil),
	}
}

func (c *natsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.reconnects
}

func (c *natsCollector) Collect(ch chan<- prometheus.Metric) {
	connected, reconnects := 0.0, 0.0
	if nc := c.conn(); nc != nil {
		if nc.IsConnected() {
			connected = 1
		}
		reconnects = float64(nc.Stats().Reconnects)
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, reconnects)
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
