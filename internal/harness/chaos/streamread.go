package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// readStream delivers every message of the stream, in stream order, to fn
// (with the body's decode error, if any). It returns how many it read.
func readStream(ctx context.Context, nc *nats.Conn, stream string, fn func(*StreamMsg, error)) (int, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	total := int(info.State.Msgs)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	n, empty := 0, 0
	for n < total {
		batch, err := c.Fetch(min(1000, total-n), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return n, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			n++
			md, err := m.Metadata()
			if err != nil {
				return n, err
			}
			sm := StreamMsg{Seq: md.Sequence.Stream, Subject: m.Subject(), MsgID: m.Headers().Get(publisher.HeaderMsgID)}
			ev, derr := bridge.DecodeJSON(m.Data())
			sm.Event = ev
			if derr == nil {
				sm.Depth, derr = bodyDepth(m.Data(), &ev)
			}
			fn(&sm, derr)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return n, err
		}
		if got == 0 {
			if empty++; empty > 3 {
				return n, fmt.Errorf("read %d of %d messages, then nothing", n, total)
			}
			continue
		}
		empty = 0
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
	return n, nil
}

// bodyDepth reads the optional "depth" of a stored body: the depth of the
// Bybit orderbook stream whose update-id series a book event's ids belong
// to. It is read here, independently of bridge.DecodeJSON, so the soak's
// book replay does not depend on the library it cross-checks. The contract
// allows it on Bybit book events only, as 1, 50, 200 or 1000; anything
// else is an error.
func bodyDepth(body []byte, ev *bridge.Event) (int, error) {
	var w struct {
		Depth *json.RawMessage `json:"depth"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return 0, fmt.Errorf("chaos: reading depth: %w", err)
	}
	if w.Depth == nil {
		return 0, nil
	}
	var d int
	if err := json.Unmarshal(*w.Depth, &d); err != nil {
		return 0, fmt.Errorf("chaos: depth %s is not an integer", *w.Depth)
	}
	book := ev.Type == bridge.EventBookSnapshot || ev.Type == bridge.EventBookDelta
	if !book || (ev.Exchange != "bybit" && ev.Exchange != "bybit-linear") {
		return 0, fmt.Errorf("chaos: depth %d on a %s event of %s (the contract has it on Bybit book events only)", d, ev.Type, ev.Exchange)
	}
	switch d {
	case 1, 50, 200, 1000:
		return d, nil
	}
	return 0, fmt.Errorf("chaos: depth %d (want 1, 50, 200 or 1000)", d)
}
