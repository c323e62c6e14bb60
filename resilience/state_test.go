package resilience

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestConnectionStateDiagram(t *testing.T) {
	valid := map[[2]ConnectionState]bool{
		{Disconnected, Connecting}: true,
		{Connecting, Connected}:    true,
		{Connecting, Failed}:       true,
		{Connected, Reconnecting}:  true,
		{Reconnecting, Connected}:  true,
		{Reconnecting, Failed}:     true,
		{Failed, Connecting}:       true,
		{Connected, Disconnected}:  true,
	}
	all := []ConnectionState{Disconnected, Connecting, Connected, Reconnecting, Failed, ConnectionState(5), ConnectionState(255)}
	n := 0
	for _, from := range all {
		for _, to := range all {
			want := valid[[2]ConnectionState{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			if want {
				n++
			}
		}
	}
	if n != 8 {
		t.Fatalf("%d valid transitions, want the seed's 8", n)
	}
}

// driveTo moves a fresh manager into state s along valid transitions.
func driveTo(t *testing.T, m *ConnectionStateManager, s ConnectionState) {
	t.Helper()
	path := map[ConnectionState][]ConnectionState{
		Disconnected: nil,
		Connecting:   {Connecting},
		Connected:    {Connecting, Connected},
		Reconnecting: {Connecting, Connected, Reconnecting},
		Failed:       {Connecting, Failed},
	}[s]
	for _, to := range path {
		if err := m.Transition(to); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConnectionStateTransition(t *testing.T) {
	states := []ConnectionState{Disconnected, Connecting, Connected, Reconnecting, Failed}
	for _, from := range states {
		for _, to := range states {
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				m := NewConnectionStateManager()
				driveTo(t, m, from)
				var calls []Transition
				m.OnTransition(func(tr Transition) { calls = append(calls, tr) })
				before := len(m.History())
				err := m.Transition(to)
				if CanTransition(from, to) {
					if err != nil || m.State() != to || len(calls) != 1 || calls[0].From != from || calls[0].To != to {
						t.Fatalf("err %v, state %s, calls %v", err, m.State(), calls)
					}
					if len(m.History()) != before+1 {
						t.Fatal("transition not in history")
					}
					return
				}
				if !errors.Is(err, ErrInvalidTransition) {
					t.Fatalf("err = %v, want ErrInvalidTransition", err)
				}
				if want := fmt.Sprintf("resilience: invalid state transition: %s -> %s", from, to); err.Error() != want {
					t.Fatalf("err = %q, want %q", err, want)
				}
				if m.State() != from || len(calls) != 0 || len(m.History()) != before {
					t.Fatalf("invalid transition had effects: state %s, calls %d", m.State(), len(calls))
				}
			})
		}
	}
}

func TestConnectionStateCallbacks(t *testing.T) {
	m := NewConnectionStateManager()
	var got []string
	rec := func(name string) func(Transition) {
		return func(tr Transition) { got = append(got, fmt.Sprintf("%s:%s->%s", name, tr.From, tr.To)) }
	}
	m.OnTransition(rec("any"))
	m.OnConnecting(rec("connecting"))
	m.OnConnected(rec("connected"))
	m.OnConnected(rec("connected2"))
	m.OnReconnecting(rec("reconnecting"))
	m.OnDisconnected(rec("disconnected"))
	m.OnFailed(rec("failed"))
	m.OnConnected(nil) // ignored

	cause := errors.New("read timeout")
	for _, step := range []struct {
		to    ConnectionState
		cause error
	}{{Connecting, nil}, {Connected, nil}, {Reconnecting, cause}, {Failed, cause}, {Connecting, nil}, {Connected, nil}, {Disconnected, nil}} {
		if err := m.TransitionErr(step.to, step.cause); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"any:DISCONNECTED->CONNECTING", "connecting:DISCONNECTED->CONNECTING",
		"any:CONNECTING->CONNECTED", "connected:CONNECTING->CONNECTED", "connected2:CONNECTING->CONNECTED",
		"any:CONNECTED->RECONNECTING", "reconnecting:CONNECTED->RECONNECTING",
		"any:RECONNECTING->FAILED", "failed:RECONNECTING->FAILED",
		"any:FAILED->CONNECTING", "connecting:FAILED->CONNECTING",
		"any:CONNECTING->CONNECTED", "connected:CONNECTING->CONNECTED", "connected2:CONNECTING->CONNECTED",
		"any:CONNECTED->DISCONNECTED", "disconnected:CONNECTED->DISCONNECTED",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("callbacks:\n got %v\nwant %v", got, want)
	}
	h := m.History()
	if len(h) != 7 || h[2].Err != cause || h[3].Err != cause || h[0].Err != nil {
		t.Fatalf("history %+v", h)
	}
}

// A callback that calls Transition must not deadlock; the nested
// transition's callbacks run after the current callback, in order.
func TestConnectionStateReentrantCallback(t *testing.T) {
	m := NewConnectionStateManager()
	var got []string
	m.OnFailed(func(tr Transition) {
		got = append(got, "failed-begin")
		if err := m.Transition(Connecting); err != nil { // retry from inside the callback
			t.Error(err)
		}
		if m.State() != Connecting {
			t.Errorf("nested transition not applied at once: %s", m.State())
		}
		got = append(got, "failed-end")
	})
	m.OnConnecting(func(tr Transition) {
		got = append(got, "connecting from "+tr.From.String())
		if tr.From == Failed {
			_ = m.Transition(Connected)
		}
	})
	m.OnConnected(func(Transition) { got = append(got, "connected") })

	done := make(chan struct{})
	go func() {
		defer close(done)
		driveTo(t, m, Failed)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: Transition from a callback did not return")
	}
	want := []string{"connecting from DISCONNECTED", "failed-begin", "failed-end", "connecting from FAILED", "connected"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if m.State() != Connected {
		t.Fatalf("state %s", m.State())
	}
}

func TestConnectionStatePanickingCallback(t *testing.T) {
	m := NewConnectionStateManager()
	calls := 0
	m.OnConnecting(func(Transition) {
		calls++
		if calls == 1 {
			panic("boom")
		}
	})
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = m.Transition(Connecting)
	}()
	if err := m.Transition(Failed); err != nil {
		t.Fatal(err)
	}
	if err := m.Transition(Connecting); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("callbacks after a panic: %d calls, want 2 (manager wedged)", calls)
	}
}

func TestConnectionStateHistoryBounded(t *testing.T) {
	m := NewConnectionStateManager()
	driveTo(t, m, Connected)
	for range 100 { // 200 more transitions
		_ = m.Transition(Reconnecting)
		_ = m.Transition(Connected)
	}
	h := m.History()
	if len(h) != HistorySize {
		t.Fatalf("history has %d entries, want %d", len(h), HistorySize)
	}
	for i, tr := range h {
		if i > 0 && h[i-1].To != tr.From {
			t.Fatalf("history not contiguous at %d: %v then %v", i, h[i-1], tr)
		}
	}
	if last := h[len(h)-1]; last.From != Reconnecting || last.To != Connected {
		t.Fatalf("newest %v", last)
	}
}

func TestConnectionStateTimeInState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewConnectionStateManager()
		time.Sleep(5 * time.Second)
		if m.TimeInState() != 5*time.Second || m.State() != Disconnected {
			t.Fatalf("TimeInState %s, state %s", m.TimeInState(), m.State())
		}
		_ = m.Transition(Connecting)
		if m.TimeInState() != 0 || !m.Since().Equal(time.Now()) {
			t.Fatalf("TimeInState %s after a transition", m.TimeInState())
		}
		time.Sleep(time.Minute)
		if m.TimeInState() != time.Minute {
			t.Fatalf("TimeInState %s", m.TimeInState())
		}
		if h := m.History(); !h[0].At.Equal(time.Now().Add(-time.Minute)) {
			t.Fatalf("At = %v", h[0].At)
		}
	})
}

