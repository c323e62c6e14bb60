package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/exsim"
)

// publishOnce appends ev to the collector's book events unless one with the
// same Nats-Msg-Id is there (what JetStream's duplicate window does with
// the snapshot service's publish of a requested snapshot).
func (c *collector) publishOnce(ev bridge.Event) (dup bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := ev.Exchange + "/" + ev.Symbol
	id := ev.MsgID()
	for i := range c.books[k] {
		if c.books[k][i].MsgID() == id {
			return true
		}
	}
	c.books[k] = append(c.books[k], ev)
	return false
}

// TestSnapshotRequestSameSeries is issue 19's first failure: a snapshot
// request on the control subject for a Bybit book. The snapshot the stream
// hands the snapshot service must be in the id series of the deltas it
// precedes, at every depth the adapter supports; before, it was the REST
// snapshot, whose u is the 1000-level stream's, and consumers' books froze
// or diverged. The service's publish is modeled with msg-ID dedup; the
// consumer replays with the strict wire rule and with bridge.BookBuilder.
func TestSnapshotRequestSameSeries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		venue  exsim.Venue
		market string
		depth  int
	}{
		{exsim.BybitSpot, bybit.MarketSpot, 1},
		{exsim.BybitSpot, bybit.MarketSpot, 50},
		{exsim.BybitSpot, bybit.MarketSpot, 200},
		{exsim.BybitSpot, bybit.MarketSpot, 1000},
		{exsim.BybitLinear, bybit.MarketLinear, 50},
		{exsim.BybitLinear, bybit.MarketLinear, 1000},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.market, tc.depth), func(t *testing.T) {
			t.Parallel()
			vc := venueCase{tc.market, tc.venue, func(t testing.TB, sim *exsim.Server, hc *http.Client) bridge.Exchange {
				a, err := bybit.New(bybit.Config{WSURL: sim.BybitWSURL(), RESTURL: sim.BybitRESTURL(), Market: tc.market,
					BookDepth: tc.depth, HTTPClient: hc}, testLogger())

				if err != nil {
					t.Fatal(err)
				}
				return a
			}}
			r := startFaultRun(t, vc, exsim.Config{Markets: []exsim.MarketConfig{market(tc.venue, "BTCUSDT", 20, 100)}}, nil, "BTCUSDT")
			name := r.ex.Name()
			for i := range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ev, err := r.s.Snapshot(ctx, name, "BTCUSDT")
				cancel()
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if ev.Type != bridge.EventBookSnapshot || ev.Depth != tc.depth {
					t.Fatalf("request %d: %s of depth %d, want a book.snapshot of the subscribed depth %d", i, ev.Type, ev.Depth, tc.depth)
				}
				if !r.col.publishOnce(ev) {
					t.Fatalf("request %d: snapshot last_id %d was not emitted by the stream: published on its own, it is not in the deltas' series", i, ev.LastID)
				}
				time.Sleep(100 * time.Millisecond) // let book updates move on between requests
			}
			quiesce(t, r.sim, r.col, name, tc.venue, "BTCUSDT")
			cmpDepth := min(tc.depth, 50)
			assertFinalBook(t, r.sim, r.col, name, tc.venue, "BTCUSDT", cmpDepth)
			b := bridge.NewBookBuilder(0)
			for _, ev := range r.col.booksOf(name, "BTCUSDT") {
				if b.Apply(ev) == bridge.BookRefused {
					t.Fatalf("BookBuilder refused snapshot %d of depth %d", ev.LastID, ev.Depth)
				}
			}
			if !b.Valid() {
				t.Fatal("BookBuilder: book not valid at the end")
			}
			if st := r.s.Stats(); st.Gaps != 0 {
				t.Errorf("%d gaps: a requested snapshot is not a gap", st.Gaps)
			}
		})
	}
}

// TestSnapshotRequestBookless: a Bybit stream without the book channel
// cannot serve a snapshot request (there are no deltas to continue); the
// error says so and wraps ErrUnknownSymbol.
func TestSnapshotRequestBookless(t *testing.T) {
	t.Parallel()
	r := startFaultRun(t, venueCases[1], exsim.Config{Markets: []exsim.MarketConfig{market(exsim.BybitSpot, "BTCUSDT", 20, 0)}},
		func(c *bridge.StreamConfig) { c.Channels = bridge.ChannelTrade }, "BTCUSDT")
	_, err := r.s.Snapshot(context.Background(), "bybit", "BTCUSDT")
	if err == nil || !errors.Is(err, bridge.ErrUnknownSymbol) {
		t.Fatalf("err %v, want ErrUnknownSymbol", err)
	}
}
