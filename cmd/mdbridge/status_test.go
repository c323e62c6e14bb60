package main

import (
	"strings"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

func TestErrorColumn(t *testing.T) {
	tests := []struct{ state, err, want string }{
		{"CONNECTED", "", ""},
		{"CONNECTED", "stale: no data for 30s", "earlier: stale: no data for 30s"},
		{"RECONNECTING", "stale: no data for 30s", "stale: no data for 30s"},
		{"FAILED", strings.Repeat("x", 80), strings.Repeat("x", 57) + "..."},
	}
	for _, tt := range tests {
		if got := errorColumn(tt.state, tt.err); got != tt.want {
			t.Errorf("errorColumn(%s, %q) = %q, want %q", tt.state, tt.err, got, tt.want)
		}
	}
}

// TestWatchRows: a watched key's rate comes from its last two revisions,
// so it stays the same between the writer's refreshes (the polling watch
// alternated between a rate and "-"), and age and staleness are computed
// at each refresh.
func TestWatchRows(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	entry := func(msgs uint64, updated time.Time) publisher.StateEntry {
		return publisher.StateEntry{Key: "binance.BTCUSDT.a", State: bridge.SymbolState{Updated: updated, Counters: bridge.Counters{Messages: msgs}}}
	}
	prev := map[string]publisher.StateEntry{"binance.BTCUSDT.a": entry(100, t0)}
	cur := map[string]publisher.StateEntry{"binance.BTCUSDT.a": entry(400, t0.Add(5*time.Second))}
	for _, now := range []time.Time{t0.Add(6 * time.Second), t0.Add(8 * time.Second)} {
		rows := watchRows(prev, cur, now)
		if len(rows) != 1 || rows[0].Rate != 60 || rows[0].Age != now.Sub(t0.Add(5*time.Second)) || rows[0].Stale {
			t.Fatalf("at %s: rows %+v, want rate 60, fresh", now.Sub(t0), rows)
		}
	}
	rows := watchRows(prev, cur, t0.Add(5*time.Second+publisher.DefaultStaleAfter+time.Second))
	if !rows[0].Stale {
		t.Fatalf("an entry not refreshed for longer than %s is not stale: %+v", publisher.DefaultStaleAfter, rows[0])
	}
	if rows := watchRows(nil, cur, t0); rows[0].Rate != -1 {
		t.Fatalf("rate %v without a previous revision, want -1 (unknown)", rows[0].Rate)
	}
}

// TestDataAgeColumn: one age per channel, by name, "never" before the first
// message and STALE where the bridge reported the channel stale.
func TestDataAgeColumn(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := bridge.SymbolState{Channels: map[string]bridge.ChannelState{
		"trade": {LastMessageTS: now.Add(-95 * time.Second).UnixNano(), Stale: true},
		"book":  {LastMessageTS: now.Add(-1234 * time.Millisecond).UnixNano()},
	}}
	if got, want := dataAgeColumn(st, now), "book 1.2s, trade 1m35s STALE"; got != want {
		t.Errorf("dataAgeColumn = %q, want %q", got, want)
	}
	st.Channels = map[string]bridge.ChannelState{"trade": {}}
	if got, want := dataAgeColumn(st, now), "trade never"; got != want {
		t.Errorf("dataAgeColumn = %q, want %q", got, want)
	}
	if got := dataAgeColumn(bridge.SymbolState{}, now); got != "-" {
		t.Errorf("dataAgeColumn without channels = %q, want -", got)
	}
}
