package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

func TestRecorderOutages(t *testing.T) {
	r := newRecorder()
	k := pairKey{0, "binance", "BTCUSDT"}
	tl := r.pair(k)
	tl.trans = []transition{{0, "CONNECTED"}, {100, "RECONNECTING"}, {150, "CONNECTING"}, {300, "CONNECTED"}, {650, "RECONNECTING"}, {700, "CONNECTED"}, {900, "KILLED"}}
	tl.pubs = []int64{0, 10, 20, 2000, 2010, 2020}
	tests := []struct {
		name     string
		from, to int64
		wantEnd  int64
		wantOK   bool
	}{
		{"reconnect and pause inside the window", 50, 120, 2000, true}, // the 20->2000 pause ends last
		{"publish pause starting in the window", 15, 30, 2000, true},
		{"reconnect only (the pause began long before)", 600, 720, 700, true},
		{"outage that never ended", 850, 950, 0, false},
		{"nothing in the window", 2005, 2015, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, ok := r.outageEnd(k, tt.from, tt.to, 500)
			if end != tt.wantEnd || ok != tt.wantOK {
				t.Fatalf("outageEnd(%d, %d) = %d, %v; want %d, %v", tt.from, tt.to, end, ok, tt.wantEnd, tt.wantOK)
			}
		})
	}
	if got := r.nextPublish(k, 11); got != 20 {
		t.Fatalf("nextPublish = %d, want 20", got)
	}
	if got := r.nextPublish(k, 3000); got != 0 {
		t.Fatalf("nextPublish past the end = %d", got)
	}
	if _, ok := r.outageEnd(pairKey{1, "x", "y"}, 0, 1, 1); ok {
		t.Fatal("unknown pair has an outage")
	}
}

func TestRecorderTees(t *testing.T) {
	r := newRecorder()
	var got []bridge.Event
	pub := teePublisher{next: bridge.HandlerFunc(func(_ context.Context, evs []bridge.Event) error {
		got = append(got, evs...)
		return nil
	}), rec: r, replica: 1}
	evs := []bridge.Event{binTrade(1), binTrade(2), snap(5, nil, nil)}
	if err := pub.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("tee passed %d events", len(got))
	}
	k := pairKey{1, "binance", "BTCUSDT"}
	if n := len(r.pairs[k].pubs); n != 1 {
		t.Fatalf("%d publish times for one call", n)
	}
	if o := r.snapshotOrigin(time.Now(), "binance", "BTCUSDT", 5); o == "unknown" {
		t.Fatal("snapshot origin not recorded")
	}
	var states []bridge.SymbolState
	sink := teeSink{next: stateFunc(func(st bridge.SymbolState) { states = append(states, st) }), rec: r, replica: 1}
	for _, s := range []string{"CONNECTING", "CONNECTED", "CONNECTED", "RECONNECTING"} {
		sink.PutState(bridge.SymbolState{Exchange: "binance", Symbol: "BTCUSDT", State: s})
	}
	if len(states) != 4 || len(r.pairs[k].trans) != 3 {
		t.Fatalf("%d states passed, %d transitions recorded", len(states), len(r.pairs[k].trans))
	}
	r.markDown(1, "KILLED")
	if last := r.pairs[k].trans[len(r.pairs[k].trans)-1]; last.state != "KILLED" {
		t.Fatalf("markDown: last transition %+v", last)
	}
	r.stop()
	_ = pub.Publish(context.Background(), evs)
	if n := len(r.pairs[k].pubs); n != 1 {
		t.Fatal("recorded after stop")
	}
}

type stateFunc func(bridge.SymbolState)

func (f stateFunc) PutState(st bridge.SymbolState) { f(st) }
