package publisher

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParseAck(t *testing.T) {
	hdr := func(k, v string) nats.Header { return nats.Header{k: []string{v}} }
	for _, c := range []struct {
		name   string
		data   string
		header nats.Header
		dup    bool
		err    error
		code   int // APIError.Code when err is an *APIError
	}{
		{name: "stored", data: `{"stream":"MD","seq":7}`},
		{name: "duplicate", data: `{"stream":"MD","seq":7,"duplicate":true}`, dup: true},
		{name: "server's duplicate", data: `{"stream":"MD","seq":7,"duplicate": true}`, dup: true},
		{name: "not duplicate", data: `{"stream":"MD","seq":7,"duplicate":false}`},
		{name: "domain", data: `{"stream":"MD","domain":"hub","seq":7,"duplicate":true}`, dup: true},
		{name: "stream named error", data: `{"stream":"error","seq":1}`},
		{name: "spaces", data: `{ "stream": "MD", "seq": 1, "duplicate": true }`, dup: true},
		{name: "server error", data: `{"error":{"code":503,"err_code":10077,"description":"resource limits exceeded"},"stream":"MD"}`, code: 503},
		{name: "client error", data: `{"error":{"code":400,"err_code":10054,"description":"maximum payload exceeded"}}`, code: 400},
		{name: "no responders", header: hdr(statusHeader, noRespondersStatus), err: nats.ErrNoResponders},
		{name: "empty", err: jetstream.ErrInvalidJSAck},
		{name: "garbage", data: `not json`, err: jetstream.ErrInvalidJSAck},
		{name: "no stream", data: `{"seq":1}`, err: jetstream.ErrInvalidJSAck},
		{name: "truncated", data: `{"stream":"MD","seq":1`, err: jetstream.ErrInvalidJSAck},
		{name: "nested duplicate", data: `{"stream":"MD","seq":1,"x":{"duplicate":true}}`},
		{name: "repeated duplicate", data: `{"stream":"MD","seq":1,"duplicate":true,"duplicate":false}`},
		{name: "capitalised duplicate", data: `{"stream":"MD","seq":1,"Duplicate":true}`, dup: true},
		{name: "escaped duplicate", data: `{"stream":"MD","seq":1,"dupl\u0069cate":true}`, dup: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := parseAck(&nats.Msg{Data: []byte(c.data), Header: c.header})
			dup := a.dup
			if c.code != 0 {
				var apiErr *jetstream.APIError
				if !errors.As(err, &apiErr) || apiErr.Code != c.code {
					t.Fatalf("err %v, want an APIError with code %d", err, c.code)
				}
				return
			}
			if dup != c.dup || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("got %v, %v; want %v, %v", dup, err, c.dup, c.err)
			}
		})
	}
}

func TestAttemptID(t *testing.T) {
	const prefix = "_INBOX.abc."
	for _, c := range []struct {
		subject string
		id      uint64
		ok      bool
	}{
		{prefix + "1", 1, true},
		{prefix + strconv.FormatUint(1<<40, 36), 1 << 40, true},
		{prefix, 0, false},
		{"_INBOX.abd.1", 0, false},
		{prefix + "x!", 0, false},
		{"short", 0, false},
	} {
		if id, ok := attemptID(c.subject, prefix); id != c.id || ok != c.ok {
			t.Errorf("attemptID(%q) = %d, %v; want %d, %v", c.subject, id, ok, c.id, c.ok)
		}
	}
}

// heldConn stands in for the NATS connection: it records every attempt
// (its reply subject and msg id) and answers nothing by itself; the test
// delivers replies to the publisher's channel.
type heldConn struct {
	mu        sync.Mutex
	replies   []string
	ids       []string
	connected atomic.Bool
	epoch     atomic.Uint64
	onPublish func() // runs during each write, if set
}

func (f *heldConn) publish(m *nats.Msg) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = append(f.replies, strings.Clone(m.Reply))
	f.ids = append(f.ids, strings.Clone(m.Header.Get(HeaderMsgID)))
	if f.onPublish != nil {
		f.onPublish()
	}
	return nil
}

func (f *heldConn) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

func (f *heldConn) attempt(i int) (reply, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.ids) {
		return "", ""
	}
	return f.replies[i], f.ids[i]
}

// lookupJS counts stream look-ups (the publisher re-provisions the stream
// after a no-responders reply) and finds nothing.
type lookupJS struct {
	jetstream.JetStream
	lookups atomic.Int32
}

func (f *lookupJS) Stream(context.Context, string) (jetstream.Stream, error) {
	f.lookups.Add(1)
	return nil, errors.New("unavailable")
}

// heldPublisher returns a started publisher on a heldConn, with status
// events fed from the returned channel.
func heldPublisher(t *testing.T, cfg Config) (*JetStream, *heldConn, chan nats.Status) {
	p := newJetStream(cfg.withDefaults(), nil)
	f := &heldConn{}
	p.nc = new(nats.Conn) // never connected; only RemoveStatusListener is called
	p.provision.js = &lookupJS{}
	p.link.pub = f.publish
	p.link.connected = f.connected.Load
	p.link.count = f.epoch.Load
	status := make(chan nats.Status, 1)
	p.status = status
	p.start()
	t.Cleanup(func() { p.Close() })
	return p, f, status
}

