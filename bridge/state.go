package bridge

import (
	"fmt"

	"github.com/qldata/mdbridge/resilience"
)

// transition moves the shard's state machine and reports the new state of
// every symbol to the StateSink. A transition outside the seed's diagram is
// logged (a bug) and the state is reported anyway.
func (sh *shard) transition(to resilience.ConnectionState, cause error) {
	sh.stMu.Lock()
	var err error
	if cause != nil {
		err = sh.sm.TransitionErr(to, cause)
		sh.lastErr = cause.Error()
	} else {
		err = sh.sm.Transition(to)
	}
	if err != nil {
		sh.log.Error("invalid connection state transition", "from", sh.sm.State(), "to", to, "err", err)
	}
	sh.since = sh.st.now()
	sh.stMu.Unlock()
	sh.reportState(to.String())
}

// report sends the current state of every symbol to the StateSink.
func (sh *shard) report() { sh.reportState(sh.stateName()) }

// stateName is the state to report: the state machine's, or DISCONNECTED
// once the shard has finished.
func (sh *shard) stateName() string {
	sh.stMu.Lock()
	defer sh.stMu.Unlock()
	if sh.final {
		return resilience.Disconnected.String()
	}
	return sh.sm.State().String()
}

// reportState sends state for every symbol of the shard to the StateSink.
func (sh *shard) reportState(state string) {
	sink := sh.st.sink
	if sink == nil {
		return
	}
	for _, st := range sh.st.mergedStates(sh, sh.symbolStates(state)) {
		sink.PutState(st)
	}
}

// symbolStates builds the SymbolState of every symbol of the shard.
func (sh *shard) symbolStates(state string) []SymbolState { return sh.statesOf(state, sh.list) }

// statesOf builds the SymbolState of the shard's symbols list.
func (sh *shard) statesOf(state string, list []*symbol) []SymbolState {
	now := sh.st.now()
	sh.stMu.Lock()
	base := SymbolState{
		Exchange:      sh.st.cfg.exName,
		Instance:      sh.st.cfg.Instance,
		State:         state,
		Since:         sh.since,
		Updated:       now,
		Connection:    sh.connID,
		Attempt:       sh.attempt,
		LastError:     sh.lastErr,
		ClockOffsetNS: sh.st.clockOffset(),
	}
	subErrs := make([]string, len(list))
	for i, sym := range list {
		subErrs[i] = sym.subErr
	}
	sh.stMu.Unlock()
	malformed := sh.ctr.malformed.Load()
	reconnects := sh.ctr.reconnects.Load()
	out := make([]SymbolState, 0, len(list))
	for i, sym := range list {
		st := base
		st.Symbol = sym.name
		if subErrs[i] != "" {
			st.LastError = subErrs[i]
		}
		st.LastMessageTS = sym.ctr.lastMsgNS.Load()
		st.Counters = sym.ctr.counters()
		// Malformed frames cannot be attributed to a symbol: every symbol
		// of the connection shows them as dropped input.
		st.Dropped += malformed
		st.Reconnects = reconnects
		out = append(out, st)
	}
	return out
}

// setAttempt records the consecutive failed attempts and the last error.
func (sh *shard) setAttempt(n int, err error) {
	sh.stMu.Lock()
	sh.attempt = n
	if err != nil {
		sh.lastErr = err.Error()
	}
	sh.stMu.Unlock()
}

// nextConnID names the shard's next connection "<exchange>-<shard>.<n>".
func (sh *shard) nextConnID() string {
	sh.stMu.Lock()
	defer sh.stMu.Unlock()
	sh.connSeq++
	return fmt.Sprintf("%s-%d.%d", sh.st.cfg.exName, sh.idx, sh.connSeq)
}

func (sh *shard) setConnID(id string) {
	sh.stMu.Lock()
	sh.connID = id
	sh.stMu.Unlock()
}

func (sh *shard) currentConnID() string {
	sh.stMu.Lock()
	defer sh.stMu.Unlock()
	return sh.connID
}

// connStats describes the shard for Stats.
func (sh *shard) connStats() ConnStats {
	sh.stMu.Lock()
	defer sh.stMu.Unlock()
	return ConnStats{
		Shard:      sh.idx,
		Connection: sh.connID,
		State:      sh.sm.State().String(),
		Since:      sh.since,
		Attempt:    sh.attempt,
		Topics:     len(sh.topics),
		Symbols:    len(sh.list),
		LastError:  sh.lastErr,
	}
}
