package okx

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

// booksFrameN returns a books update with n ask levels.
func booksFrameN(n int) string {
	var b strings.Builder
	b.WriteString(`{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["8476.98","415","0","13"]`)
	}
	b.WriteString(`],"bids":[],"ts":"1597026383185","checksum":-1,"prevSeqId":123456,"seqId":123460}]}`)
	return b.String()
}

// assertFastBook checks that the fast path takes frame with the general
// decoder's event.
func assertFastBook(t *testing.T, a *Adapter, frame []byte) {
	t.Helper()
	got, ok := a.fastBook(frame, 7, nil)
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

// TestFastBookTaken: books snapshots and updates as OKX sends them (up to
// fastBookLevels levels, empty sides, keep-alives) take the fast path with
// the general decoder's event; other shapes and larger ones do not. Then
// every update the simulator sends takes it (its 400-level snapshot does
// not), and Decode gives the same event.
func TestFastBookTaken(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	for _, frame := range []string{bookSnapFrame, bookUpdFrame, booksFrameN(fastBookLevels), booksFrameN(0),
		strings.Replace(bookUpdFrame, `"checksum":0`, `"checksum":-1234567`, 1)} {
		assertFastBook(t, a, []byte(frame))
	}
	for _, frame := range []string{
		booksFrameN(fastBookLevels + 1),
		strings.Replace(bookUpdFrame, `"prevSeqId":123456`, `"prevSeqId":-1`, 1), // an update needs a prevSeqId
		strings.Replace(bookUpdFrame, `"action":"update"`, `"action":"partial"`, 1),
		strings.Replace(bookUpdFrame, `"channel":"books"`, `"channel":"books5"`, 1),
		strings.Replace(bookUpdFrame, `"ts":"1597026383185"`, `"ts":"+1597026383185"`, 1),
		strings.Replace(bookUpdFrame, `"ts":"1597026383185"`, `"ts":"9223372036855"`, 1),
		strings.Replace(bookUpdFrame, `["8476.98","410","0","12"]`, `["8476.98","410","0"]`, 1),
		strings.Replace(bookUpdFrame, `"seqId":123460`, `"seqId":-5`, 1),
		strings.Replace(bookUpdFrame, `,"checksum":0`, ``, 1),
		strings.Replace(bookUpdFrame, `}]}`, `},{}]}`, 1),
		bookUpdFrame + " ",
		tradeAllFrame,
	} {
		if got, ok := a.fastBook([]byte(frame), 7, []bridge.Event{{ID: "keep"}}); ok || len(got) != 1 || got[0].ID != "keep" {
			t.Errorf("fast path took %s (or changed dst: %d events)", frame, len(got))
		}
	}

	for _, c := range okxCases {
		t.Run(c.market, func(t *testing.T) {
			s := startOKXSim(t, exsim.Config{}, c, 0, 0)
			a := simOKX(t, s, c.market)
			topics := []bridge.Topic{{Symbol: c.syms[0], Channel: bridge.ChannelBook}}
			ws := adaptertest.DialSim(t, a.URL(topics))
			if err := ws.WriteMessage(websocket.TextMessage, a.SubscribeFrames(topics, func() int64 { return 1 })[0]); err != nil {
				t.Fatal(err)
			}
			var frames, small, taken, pushes int
			var from int64
			for frames == 0 || frames < 1+pushes {
				b := adaptertest.ReadFrame(t, ws)
				if !bytes.HasPrefix(b, []byte(`{"arg":{"channel":"books"`)) || !bytes.Contains(b, []byte(`"data"`)) {
					continue // the subscribe ack
				}
				if frames == 0 { // the snapshot: the subscription is live
					g0, _ := s.Generated(c.venue, c.syms[0], exsim.SeriesOKXBooks)
					from = g0.Last
					if err := s.Generate(c.venue, c.syms[0], 0, 300); err != nil {
						t.Fatal(err)
					}
					g, _ := s.Generated(c.venue, c.syms[0], exsim.SeriesOKXBooks)
					pushes = int(g.Last - from)
				}
				frames++
				want, fr, err := a.decode(b, 3, nil)
				if err != nil || fr.Kind != bridge.FrameData || len(want) != 1 {
					t.Fatalf("general decoder on %s: %v %+v", b, err, fr)
				}
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
			t.Logf("%d books pushes, %d of at most %d levels, %d taken by the fast path", frames, small, fastBookLevels, taken)
			if taken != small || taken < frames-1 || taken < 100 {
				t.Fatalf("fast path took %d of %d books pushes (%d of at most %d levels)", taken, frames, small, fastBookLevels)
			}
		})
	}
}

// TestDecodeBookAllocs: Decode of a books push allocates nothing (the
// general decoder copies the frame and allocates the levels).
func TestDecodeBookAllocs(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	for _, frame := range []string{bookUpdFrame, bookSnapFrame} {
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

// stdBooks declares the keys of a books push for encoding/json.
type stdBooks struct {
	Arg struct {
		Channel string `json:"channel"`
		InstID  string `json:"instId"`
	} `json:"arg"`
	Action string `json:"action"`
	Data   []struct {
		Asks     [][4]string `json:"asks"`
		Bids     [][4]string `json:"bids"`
		TS       string      `json:"ts"`
		Checksum int64       `json:"checksum"`
		Prev     int64       `json:"prevSeqId"`
		Seq      int64       `json:"seqId"`
	} `json:"data"`
}

// FuzzFastBook: whenever the fast path accepts a frame, the general
// decoder accepts it too with the same event, and encoding/json decodes it
// to the same push; the event does not change when the frame buffer is
// overwritten; when it refuses, dst is unchanged.
func FuzzFastBook(f *testing.F) {
	for _, s := range []string{bookSnapFrame, bookUpdFrame, booksFrameN(fastBookLevels), booksFrameN(fastBookLevels + 1), booksFrameN(0), tradeAllFrame,
		`{"arg":{"channel":"books","instId":"ETH-USDT-SWAP"},"action":"snapshot","data":[{"asks":[],"bids":[["0.5","10","0","1"]],"ts":"9223372036854","checksum":-2147483648,"prevSeqId":-1,"seqId":0}]}`,
	} {
		f.Add([]byte(s))
	}
	a := newTestAdapter(f, MarketSpot)
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
		var std stdBooks
		if err := json.Unmarshal(frame, &std); err != nil || len(std.Data) != 1 {
			t.Fatalf("fast path accepted %q; encoding/json: %v", frame, err)
		}
		d := std.Data[0]
		levels := func(in [][4]string) string {
			var out []bridge.Level
			for _, l := range in {
				out = append(out, bridge.Level{l[0], l[1]})
			}
			return fmt.Sprint(out)
		}
		if fmt.Sprint(ev.TS/1_000_000) != d.TS || ev.Symbol != std.Arg.InstID || std.Arg.Channel != "books" || ev.LastID != d.Seq ||
			ev.Type == bridge.EventBookDelta && (std.Action != "update" || ev.PrevID != d.Prev) ||
			ev.Type == bridge.EventBookSnapshot && std.Action != "snapshot" ||
			fmt.Sprint(ev.Bids) != levels(d.Bids) || fmt.Sprint(ev.Asks) != levels(d.Asks) ||
			len(ev.Bids) != len(d.Bids) || len(ev.Asks) != len(d.Asks) {
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

// BenchmarkDecodeBookUpdateGeneral is BenchmarkDecodeBookUpdate through the
// general decoder, the path every books push took before fastBook.
func BenchmarkDecodeBookUpdateGeneral(b *testing.B) {
	adaptertest.BenchDecode(b, generalOnly{newTestAdapter(b, MarketSpot)}, bookUpdFrame)
}

// BenchmarkDecodeBookUpdateStdlib is the encoding/json reference for
// BenchmarkDecodeBookUpdate (no validation of decimals or symbols).
func BenchmarkDecodeBookUpdateStdlib(b *testing.B) {
	frame := []byte(bookUpdFrame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	stop := adaptertest.ReportCPU(b)
	for b.Loop() {
		var w stdBooks
		if err := json.Unmarshal(frame, &w); err != nil || len(w.Data) != 1 {
			b.Fatal(err)
		}
	}
	stop()
}
