package publisher

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

func trades(exchange, symbol string, from, to int) []bridge.Event {
	out := make([]bridge.Event, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, trade(exchange, symbol, i))
	}
	return out
}

func shutdown(t *testing.T, p *JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (stats %+v)", err, p.Stats())
	}
}

func TestPublishWireFormat(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	p := newPublisher(t, nc, Config{})
	delta := bridge.Event{
		Type: bridge.EventBookDelta, Exchange: "bybit-linear", Symbol: "ETHUSDT", TS: 42, RecvTS: 43,
		FirstID: 10, LastID: 12, Bids: []bridge.Level{{"1.5", "2"}}, Asks: []bridge.Level{{"1.6", "0"}},
	}
	events := []bridge.Event{trade("binance", "BTCUSDT", 7), delta}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	events[0].Price = "changed after Publish returned" // the publisher must not retain the slice
	shutdown(t, p)

	js, _ := nc.JetStream()
	for _, tc := range []struct {
		subject, msgID, typ, ts string
		want                    bridge.Event
	}{
		{"md.binance.BTCUSDT", "binance:BTCUSDT:trade:7", "trade", strconv.FormatInt(trade("", "", 7).TS, 10), trade("binance", "BTCUSDT", 7)},
		{"md.bybit-linear.ETHUSDT", "bybit-linear:ETHUSDT:book.delta:12", "book.delta", "42", delta},
	} {
		m, err := js.GetLastMsg("MD", tc.subject)
		if err != nil {
			t.Fatalf("%s: %v", tc.subject, err)
		}
		for h, want := range map[string]string{HeaderMsgID: tc.msgID, HeaderType: tc.typ, HeaderExchangeTS: tc.ts} {
			if got := m.Header.Get(h); got != want {
				t.Errorf("%s: header %s = %q, want %q", tc.subject, h, got, want)
			}
		}
		if want := string(tc.want.AppendJSON(nil)); string(m.Data) != want {
			t.Errorf("%s: body\n got %s\nwant %s", tc.subject, m.Data, want)
		}
	}
}