func ackTo(reply string) *nats.Msg {
	return &nats.Msg{Subject: reply, Data: []byte(`{"stream":"MD","seq":1}`)}
}

// TestLateReplyIgnored: a reply to an attempt past its ack deadline
// resolves nothing; the retry's reply resolves the message, and replies
// arriving out of order resolve their own messages only.
func TestLateReplyIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, f, _ := heldPublisher(t, Config{AckTimeout: 100 * time.Millisecond, BufferMessages: 16})
		ev0, ev1 := trade("binance", "BTCUSDT", 0), trade("binance", "BTCUSDT", 1)

		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 1)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r0, id := f.attempt(0)
		if r0 == "" || id != ev0.MsgID() {
			t.Fatalf("first attempt %q %q", r0, id)
		}
		time.Sleep(150 * time.Millisecond) // the ack deadline passes; the retry follows its backoff
		synctest.Wait()
		r1, id := f.attempt(1)
		if r1 == "" || r1 == r0 || id != ev0.MsgID() {
			t.Fatalf("retry: reply %q (first %q), msg id %q", r1, r0, id)
		}

		p.replies.ch <- ackTo(r0) // the first attempt's late reply
		synctest.Wait()
		if st := p.Stats(); st.Acked != 0 || st.InFlight != 1 {
			t.Fatalf("a late reply resolved something: %+v", st)
		}
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 1, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r2, id := f.attempt(2)
		if r2 == "" || r2 == r0 || r2 == r1 || id != ev1.MsgID() {
			t.Fatalf("second message: reply %q, msg id %q", r2, id)
		}

		p.replies.ch <- ackTo(r2) // the second message's reply arrives first
		synctest.Wait()
		if st := p.Stats(); st.Acked != 1 || st.BufferedMsgs != 2 || st.InFlight != 1 {
			t.Fatalf("after the second message's reply: %+v", st)
		}
		p.replies.ch <- ackTo(r2) // a repeated reply changes nothing
		p.replies.ch <- ackTo(r1)
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if st.Acked != 2 || st.Sent != 3 || st.Retries != 1 || st.Failures != 1 || st.Abandoned != 0 {
			t.Fatalf("final stats %+v", st)
		}
	})
}

