package binance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
	"github.com/qldata/mdbridge/exsim"
)

// depthFrameN returns a combined-stream depthUpdate with n bid levels.
func depthFrameN(n int) string {
	var b strings.Builder
	b.WriteString(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BTCUSDT","U":40011287452,"u":40011287470,"b":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["16850.10000000","0.01200000"]`)
	}
	b.WriteString(`],"a":[]}}`)
	return b.String()
}

// assertFastDepth checks that the fast path takes frame with the general
// decoder's event.
func assertFastDepth(t *testing.T, a *Adapter, frame []byte) {
	t.Helper()
	got, ok := a.fastDepth(frame, 7, nil)
	if !ok {
		t.Fatalf("fast path refused %s", frame)
	}
	want, fr, err := a.decode(frame, 7, nil)
	if err != nil || fr.Kind != bridge.FrameData || len(got) != 1 || len(want) != 1 {
		t.Fatalf("%s: fast %d events, general %d (%v)", frame, len(got), len(want), err)
	}
	adaptertest.AssertEvent(t, got[0], want[0])
	if cap(got[0].Bids) != len(got[0].Bids) || cap(got[0].Asks) != len(got[0].Asks) {
		t.Fatalf("%s: sides not capacity-limited", frame)
	}
}

// TestFastDepthTaken: depthUpdates as Binance sends them (up to
// fastDepthLevels levels, empty sides, both time units) take the fast path
// with the general decoder's event; other shapes and larger ones do not.
// Then every depthUpdate the simulator sends takes it (those of at most
// fastDepthLevels levels: all of them here), and Decode gives the same
// event.
func TestFastDepthTaken(t *testing.T) {
	a := newTest(t, Config{})
	micro := newTest(t, Config{MicrosecondTimestamps: true})
	for _, frame := range []string{depthFrame20, depthCombined, depthFrameN(fastDepthLevels), depthFrameN(0),
		strings.Replace(depthFrame20, `"U":40011287452`, `"U":40011287470`, 1)} {
		assertFastDepth(t, a, []byte(frame))
		assertFastDepth(t, micro, []byte(frame))
	}
	for _, frame := range []string{
		depthFrameN(fastDepthLevels + 1),
		strings.Replace(depthFrame20, `"U":40011287452`, `"U":40011287471`, 1), // U > u
		strings.Replace(depthFrame20, `"s":"BTCUSDT"`, `"s":"btc usdt"`, 1),
		strings.Replace(depthFrame20, `"0.01200000"`, `"-0.012"`, 1),
		strings.Replace(depthFrame20, `"E":1672515782136`, `"E":9223372036855`, 1),
		strings.Replace(depthFrame20, `"u":40011287470,`, `"u":40011287470,"pu":1,`, 1),
		strings.Replace(depthFrame20, `["16850.10000000","0.01200000"]`, `["16850.10000000","0.01200000",""]`, 1),
		depthFrame20 + "\n",
		tradeCombined,
	} {
		if got, ok := a.fastDepth([]byte(frame), 7, []bridge.Event{{ID: "keep"}}); ok || len(got) != 1 || got[0].ID != "keep" {
			t.Errorf("fast path took %s (or changed dst: %d events)", frame, len(got))
		}
	}

	s := startSim(t, exsim.Config{Seed: 4})
	a, _ = simAdapter(t, s, Config{})
	ws := adaptertest.DialSim(t, a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}}))
	waitSubscribed(t, s, 1)
	if err := s.Generate(exsim.Binance, "BTCUSDT", 0, 300); err != nil {
		t.Fatal(err)
	}
	dp, _ := s.Generated(exsim.Binance, "BTCUSDT", exsim.SeriesDepth)
	var frames, small, taken int
	for last := dp.First - 1; last < dp.Last; {
		b := adaptertest.ReadFrame(t, ws)
		frames++
		want, fr, err := a.decode(b, 3, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 || want[0].Type != bridge.EventBookDelta {
			t.Fatalf("general decoder on %s: %v %+v", b, err, fr)
		}
		last = want[0].LastID
		if len(want[0].Bids)+len(want[0].Asks) <= fastDepthLevels {
			small++
		}
		got, ok := a.fastDepth(b, 3, nil)
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
	t.Logf("%d depthUpdates, %d of at most %d levels, %d taken by the fast path", frames, small, fastDepthLevels, taken)
	if taken != small || taken != frames || taken < 100 {
		t.Fatalf("fast path took %d of %d depthUpdates (%d of at most %d levels)", taken, frames, small, fastDepthLevels)
	}
}

// TestDecodeDepthAllocs: Decode of a depthUpdate allocates nothing (the
// general decoder copies the frame and allocates the levels).
func TestDecodeDepthAllocs(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}}) // known symbols are interned without a copy
	for _, frame := range []string{depthFrame20, depthFrameN(2)} {
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

// FuzzFastDepth: whenever the fast path accepts a frame, the general
// decoder accepts it too with the same event, and encoding/json decodes it
// to the same update; the event does not change when the frame buffer is
// overwritten; when it refuses, dst is unchanged.
func FuzzFastDepth(f *testing.F) {
	for _, s := range []string{depthFrame20, depthFrameN(fastDepthLevels), depthFrameN(fastDepthLevels + 1), depthFrameN(0), tradeCombined, depthCombined,
		`{"stream":"x","data":{"e":"depthUpdate","E":9223372036854,"s":"ETHUSDT","U":0,"u":0,"b":[],"a":[["0.5","10"]]}}`,
	} {
		f.Add([]byte(s))
	}
	a := newTest(f, Config{MaxFrameBytes: 64 << 10})
	keep := bridge.Event{ID: "keep"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := a.fastDepth(frame, 5, []bridge.Event{keep})
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
		adaptertest.CheckEvent(t, ev, Name)
		var std stdDepth
		if err := json.Unmarshal(frame, &std); err != nil {
			t.Fatalf("fast path accepted %q; encoding/json: %v", frame, err)
		}
		if ev.TS != std.Data.UpperE*1_000_000 || ev.Symbol != std.Data.S || ev.FirstID != std.Data.UpperU || ev.LastID != std.Data.LowerU ||
			std.Data.LowerE != "depthUpdate" || fmt.Sprint(ev.Bids, ev.Asks) != fmt.Sprint(std.Data.B, std.Data.A) ||
			len(ev.Bids) != len(std.Data.B) || len(ev.Asks) != len(std.Data.A) {
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

// BenchmarkDecodeDepthGeneral is BenchmarkDecodeDepth through the general
// decoder, the path every depthUpdate took before fastDepth.
func BenchmarkDecodeDepthGeneral(b *testing.B) {
	a := newTest(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	adaptertest.BenchDecode(b, general{a}, depthFrame20)
}

// general is the general decoder alone (no fast path).
type general struct{ *Adapter }

func (g general) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	return g.decode(frame, recvTS, dst)
}