func TestDuplicatesStoredOnce(t *testing.T) {
	srv := startServer(t, nil)
	ctx := context.Background()

	t.Run("same publisher twice", func(t *testing.T) {
		nc := connect(t, srv.ClientURL())
		p := newPublisher(t, nc, Config{Stream: "DUP1", SubjectPrefix: "dup1"})
		evs := trades("binance", "BTCUSDT", 0, 500)
		for range 2 {
			if err := p.Publish(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		shutdown(t, p)
		st := p.Stats()
		if st.Acked != 1000 || st.Duplicates != 500 {
			t.Errorf("acked %d duplicates %d, want 1000 and 500", st.Acked, st.Duplicates)
		}
		if msgs := readStream(t, nc, "DUP1"); len(msgs) != 500 {
			t.Errorf("stream holds %d messages, want 500", len(msgs))
		}
	})

	t.Run("two publishers concurrently", func(t *testing.T) {
		// Two replicas (separate connections) publish the same events at once.
		cfg := Config{Stream: "DUP2", SubjectPrefix: "dup2"}
		pubs := []*JetStream{
			newPublisher(t, connect(t, srv.ClientURL()), cfg),
			newPublisher(t, connect(t, srv.ClientURL()), cfg),
		}
		var wg sync.WaitGroup
		for _, p := range pubs {
			wg.Go(func() {
				for i := 0; i < 2000; i += 100 {
					if err := p.Publish(ctx, trades("bybit", "ETHUSDT", i, i+100)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		var dups uint64
		for _, p := range pubs {
			shutdown(t, p)
			t.Logf("stats %+v", p.Stats())
			dups += p.Stats().Duplicates
		}
		if dups != 2000 {
			t.Errorf("duplicates reported %d, want 2000 (one per event)", dups)
		}
		msgs := readStream(t, connect(t, srv.ClientURL()), "DUP2")
		if len(msgs) != 2000 {
			t.Fatalf("stream holds %d messages, want 2000", len(msgs))
		}
		seen := map[string]bool{}
		for _, m := range msgs {
			if seen[m.msgID] {
				t.Fatalf("duplicate %s", m.msgID)
			}
			seen[m.msgID] = true
		}
	})
}

// outage returns a server, its port and store, and a function that stops it
// and one that restarts it on the same port and store.
type outage struct {
	t    *testing.T
	dir  string
	port int
	srv  *Embedded
	conf func(*server.Options)
}

func newOutage(t *testing.T, conf func(*server.Options)) *outage {
	o := &outage{t: t, dir: t.TempDir(), conf: conf}
	o.srv = startServerAt(t, -1, o.dir, conf)
	o.port = o.srv.Port()
	return o
}

func (o *outage) stop() {
	if err := o.srv.Shutdown(context.Background()); err != nil {
		o.t.Fatal(err)
	}
}

func (o *outage) start() { o.srv = startServerAt(o.t, o.port, o.dir, o.conf) }

// waitDisconnected waits until nc notices the server is gone.
func waitDisconnected(t *testing.T, nc *nats.Conn) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a failure bound: generous for a loaded machine
	for nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("connection still up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBufferFullBlock(t *testing.T) {
	o := newOutage(t, nil)
	nc := connect(t, o.srv.ClientURL())
	p := newPublisher(t, nc, Config{BufferMessages: 100, MaxInFlight: 10})
	o.stop()
	waitDisconnected(t, nc)

	ctx := context.Background()
	if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 100)); err != nil {
		t.Fatalf("filling the buffer: %v", err)
	}
	// The buffer is full: Publish blocks until its context ends.
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := p.Publish(tctx, trades("binance", "BTCUSDT", 100, 101))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full buffer = %v, want deadline exceeded", err)
	}
	if st := p.Stats(); st.Published != 100 || st.BufferedMsgs != 100 || st.Dropped != 0 {
		t.Fatalf("stats %+v: want 100 published, 100 buffered, 0 dropped", st)
	}

	// A blocked Publish completes once NATS is back and acks free room.
	done := make(chan error, 1)
	go func() { done <- p.Publish(ctx, trades("binance", "BTCUSDT", 100, 150)) }()
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while the buffer was full", err)
	case <-time.After(50 * time.Millisecond):
	}
	o.start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Publish still blocked after NATS came back: %+v", p.Stats())
	}
	shutdown(t, p)
	st := p.Stats()
	if st.Published != 150 || st.Acked != 150 || st.Dropped != 0 || st.BufferedMsgs != 0 {
		t.Errorf("stats %+v: want 150 published and acked, none dropped or buffered", st)
	}
	msgs := readStream(t, connect(t, o.srv.ClientURL()), "MD")
	if len(msgs) != 150 {
		t.Fatalf("stream holds %d, want 150", len(msgs))
	}
	for i, m := range msgs {
		if m.ev.Seq != int64(i) {
			t.Fatalf("position %d holds trade %d", i, m.ev.Seq)
		}
	}
}

func TestBufferFullDropOldest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		from        int // first trade id
		publish     int
		wantDropped int
	}{
		{"message limit", Config{BufferMessages: 100, MaxInFlight: 10, DropPolicy: DropOldest}, 0, 150, 50},
		// Trades 100..199 all cost the same; the byte limit holds 40 of them.
		{"byte limit", Config{BufferBytes: 40 * tradeSize(t, 100, 200), MaxInFlight: 10, DropPolicy: DropOldest}, 100, 100, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutage(t, nil)
			nc := connect(t, o.srv.ClientURL())
			log := &syncBuffer{}
			p, err := NewJetStream(context.Background(), nc, tc.cfg, slogTo(log))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			o.stop()
			waitDisconnected(t, nc)
			tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Publish(tctx, trades("binance", "BTCUSDT", tc.from, tc.from+tc.publish)); err != nil {
				t.Fatalf("Publish with DropOldest must not block: %v", err)
			}
			keep := tc.publish - tc.wantDropped
			st := p.Stats()
			if st.Dropped != uint64(tc.wantDropped) || st.BufferedMsgs != keep || st.Published != uint64(tc.publish) {
				t.Fatalf("stats %+v: want %d dropped, %d buffered", st, tc.wantDropped, keep)
			}
			if got := p.SymbolDropped("binance", "BTCUSDT"); got != uint64(tc.wantDropped) {
				t.Fatalf("SymbolDropped = %d, want the %d dropped (md_state's publish_dropped)", got, tc.wantDropped)
			}
			if !strings.Contains(log.String(), "dropping oldest") {
				t.Errorf("drops not logged: %s", log.String())
			}
			if n := strings.Count(log.String(), "dropping oldest"); n != 1 {
				t.Errorf("drop logged %d times, want once (rate-limited)", n)
			}
			o.start()
			shutdown(t, p)
			msgs := readStream(t, connect(t, o.srv.ClientURL()), "MD")
			if len(msgs) != keep {
				t.Fatalf("stream holds %d, want %d", len(msgs), keep)
			}
			// The oldest queued messages were dropped. Messages the pump was
			// trying to write at that instant (at most MaxInFlight, failing at
			// once during the outage) are not droppable, so which ones survive
			// varies; the count, the order and the newest message do not.
			for i := 1; i < len(msgs); i++ {
				if msgs[i].ev.Seq <= msgs[i-1].ev.Seq {
					t.Fatalf("out of order: %d after %d", msgs[i].ev.Seq, msgs[i-1].ev.Seq)
				}
			}
			if last := msgs[len(msgs)-1].ev.Seq; last != int64(tc.from+tc.publish-1) {
				t.Errorf("newest message %d missing (last is %d)", tc.from+tc.publish-1, last)
			}
		})
	}
}

