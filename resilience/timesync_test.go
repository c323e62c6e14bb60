package resilience

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSource simulates an exchange whose clock is offset ahead of ours. Each
// call takes out then back of (fake) time, around the moment the server
// reads its clock; a nil-free err fails the call.
type fakeSource struct {
	mu     sync.Mutex
	offset time.Duration
	legs   []leg // consumed in order; the last repeats
	calls  int
}

type leg struct {
	out, back time.Duration
	err       error
}

func (s *fakeSource) ServerTime(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	l := s.legs[min(s.calls, len(s.legs)-1)]
	s.calls++
	off := s.offset
	s.mu.Unlock()
	time.Sleep(l.out)
	server := time.Now().Add(off)
	time.Sleep(l.back)
	if l.err != nil {
		return time.Time{}, l.err
	}
	return server, ctx.Err()
}

func (s *fakeSource) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestTimeSyncConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   TimeSyncConfig
		field string
		want  TimeSyncConfig
	}{
		{name: "zero", want: TimeSyncConfig{Samples: 5, Interval: 5 * time.Minute, WarnOffset: time.Second}},
		{name: "explicit", cfg: TimeSyncConfig{Samples: 3, Interval: time.Hour, WarnOffset: -1}, want: TimeSyncConfig{Samples: 3, Interval: time.Hour, WarnOffset: -1}},
		{name: "negative samples", cfg: TimeSyncConfig{Samples: -1}, field: "Samples"},
		{name: "negative interval", cfg: TimeSyncConfig{Interval: -1}, field: "Interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewTimeSyncManager(tt.cfg, nil)
			if tt.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "TimeSyncConfig."+tt.field) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Config() != tt.want {
				t.Fatalf("Config = %+v, want %+v", m.Config(), tt.want)
			}
		})
	}
}

func TestTimeSyncMinRTTWins(t *testing.T) {
	const trueOffset = 1500 * time.Millisecond
	tests := []struct {
		name       string
		legs       []leg
		wantOffset time.Duration
		wantRTT    time.Duration
	}{
		{name: "symmetric fastest sample is exact",
			legs: []leg{
				{out: 90 * time.Millisecond, back: 10 * time.Millisecond}, // rtt 100ms, offset error +40ms
				{out: 10 * time.Millisecond, back: 10 * time.Millisecond}, // rtt 20ms, exact
				{out: 5 * time.Millisecond, back: 45 * time.Millisecond},  // rtt 50ms, error -20ms
			},
			wantOffset: trueOffset, wantRTT: 20 * time.Millisecond},
		{name: "asymmetric fastest sample: error within rtt/2",
			legs: []leg{
				{out: 100 * time.Millisecond, back: 100 * time.Millisecond},
				{out: 30 * time.Millisecond, back: 10 * time.Millisecond}, // rtt 40ms, error +10ms
			},
			wantOffset: trueOffset + 10*time.Millisecond, wantRTT: 40 * time.Millisecond},
		{name: "failed samples are skipped",
			legs: []leg{
				{out: time.Millisecond, back: time.Millisecond, err: errors.New("503")},
				{out: 50 * time.Millisecond, back: 50 * time.Millisecond},
				{out: time.Millisecond, back: time.Millisecond, err: errors.New("503")},
			},
			wantOffset: trueOffset, wantRTT: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := NewTimeSyncManager(TimeSyncConfig{Samples: 3}, nil)
				if m.Synced() || m.Offset() != 0 || !m.LastSync().IsZero() || m.RTT() != 0 {
					t.Fatal("not zero before the first Sync")
				}
				src := &fakeSource{offset: trueOffset, legs: tt.legs}
				if err := m.Sync(t.Context(), src); err != nil {
					t.Fatal(err)
				}
				if src.Calls() != 3 {
					t.Fatalf("%d samples taken, want 3", src.Calls())
				}
				if m.Offset() != tt.wantOffset || m.RTT() != tt.wantRTT {
					t.Fatalf("Offset %s RTT %s, want %s %s", m.Offset(), m.RTT(), tt.wantOffset, tt.wantRTT)
				}
				if !m.Synced() || !m.LastSync().Equal(time.Now()) {
					t.Fatalf("Synced %v LastSync %v", m.Synced(), m.LastSync())
				}
				now := time.Now()
				if got := m.ServerNow(); !got.Equal(now.Add(tt.wantOffset)) {
					t.Fatalf("ServerNow = %v", got)
				}
				server := time.UnixMilli(1_700_000_000_000)
				if got := m.ToLocal(server); !got.Equal(server.Add(-tt.wantOffset)) || !m.ToServer(got).Equal(server) {
					t.Fatalf("ToLocal = %v", got)
				}
			})
		})
	}
}

