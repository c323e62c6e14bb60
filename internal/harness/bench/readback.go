package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
)

// readBack reads the stream from the start and pairs each stored message's
// sequence with its creation time (header Md-Exchange-Ts): the latency of
// sequence s is acks[s] minus that time. With stages it also reads the
// bodies for the bridge's receive time (recv_ts) and splits each latency
// into creation -> receive and receive -> ack. It returns the latencies
// (ns), the stages (empty without), the count of stored messages without a
// recorded ack, and the body size of the first message. With writes
// (socket write times by sequence) the stages also hold creation -> write.
func readBack(ctx context.Context, js jetstream.JetStream, stream string, acks, writes []int64, stages bool, progress func(uint64)) (lat []int64, st *stageSamples, unmatched, bodyBytes int, err error) {
	st = &stageSamples{}
	str, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, st, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return nil, st, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, st, 0, 0, nil
	}
	if m, err := str.GetMsg(ctx, info.State.FirstSeq); err == nil {
		bodyBytes = len(m.Data)
	}
	cons, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: !stages})
	if err != nil {
		return nil, st, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, st, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	defer it.Stop()
	lat = make([]int64, 0, info.State.Msgs)
	if stages {
		st.toRecv = make([]int64, 0, info.State.Msgs)
		st.toAck = make([]int64, 0, info.State.Msgs)
	}
	if writes != nil {
		st.toWire = make([]int64, 0, info.State.Msgs)
	}
	var seen uint64
	idle := time.AfterFunc(30*time.Second, it.Stop)
	defer idle.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return lat, st, unmatched, bodyBytes, fmt.Errorf("%w: reading back %s after %d of %d messages: %w", ErrIncomplete, stream, seen, info.State.Msgs, err)
		}
		idle.Reset(30 * time.Second)
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		seq := md.Sequence.Stream
		seen++
		created, err := strconv.ParseInt(m.Headers().Get(publisher.HeaderExchangeTS), 10, 64)
		switch {
		case err != nil || seq >= uint64(len(acks)) || acks[seq] == 0:
			unmatched++
		default:
			lat = append(lat, acks[seq]-created)
			var wrote int64 // 0: no write time
			if seq < uint64(len(writes)) {
				wrote = writes[seq]
			}
			if wrote != 0 {
				st.toWire = append(st.toWire, wrote-created)
			}
			if stages {
				if recv, ok := recvTS(m.Data()); ok {
					st.toRecv = append(st.toRecv, recv-created)
					st.toAck = append(st.toAck, acks[seq]-recv)
					if wrote != 0 {
						st.recvToWire = append(st.recvToWire, wrote-recv)
					}
				}
			}
		}
		if progress != nil && seen%65536 == 0 {
			progress(seen)
		}
		if seq >= last {
			return lat, st, unmatched, bodyBytes, ctx.Err()
		}
	}
}

// stageSamples are the parts of the latencies (ns).
type stageSamples struct {
	toRecv []int64 // creation (simulator trade time) -> bridge receive (recv_ts)
	toAck  []int64 // bridge receive -> JetStream ack
	toWire []int64 // creation -> written to the NATS socket
	// recvToWire: bridge receive -> written to the NATS socket
	recvToWire []int64
}

var recvKey = []byte(`"recv_ts":`)

// recvTS extracts the recv_ts field of a wire body.
func recvTS(body []byte) (int64, bool) {
	i := bytes.Index(body, recvKey)
	if i < 0 {
		return 0, false
	}
	var n int64
	j := i + len(recvKey)
	for ; j < len(body) && body[j] >= '0' && body[j] <= '9'; j++ {
		n = n*10 + int64(body[j]-'0')
	}
	return n, j > i+len(recvKey)
}
