package publisher

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackingJS stands in for nats.go's JetStream context: PublishMsgAsync hands
// the message to a goroutine that acknowledges it through the publisher's
// ack callback, as nats.go's reply handler does. Only PublishMsgAsync is
// implemented.
type ackingJS struct {
	jetstream.JetStream
	msgs chan *nats.Msg
}

func (f *ackingJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if len(m.Header[HeaderMsgID]) != 1 || m.Header[HeaderMsgID][0] == "" {
		return nil, nats.ErrInvalidMsg
	}
	f.msgs <- m
	return nil, nil
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
			f := &ackingJS{msgs: make(chan *nats.Msg, 1024)}
			p.js = f
			acked := make(chan struct{})
			go func() {
				defer close(acked)
				ack := &jetstream.PubAck{Stream: DefaultStream}
				for m := range f.msgs {
					p.onAck(nil, m, ack)
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
			close(f.msgs)
			<-acked
			if st := p.Stats(); st.Acked != st.Published || st.Published != uint64(4*p.cfg.BufferMessages+b.N) {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