// TestReplyErrors: a retryable server error and a no-responders reply are
// retried with the same msg id; a client error repeated maxAPIFailures
// times drops the message.
func TestReplyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, f, _ := heldPublisher(t, Config{BufferMessages: 16})
		ev := trade("binance", "BTCUSDT", 0)
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 1)); err != nil {
			t.Fatal(err)
		}
		replies := []*nats.Msg{
			{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"resource limits exceeded"}}`)},
			{Header: nats.Header{statusHeader: []string{noRespondersStatus}}},
		}
		for i, m := range replies {
			synctest.Wait()
			r, id := f.attempt(i)
			if r == "" || id != ev.MsgID() {
				t.Fatalf("attempt %d: %q %q", i, r, id)
			}
			m.Subject = r
			p.replies.ch <- m
			time.Sleep(time.Second) // past any backoff
		}
		synctest.Wait()
		r, _ := f.attempt(len(replies))
		p.replies.ch <- ackTo(r)
		synctest.Wait()
		if st := p.Stats(); st.Acked != 1 || st.Retries != 2 || st.Failures != 2 || st.BufferedMsgs != 0 {
			t.Fatalf("stats %+v", st)
		}
		if n := p.provision.js.(*lookupJS).lookups.Load(); n != 1 {
			t.Fatalf("%d stream look-ups after a no-responders reply, want 1", n)
		}

		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 1, 2)); err != nil {
			t.Fatal(err)
		}
		for i := range maxAPIFailures {
			synctest.Wait()
			r, _ := f.attempt(len(replies) + 1 + i)
			if r == "" {
				t.Fatalf("client error %d: no attempt", i)
			}
			p.replies.ch <- &nats.Msg{Subject: r, Data: []byte(`{"error":{"code":400,"err_code":10999,"description":"bad"}}`)}
			time.Sleep(2 * time.Second)
		}
		synctest.Wait()
		if st := p.Stats(); st.Rejected != 1 || st.BufferedMsgs != 0 || st.InFlight != 0 {
			t.Fatalf("after %d client errors: %+v", maxAPIFailures, st)
		}
		if n := f.attempts(); n != len(replies)+1+maxAPIFailures {
			t.Fatalf("%d attempts", n)
		}
	})
}

// TestDisconnectFailsOldAttempts: after a reconnect, attempts written to
// the broken connection (an older epoch) fail before anything is written
// to the new one, even before the status event arrives, and the retry pass
// resends them ahead of the new message; while disconnected, the
// RECONNECTING event fails every attempt in flight.
func TestDisconnectFailsOldAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, f, status := heldPublisher(t, Config{BufferMessages: 16})
		f.connected.Store(true)
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		f.epoch.Store(1) // reconnected; the status event is late
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 2, 3)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := p.Stats(); st.Failures != 2 || st.InFlight != 0 || f.attempts() != 2 {
			t.Fatalf("after the reconnect: %+v, %d attempts (the new message must wait for the retries)", st, f.attempts())
		}
		time.Sleep(time.Second) // past the retry backoff
		synctest.Wait()
		if n := f.attempts(); n != 5 {
			t.Fatalf("%d attempts after the retry pass, want 5", n)
		}
		for i := range 3 {
			ev := trade("binance", "BTCUSDT", i)
			if _, id := f.attempt(2 + i); id != ev.MsgID() {
				t.Fatalf("attempt %d carries %q, want %q", 2+i, id, ev.MsgID())
			}
		}
		status <- nats.CONNECTED // the late event changes nothing
		synctest.Wait()
		if st := p.Stats(); st.Failures != 2 || st.InFlight != 3 {
			t.Fatalf("after the late status event: %+v", st)
		}

		f.connected.Store(false)
		status <- nats.RECONNECTING
		synctest.Wait()
		if st := p.Stats(); st.Failures != 5 || st.InFlight != 0 {
			t.Fatalf("while reconnecting: %+v", st)
		}
		r2, _ := f.attempt(2)
		p.replies.ch <- ackTo(r2) // too late: the attempt was failed
		synctest.Wait()
		if st := p.Stats(); st.Acked != 0 {
			t.Fatalf("a reply to a failed attempt resolved it: %+v", st)
		}
		f.connected.Store(true)
		f.epoch.Store(2)
		status <- nats.CONNECTED
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := f.attempts(); n != 8 {
			t.Fatalf("%d attempts after the second retry pass, want 8", n)
		}
		for i := 5; i < f.attempts(); i++ {
			r, _ := f.attempt(i)
			p.replies.ch <- ackTo(r)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Acked != 3 || st.Sent != 8 || st.Reordered != 0 || st.Abandoned != 0 {
			t.Fatalf("final %+v", st)
		}
	})
}

// TestReconnectDuringWrite: a write blocked while nats.go reconnects lands
// on the new connection. It is not failed with the older attempts; once it
// is stored, the older messages' retries are stored after it and counted as
// reordered instead of passing unseen.
func TestReconnectDuringWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, f, _ := heldPublisher(t, Config{BufferMessages: 16, AckTimeout: time.Second})
		f.connected.Store(true)
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		f.mu.Lock()
		f.onPublish = func() { f.epoch.Store(1) } // the next write waits out a reconnect
		f.mu.Unlock()
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 2, 3)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		f.mu.Lock()
		f.onPublish = nil
		f.mu.Unlock()
		if st := p.Stats(); st.Failures != 2 || st.InFlight != 1 {
			t.Fatalf("after the reconnect: %+v (want the two older attempts failed, the new one in flight)", st)
		}
		r2, _ := f.attempt(2)
		p.replies.ch <- ackTo(r2) // stored on the new connection
		synctest.Wait()
		time.Sleep(time.Second) // the retry pass
		synctest.Wait()
		for i := 3; i < f.attempts(); i++ {
			r, _ := f.attempt(i)
			p.replies.ch <- ackTo(r)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Acked != 3 || st.Sent != 5 || st.Reordered != 2 {
			t.Fatalf("final %+v: want the two retries counted as reordered", st)
		}
	})
}

// TestReplyConflict: "duplicate message id is in process" (409, err_code
// 10158: another replica's copy of the same event was being stored on a
// clustered stream) is retried as often as it comes, is counted as a
// conflict and not as a failure, and never drops the message, although it
// is a 4xx that the client-error rule would reject after maxAPIFailures.
func TestReplyConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p, f, _ := heldPublisher(t, Config{BufferMessages: 16})
		ev := trade("binance", "BTCUSDT", 0)
		if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 1)); err != nil {
			t.Fatal(err)
		}
		conflicts := 3 * maxAPIFailures
		for i := range conflicts {
			synctest.Wait()
			r, id := f.attempt(i)
			if r == "" || id != ev.MsgID() {
				t.Fatalf("attempt %d: %q %q", i, r, id)
			}
			p.replies.ch <- &nats.Msg{Subject: r, Data: []byte(`{"error":{"code":409,"err_code":10158,"description":"duplicate message id is in process"}}`)}
			time.Sleep(time.Second) // past any backoff
		}
		synctest.Wait()
		r, _ := f.attempt(conflicts)
		if r == "" {
			t.Fatalf("no attempt after %d conflicts: the message was dropped", conflicts)
		}
		p.replies.ch <- ackTo(r)
		synctest.Wait()
		st := p.Stats()
		if st.Acked != 1 || st.Rejected != 0 || st.Conflicts != uint64(conflicts) || st.Failures != 0 || st.Retries != uint64(conflicts) || st.BufferedMsgs != 0 {
			t.Fatalf("stats %+v; want 1 acked, 0 rejected, %d conflicts, 0 failures", st, conflicts)
		}
	})
}
