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

	pubCounters map[string]*prometheus.Desc
	pubGauges   map[string]*prometheus.Desc
	latency     *prometheus.Desc
	state       map[string]*prometheus.Desc
	snapshot    map[string]*prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector for the given components; any may be nil.
func NewCollector(pub *JetStream, sw *StateWriter, svc *SnapshotService) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("mdbridge_"+name, help, nil, nil)
	}
	return &Collector{
		pub: pub, sw: sw, svc: svc,
		pubCounters: map[string]*prometheus.Desc{
			"published":  d("events_published_total", "Events accepted by Publish."),
			"sent":       d("publish_sent_total", "Publish attempts written to NATS, retries included."),
			"acked":      d("events_acked_total", "Messages acknowledged by JetStream."),
			"retries":    d("publish_retries_total", "Re-sends after a failed attempt."),
			"failures":   d("publish_failures_total", "Failed attempts: disconnect, ack timeout, server error."),
			"duplicates": d("jetstream_duplicates_total", "Acks reporting that JetStream already had the msg ID (removed by the duplicate window)."),
			"dropped":    d("publish_dropped_total", "Messages dropped by the DropOldest policy."),
			"rejected":   d("publish_rejected_total", "Messages dropped because they can never be stored."),
			"abandoned":  d("publish_abandoned_total", "Messages unacknowledged at Close."),
			"reordered":  d("publish_reordered_total", "Retried messages stored after a later message of the same subject."),
		},
		pubGauges: map[string]*prometheus.Desc{
			"buffered_msgs":  d("publish_buffer_messages", "Messages held until acknowledged."),
			"buffered_bytes": d("publish_buffer_bytes", "Bytes held until acknowledged."),
			"in_flight":      d("publish_pending_acks", "Publishes awaiting an ack."),
		},
		latency: d("publish_latency_seconds", "Publish-to-ack latency of acknowledged messages."),
		state: map[string]*prometheus.Desc{
			"writes":     d("state_writes_total", "md_state KV writes."),
			"failures":   d("state_write_failures_total", "Failed md_state KV writes (retried)."),
			"coalesced":  d("state_coalesced_total", "State updates merged into a queued one."),
			"overflowed": d("state_overflowed_total", "Queued state transitions dropped for lack of room."),
		},
		snapshot: map[string]*prometheus.Desc{
			"requests":  d("snapshot_requests_total", "Snapshot control requests received."),
			"served":    d("snapshot_served_total", "Snapshot requests answered with a snapshot."),
			"failed":    d("snapshot_failed_total", "Snapshot requests answered with an error other than busy."),
			"busy":      d("snapshot_busy_total", "Snapshot requests refused at the concurrency or rate limit."),
			"fetches":   d("snapshot_fetches_total", "Snapshots fetched from the exchange."),
			"coalesced": d("snapshot_coalesced_total", "Snapshot requests that joined a queued fetch."),
		},
	}
}

// Describe sends every metric description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range []map[string]*prometheus.Desc{c.pubCounters, c.pubGauges, c.state, c.snapshot} {
		for _, d := range m {
			ch <- d
		}
	}
	ch <- c.latency
}

// Collect reads the components' stats.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	if c.pub != nil {
		s := c.pub.Stats()
		for k, v := range map[string]uint64{
			"published": s.Published, "sent": s.Sent, "acked": s.Acked, "retries": s.Retries,
			"failures": s.Failures, "duplicates": s.Duplicates, "dropped": s.Dropped,
			"rejected": s.Rejected, "abandoned": s.Abandoned, "reordered": s.Reordered,
		} {
			counter(c.pubCounters[k], v)
		}
		for k, v := range map[string]float64{
			"buffered_msgs": float64(s.BufferedMsgs), "buffered_bytes": float64(s.BufferedBytes), "in_flight": float64(s.InFlight),
		} {
			ch <- prometheus.MustNewConstMetric(c.pubGauges[k], prometheus.GaugeValue, v)
		}
		buckets := make(map[float64]uint64, len(LatencyBounds))
		var cum uint64
		for i, b := range LatencyBounds {
			cum += s.Latency.Counts[i]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, s.Latency.Count, s.Latency.Sum.Seconds(), buckets)
	}
	if c.sw != nil {
		s := c.sw.Stats()
		counter(c.state["writes"], s.Writes)
		counter(c.state["failures"], s.Failures)
		counter(c.state["coalesced"], s.Coalesced)
		counter(c.state["overflowed"], s.Overflowed)
	}
	if c.svc != nil {
		s := c.svc.Stats()
		counter(c.snapshot["requests"], s.Requests)
		counter(c.snapshot["served"], s.Served)
		counter(c.snapshot["failed"], s.Failed)
		counter(c.snapshot["busy"], s.Busy)
		counter(c.snapshot["fetches"], s.Fetches)
		counter(c.snapshot["coalesced"], s.Coalesced)
	}
}
