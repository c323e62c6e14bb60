package bybit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
	"github.com/qldata/mdbridge/exsim"
)

// bookFrame returns an orderbook.50.BTCUSDT delta with n bid levels.
func bookFrame(n int) string {
	var b strings.Builder
	b.WriteString(`{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["30247.20","30.028"]`)
	}
	b.WriteString(`],"a":[],"u":177400507,"seq":66544703342},"cts":1687940967464}`)
	return b.String()
}

// assertFastBook checks that the fast path takes frame with the general
// decoder's event.
func assertFastBook(t *testing.T, a *Adapter, frame string) {
	t.Helper()
	got, ok := a.fastBook([]byte(frame), 7, nil)
	if !ok {
		t.Fatalf("fast path refused %s", frame)
	}
	want, fr, err := a.decode([]byte(frame), 7, nil)
	if err != nil || fr.Kind != bridge.FrameData || len(got) != 1 || len(want) != 1 {
		t.Fatalf("%s: fast %d events, general %d (%v)", frame, len(got), len(want), err)
	}
	adaptertest.AssertEvent(t, got[0], want[0])
	if cap(got[0].Bids) != len(got[0].Bids) || cap(got[0].Asks) != len(got[0].Asks) {
		t.Fatalf("%s: sides not capacity-limited: %d/%d %d/%d", frame, len(got[0].Bids), cap(got[0].Bids), len(got[0].Asks), cap(got[0].Asks))
	}
}

// TestFastBookTaken: orderbook snapshots and deltas as Bybit sends them
// (with and without "seq" and "cts", empty sides, up to fastBookLevels
// levels) take the fast path with the general decoder's event; frames of
// another shape, larger ones and the depth-1 topic decoded as a bbo do not.
// Then the simulator's own frames: every book frame of at most
// fastBookLevels levels it sends, spot and linear, takes the fast path, and
// Decode gives the same event.
func TestFastBookTaken(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	for _, frame := range []string{bookSnapshot, bookDelta,
		strings.Replace(bookDelta, `,"seq":66544703342`, "", 1),
		strings.Replace(bookDelta, `,"cts":1687940967464}`, "}", 1),
		strings.Replace(bookDelta, `"a":[["30248.70","0"]]`, `"a":[]`, 1),
		`{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1,"seq":0},"cts":0}`,
		bookFrame(fastBookLevels),
	} {
		assertFastBook(t, a, frame)
	}
	one := newTest(t, Config{BookDepth: 1})
	one.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	depth1 := strings.Replace(bookSnapshot, "orderbook.50.", "orderbook.1.", 1)
	assertFastBook(t, one, depth1)
	for _, frame := range []string{
		depth1, // a bbo for this adapter
		bookFrame(fastBookLevels + 1),
		strings.Replace(bookDelta, `"type":"delta"`, `"type":"Delta"`, 1),
		strings.Replace(bookDelta, `orderbook.50.`, `orderbook.050.`, 1),
		strings.Replace(bookDelta, `orderbook.50.`, `orderbook.0.`, 1),
		strings.Replace(bookDelta, `"data":{"s":"BTCUSDT"`, `"data":{"s":"ETHUSDT"`, 1),
		strings.Replace(bookDelta, `"30.028"`, `"30.028 "`, 1),
		strings.Replace(bookDelta, `"30.028"`, `"30.02\u0038"`, 1),
		strings.Replace(bookDelta, `["30245.40","0.224"]`, `["30245.40","0.224","x"]`, 1),
		strings.Replace(bookDelta, `,"u":177400507`, `,"x":1,"u":177400507`, 1),
		strings.Replace(bookDelta, `"ts":1687940967466`, `"ts":9223372036855`, 1),
		strings.Replace(bookDelta, `"b":[`, `"b": [`, 1),
		bookDelta + " ",
		tradeFrame,
	} {
		if got, ok := a.fastBook([]byte(frame), 7, []bridge.Event{{ID: "keep"}}); ok || len(got) != 1 || got[0].ID != "keep" {
			t.Errorf("fast path took %s (or changed dst: %d events)", frame, len(got))
		}
	}

	for _, market := range []string{MarketSpot, MarketLinear} {
		t.Run(market, func(t *testing.T) {
			s := startSim(t, exsim.Config{Seed: 9})
			a, _ := simAdapter(t, s, Config{Market: market})
			topics := []bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}}
			ws := adaptertest.DialSim(t, a.URL(topics))
			id := int64(0)
			for _, f := range a.SubscribeFrames(topics, func() int64 { id++; return id }) {
				if err := ws.WriteMessage(websocket.TextMessage, f); err != nil {
					t.Fatal(err)
				}
			}
			var frames, small, taken int
			var ob exsim.Range
			for last := int64(-1); frames == 0 || last < ob.Last; {
				b := adaptertest.ReadFrame(t, ws)
				if !bytes.HasPrefix(b, []byte(`{"topic":"orderbook.`)) {
					continue // the subscribe ack
				}
				if frames == 0 { // the snapshot: the subscription is live
					if err := s.Generate(venueOf(market), "BTCUSDT", 0, 500); err != nil {
						t.Fatal(err)
					}
					ob, _ = s.Generated(venueOf(market), "BTCUSDT", exsim.SeriesOrderbook(50))
				}
				frames++
				want, fr, err := a.decode(b, 3, nil)
				if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 {
					t.Fatalf("general decoder on %s: %v %+v", b, err, fr)
				}
				last = want[0].LastID
				if len(want[0].Bids)+len(want[0].Asks) <= fastBookLevels {
					small++
				}
				got, ok := a.fastBook(b, 3, nil)
				if !ok {
					continue
				}
				taken++
				adaptertest.AssertEvent(t, got[0], want[0])
				dec, _, err := a.Decode(b, 3, nil)
				if err != nil || len(dec) != 1 {
					t.Fatalf("Decode %s: %v", b, err)
				}
				adaptertest.AssertEvent(t, dec[0], want[0])
			}
			t.Logf("%d book frames, %d of at most %d levels, %d taken by the fast path", frames, small, fastBookLevels, taken)
			if taken != small || taken < frames-1 || taken < 100 {
				t.Fatalf("fast path took %d of %d book frames (%d of at most %d levels)", taken, frames, small, fastBookLevels)
			}
		})
	}
}

