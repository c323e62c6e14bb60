package publisher

import (
	"testing"
	"time"
)

// BenchmarkEncode measures the per-event work Publish does before the
// message reaches nats.go: subject lookup, JSON body, msg id and timestamp.
func BenchmarkEncode(b *testing.B) {
	p := &JetStream{cfg: Config{}.withDefaults(), limiter: newLogLimiter(time.Second)}
	evs := benchEvents(1024)
	e := &entry{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.encode(&evs[i&1023], e)
	}
}
