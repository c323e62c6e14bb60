package publisher

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// heldJS stands in for nats.go's JetStream context: it records every
// attempt (the message and the msg id its header carried while
// PublishMsgAsync ran) and acknowledges nothing by itself.
type heldJS struct {
	jetstream.JetStream
	mu   sync.Mutex
	msgs []*nats.Msg
	ids  []string
}

func (f *heldJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, m)
	f.ids = append(f.ids, strings.Clone(m.Header.Get(HeaderMsgID)))
	return nil, nil
}

func (f *heldJS) attempt(i int) (*nats.Msg, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.msgs) {
		return nil, ""
	}
	return f.msgs[i], f.ids[i]
}

// TestMsgReuseAfterLateAck checks the pooled attempt messages: a timed-out
// attempt's message is not reused while nats.go may still report it, its
// late ack resolves nothing, and once reported it carries a later message
// whose ack then resolves that message only.
func TestMsgReuseAfterLateAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := newJetStream(Config{AckTimeout: 100 * time.Millisecond, BufferMessages: 16}.withDefaults(), nil)
		p.nc = new(nats.Conn) // never connected: retries wait for their backoff
		f := &heldJS{}
		p.js = f
		p.start()
		defer p.Close()
		ev0, ev1 := trade("binance", "BTCUSDT", 0), trade("binance", "BTCUSDT", 1)
		ack := &jetstream.PubAck{Stream: DefaultStream}

		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 1)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		m0, id := f.attempt(0)
		if m0 == nil || id != ev0.MsgID() {
			t.Fatalf("first attempt %v %q", m0, id)
		}
		time.Sleep(150 * time.Millisecond) // the ack deadline passes; the retry follows its backoff
		synctest.Wait()
		m1, id := f.attempt(1)
		if m1 == nil || m1 == m0 || id != ev0.MsgID() {
			t.Fatalf("retry: %v (first %v) %q", m1, m0, id)
		}

		p.onAck(nil, m0, ack) // the first attempt's late ack
		synctest.Wait()
		if st := p.Stats(); st.Acked != 0 || st.InFlight != 1 {
			t.Fatalf("a late ack resolved something: %+v", st)
		}
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 1, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		m2, id := f.attempt(2)
		if m2 != m0 || id != ev1.MsgID() {
			t.Fatalf("second message sent with %v (want the released %v) %q", m2, m0, id)
		}

		p.onAck(nil, m2, ack) // the second message's ack arrives first
		synctest.Wait()
		if st := p.Stats(); st.Acked != 1 || st.BufferedMsgs != 2 || st.InFlight != 1 {
			t.Fatalf("after the second message's ack: %+v", st)
		}
		p.onAck(nil, m1, ack)
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if st.Acked != 2 || st.Sent != 3 || st.Retries != 1 || st.Failures != 1 || st.Abandoned != 0 {
			t.Fatalf("final stats %+v", st)
		}
	})
}
