package resilience

import (
	"fmt"
	"sync"
	"time"
)

// ConnectionState is one of the seed's five connection states. The zero
// value is Disconnected.
type ConnectionState uint8

// Connection states.
const (
	Disconnected ConnectionState = iota // not connected
	Connecting                          // establishing a connection
	Connected                           // connected and receiving
	Reconnecting                        // connection lost, trying again
	Failed                              // given up; only Connecting leaves it
)

var stateNames = [...]string{"DISCONNECTED", "CONNECTING", "CONNECTED", "RECONNECTING", "FAILED"}

// String returns the upper-case name used in md_state: "DISCONNECTED",
// "CONNECTING", "CONNECTED", "RECONNECTING" or "FAILED".
func (s ConnectionState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("ConnectionState(%d)", uint8(s))
}

// validTransitions is the seed's state diagram, exactly.
var validTransitions = [len(stateNames)][len(stateNames)]bool{
	Disconnected: {Connecting: true},
	Connecting:   {Connected: true, Failed: true},
	Connected:    {Reconnecting: true, Disconnected: true},
	Reconnecting: {Connected: true, Failed: true},
	Failed:       {Connecting: true},
}

// CanTransition reports whether from -> to is in the seed's diagram:
// DISCONNECTED->CONNECTING, CONNECTING->CONNECTED, CONNECTING->FAILED,
// CONNECTED->RECONNECTING, RECONNECTING->CONNECTED, RECONNECTING->FAILED,
// FAILED->CONNECTING, CONNECTED->DISCONNECTED.
func CanTransition(from, to ConnectionState) bool {
	return int(from) < len(stateNames) && int(to) < len(stateNames) && validTransitions[from][to]
}

// Transition is one recorded state change.
type Transition struct {
	From, To ConnectionState
	At       time.Time
	Err      error // the cause given to TransitionErr, or nil
}

// HistorySize is how many transitions a ConnectionStateManager retains.
const HistorySize = 100

// ConnectionStateManager tracks a connection's state through exactly the
// seed's diagram (see CanTransition) and notifies callbacks.
//
// Callbacks run outside the manager's lock, one at a time, in transition
// order, on the goroutine whose Transition found no delivery in progress.
// A callback may call Transition (for example, Failed -> Connecting to
// retry): the nested transition takes effect at once and its callbacks run
// after the current callback returns, so nothing deadlocks. Consequently,
// when transitions race from several goroutines, Transition can return
// before its own callbacks have run (another goroutine is delivering
// them); State is always current. Callbacks should be quick.
//
// History keeps the last HistorySize transitions. Safe for concurrent use.
type ConnectionStateManager struct {
	mu      sync.Mutex
	state   ConnectionState
	since   time.Time
	hist    [HistorySize]Transition // ring
	hstart  int
	hlen    int
	onState [len(stateNames)][]func(Transition)
	onAny   []func(Transition)
	d       dispatcher
}

// NewConnectionStateManager returns a manager in state Disconnected since
// now.
func NewConnectionStateManager() *ConnectionStateManager {
	return &ConnectionStateManager{since: time.Now()}
}

// State returns the current state.
func (m *ConnectionStateManager) State() ConnectionState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Since returns when the current state was entered.
func (m *ConnectionStateManager) Since() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.since
}

// TimeInState returns how long the manager has been in its current state.
func (m *ConnectionStateManager) TimeInState() time.Duration {
	return time.Since(m.Since())
}

// Transition moves to state to. A transition outside the seed's diagram
// (including to the current state) changes nothing and returns an error
// wrapping ErrInvalidTransition.
func (m *ConnectionStateManager) Transition(to ConnectionState) error {
	return m.TransitionErr(to, nil)
}

// TransitionErr is Transition recording cause (why the connection was lost
// or failed) in the Transition passed to callbacks and kept in History.
func (m *ConnectionStateManager) TransitionErr(to ConnectionState, cause error) error {
	m.mu.Lock()
	from := m.state
	if !CanTransition(from, to) {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s -> %s", ErrInvalidTransition, from, to)
	}
	tr := Transition{From: from, To: to, At: time.Now(), Err: cause}
	m.state, m.since = to, tr.At
	m.record(tr)
	perState, onAny := m.onState[to], m.onAny
	var mustRun bool
	if len(perState)+len(onAny) > 0 {
		mustRun = m.d.enqueue(func() {
			for _, f := range onAny {
				f(tr)
			}
			for _, f := range perState {
				f(tr)
			}
		})
	}
	m.mu.Unlock()
	if mustRun {
		m.d.run()
	}
	return nil
}

// record appends tr to the history ring. m.mu held.
func (m *ConnectionStateManager) record(tr Transition) {
	i := m.hstart + m.hlen
	if i >= HistorySize {
		i -= HistorySize
	}
	m.hist[i] = tr
	if m.hlen < HistorySize {
		m.hlen++
	} else {
		m.hstart++
		if m.hstart == HistorySize {
			m.hstart = 0
		}
	}
}

// History returns the retained transitions, oldest first (a copy).
func (m *ConnectionStateManager) History() []Transition {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Transition, m.hlen)
	for i := range out {
		out[i] = m.hist[(m.hstart+i)%HistorySize]
	}
	return out
}

func (m *ConnectionStateManager) on(s ConnectionState, f func(Transition)) {
	if f == nil {
		return
	}
	m.mu.Lock()
	m.onState[s] = append(m.onState[s], f)
	m.mu.Unlock()
}

// OnTransition registers f to be called on every transition, before the
// per-state callbacks.
func (m *ConnectionStateManager) OnTransition(f func(Transition)) {
	if f == nil {
		return
	}
	m.mu.Lock()
	m.onAny = append(m.onAny, f)
	m.mu.Unlock()
}

// OnConnecting registers f to be called on entering Connecting.
func (m *ConnectionStateManager) OnConnecting(f func(Transition)) { m.on(Connecting, f) }

// OnConnected registers f to be called on entering Connected.
func (m *ConnectionStateManager) OnConnected(f func(Transition)) { m.on(Connected, f) }

// OnReconnecting registers f to be called on entering Reconnecting.
func (m *ConnectionStateManager) OnReconnecting(f func(Transition)) { m.on(Reconnecting, f) }

// OnDisconnected registers f to be called on entering Disconnected.
func (m *ConnectionStateManager) OnDisconnected(f func(Transition)) { m.on(Disconnected, f) }

// OnFailed registers f to be called on entering Failed.
func (m *ConnectionStateManager) OnFailed(f func(Transition)) { m.on(Failed, f) }
