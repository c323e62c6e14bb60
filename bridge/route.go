package bridge

import (
	"maps"

	"github.com/qldata/mdbridge/resilience"
)

// Router is implemented by venues whose WebSocket serves different streams
// on different routes (Binance USD-M futures since 2026: book streams on
// /public, trades and the rest on /market; a connection receives only the
// data of its route). The runner then plans connections per route: every
// connection carries topics of one route only, and the adapter builds its
// URL from them. A symbol's trade and book are then on different
// connections; md_state still holds one entry per symbol, merged from the
// connections that carry it (see mergeState).
type Router interface {
	// Route names the route of a topic ("public", "market"). Topics of
	// one route may share a connection; topics of different routes never do.
	Route(t Topic) string
}

// routeGroups returns the channel sets of ch that share a route, in channel
// order: one set per route. Without a Router every channel shares one.
func routeGroups(ex Exchange, ch Channel) []Channel {
	r, ok := ex.(Router)
	if !ok {
		return []Channel{ch}
	}
	var routes []string
	var groups []Channel
	for c := Channel(1); c != 0; c <<= 1 { // every channel bit, whatever the width
		if ch&c == 0 {
			continue
		}
		name := r.Route(Topic{Symbol: "X", Channel: c})
		i := 0
		for i < len(routes) && routes[i] != name {
			i++
		}
		if i == len(routes) {
			routes = append(routes, name)
			groups = append(groups, 0)
		}
		groups[i] |= c
	}
	return groups
}

// stateRank orders connection states from healthy to broken: the merged
// state of a symbol carried by several connections is the worst of theirs.
func stateRank(s string) int {
	switch s {
	case resilience.Connected.String():
		return 0
	case resilience.Connecting.String():
		return 1
	case resilience.Reconnecting.String():
		return 2
	case resilience.Failed.String():
		return 3
	}
	return 4 // DISCONNECTED or unknown
}

// mergeState merges the states of one symbol on two connections (routed
// venues): the worse state with its since, attempt and error; both
// connection ids; the newest message and update; the counters summed.
func mergeState(a, b SymbolState) SymbolState {
	out := a
	if stateRank(b.State) > stateRank(a.State) {
		out.State, out.Since, out.Attempt, out.LastError = b.State, b.Since, b.Attempt, b.LastError
	}
	if b.Connection != "" {
		if out.Connection != "" {
			out.Connection += ","
		}
		out.Connection += b.Connection
	}
	out.LastMessageTS = max(a.LastMessageTS, b.LastMessageTS)
	if b.Updated.After(out.Updated) {
		out.Updated = b.Updated
	}
	out.Messages += b.Messages
	out.Duplicates += b.Duplicates
	out.Gaps += b.Gaps
	out.Snapshots += b.Snapshots
	out.Reconnects += b.Reconnects
	out.Backfilled += b.Backfilled
	out.Dropped += b.Dropped
	out.Missing += b.Missing
	out.PublishDropped += b.PublishDropped
	if len(b.Channels) > 0 {
		// Each route carries its own channels: the union.
		m := make(map[string]ChannelState, len(a.Channels)+len(b.Channels))
		maps.Copy(m, a.Channels)
		maps.Copy(m, b.Channels)
		out.Channels = m
	}
	return out
}

// mergedStates returns the states of the symbols in states merged with
// those of the other connections carrying them (routed venues); states
// unchanged otherwise.
func (s *Stream) mergedStates(from *shard, states []SymbolState) []SymbolState {
	if !s.routed {
		return states
	}
	for i := range states {
		for _, o := range s.carriers[states[i].Symbol] {
			if o == from {
				continue
			}
			if sym := o.syms[states[i].Symbol]; sym != nil {
				states[i] = mergeState(states[i], o.statesOf(o.stateName(), []*symbol{sym})[0])
			}
		}
	}
	return states
}