func TestTimeSyncFailureKeepsOffset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := NewTimeSyncManager(TimeSyncConfig{Samples: 2}, nil)
		good := &fakeSource{offset: -3 * time.Second, legs: []leg{{out: time.Millisecond, back: time.Millisecond}}}
		if err := m.Sync(t.Context(), good); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("connection reset")
		bad := &fakeSource{legs: []leg{{err: boom}}}
		err := m.Sync(t.Context(), bad)
		if !errors.Is(err, ErrTimeSync) || !errors.Is(err, boom) {
			t.Fatalf("err = %v, want ErrTimeSync wrapping the source error", err)
		}
		if m.Offset() != -3*time.Second {
			t.Fatalf("offset changed to %s on failure", m.Offset())
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := m.Sync(ctx, good); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Sync = %v", err)
		}
	})
}

func TestTimeSyncRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		m, _ := NewTimeSyncManager(TimeSyncConfig{Samples: 1, Interval: time.Minute, WarnOffset: -1}, log)
		src := &fakeSource{offset: time.Second, legs: []leg{
			{},                            // t=0 ok
			{err: errors.New("HTTP 503")}, // t=1m fails
			{},                            // t=2m ok
		}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { m.Run(ctx, src); close(done) }()
		synctest.Wait()
		if src.Calls() != 1 || m.Offset() != time.Second {
			t.Fatalf("after start: %d calls, offset %s", src.Calls(), m.Offset())
		}
		src.mu.Lock()
		src.offset = 2 * time.Second
		src.mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		if src.Calls() != 2 || m.Offset() != time.Second {
			t.Fatalf("after a failed resync: %d calls, offset %s (must keep the last good)", src.Calls(), m.Offset())
		}
		if !strings.Contains(logs.String(), "time sync failed") || !strings.Contains(logs.String(), "HTTP 503") {
			t.Fatalf("failure not logged: %q", logs.String())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if src.Calls() != 3 || m.Offset() != 2*time.Second {
			t.Fatalf("after resync: %d calls, offset %s", src.Calls(), m.Offset())
		}
		cancel()
		<-done
	})
}

func TestTimeSyncConcurrentReaders(t *testing.T) {
	m, _ := NewTimeSyncManager(TimeSyncConfig{Samples: 2, Interval: time.Millisecond}, nil)
	src := &fakeSource{offset: time.Second, legs: []leg{{}}}
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() { m.Run(ctx, src); close(runDone) }()
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			for range 2000 {
				_ = m.ServerNow()
				_ = m.ToLocal(time.Now())
				_ = m.Offset() + m.RTT()
				_ = m.LastSync()
			}
		})
	}
	readers.Wait()
	cancel()
	<-runDone
	// Real clock: the estimate is exact to within half the round trip.
	if err := (m.Offset() - time.Second).Abs(); m.Synced() && err > m.RTT()/2+time.Microsecond {
		t.Fatalf("offset %s, rtt %s", m.Offset(), m.RTT())
	}
}

// TestTimeSyncRunLogsSkew: the first offset is logged at Info, an offset of
// WarnOffset or more at Warn at every sync, its return below at Info.
func TestTimeSyncRunLogsSkew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(syncWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
		read := func() string { mu.Lock(); defer mu.Unlock(); s := logs.String(); logs.Reset(); return s }
		m, _ := NewTimeSyncManager(TimeSyncConfig{Samples: 1, Interval: time.Minute, WarnOffset: 500 * time.Millisecond}, log)
		src := &fakeSource{offset: 100 * time.Millisecond, legs: []leg{{}}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { m.Run(ctx, src); close(done) }()
		synctest.Wait()
		if got := read(); !strings.Contains(got, "level=INFO") || !strings.Contains(got, "clock offset measured") {
			t.Fatalf("first sync: %q", got)
		}
		src.mu.Lock()
		src.offset = -2 * time.Second
		src.mu.Unlock()
		for range 2 { // warned at every sync while skewed
			time.Sleep(time.Minute)
			synctest.Wait()
			if got := read(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "offset=-2s") {
				t.Fatalf("skewed sync: %q", got)
			}
		}
		src.mu.Lock()
		src.offset = 0
		src.mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := read(); !strings.Contains(got, "level=INFO") || !strings.Contains(got, "agrees with the local clock again") {
			t.Fatalf("back in bounds: %q", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := read(); got != "" {
			t.Fatalf("quiet sync logged %q", got)
		}
		cancel()
		<-done
	})
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
