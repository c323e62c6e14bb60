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

// usdmDepthN returns a combined-stream USD-M depthUpdate with n bid levels
// and the simulator's (and the venue's) trailing "st".
func usdmDepthN(n int) string {
	var b strings.Builder
	b.WriteString(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1772000000200,"T":1772000000198,"s":"BTCUSDT","U":9100000105,"u":9100000124,"pu":9100000101,"b":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["97012.40","1.500"]`)
	}
	b.WriteString(`],"a":[],"st":1}}`)
	return b.String()
}

// generalUSDM is the general binance-usdm decoder alone (no fast path).
type generalUSDM struct{ *Adapter }

func (g generalUSDM) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	return g.decodeUSDM(frame, recvTS, dst)
}

// assertFastUSDMDepth checks that the fast path takes frame with the
// general decoder's event.
func assertFastUSDMDepth(t *testing.T, a *Adapter, frame []byte) {
	t.Helper()
	got, ok := a.fastUSDMDepth(frame, 7, nil)
	if !ok {
		t.Fatalf("fast path refused %s", frame)
	}
	want, fr, err := a.decodeUSDM(frame, 7, nil)
	if err != nil || fr.Kind != bridge.FrameData || len(got) != 1 || len(want) != 1 {
		t.Fatalf("%s: fast %d events, general %d (%v)", frame, len(got), len(want), err)
	}
	adaptertest.AssertEvent(t, got[0], want[0])
	if cap(got[0].Bids) != len(got[0].Bids) || cap(got[0].Asks) != len(got[0].Asks) {
		t.Fatalf("%s: sides not capacity-limited", frame)
	}
}

// TestFastUSDMDepthTaken: USD-M depthUpdates as the futures streams send
// them (up to fastDepthLevels levels, empty sides, with and without the
// trailing ps and st) take the fast path with the general decoder's event;
// other shapes, larger ones and those the general decoder refuses do not.
// Then every depthUpdate the simulator's USD-M venue sends takes it, and
// Decode gives the same event.
func TestFastUSDMDepthTaken(t *testing.T) {
	a := newUSDM(t, Config{})
	for _, frame := range []string{usdmDepth, usdmDepth20, usdmDepthN(fastDepthLevels), usdmDepthN(0),
		strings.Replace(usdmDepth, `,"ps":"BTCUSDT"`, ``, 1),
		strings.Replace(usdmDepth, `,"st":1`, ``, 1),
		strings.Replace(usdmDepth20, `"U":9100000105`, `"U":9100000124`, 1), // U == u
		strings.Replace(usdmDepth20, `"pu":9100000101`, `"pu":9100000123`, 1),
	} {
		assertFastUSDMDepth(t, a, []byte(frame))
	}
	for _, frame := range []string{
		usdmDepthN(fastDepthLevels + 1),
		strings.Replace(usdmDepth20, `"U":9100000105`, `"U":9100000125`, 1),   // U > u
		strings.Replace(usdmDepth20, `"pu":9100000101`, `"pu":9100000124`, 1), // pu not below u
		strings.Replace(usdmDepth20, `,"pu":9100000101`, ``, 1),
		strings.Replace(usdmDepth20, `"s":"BTCUSDT"`, `"s":"btc usdt"`, 1),
		strings.Replace(usdmDepth20, `"1.500"`, `"-1.5"`, 1),
		strings.Replace(usdmDepth20, `"E":1772000000200`, `"E":9223372036855`, 1),
		strings.Replace(usdmDepth, `"st":1`, `"st":"1"`, 1),
		strings.Replace(usdmDepth, `"ps":"BTCUSDT","st":1`, `"st":1,"ps":"BTCUSDT"`, 1),
		strings.Replace(usdmDepth, `"ps":"BTCUSDT"`, `"ps":"BTC\"USDT"`, 1),
		usdmDepth + "\n",
		usdmAggTrade,
		depthFrame20, // Spot's layout (no T, no pu)
	} {
		if got, ok := a.fastUSDMDepth([]byte(frame), 7, []bridge.Event{{ID: "keep"}}); ok || len(got) != 1 || got[0].ID != "keep" {
			t.Errorf("fast path took %s (or changed dst: %d events)", frame, len(got))
		}
	}

	s := adaptertest.StartSim(t, exsim.Config{Seed: 4, InboundLimit: -1,
		Markets: []exsim.MarketConfig{{Venue: exsim.BinanceUSDM, Symbol: "BTCUSDT"}}})
	a = newUSDM(t, Config{WSURL: s.BinanceUSDMWSURL(), RESTURL: s.BinanceUSDMRESTURL()})
	ws := adaptertest.DialSim(t, a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}}))
	waitSubscribed(t, s, 1)
	if err := s.Generate(exsim.BinanceUSDM, "BTCUSDT", 0, 300); err != nil {
		t.Fatal(err)
	}
	dp, _ := s.Generated(exsim.BinanceUSDM, "BTCUSDT", exsim.SeriesDepth)
	var frames, small, taken int
	for last := dp.First - 1; last < dp.Last; {
		b := adaptertest.ReadFrame(t, ws)
		want, fr, err := a.decodeUSDM(b, 3, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 || want[0].Type != bridge.EventBookDelta {
			t.Fatalf("general decoder on %s: %v %+v", b, err, fr)
		}
		frames++
		last = want[0].LastID
		if len(want[0].Bids)+len(want[0].Asks) <= fastDepthLevels {
			small++
		}
		got, ok := a.fastUSDMDepth(b, 3, nil)
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

// TestDecodeUSDMDepthAllocs: Decode of a USD-M depthUpdate allocates
// nothing (the general decoder copies the frame and allocates the levels).
func TestDecodeUSDMDepthAllocs(t *testing.T) {
	a := newUSDM(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}}) // known symbols are interned without a copy
	for _, frame := range []string{usdmDepth, usdmDepth20, usdmDepthN(2)} {
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

// stdUSDMDepth is a USD-M depthUpdate for encoding/json.
type stdUSDMDepth struct {
	Stream string `json:"stream"`
	Data   struct {
		LowerE string         `json:"e"`
		UpperE int64          `json:"E"`
		UpperT int64          `json:"T"`
		S      string         `json:"s"`
		UpperU int64          `json:"U"`
		LowerU int64          `json:"u"`
		PU     int64          `json:"pu"`
		B      []bridge.Level `json:"b"`
		A      []bridge.Level `json:"a"`
		PS     string         `json:"ps"`
		ST     int64          `json:"st"`
	} `json:"data"`
}

// FuzzFastUSDMDepth: whenever the fast path accepts a frame, the general
// binance-usdm decoder accepts it too with the same event, and
// encoding/json decodes it to the same update; the event does not change
// when the frame buffer is overwritten; when it refuses, dst is unchanged.
func FuzzFastUSDMDepth(f *testing.F) {
	for _, s := range []string{usdmDepth, usdmDepth20, usdmDepthN(fastDepthLevels), usdmDepthN(fastDepthLevels + 1), usdmDepthN(0),
		usdmAggTrade, depthFrame20,
		`{"stream":"x","data":{"e":"depthUpdate","E":9223372036854,"T":0,"s":"ETHUSDT","U":0,"u":1,"pu":0,"b":[],"a":[["0.5","10"]],"ps":"","st":0}}`,
	} {
		f.Add([]byte(s))
	}
	a := newUSDM(f, Config{MaxFrameBytes: 64 << 10})
	keep := bridge.Event{ID: "keep"}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, ok := a.fastUSDMDepth(frame, 5, []bridge.Event{keep})
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
		want, fr, err := a.decodeUSDM(frame, 5, nil)
		if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 {
			t.Fatalf("fast path accepted %q; general: %v kind %d, %d events", frame, err, fr.Kind, len(want))
		}
		adaptertest.AssertEvent(t, ev, want[0])
		adaptertest.CheckEvent(t, ev, NameUSDM)
		var std stdUSDMDepth
		if err := json.Unmarshal(frame, &std); err != nil {
			t.Fatalf("fast path accepted %q; encoding/json: %v", frame, err)
		}
		d := &std.Data
		if ev.TS != d.UpperE*1_000_000 || ev.Symbol != d.S || ev.FirstID != d.UpperU || ev.LastID != d.LowerU || ev.PrevID != d.PU ||
			d.LowerE != "depthUpdate" || fmt.Sprint(ev.Bids, ev.Asks) != fmt.Sprint(d.B, d.A) ||
			len(ev.Bids) != len(d.B) || len(ev.Asks) != len(d.A) {
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

// BenchmarkDecodeUSDMDepthGeneral is BenchmarkDecodeUSDMDepth through the
// general decoder, the path every USD-M depthUpdate took before
// fastUSDMDepth.
func BenchmarkDecodeUSDMDepthGeneral(b *testing.B) {
	a := newUSDM(b, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	adaptertest.BenchDecode(b, generalUSDM{a}, usdmDepth20)
}

// BenchmarkDecodeUSDMDepthStdlib is the encoding/json baseline for a
// USD-M depthUpdate.
func BenchmarkDecodeUSDMDepthStdlib(b *testing.B) {
	frame := []byte(usdmDepth20)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		var w stdUSDMDepth
		if err := json.Unmarshal(frame, &w); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