// Concurrent transitions: callbacks see one consistent chain, in history
// order, each exactly once.
func TestConnectionStateConcurrent(t *testing.T) {
	m := NewConnectionStateManager()
	var mu sync.Mutex
	var seen []Transition
	m.OnTransition(func(tr Transition) {
		mu.Lock()
		seen = append(seen, tr)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	var ok atomic.Int64
	for _, to := range []ConnectionState{Disconnected, Connecting, Connected, Reconnecting, Failed} {
		wg.Go(func() {
			for range 300 {
				if m.Transition(to) == nil {
					ok.Add(1)
				}
				_ = m.State()
			}
		})
	}
	wg.Wait()
	// A goroutine delivering callbacks does not return from Transition
	// until the queue is empty, so after wg.Wait every callback has run.
	mu.Lock()
	defer mu.Unlock()
	h := m.History()
	if int64(len(seen)) != ok.Load() {
		t.Fatalf("%d callbacks for %d transitions", len(seen), ok.Load())
	}
	if len(h) != min(len(seen), HistorySize) {
		t.Fatalf("history %d, callbacks %d", len(h), len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1].To != seen[i].From {
			t.Fatalf("callbacks out of order at %d: %v then %v", i, seen[i-1], seen[i])
		}
	}
	tail := seen[len(seen)-len(h):]
	for i := range h {
		if h[i] != tail[i] {
			t.Fatalf("callback %d = %v, history %v", i, tail[i], h[i])
		}
	}
}

func TestConnectionStateString(t *testing.T) {
	for s, want := range map[ConnectionState]string{Disconnected: "DISCONNECTED", Connecting: "CONNECTING", Connected: "CONNECTED", Reconnecting: "RECONNECTING", Failed: "FAILED", 7: "ConnectionState(7)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}
