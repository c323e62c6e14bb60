package publisher

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

// TestRestartMidStream stops and restarts the embedded server (same port,
// same store) three times while 60 000 events of 6 subjects are published,
// then checks that the stream holds every event exactly once, in order per
// subject, and that nothing was dropped.
func TestRestartMidStream(t *testing.T) {
	const (
		total    = 60_000
		subjects = 6
		restarts = 3
	)
	dir := t.TempDir()
	srv := startServerAt(t, -1, dir, nil)
	port := srv.Port()
	nc := connect(t, srv.ClientURL())
	// A small buffer keeps the pipeline busy (Block policy backpressures the
	// producer), so each restart cuts through in-flight publishes.
	p := newPublisher(t, nc, Config{BufferMessages: 4096, MaxInFlight: 1024, AckTimeout: 2 * time.Second})

	// Trade ids per subject are consecutive: event k of subject s has id k.
	symbols := make([]string, subjects)
	for s := range symbols {
		symbols[s] = fmt.Sprintf("SYM%d", s)
	}
	ctx := context.Background()
	published := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		batch := make([]bridge.Event, 0, 50)
		n := 0
		for n < total {
			batch = batch[:0]
			for len(batch) < cap(batch) && n < total {
				batch = append(batch, trade("binance", symbols[n%subjects], n/subjects))
				n++
			}
			if err := p.Publish(ctx, batch); err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
			if n%(total/(restarts+1)) == 0 {
				select {
				case published <- n:
				default:
				}
			}
		}
	}()

	current := srv
	for r := 0; r < restarts; r++ {
		// Stalled means no ack for a minute (a loaded machine can take long,
		// but it makes progress).
		waitProgress(t, func() bool {
			select {
			case n := <-published:
				t.Logf("restart %d after %d events, stats %+v", r+1, n, p.Stats())
				return true
			default:
				return false
			}
		}, func() uint64 { return p.Stats().Acked }, fmt.Sprintf("restart %d", r+1))
		if err := current.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		waitDisconnected(t, nc) // the publisher's connection has seen the outage
		current = startServerAt(t, port, dir, nil)
	}
	wg.Wait()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v (stats %+v)", err, p.Stats())
	}
	st := p.Stats()
	t.Logf("final stats %+v", st)
	if st.Dropped != 0 || st.Rejected != 0 || st.Abandoned != 0 {
		t.Errorf("dropped %d, rejected %d, abandoned %d; want 0", st.Dropped, st.Rejected, st.Abandoned)
	}
	if st.Published != total || st.Acked != total {
		t.Errorf("published %d acked %d, want %d", st.Published, st.Acked, total)
	}
	if st.Failures == 0 {
		t.Errorf("no publish failures recorded: the restarts did not hit the publisher")
	}

	msgs := readStream(t, connect(t, current.ClientURL()), "MD")
	if len(msgs) != total {
		t.Errorf("stream holds %d messages, want %d", len(msgs), total)
	}
	next := make(map[string]int)
	seen := make(map[string]bool)
	for _, m := range msgs {
		if seen[m.msgID] {
			t.Fatalf("duplicate %s at seq %d", m.msgID, m.seq)
		}
		seen[m.msgID] = true
		want := next[m.subject]
		if got := int(m.ev.Seq); got != want {
			t.Fatalf("subject %s: seq %d holds trade %d, want %d (out of order or missing)", m.subject, m.seq, got, want)
		}
		next[m.subject] = want + 1
	}
	for _, s := range symbols {
		if got := next["md.binance."+s]; got != total/subjects {
			t.Errorf("subject %s: %d trades, want %d", s, got, total/subjects)
		}
	}
}

// waitProgress polls done until it holds; it fails when progress() has not
// grown for a minute.
func waitProgress(t *testing.T, done func() bool, progress func() uint64, what string) {
	t.Helper()
	last, at := progress(), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		<-tick.C
		if n := progress(); n != last {
			last, at = n, time.Now()
		} else if time.Since(at) > time.Minute {
			t.Fatalf("no progress for a minute before %s (at %d)", what, n)
		}
	}
}
