package resilience

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkDedupRecord measures the per-message dedup cost in steady state
// (window full, every record evicts the oldest): IsDuplicate + Record of a
// fresh int64 trade id, as the seed's handler does, sharing one time.Now.
func BenchmarkDedupRecord(b *testing.B) {
	d, _ := NewMessageDeduplicator[int64](DefaultDedupConfig())
	now := time.Now()
	id := int64(0)
	for range 10 * DefaultDedupWindowSize {
		id++
		d.RecordAt(id, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		id++
		if !d.IsDuplicateAt(id, now) {
			d.RecordAt(id, now)
		}
	}
}

// BenchmarkDedupRecordString is BenchmarkDedupRecord with string ids
// (pre-built: the caller already holds the id string).
func BenchmarkDedupRecordString(b *testing.B) {
	d, _ := NewMessageDeduplicator[string](DefaultDedupConfig())
	ids := make([]string, 4*DefaultDedupWindowSize)
	for i := range ids {
		ids[i] = "trade-" + strconv.Itoa(i)
	}
	now := time.Now()
	for _, id := range ids {
		d.RecordAt(id, now)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.RecordAt(ids[i], now) // ring of 4 windows: always evicted before it comes back, so always new
		i++
		if i == len(ids) {
			i = 0
		}
	}
}

// BenchmarkDedupRecordNow includes the time.Now of Record.
func BenchmarkDedupRecordNow(b *testing.B) {
	d, _ := NewMessageDeduplicator[int64](DefaultDedupConfig())
	id := int64(0)
	for range 10 * DefaultDedupWindowSize {
		id++
		d.Record(id)
	}
	b.ReportAllocs()
	for b.Loop() {
		id++
		d.Record(id)
	}
}

// BenchmarkSequenceCheck measures the in-order path.
func BenchmarkSequenceCheck(b *testing.B) {
	tr := NewSequenceTracker()
	seq := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		if !tr.Check(seq) {
			b.Fatal("not in order")
		}
	}
}

// BenchmarkSequenceObserveRange measures Binance-style U..u ranges.
func BenchmarkSequenceObserveRange(b *testing.B) {
	tr := NewSequenceTracker()
	u := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		if tr.ObserveRange(u+1, u+5) > SeqInOrder {
			b.Fatal("not in order")
		}
		u += 5
	}
}

// BenchmarkHeartbeatRecord measures the per-frame liveness update.
func BenchmarkHeartbeatRecord(b *testing.B) {
	m, _ := NewHeartbeatMonitor(HeartbeatConfig{})
	b.ReportAllocs()
	for b.Loop() {
		m.RecordHeartbeat()
	}
}

// BenchmarkHeartbeatRecordAt is the variant sharing the frame's receive time.
func BenchmarkHeartbeatRecordAt(b *testing.B) {
	m, _ := NewHeartbeatMonitor(HeartbeatConfig{})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.RecordHeartbeatAt(now)
	}
}

// BenchmarkHeartbeatRecordParallel shows the atomic store under contention.
func BenchmarkHeartbeatRecordParallel(b *testing.B) {
	m, _ := NewHeartbeatMonitor(HeartbeatConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RecordHeartbeat()
		}
	})
}

// BenchmarkTimeSyncServerNow measures the lock-free reader.
func BenchmarkTimeSyncServerNow(b *testing.B) {
	m, _ := NewTimeSyncManager(TimeSyncConfig{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.ServerNow()
	}
}
