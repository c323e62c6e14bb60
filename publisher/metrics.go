package publisher

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the counters of a JetStream publisher, a StateWriter and
// a SnapshotService as Prometheus metrics (prefix mdbridge_). Register it
// with a prometheus.Registry; it reads Stats() at scrape time.
type Collector struct {
	pub *JetStream
	sw  *StateWriter
	svc *SnapshotService

	pubFields   []metricField[Stats]
	latency     *prometheus.Desc
	stateFields []metricField[StateWriterStats]
	snapFields  []metricField[SnapshotServiceStats]
}

var _ prometheus.Collector = (*Collector)(nil)

// metricField is one metric read from a stats value S at scrape time.
type metricField[S any] struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	get  func(*S) float64
}

func metricDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("mdbridge_"+name, help, nil, nil)
}

func counterField[S any](name, help string, get func(*S) uint64) metricField[S] {
	return metricField[S]{metricDesc(name, help), prometheus.CounterValue, func(s *S) float64 { return float64(get(s)) }}
}

func gaugeField[S any](name, help string, get func(*S) float64) metricField[S] {
	return metricField[S]{metricDesc(name, help), prometheus.GaugeValue, get}
}

func describeFields[S any](ch chan<- *prometheus.Desc, fs []metricField[S]) {
	for _, f := range fs {
		ch <- f.desc
	}
}

func collectFields[S any](ch chan<- prometheus.Metric, s S, fs []metricField[S]) {
	for _, f := range fs {
		ch <- prometheus.MustNewConstMetric(f.desc, f.typ, f.get(&s))
	}
}

// NewCollector returns a collector for the given components; any may be nil.
func NewCollector(pub *JetStream, sw *StateWriter, svc *SnapshotService) *Collector {
	type (
		ps = Stats
		ws = StateWriterStats
		ss = SnapshotServiceStats
	)
	return &Collector{
		pub: pub, sw: sw, svc: svc,
		pubFields: []metricField[ps]{
			counterField("events_published_total", "Events accepted by Publish.", func(s *ps) uint64 { return s.Published }),
			counterField("publish_sent_total", "Publish attempts written to NATS, retries included.", func(s *ps) uint64 { return s.Sent }),
			counterField("events_acked_total", "Messages acknowledged by JetStream.", func(s *ps) uint64 { return s.Acked }),
			counterField("publish_retries_total", "Re-sends after a failed attempt.", func(s *ps) uint64 { return s.Retries }),
			counterField("publish_failures_total", "Failed attempts: disconnect, ack timeout, server error.", func(s *ps) uint64 { return s.Failures }),
			counterField("publish_conflicts_total", "Publishes answered 'duplicate message id is in process': another replica was storing the same event at that moment (retried; not failures).", func(s *ps) uint64 { return s.Conflicts }),
			counterField("jetstream_duplicates_total", "Acks reporting that JetStream already had the msg ID (removed by the duplicate window).", func(s *ps) uint64 { return s.Duplicates }),
			counterField("publish_dropped_total", "Messages dropped by the DropOldest policy.", func(s *ps) uint64 { return s.Dropped }),
			counterField("publish_rejected_total", "Messages dropped because they can never be stored.", func(s *ps) uint64 { return s.Rejected }),
			counterField("publish_abandoned_total", "Messages unacknowledged at Close, and events a cancelled Publish did not buffer.", func(s *ps) uint64 { return s.Abandoned }),
			counterField("publish_reordered_total", "Retried messages stored after a later message of the same subject.", func(s *ps) uint64 { return s.Reordered }),
			counterField("publish_already_stored_total", "Messages buffered longer than 3/4 of the duplicate window (a long outage) not re-sent: the stream held their msg ID already.", func(s *ps) uint64 { return s.AlreadyStored }),
			counterField("publish_unverified_total", "Messages buffered longer than 3/4 of the duplicate window re-sent without checking the stream (it could not be read): possible duplicates.", func(s *ps) uint64 { return s.Unverified }),
			gaugeField("publish_buffer_messages", "Messages held until acknowledged.", func(s *ps) float64 { return float64(s.BufferedMsgs) }),
			gaugeField("publish_buffer_bytes", "Bytes held until acknowledged.", func(s *ps) float64 { return float64(s.BufferedBytes) }),
			gaugeField("publish_pending_acks", "Publishes awaiting an ack.", func(s *ps) float64 { return float64(s.InFlight) }),
		},
		latency: metricDesc("publish_latency_seconds", "Publish-to-ack latency of acknowledged messages."),
		stateFields: []metricField[ws]{
			counterField("state_writes_total", "md_state KV writes.", func(s *ws) uint64 { return s.Writes }),
			counterField("state_write_failures_total", "Failed md_state KV writes (retried).", func(s *ws) uint64 { return s.Failures }),
			counterField("state_coalesced_total", "State updates merged into a queued one.", func(s *ws) uint64 { return s.Coalesced }),
			counterField("state_overflowed_total", "Queued state transitions dropped for lack of room.", func(s *ws) uint64 { return s.Overflowed }),
		},
		snapFields: []metricField[ss]{
			counterField("snapshot_requests_total", "Snapshot control requests received.", func(s *ss) uint64 { return s.Requests }),
			counterField("snapshot_served_total", "Snapshot requests answered with a snapshot.", func(s *ss) uint64 { return s.Served }),
			counterField("snapshot_failed_total", "Snapshot requests answered with an error other than busy.", func(s *ss) uint64 { return s.Failed }),
			counterField("snapshot_busy_total", "Snapshot requests refused because SnapshotMaxWaiters requests were waiting (the reply carries retry_after_ms).", func(s *ss) uint64 { return s.Busy }),
			counterField("snapshot_fetches_total", "Snapshots fetched from the exchange.", func(s *ss) uint64 { return s.Fetches }),
			counterField("snapshot_coalesced_total", "Snapshot requests that joined a queued fetch.", func(s *ss) uint64 { return s.Coalesced }),
			counterField("snapshot_expired_total", "Snapshot requests dropped from the queue because their timeout_ms had passed (the requester gave up).", func(s *ss) uint64 { return s.Expired }),
			gaugeField("snapshot_queued_fetches", "Snapshot fetches waiting in the service's queue for a fetch slot and the rate limit.", func(s *ss) float64 { return float64(s.Queued) }),
		},
	}
}

// Describe sends every metric description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.pubFields)
	describeFields(ch, c.stateFields)
	describeFields(ch, c.snapFields)
	ch <- c.latency
}

// Collect reads the components' stats.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.pub != nil {
		s := c.pub.Stats()
		collectFields(ch, s, c.pubFields)
		buckets := make(map[float64]uint64, len(LatencyBounds))
		var cum uint64
		for i, b := range LatencyBounds {
			cum += s.Latency.Counts[i]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, s.Latency.Count, s.Latency.Sum.Seconds(), buckets)
	}
	if c.sw != nil {
		collectFields(ch, c.sw.Stats(), c.stateFields)
	}
	if c.svc != nil {
		collectFields(ch, c.svc.Stats(), c.snapFields)
	}
}