// tradeSize is the buffer cost of one test trade with an id in [from, to).
func tradeSize(t *testing.T, from, to int) int64 {
	p := &JetStream{cfg: Config{SubjectPrefix: "md"}.withDefaults(), limiter: newLogLimiter(time.Second)}
	ev := trade("binance", "BTCUSDT", from)
	e := p.encode(&ev, &entry{})
	if e == nil {
		t.Fatal("encode failed")
	}
	for i := from + 1; i < to; i++ {
		ev := trade("binance", "BTCUSDT", i)
		if p.encode(&ev, &entry{}).size != e.size {
			t.Fatal("test trades differ in size")
		}
	}
	return e.size
}

func TestShutdownUnflushedAndClosed(t *testing.T) {
	o := newOutage(t, nil)
	nc := connect(t, o.srv.ClientURL())
	p := newPublisher(t, nc, Config{})
	o.stop()
	waitDisconnected(t, nc)
	ctx := context.Background()
	if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 10)); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := p.Shutdown(sctx)
	if !errors.Is(err, ErrUnflushed) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "10 messages") {
		t.Fatalf("Shutdown = %v, want ErrUnflushed with 10 messages", err)
	}
	if st := p.Stats(); st.Abandoned != 10 {
		t.Errorf("abandoned %d, want 10", st.Abandoned)
	}
	if err := p.Publish(ctx, trades("binance", "BTCUSDT", 10, 11)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Shutdown = %v, want ErrClosed", err)
	}
}

func TestBlockedPublishReturnsOnClose(t *testing.T) {
	o := newOutage(t, nil)
	nc := connect(t, o.srv.ClientURL())
	p := newPublisher(t, nc, Config{BufferMessages: 5, MaxInFlight: 5})
	o.stop()
	waitDisconnected(t, nc)
	done := make(chan error, 1)
	go func() { done <- p.Publish(context.Background(), trades("binance", "BTCUSDT", 0, 10)) }()
	// The buffer is full: Publish is blocked on the sixth event.
	deadline := time.Now().Add(60 * time.Second) // a failure bound: generous for a loaded machine
	for p.Stats().BufferedMsgs < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("buffer never filled: %+v", p.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Publish after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Publish did not return on Close")
	}
}

func TestRejectedMessages(t *testing.T) {
	srv := startServer(t, func(o *server.Options) { o.MaxPayload = 2048 })
	nc := connect(t, srv.ClientURL())
	p := newPublisher(t, nc, Config{})
	huge := bridge.Event{Type: bridge.EventBookSnapshot, Exchange: "binance", Symbol: "BTCUSDT", LastID: 5}
	for i := range 200 {
		huge.Bids = append(huge.Bids, bridge.Level{strconv.Itoa(50000 + i), "1"})
	}
	bad := trade("binance", "BTC.USDT", 1) // would inject a subject token
	noID := trade("binance", "BTCUSDT", 2)
	noID.ID = "" // its msg ID would collide with every other id-less trade
	unknown := bridge.Event{Exchange: "binance", Symbol: "BTCUSDT"}
	evs := []bridge.Event{trade("binance", "BTCUSDT", 0), huge, bad, noID, unknown, trade("binance", "BTCUSDT", 1)}
	if err := p.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	st := p.Stats()
	if st.Rejected != 4 || st.Acked != 2 {
		t.Errorf("stats %+v: want 4 rejected (too large, bad symbol, no id, unknown type) and 2 acked", st)
	}
	msgs := readStream(t, nc, "MD")
	if len(msgs) != 2 || msgs[0].ev.Seq != 0 || msgs[1].ev.Seq != 1 {
		t.Errorf("stream %+v: want trades 0 and 1", msgs)
	}
}

func TestLatencyHistogram(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{100 * time.Microsecond, 250 * time.Microsecond, 3 * time.Millisecond, time.Minute} {
		h.observe(d)
	}
	s := h.snapshot()
	if s.Count != 4 || s.Counts[0] != 2 || s.Counts[4] != 1 || s.Counts[len(LatencyBounds)] != 1 {
		t.Errorf("histogram %+v", s)
	}
	if want := 100*time.Microsecond + 250*time.Microsecond + 3*time.Millisecond + time.Minute; s.Sum != want {
		t.Errorf("sum %s, want %s", s.Sum, want)
	}
}

