package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// busyErr is a SnapshotRequester refusal for load, like
// publisher.BusyError (which this package cannot import).
type busyErr struct{ after time.Duration }

func (e busyErr) Error() string             { return fmt.Sprintf("busy, retry after %s", e.after) }
func (e busyErr) RetryDelay() time.Duration { return e.after }

// warnLog records the messages of the records at Warn and above.
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.msgs = append(w.msgs, r.Message)
	w.mu.Unlock()
	return nil
}
func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }

// TestBookRepairWaitsRetryAfter is issue 15's bridge half: a book repair
// whose SnapshotRequester refuses as busy with a retry delay (the snapshot
// service's retry_after_ms) asks again no sooner than that delay, counts
// the refusals, and logs them as a periodic summary, not a Warn per retry.
// Before, it retried on its own backoff (200 ms doubling, with jitter),
// far sooner than the 2 s asked for here, with a Warn each time.
func TestBookRepairWaitsRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const after = 2 * time.Second
		const refusals = 5
		var calls []time.Time
		req := requesterOf(func(ctx context.Context, exchange, symbol string) (int64, error) {
			calls = append(calls, time.Now())
			if len(calls) <= refusals {
				return 0, fmt.Errorf("snapshot: %w", busyErr{after})
			}
			return 5, nil
		})
		wl := &warnLog{}
		var published []Event
		st := &Stream{
			cfg: &settings{exName: "fake"},
			pub: HandlerFunc(func(_ context.Context, evs []Event) error {
				published = append(published, evs...)
				return nil
			}),
			log:    slog.New(wl),
			req:    req,
			now:    time.Now,
			pubCtx: context.Background(),
		}
		sh := &shard{st: st, log: st.log}
		sym := &symbol{name: "BTCUSDT", log: st.log, rest: &restBook{limit: 1000}}
		ev := Event{Type: EventBookDelta, FirstID: 5, LastID: 6}
		var need bool
		if sh.out, need = sym.rest.delta(&ev, sh.out, &sym.ctr); !need {
			t.Fatal("first delta did not ask for a snapshot")
		}
		sym.rest.fetching = true

		sh.bookRepair(context.Background(), sym)

		if len(calls) != refusals+1 {
			t.Fatalf("%d requests, want %d", len(calls), refusals+1)
		}
		for i := 1; i < len(calls); i++ {
			if d := calls[i].Sub(calls[i-1]); d < after {
				t.Errorf("request %d came %s after the refusal that asked for %s", i+1, d, after)
			}
		}
		if got := render(published); got != "D5-6" {
			t.Errorf("published %q, want the buffered delta after the snapshot", got)
		}
		if n := sh.ctr.snapshotBusy.Load(); n != refusals {
			t.Errorf("busy refusals counted %d, want %d", n, refusals)
		}
		// A summary at the first refusal and at most one per busyLogEvery
		// after it; no "snapshot failed" Warn per retry.
		total := calls[refusals-1].Sub(calls[0])
		if max := 1 + int(total/busyLogEvery); len(wl.msgs) > max {
			t.Errorf("%d Warn lines for %d refusals over %s, want at most %d: %q", len(wl.msgs), refusals, total, max, wl.msgs)
		}
		for _, m := range wl.msgs {
			if m != "snapshot service busy; book repairs ask again after its retry_after" {
				t.Errorf("Warn %q", m)
			}
		}
	})
}

// requesterOf adapts a function to SnapshotRequester.
type requesterOf func(ctx context.Context, exchange, symbol string) (int64, error)

func (f requesterOf) RequestSnapshot(ctx context.Context, exchange, symbol string) (int64, error) {
	return f(ctx, exchange, symbol)
}

// TestBusyLogTotal: a summary carries the refusals since the previous one
// and the stream's total, so refusals made after the last summary are not
// lost to a reader of the log.
func TestBusyLogTotal(t *testing.T) {
	var b busyLog
	t0 := time.Unix(1_700_000_000, 0)
	if n, total := b.refused(t0); n != 1 || total != 1 {
		t.Fatalf("first refusal: summary %d/%d, want 1/1", n, total)
	}
	for i := 1; i <= 9; i++ {
		if n, total := b.refused(t0.Add(time.Duration(i) * time.Second)); n != 0 || total != 0 {
			t.Fatalf("refusal %d s later: summary %d/%d, want none", i, n, total)
		}
	}
	if n, total := b.refused(t0.Add(busyLogEvery + time.Second)); n != 10 || total != 11 {
		t.Fatalf("refusal after the window: summary %d/%d, want 10/11", n, total)
	}
}
