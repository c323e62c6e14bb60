package okx

import (
	"fmt"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

const (
	tradeAllFrame = `{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","source":"0","ts":"1630048897897"}]}`
	tradesFrame   = `{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"123","px":"1.5","sz":"3","side":"sell","ts":"1","count":"3","source":"0","seqId":1234}]}`
	bookSnapFrame = `{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"],["8475.55","101","0","1"]],"ts":"1597026383085","checksum":0,"prevSeqId":-1,"seqId":123456}]}`
	bookUpdFrame  = `{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","410","0","12"]],"bids":[["8476.97","0","0","0"]],"ts":"1597026383185","checksum":0,"prevSeqId":123456,"seqId":123460}]}`
)

// FuzzOKXDecode: Decode never panics; it either fails with ErrMalformed
// leaving dst unchanged, or emits events satisfying the Event contract and
// OKX's rules (checkEvent).
func FuzzOKXDecode(f *testing.F) {
	seeds := []string{tradeAllFrame, tradesFrame, bookSnapFrame, bookUpdFrame, "pong",
		`{"id":"7","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}`,
		`{"id":"8","event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:NOPE-USDT doesn't exist.","connId":"a4d3ae55"}`,
		`{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}`}
	a, err := New(Config{MaxFrameBytes: 64 << 10}, nil)
	if err != nil {
		f.Fatal(err)
	}
	adaptertest.FuzzDecode(f, textPong{a}, NameSpot, seeds, checkEvent)
}

// textPong hides the one accepted frame that is not JSON, the text "pong",
// from the harness (which requires accepted frames to be JSON): it checks
// that the adapter takes it as FramePong and reports it as malformed.
type textPong struct{ a *Adapter }

func (p textPong) Decode(frame []byte, recvTS int64, dst []bridge.Event) ([]bridge.Event, bridge.Frame, error) {
	out, fr, err := p.a.Decode(frame, recvTS, dst)
	if string(frame) == "pong" {
		if err != nil || fr.Kind != bridge.FramePong || len(out) != len(dst) {
			panic("pong not decoded as FramePong")
		}
		return dst, bridge.Frame{}, fmt.Errorf("%w: pong (not JSON)", bridge.ErrMalformed)
	}
	return out, fr, err
}

// checkEvent: trades-all ids are their Seq; a delta chains: FirstID =
// PrevID+1, PrevID >= 0.
func checkEvent(t *testing.T, ev bridge.Event) {
	t.Helper()
	switch ev.Type {
	case bridge.EventTrade:
		if !validTradeID(ev.ID) || ev.Seq < 0 {
			t.Fatalf("ID %q Seq %d", ev.ID, ev.Seq)
		}
	case bridge.EventBookDelta:
		if ev.PrevID < 0 || ev.FirstID != ev.PrevID+1 || ev.LastID < 0 {
			t.Fatalf("prev %d first %d last %d", ev.PrevID, ev.FirstID, ev.LastID)
		}
	case bridge.EventBookSnapshot:
		if ev.LastID < 0 || ev.PrevID != 0 {
			t.Fatalf("snapshot last %d prev %d", ev.LastID, ev.PrevID)
		}
	}
}

func BenchmarkDecodeTradeAll(b *testing.B) {
	a := newTestAdapter(b, MarketSpot)
	adaptertest.BenchDecode(b, a, tradeAllFrame)
}

func BenchmarkDecodeBookUpdate(b *testing.B) {
	a := newTestAdapter(b, MarketSpot)
	adaptertest.BenchDecode(b, a, bookUpdFrame)
}

// TestDecodeOwnsStrings: events and Frames never refer to the frame
// buffer, which the runner reuses for the next frame.
func TestDecodeOwnsStrings(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	adaptertest.DecodeOwns(t, a, tradeAllFrame, tradesFrame, bookSnapFrame,
		`{"id":"7","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}`,
		`{"id":"8","event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:NOPE-USDT doesn't exist.","connId":"a4d3ae55"}`)
}