func TestRing(t *testing.T) {
	var r ring
	var es []*entry
	next := 0
	for round := range 5 {
		for range 100 + round*37 {
			e := &entry{size: int64(len(es))}
			es = append(es, e)
			r.push(e)
		}
		for range 50 + round*20 {
			if got := r.pop(); got != es[next] {
				t.Fatalf("pop returned entry %d, want %d", got.size, next)
			}
			next++
		}
		if r.len() != len(es)-next {
			t.Fatalf("len %d, want %d", r.len(), len(es)-next)
		}
		for i := 0; i < r.len(); i++ {
			if r.at(i) != es[next+i] {
				t.Fatalf("at(%d) wrong", i)
			}
		}
	}
}

// TestLostAcks makes JetStream drop messages without replying (the stream
// is deleted and a plain subscriber keeps "no responders" away): attempts
// time out and are retried, the lost-ack valve forces a reconnect, and once
// the subscriber is gone the publisher re-creates the stream itself. Every
// message ends up stored once, in order.
func TestLostAcks(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	cfg := Config{Stream: "LOST", SubjectPrefix: "lost", AckTimeout: 150 * time.Millisecond, MaxInFlight: 4, BufferMessages: 1000}
	p := newPublisher(t, nc, cfg)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, "LOST"); err != nil {
		t.Fatal(err)
	}
	other := connect(t, srv.ClientURL())
	sink, err := other.Subscribe("lost.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Flush(); err != nil {
		t.Fatal(err)
	}

	if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 50)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second) // a failure bound: generous for a loaded machine
	for nc.Stats().Reconnects == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no forced reconnect after lost acks: %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := p.Stats()
	if st.Failures < 4*uint64(cfg.MaxInFlight) || st.Acked != 0 || st.Retries == 0 {
		t.Errorf("stats while acks are lost %+v: want timeouts and retries, no acks", st)
	}

	if err := sink.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	st = p.Stats()
	if st.Acked != 50 || st.Dropped != 0 || st.Rejected != 0 {
		t.Errorf("final stats %+v", st)
	}
	msgs := readStream(t, nc, "LOST")
	if len(msgs) != 50 {
		t.Fatalf("stream holds %d, want 50", len(msgs))
	}
	for i, m := range msgs {
		if m.ev.Seq != int64(i) {
			t.Fatalf("position %d holds trade %d", i, m.ev.Seq)
		}
	}
}

// A Publish whose context ends while it waits for room (a stream shut down
// with a deadline, issue 15) abandons the events it did not buffer: they
// are counted in Stats.Abandoned and per symbol, not lost silently.
func TestCancelledPublishCountsAbandoned(t *testing.T) {
	o := newOutage(t, nil)
	nc := connect(t, o.srv.ClientURL())
	p := newPublisher(t, nc, Config{BufferMessages: 100, MaxInFlight: 10})
	o.stop()
	waitDisconnected(t, nc)
	if err := p.Publish(context.Background(), trades("binance", "BTCUSDT", 0, 100)); err != nil {
		t.Fatalf("filling the buffer: %v", err)
	}
	// More than one encoding chunk (32), two symbols: the events after the
	// chunk it waited in are counted too.
	evs := append(trades("binance", "BTCUSDT", 100, 130), trades("binance", "ETHUSDT", 0, 20)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the buffer is full: Publish waits, and its context has ended
	if err := p.Publish(ctx, evs); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish into a full buffer with an ended context = %v, want context.Canceled", err)
	}
	st := p.Stats()
	if st.Published != 100 || st.Abandoned != 50 {
		t.Fatalf("stats %+v: want 100 published, 50 abandoned", st)
	}
	if b, e := p.SymbolDropped("binance", "BTCUSDT"), p.SymbolDropped("binance", "ETHUSDT"); b != 30 || e != 20 {
		t.Fatalf("per-symbol drops BTCUSDT %d, ETHUSDT %d; want 30 and 20", b, e)
	}
	p.Close() // the 100 buffered ones are abandoned as well
	if st := p.Stats(); st.Abandoned != 150 || p.SymbolDropped("binance", "BTCUSDT") != 130 {
		t.Fatalf("after Close: abandoned %d, BTCUSDT drops %d; want 150 and 130", st.Abandoned, p.SymbolDropped("binance", "BTCUSDT"))
	}
}
