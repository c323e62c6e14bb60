package bridge

import (
	"context"
	"strings"
	"testing"
)

type nopPub struct{}

func (nopPub) Publish(context.Context, []Event) error { return nil }

// chanVenue is a pure-logic stand-in for a venue with every channel; only
// what NewStream asks is real.
type chanVenue struct {
	Exchange // nil: other methods panic (not used)
}

func (chanVenue) Name() string         { return "okx-swap" }
func (chanVenue) Channels() Channel    { return allChannels }
func (chanVenue) Limits() Limits       { return Limits{MaxTopicsPerConn: 100} }
func (chanVenue) BookMode() BookMode   { return BookStreamChained }
func (chanVenue) Heartbeat() Heartbeat { return Heartbeat{} }

// chanShard returns the one shard of a stream of sym with channels ch and
// a function that runs events through it and returns what it emitted.
func chanShard(t *testing.T, ch Channel, sym string) func(evs ...Event) []Event {
	t.Helper()
	s, err := NewStream(StreamConfig{Exchange: chanVenue{}, Symbols: []string{sym}, Channels: ch}, nopPub{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh := s.shards[0]
	return func(evs ...Event) []Event {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for i := range evs {
			evs[i].Exchange, evs[i].Symbol = "okx-swap", sym
			sh.process(&evs[i])
		}
		out := sh.out
		sh.out = nil
		return out
	}
}

// TestBBOSeqReset: a bbo whose id went lower is a repeat, unless it is
// marked FlagSeqMayReset and newer (OKX maintenance), which restarts the
// series.
func TestBBOSeqReset(t *testing.T) {
	run := chanShard(t, ChannelBBO, "BTC-USDT-SWAP")
	bbo := func(id, ts int64, flags uint8) Event {
		return Event{Type: EventBBO, LastID: id, TS: ts, Flags: flags, Price: "1", Qty: "1", More: [3]string{"2", "1"}}
	}
	const f = FlagSeqMayReset
	out := run(bbo(100, 10, f), bbo(100, 11, f), bbo(90, 9, f), bbo(5, 12, f), bbo(6, 13, f), bbo(5, 14, f), bbo(3, 14, 0))
	var ids []int64
	for _, ev := range out {
		ids = append(ids, ev.LastID)
	}
	// 100 again: a repeat; 90, older: dropped; 5, lower with a newer ts:
	// a reset; 6 continues; 5 at ts 14 > 13: a reset again; 3 without
	// the flag: old, dropped.
	if want := []int64{100, 5, 6, 5}; !equalIDs(ids, want) {
		t.Fatalf("emitted %v, want %v", ids, want)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOpenBarWithoutPushTime: OKX open-bar updates (ts = open time) are
// emitted when their volume or close changed, each with its own msg id;
// the closed bar once.
func TestOpenBarWithoutPushTime(t *testing.T) {
	run := chanShard(t, KlineOpenChannel(Interval1m), "BTC-USDT")
	const open = int64(60e9)
	bar := func(vol, cl string, closed bool) Event {
		ev := Event{Type: EventKline, TS: open}
		ev.SetBar(Bar{Interval: Interval1m, OpenTime: open, CloseTime: 2*open - 1e6, Open: "1", High: "2", Low: "1",
			Close: cl, Volume: vol, QuoteVolume: "3", Trades: -1, Closed: closed})
		return ev
	}
	out := run(bar("1", "1", false), bar("1", "1", false), bar("2", "1.5", false), bar("1", "1", false), bar("2", "2", false),
		bar("3", "2", true), bar("3", "2", true))
	var ids []string
	for _, ev := range out {
		ids = append(ids, ev.MsgID())
	}
	want := []string{
		"okx-swap:BTC-USDT:kline:1m:60000000000:open:v1:1",
		"okx-swap:BTC-USDT:kline:1m:60000000000:open:v2:1.5",
		"okx-swap:BTC-USDT:kline:1m:60000000000:open:v1:1", // a late copy from the other connection: the same id, JetStream drops it
		"okx-swap:BTC-USDT:kline:1m:60000000000:open:v2:2",
		"okx-swap:BTC-USDT:kline:1m:60000000000",
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("ids\n%s\nwant\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	if out[len(out)-1].TS != 2*open-1e6 {
		t.Fatalf("closed bar ts %d", out[len(out)-1].TS)
	}
}

// TestTickerParts: OKX ticker parts merge into one state without a
// snapshot; each part is deduplicated by its own ts and seq, whatever the
// other parts' times.
func TestTickerParts(t *testing.T) {
	run := chanShard(t, ChannelTicker, "BTC-USDT-SWAP")
	part := func(tag int, ts int64, seq int64, set func(e *Event)) Event {
		e := Event{Type: EventTicker, TS: ts, LastID: seq<<3 | int64(tag), Depth: tag, Flags: FlagDelta}
		set(&e)
		return e
	}
	mark := func(ts, seq int64, px string) Event {
		return part(1, ts, seq, func(e *Event) { e.More[0], e.Flags = px, e.Flags|HasMark })
	}
	index := func(ts, seq int64, px string) Event {
		return part(2, ts, seq, func(e *Event) { e.More[1], e.Flags = px, e.Flags|HasIndex })
	}
	fund := func(ts, seq int64, r string, next int64) Event {
		return part(3, ts, seq, func(e *Event) { e.More[2], e.Seq, e.Flags = r, next, e.Flags|HasFunding|HasNextFunding })
	}
	out := run(mark(10, 1, "100"), index(5, 1, "99"), mark(10, 1, "100"), fund(7, 1, "-0.01", 1000), mark(9, 2, "98"),
		mark(10, 3, "101"), index(5, 1, "99"))
	var got []string
	for _, ev := range out {
		tk := ev.Ticker()
		if ev.Flags != 0 || ev.Depth != 0 {
			t.Fatalf("emitted flags %d depth %d", ev.Flags, ev.Depth)
		}
		got = append(got, strings.Join([]string{tk.MarkPrice, tk.IndexPrice, tk.FundingRate}, "/")+":"+ev.MsgID())
	}
	want := []string{
		"100//:okx-swap:BTC-USDT-SWAP:ticker:10:9",
		"100/99/:okx-swap:BTC-USDT-SWAP:ticker:5:10",       // older ts than the mark's: still new for the index
		"100/99/-0.01:okx-swap:BTC-USDT-SWAP:ticker:7:11",  // mark 100 again: a repeat; funding
		"101/99/-0.01:okx-swap:BTC-USDT-SWAP:ticker:10:25", // mark at ts 9: older; at ts 10 with other values: new
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out[2].Ticker().NextFundingTime != 1000 {
		t.Fatal("next funding time not merged")
	}
}
