package publisher

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/internal/nettest"
)

// waitStatus waits until nc reports the status.
func waitStatus(t *testing.T, nc *nats.Conn, want nats.Status) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for nc.Status() != want {
		if time.Now().After(deadline) {
			t.Fatalf("NATS connection %s, want %s", nc.Status(), want)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
}

// TestLongPartitionExactlyOnce: two replicas publish the same events into a
// stream with a 2 s duplicate window. Replica B is cut off from NATS for
// longer than the window (until at least 4 s of events are buffered) while
// A keeps publishing; when B returns, its backlog is older than the window,
// so msg-ID deduplication alone would store it a second time. The check of
// messages buffered longer than 3/4 of the window finds them in the stream
// and skips them: every event is stored exactly once. The control run,
// without the check, shows the duplicates the check prevents.
func TestLongPartitionExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		check bool
	}{{"check", true}, {"control-without-check", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const window = 2 * time.Second
			srv := startServer(t, nil)
			proxy := nettest.NewCutProxy(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
			cfg := Config{DuplicateWindow: window, AckTimeout: time.Second}
			ncA := connect(t, srv.ClientURL())
			ncB := connect(t, proxy.NATSURL())
			a := newPublisher(t, ncA, cfg)
			b := newPublisher(t, ncB, cfg)
			b.noVerify = !tc.check

			ctx := context.Background()
			n := 0
			pace := time.NewTicker(5 * time.Millisecond) // about 200 events/s
			defer pace.Stop()
			publish := func(k int) { // k events to both replicas
				for range k {
					<-pace.C
					ev := []bridge.Event{trade("binance", "BTCUSDT", n)}
					n++
					for _, p := range []*JetStream{a, b} {
						if err := p.Publish(ctx, ev); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			publish(100)
			proxy.SetCut(true)
			waitStatus(t, ncB, nats.RECONNECTING)
			cutAt := time.Now()
			// Keep publishing until the oldest event B buffered is well past
			// the window (however slow the machine).
			for time.Since(cutAt) < 2*window {
				publish(20)
			}
			publish(50)
			proxy.SetCut(false)
			waitStatus(t, ncB, nats.CONNECTED)
			publish(100)

			for _, p := range []*JetStream{a, b} {
				sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				if err := p.Shutdown(sctx); err != nil && !errors.Is(err, ErrClosed) {
					t.Fatalf("Shutdown: %v (%+v)", err, p.Stats())
				}
				cancel()
			}
			msgs := readStream(t, ncA, "MD")
			count := map[string]int{}
			for _, m := range msgs {
				count[m.msgID]++
			}
			dups := len(msgs) - len(count)
			sb := b.Stats()
			t.Logf("%d events, %d stored, %d duplicates; replica B: already stored %d, unverified %d, jetstream duplicates %d, retries %d",
				n, len(msgs), dups, sb.AlreadyStored, sb.Unverified, sb.Duplicates, sb.Retries)
			if len(count) != n {
				t.Fatalf("%d distinct events stored, want %d", len(count), n)
			}
			if tc.check {
				if dups != 0 {
					t.Errorf("%d events stored twice", dups)
				}
				if sb.AlreadyStored == 0 || sb.Unverified != 0 {
					t.Errorf("replica B: already stored %d (want > 0), unverified %d (want 0)", sb.AlreadyStored, sb.Unverified)
				}
			} else if dups == 0 {
				t.Errorf("the control run without the check stored no duplicates: the partition did not outlast the window")
			}
		})
	}
}

// TestLongPartitionUnverified: when the stream cannot be read, messages
// buffered longer than 3/4 of the duplicate window are sent anyway,
// counted as unverified and logged at ERROR; none is lost.
func TestLongPartitionUnverified(t *testing.T) {
	t.Parallel()
	const window = time.Second
	srv := startServer(t, nil)
	proxy := nettest.NewCutProxy(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
	nc := connect(t, proxy.NATSURL())
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := NewJetStream(ctx, nc, Config{DuplicateWindow: window, AckTimeout: time.Second}, slogTo(&logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.lookupStored = func(context.Context, map[string]time.Time, map[string]struct{}) (map[string]uint64, error) {
		return nil, errors.New("permission denied")
	}
	proxy.SetCut(true)
	waitStatus(t, nc, nats.RECONNECTING)
	const n = 20
	for i := range n {
		if err := p.Publish(ctx, []bridge.Event{trade("binance", "BTCUSDT", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The messages must wait longer than 3/4 of the window.
	waitUntil(t, time.Now().Add(window))
	proxy.SetCut(false)
	sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer scancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v (%+v)", err, p.Stats())
	}
	if s := p.Stats(); s.Unverified < n || s.AlreadyStored != 0 { // more if a send failed and was checked again
		t.Errorf("unverified %d, already stored %d; want at least %d, 0", s.Unverified, s.AlreadyStored, n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "permission denied") {
		t.Errorf("no ERROR naming the failure:\n%s", logs.String())
	}
	check := connect(t, srv.ClientURL())
	if got := len(readStream(t, check, "MD")); got != n {
		t.Errorf("%d messages stored, want %d", got, n)
	}
}

// waitUntil blocks until the wall clock passes t (the test needs messages
// of a real age; this is not synchronization with another goroutine).
func waitUntil(t *testing.T, at time.Time) {
	t.Helper()
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	<-timer.C
}
