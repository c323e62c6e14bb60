package publisher

import (
	"context"
	"fmt"
	"testing"
	"unsafe"

	"github.com/nats-io/nats.go"
)

// ackingConn stands in for the NATS connection and the server: publish
// answers the attempt through a goroutine that forwards the reply to the
// publisher's reply channel, as nats.go's read loop does. Its reply
// messages and their subjects are recycled from a ring four times the
// in-flight window (a slot comes back only after its reply was applied), so
// it allocates nothing per message.
type ackingConn struct {
	out  chan *nats.Msg
	ring []replySlot
	next int
}

type replySlot struct {
	msg nats.Msg
	buf []byte
}

var benchAck = []byte(`{"stream":"MD","seq":1}`)

func (f *ackingConn) publish(m *nats.Msg) error {
	if len(m.Header[HeaderMsgID]) != 1 || m.Header[HeaderMsgID][0] == "" || m.Reply == "" {
		return nats.ErrInvalidMsg
	}
	s := &f.ring[f.next%len(f.ring)]
	f.next++
	s.buf = append(s.buf[:0], m.Reply...) // m.Reply is valid only during the call
	s.msg.Subject, s.msg.Data = unsafe.String(unsafe.SliceData(s.buf), len(s.buf)), benchAck
	f.out <- &s.msg
	return nil
}

// BenchmarkPublishPath measures what the publisher itself costs per event,
// without nats.go and the server: Publish (encode and queue), the pump
// (window, send, ack bookkeeping) and the ack callback, in the steady state
// of a 16 384-message buffer. allocs/op and B/op are per event; the
// publisher's target is zero. The end-to-end cost with nats.go and an
// embedded server is BenchmarkPublisher's.
func BenchmarkPublishPath(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			p := newJetStream(Config{BufferMessages: 16384}.withDefaults(), nil)
			f := &ackingConn{out: make(chan *nats.Msg, 1024), ring: make([]replySlot, 4*p.cfg.MaxInFlight)}
			p.link.pub = f.publish
			acked := make(chan struct{})
			go func() {
				defer close(acked)
				for m := range f.out {
					p.replies.ch <- m
				}
			}()
			p.start()
			evs := benchEvents(4096)
			publish := func(n int) {
				for i := 0; i < n; {
					j := i % len(evs)
					k := min(batch, n-i, len(evs)-j)
					if err := p.Publish(ctx, evs[j:j+k]); err != nil {
						b.Fatal(err)
					}
					i += k
				}
			}
			publish(4 * p.cfg.BufferMessages) // warm up: free lists, maps, ring
			b.ReportAllocs()
			b.ResetTimer()
			publish(b.N)
			if err := p.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			close(f.out)
			<-acked
			if st := p.Stats(); st.Acked != st.Published || st.Published != uint64(4*p.cfg.BufferMessages+b.N) {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
