package publisher

import (
	"sync/atomic"
	"time"
)

// Stats are the JetStream publisher's counters since it started. Counters
// only grow; Buffered*, InFlight are gauges.
type Stats struct {
	Published  uint64 // events accepted by Publish
	Sent       uint64 // publish attempts written to NATS (first sends and retries)
	Acked      uint64 // messages acknowledged by JetStream (stored or duplicate)
	Retries    uint64 // re-sends of a message after a failed attempt
	Failures   uint64 // failed attempts: disconnect, ack timeout, server error
	Duplicates uint64 // acks with PubAck.Duplicate: JetStream already had the msg ID
	// Conflicts are replies "duplicate message id is in process" (409,
	// err_code 10158): another replica was storing the same event at that
	// moment on a clustered stream. Retried, not counted in Failures.
	Conflicts uint64
	Dropped   uint64 // messages discarded by DropOldest because the buffer was full
	Rejected  uint64 // messages dropped because they can never be stored (too large, bad subject, repeated server rejection)
	Abandoned uint64 // messages still unacknowledged when Close ran, and events a Publish cancelled by its context did not buffer
	Reordered uint64 // retried messages stored after a later message of the same subject (see package doc)
	// AlreadyStored counts messages not sent because the stream held their
	// msg ID already, found by the check of messages buffered longer than
	// 3/4 of the duplicate window (a long outage); Unverified those sent
	// without that check because the stream could not be read (the stream
	// may hold them twice).
	AlreadyStored uint64
	Unverified    uint64

	BufferedMsgs  int   // messages held until acknowledged
	BufferedBytes int64 // their bytes (body, subject and headers)
	InFlight      int   // publishes awaiting an ack

	// Latency is the distribution of Publish-to-ack times of acknowledged
	// messages.
	Latency LatencySnapshot
}

// LatencyBounds are the upper bounds of the latency histogram's buckets; a
// last bucket counts everything slower.
var LatencyBounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencySnapshot is a copy of the latency histogram: Counts[i] counts the
// observations <= LatencyBounds[i] (and > the previous bound); the last
// element counts those above every bound. Counts are not cumulative.
type LatencySnapshot struct {
	Counts [len(LatencyBounds) + 1]uint64
	Count  uint64
	Sum    time.Duration
}

// histogram is a lock-free fixed-bucket latency histogram.
type histogram struct {
	counts [len(LatencyBounds) + 1]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Count = h.count.Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// counters are the atomic counters behind Stats.
type counters struct {
	published, sent, acked, retries, failures, duplicates atomic.Uint64
	conflicts                                             atomic.Uint64
	dropped, rejected, abandoned, reordered               atomic.Uint64
	alreadyStored, unverified                             atomic.Uint64
}
