package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
)

// readBack reads the stream's headers from the start and pairs each stored
// message's sequence with its creation time (header Md-Exchange-Ts): the
// latency of sequence s is acks[s] minus that time. It returns the
// latencies (ns), the count of stored messages without a recorded ack, and
// the body size of the first message.
func readBack(ctx context.Context, js jetstream.JetStream, stream string, acks []int64, progress func(uint64)) (lat []int64, unmatched, bodyBytes int, err error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, 0, 0, nil
	}
	if m, err := st.GetMsg(ctx, info.State.FirstSeq); err == nil {
		bodyBytes = len(m.Data)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: reading back %s: %w", ErrSetup, stream, err)
	}
	defer it.Stop()
	lat = make([]int64, 0, info.State.Msgs)
	var seen uint64
	idle := time.AfterFunc(30*time.Second, it.Stop)
	defer idle.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return lat, unmatched, bodyBytes, fmt.Errorf("%w: reading back %s after %d of %d messages: %w", ErrIncomplete, stream, seen, info.State.Msgs, err)
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
		}
		if progress != nil && seen%65536 == 0 {
			progress(seen)
		}
		if seq >= last {
			return lat, unmatched, bodyBytes, ctx.Err()
		}
	}
}
