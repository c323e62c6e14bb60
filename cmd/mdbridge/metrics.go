package main

import (
	"context"
	"math"
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

	counters                        []streamCounter
	connState, clockOffset, dataAge *prometheus.Desc
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
			c("superseded_events_total", "Events a replaced connection delivered after its replacement took over (carried by the replacement).", func(s *bridge.Stats) *uint64 { return &s.Superseded }),
		},
		connState:   d("connection_state", "1 for the current state of each connection slot.", "shard", "state"),
		clockOffset: d("clock_offset_seconds", "Exchange clock minus local clock."),
		dataAge: d("data_age_seconds", "Seconds since the last message received for the symbol "+
			"(the oldest over the streams carrying it); NaN until every one of them has received one.", "symbol"),
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
		ch <- prometheus.MustNewConstMetric(c.dataAge, prometheus.GaugeValue, a.seconds, a.exchange, a.symbol)
	}
}

// symbolAge is the data age of one exchange and symbol.
type symbolAge struct {
	exchange, symbol string
	seconds          float64
}

// dataAges returns, per exchange and symbol in first-seen order, now minus
// the time of the last message received (SymbolState.LastMessageTS, local
// receive time). When several streams carry a symbol (one per channel set)
// the oldest counts, so a stalled trade stream is not hidden by a live book
// stream; a symbol with a stream that has received nothing yet is NaN (the
// series exists from the start, and a stale-data alert can match it with
// x != x). A clock stepping back gives 0, not a negative age.
func dataAges(states []bridge.SymbolState, now time.Time) []symbolAge {
	type key struct{ exchange, symbol string }
	idx := map[key]int{}
	var out []symbolAge
	var last []int64 // oldest LastMessageTS per entry of out; 0 = none yet
	for _, st := range states {
		k := key{st.Exchange, st.Symbol}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, symbolAge{exchange: st.Exchange, symbol: st.Symbol})
			last = append(last, st.LastMessageTS)
			continue
		}
		if last[i] != 0 && (st.LastMessageTS == 0 || st.LastMessageTS < last[i]) {
			last[i] = st.LastMessageTS
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