// TestDecodeBookAllocs: Decode of a book delta allocates nothing (the
// general decoder copies the frame and allocates the levels).
func TestDecodeBookAllocs(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	for _, frame := range []string{bookDelta, bookSnapshot} {
		buf := []byte(frame)
		dst := make([]bridge.Event, 0, 1)
		if n := testing.AllocsPerRun(1000, func() {
			var err error
			if dst, _, err = a.Decode(buf, 1, dst[:0]); err != nil || len(dst) != 1 {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Decode(%s): %v allocations per frame, want 0", frame, n)
		}
	}
}

// stdBook declares the keys of an orderbook frame for encoding/json.
type stdBook struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	TS    int64  `json:"ts"`
	Data  struct {
		S   string      `json:"s"`
		B   [][2]string `json:"b"`
		A   [][2]string `json:"a"`
		U   int64       `json:"u"`
		Seq int64       `json:"seq"`
	} `json:"data"`
	CTS int64 `json:"cts"`
}

// FuzzFastBook: whenever the fast path accepts a frame, the general
// decoder accepts it too with the same event, and encoding/json decodes it
// to the same book update; the event does not change when the frame buffer
// is overwritten; when it refuses, dst is unchanged.
func FuzzFastBook(f *testing.F) {
	for _, s := range []string{bookSnapshot, bookDelta, tradeFrame, bookFrame(fastBookLevels), bookFrame(fastBookLevels + 1),
		strings.Replace(bookDelta, `,"seq":66544703342},"cts":1687940967464}`, "}}", 1),
		`{"topic":"orderbook.1.ETHUSDT","type":"snapshot","ts":9223372036854,"data":{"s":"ETHUSDT","b":[["0.5","10"]],"a":[],"u":0},"cts":0}`,
	} {
		f.Add([]byte(s))
	}
	a := newTest(f, Config{MaxFrameBytes: 64 << 10})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	keep := bridge.Event{ID: "keep"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := a.fastBook(frame, 5, []bridge.Event{keep})
		if !ok {
			if len(got) != 1 || got[0].ID != keep.ID {
				t.Fatalf("dst changed on refusal: %+v", got)
			}
			return
		}
		if len(got) != 2 {
			t.Fatalf("fast path accepted %q with %d events", frame, len(got)-1)
		}
		ev := got[1]
		want, fr, err := a.decode(frame, 5, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 {
			t.Fatalf("fast path accepted %q; general: %v kind %d, %d events", frame, err, fr.Kind, len(want))
		}
		adaptertest.AssertEvent(t, ev, want[0])
		adaptertest.CheckEvent(t, ev, a.core.Name)
		checkEvent(t, ev)
		var std stdBook
		if err := json.Unmarshal(frame, &std); err != nil {
			t.Fatalf("fast path accepted %q; encoding/json: %v", frame, err)
		}
		same := func(got []bridge.Level, want [][2]string) bool {
			if len(got) != len(want) {
				return false
			}
			for i := range got {
				if got[i] != bridge.Level(want[i]) {
					return false
				}
			}
			return true
		}
		if ev.TS != std.TS*1_000_000 || ev.Symbol != std.Data.S || ev.LastID != std.Data.U || ev.Seq != std.Data.Seq ||
			ev.Type.String() != "book."+std.Type ||
			!same(ev.Bids, std.Data.B) || !same(ev.Asks, std.Data.A) || !strings.HasSuffix(std.Topic, "."+std.Data.S) {
			t.Fatalf("%q: %+v; encoding/json %+v", frame, ev, std)
		}
		kept := fmt.Sprintf("%#v", ev)
		for i := range frame {
			frame[i] = '#'
		}
		if now := fmt.Sprintf("%#v", ev); now != kept {
			t.Fatalf("event changed with the frame buffer: %s, was %s", now, kept)
		}
	})
}
