package adaptertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// Decoder is the decoding half of a bridge.Exchange.
type Decoder interface {
	Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error)
}

// keep is the event a test puts in dst before decoding, to check that the
// decoder appends to dst and leaves it unchanged on error.
var keep = bridge.Event{ID: "keep"}

// DecodeData decodes frame after one event already in dst and checks that
// it is FrameData appending exactly want.
func DecodeData(t *testing.T, d Decoder, frame string, recvTS int64, want ...bridge.Event) {
	t.Helper()
	got, fr, err := d.Decode([]byte(frame), recvTS, []bridge.Event{keep})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if fr.Kind != bridge.FrameData {
		t.Fatalf("kind = %d, want FrameData", fr.Kind)
	}
	if len(got) != 1+len(want) || got[0].ID != keep.ID {
		t.Fatalf("got %d events, want the prefix plus %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		AssertEvent(t, got[1+i], w)
	}
}

// DecodeControl decodes a frame that must yield no events, frame kind
// kind and request id reqID, and returns the frame. A FrameError must
// carry an error wrapping bridge.ErrExchange, any other kind none.
func DecodeControl(t *testing.T, d Decoder, frame string, kind bridge.FrameKind, reqID string) bridge.Frame {
	t.Helper()
	got, fr, err := d.Decode([]byte(frame), 1, nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("got %d events, want none", len(got))
	}
	if fr.Kind != kind || fr.ReqID != reqID {
		t.Errorf("frame = {%d %q}, want {%d %q}", fr.Kind, fr.ReqID, kind, reqID)
	}
	if kind == bridge.FrameError {
		if !errors.Is(fr.Err, bridge.ErrExchange) {
			t.Fatalf("Err = %v, want an error wrapping ErrExchange", fr.Err)
		}
	} else if fr.Err != nil {
		t.Errorf("Err = %v, want nil", fr.Err)
	}
	return fr
}

// DecodeMalformed checks, one subtest per frame (each a name and the
// frame), that each frame fails with bridge.ErrMalformed and leaves dst
// unchanged.
func DecodeMalformed(t *testing.T, d Decoder, frames [][2]string) {
	for _, f := range frames {
		t.Run(f[0], func(t *testing.T) {
			got, fr, err := d.Decode([]byte(f[1]), 1, []bridge.Event{keep})
			if !errors.Is(err, bridge.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed (kind %d, %d events)", err, fr.Kind, len(got))
			}
			if len(got) != 1 || got[0].ID != keep.ID {
				t.Errorf("dst changed on error: %+v", got)
			}
		})
	}
}

// AssertEvent compares every field of got with want, levels one by one,
// and checks that got's bids are capacity-limited (bids and asks share one
// allocation: appending to bids must not overwrite asks).
func AssertEvent(t *testing.T, got, want bridge.Event) {
	t.Helper()
	type f struct {
		name      string
		got, want any
	}
	for _, c := range []f{
		{"Type", got.Type, want.Type}, {"Exchange", got.Exchange, want.Exchange}, {"Symbol", got.Symbol, want.Symbol},
		{"TS", got.TS, want.TS}, {"RecvTS", got.RecvTS, want.RecvTS}, {"ID", got.ID, want.ID}, {"Seq", got.Seq, want.Seq},
		{"Price", got.Price, want.Price}, {"Qty", got.Qty, want.Qty}, {"Side", got.Side, want.Side},
		{"FirstID", got.FirstID, want.FirstID}, {"LastID", got.LastID, want.LastID},
		{"len(Bids)", len(got.Bids), len(want.Bids)}, {"len(Asks)", len(got.Asks), len(want.Asks)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for i := range min(len(got.Bids), len(want.Bids)) {
		if got.Bids[i] != want.Bids[i] {
			t.Errorf("Bids[%d] = %v, want %v", i, got.Bids[i], want.Bids[i])
		}
	}
	for i := range min(len(got.Asks), len(want.Asks)) {
		if got.Asks[i] != want.Asks[i] {
			t.Errorf("Asks[%d] = %v, want %v", i, got.Asks[i], want.Asks[i])
		}
	}
	if len(got.Bids) > 0 && cap(got.Bids) != len(got.Bids) {
		t.Errorf("cap(Bids) = %d, want len %d (capacity-limited)", cap(got.Bids), len(got.Bids))
	}
}

// FuzzDecode fuzzes d.Decode from seeds (and testdata/fuzz): Decode never
// panics; it either fails with ErrMalformed leaving dst unchanged, or
// accepts valid JSON and emits events only for FrameData, each of which
// passes CheckEvent with exchange and then check (the venue's own rules).
func FuzzDecode(f *testing.F, d Decoder, exchange string, seeds []string, check func(t *testing.T, ev bridge.Event)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, fr, err := d.Decode(frame, 1, []bridge.Event{keep})
		if err != nil {
			if !errors.Is(err, bridge.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if len(got) != 1 || got[0].ID != keep.ID {
				t.Fatalf("dst changed on error")
			}
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}
		if fr.Kind == bridge.FrameError && !errors.Is(fr.Err, bridge.ErrExchange) {
			t.Fatalf("FrameError without ErrExchange: %v", fr.Err)
		}
		if fr.Kind != bridge.FrameData && len(got) != 1 {
			t.Fatalf("kind %d with events", fr.Kind)
		}
		for _, ev := range got[1:] {
			CheckEvent(t, ev, exchange)
			check(t, ev)
		}
		checkOwned(t, frame, got[1:], fr)
	})
}

// render prints every field of evs, whatever fields Event has, and their
// wire bodies (which include what pointer fields hold), into memory of its
// own.
func render(evs []bridge.Event) string {
	out := fmt.Appendf(nil, "%#v", evs)
	for i := range evs {
		out = append(out, '\n')
		out = evs[i].AppendJSON(out)
	}
	return string(out)
}

// checkOwned overwrites frame (the buffer Decode read, which the runner
// reuses for the next frame) and checks that the events and Frame Decode
// returned from it did not change: they own their memory.
func checkOwned(t *testing.T, frame []byte, evs []bridge.Event, fr bridge.Frame) {
	t.Helper()
	want := render(evs)
	reqID := strings.Clone(fr.ReqID)
	var errText string
	if fr.Err != nil {
		errText = fr.Err.Error()
	}
	for i := range frame {
		frame[i] = '#'
	}
	if got := render(evs); got != want {
		t.Errorf("events changed with the frame buffer:\n%s\nwant\n%s", got, want)
	}
	if fr.ReqID != reqID {
		t.Errorf("ReqID %q changed to %q with the frame buffer", reqID, fr.ReqID)
	}
	if fr.Err != nil && fr.Err.Error() != errText {
		t.Errorf("Err %q changed to %q with the frame buffer", errText, fr.Err.Error())
	}
}

// DecodeOwns decodes each frame from a buffer that is then overwritten, as
// the runner reuses its read buffer, and checks that the events and Frame
// did not change (the decoder copied what it keeps). Then it does the same
// from goroutines decoding concurrently, each reusing its own buffer (run
// it with -race): events must never alias a buffer being rewritten.
func DecodeOwns(t *testing.T, d Decoder, frames ...string) {
	t.Helper()
	for _, f := range frames {
		got, fr, err := d.Decode([]byte(f), 1, nil)
		if err != nil {
			t.Fatalf("Decode(%s): %v", f, err)
		}
		checkOwned(t, []byte(f), got, fr) // a fresh copy: nothing to see
		buf := []byte(f)
		got, fr, _ = d.Decode(buf, 1, nil)
		checkOwned(t, buf, got, fr)
	}
	const workers, rounds = 4, 200
	want := make([]string, len(frames))
	for i, f := range frames {
		evs, _, _ := d.Decode([]byte(f), 1, nil)
		want[i] = render(evs)
	}
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			var kept [][]bridge.Event
			for r := range rounds {
				i := (r + w) % len(frames)
				buf = append(buf[:0], frames[i]...)
				evs, _, _ := d.Decode(buf, 1, nil)
				kept = append(kept, evs)
				for j := range buf {
					buf[j] = '#'
				}
			}
			for r, evs := range kept {
				if i := (r + w) % len(frames); render(evs) != want[i] {
					errs <- fmt.Sprintf("frame %d: events changed after their buffer was reused: %s, want %s", i, render(evs), want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// CheckEvent checks the Event contract every decoded event meets: the
// exchange, a valid symbol, TS >= 0, a trade's decimals and side, a book
// event's decimal levels, and a body that encodes to valid JSON.
func CheckEvent(t *testing.T, ev bridge.Event, exchange string) {
	t.Helper()
	if ev.Exchange != exchange || bridge.ValidateIdent(ev.Symbol) != nil {
		t.Fatalf("bad exchange/symbol %q/%q", ev.Exchange, ev.Symbol)
	}
	if ev.TS < 0 {
		t.Fatalf("negative TS %d", ev.TS)
	}
	switch ev.Type {
	case bridge.EventTrade:
		if !jscan.IsDecimal(ev.Price) || !jscan.IsDecimal(ev.Qty) {
			t.Fatalf("price %q qty %q", ev.Price, ev.Qty)
		}
		if ev.Side != bridge.SideBuy && ev.Side != bridge.SideSell {
			t.Fatalf("side %v", ev.Side)
		}
	case bridge.EventBookDelta, bridge.EventBookSnapshot:
		for _, l := range append(append([]bridge.Level(nil), ev.Bids...), ev.Asks...) {
			if !jscan.IsDecimal(l[0]) || !jscan.IsDecimal(l[1]) {
				t.Fatalf("level %q", l)
			}
		}
	case bridge.EventBBO, bridge.EventKline, bridge.EventTicker, bridge.EventLiquidation:
		checkChannelEvent(t, ev)
	default:
		t.Fatalf("unexpected event type %v", ev.Type)
	}
	if b := ev.AppendJSON(nil); !json.Valid(b) {
		t.Fatalf("AppendJSON produced invalid JSON: %s", b)
	}
}

// BenchDecode measures decoding frame into a reused dst.
func BenchDecode(b *testing.B, d Decoder, frame string) {
	buf := []byte(frame)
	dst := make([]bridge.Event, 0, 4)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	stop := ReportCPU(b)
	for b.Loop() {
		var err error
		if dst, _, err = d.Decode(buf, 1, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

// checkChannelEvent checks a bbo, kline, ticker or liquidation event:
// decimals where the schema has them ("" allowed for a bbo's empty side and
// a ticker field the venue has not sent), a kline's interval and times, a
// liquidation's side.
func checkChannelEvent(t *testing.T, ev bridge.Event) {
	t.Helper()
	dec := func(name, v string, empty, signed bool) {
		if v == "" && empty {
			return
		}
		if signed && len(v) > 0 && v[0] == '-' {
			v = v[1:]
		}
		if !jscan.IsDecimal(v) {
			t.Fatalf("%v %s %q is not a decimal", ev.Type, name, v)
		}
	}
	switch ev.Type {
	case bridge.EventBBO:
		b := ev.BBO()
		dec("bid_price", b.BidPrice, true, false)
		dec("bid_qty", b.BidQty, true, false)
		dec("ask_price", b.AskPrice, true, false)
		dec("ask_qty", b.AskQty, true, false)
		if b.UpdateID < 0 {
			t.Fatalf("update id %d", b.UpdateID)
		}
	case bridge.EventKline:
		k := ev.Bar()
		if !k.Interval.Valid() || k.OpenTime < 0 || k.CloseTime < k.OpenTime || k.Trades < -1 {
			t.Fatalf("kline %+v", k)
		}
		for _, d := range []string{k.Open, k.High, k.Low, k.Close, k.Volume, k.QuoteVolume} {
			dec("price/volume", d, false, false)
		}
	case bridge.EventTicker:
		k := ev.Ticker()
		for _, d := range []string{k.LastPrice, k.MarkPrice, k.IndexPrice, k.OpenInterest} {
			dec("price/oi", d, true, false)
		}
		dec("funding_rate", k.FundingRate, true, true)
		if k.NextFundingTime < 0 || k.Seq < 0 {
			t.Fatalf("ticker %+v", k)
		}
	case bridge.EventLiquidation:
		l := ev.Liquidation()
		dec("price", l.Price, false, false)
		dec("qty", l.Qty, false, false)
		if l.Side != bridge.SideBuy && l.Side != bridge.SideSell || l.N < 0 {
			t.Fatalf("liquidation %+v", l)
		}
	}
}
