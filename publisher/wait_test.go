package publisher

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/bridge"
)

func bookSnapshot(exchange, symbol string, lastID int64) bridge.Event {
	return bridge.Event{
		Type: bridge.EventBookSnapshot, Exchange: exchange, Symbol: symbol, TS: 7, RecvTS: 8, LastID: lastID,
		Bids: []bridge.Level{{"100.5", "2"}}, Asks: []bridge.Level{{"101", "1.5"}},
	}
}

// TestPublishWait: a waited event is written after the data published
// before it, with the same headers, and its caller gets the ack's stream,
// sequence and duplicate flag; a rejected event, a closed publisher and an
// abandoned event return their errors.
func TestPublishWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, f, _ := heldPublisher(t, Config{BufferMessages: 16})
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 2)); err != nil {
			t.Fatal(err)
		}
		snap := bookSnapshot("binance", "BTCUSDT", 42)
		type result struct {
			ack Ack
			err error
		}
		done := make(chan result, 1)
		go func() {
			a, err := p.PublishWait(ctx, snap)
			done <- result{a, err}
		}()
		synctest.Wait()
		if f.attempts() != 3 {
			t.Fatalf("%d attempts, want 3", f.attempts())
		}
		ev0, ev1 := trade("binance", "BTCUSDT", 0), trade("binance", "BTCUSDT", 1)
		for i, want := range []string{ev0.MsgID(), ev1.MsgID(), snap.MsgID()} {
			if _, id := f.attempt(i); id != want {
				t.Fatalf("attempt %d is %q, want %q", i, id, want)
			}
		}
		r, _ := f.attempt(2)
		p.replies.ch <- &nats.Msg{Subject: r, Data: []byte(`{"stream":"MD","seq":5,"duplicate": true}`)}
		synctest.Wait()
		select {
		case res := <-done:
			if res.err != nil || res.ack != (Ack{Stream: "MD", Sequence: 5, Duplicate: true}) {
				t.Fatalf("PublishWait = %+v, %v", res.ack, res.err)
			}
		default:
			t.Fatal("PublishWait did not return after its ack")
		}
		if st := p.Stats(); st.Published != 3 || st.Acked != 1 || st.Duplicates != 1 {
			t.Fatalf("stats %+v", st)
		}

		if _, err := p.PublishWait(ctx, bookSnapshot("bin.ance", "BTCUSDT", 1)); !errors.Is(err, ErrRejected) {
			t.Fatalf("invalid exchange: %v, want ErrRejected", err)
		}
		go func() {
			a, err := p.PublishWait(ctx, bookSnapshot("binance", "BTCUSDT", 43))
			done <- result{a, err}
		}()
		synctest.Wait()
		p.Close()
		if res := <-done; !errors.Is(res.err, ErrClosed) {
			t.Fatalf("abandoned by Close: %v, want ErrClosed", res.err)
		}
		if _, err := p.PublishWait(ctx, snap); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v, want ErrClosed", err)
		}
	})
}

// TestPublishWaitDropped: with DropOldest, a waited event pushed out of the
// full buffer returns ErrDropped.
func TestPublishWaitDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, _, _ := heldPublisher(t, Config{BufferMessages: 2, MaxInFlight: 1, DropPolicy: DropOldest})
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 1)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the first trade is in flight; the snapshot waits behind it
		errc := make(chan error, 1)
		go func() {
			_, err := p.PublishWait(ctx, bookSnapshot("binance", "BTCUSDT", 42))
			errc <- err
		}()
		synctest.Wait()
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 1, 2)); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrDropped) {
			t.Fatalf("PublishWait = %v, want ErrDropped", err)
		}
	})
}
