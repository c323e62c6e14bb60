package okx

import (
	"errors"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
)

func newTestAdapter(t testing.TB, market string) *Adapter {
	t.Helper()
	a, err := New(Config{Market: market, WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.URL([]bridge.Topic{{Symbol: "BTC-USDT", Channel: bridge.ChannelTrade}, {Symbol: "BTC-USDT-SWAP", Channel: bridge.ChannelTrade}})
	return a
}

func TestChecksumVectors(t *testing.T) {
	// EXCHANGES-MORE.md 4.6 (computed with zlib).
	bids := []bridge.Level{{"3366.1", "7"}, {"3366", "6"}}
	asks := []bridge.Level{{"3366.8", "9"}, {"3368", "8"}}
	if got := Checksum(bids, asks); got != -1881014294 {
		t.Fatalf("vector 1: %d", got)
	}
	asks = []bridge.Level{{"3366.8", "9"}, {"3368", "8"}, {"3372", "8"}}
	if got := Checksum(bids[:1], asks); got != 831078360 {
		t.Fatalf("vector 2: %d", got)
	}
}

func TestDecodeTradesAll(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	f := `{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","source":"0","ts":"1630048897897"}]}`
	evs, fr, err := a.Decode([]byte(f), 7, nil)
	if err != nil || fr.Kind != bridge.FrameData || len(evs) != 1 {
		t.Fatalf("%v %v %d", err, fr, len(evs))
	}
	e := evs[0]
	if e.Exchange != "okx" || e.Symbol != "BTC-USDT" || e.ID != "130639474" || e.Seq != 130639474 || e.Price != "42219.9" ||
		e.Qty != "0.12060306" || e.Side != bridge.SideBuy || e.TS != 1630048897897_000_000 || e.RecvTS != 7 {
		t.Fatalf("%+v", e)
	}
	if got := e.MsgID(); got != "okx:BTC-USDT:trade:130639474" {
		t.Fatal(got)
	}
}

func TestDecodeTradesAggregated(t *testing.T) {
	a := newTestAdapter(t, MarketSwap)
	f := `{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"123","px":"1.5","sz":"3","side":"sell","ts":"1","count":"3","source":"0","seqId":1234}]}`
	evs, _, err := a.Decode([]byte(f), 0, nil)
	if err != nil || len(evs) != 1 || evs[0].Seq != 0 || evs[0].ID != "123" || evs[0].Exchange != "okx-swap" || evs[0].Side != bridge.SideSell {
		t.Fatalf("%v %+v", err, evs)
	}
}

func TestDecodeBooks(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	snap := `{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"],["8475.55","101","0","1"]],"ts":"1597026383085","checksum":0,"prevSeqId":-1,"seqId":123456}]}`
	evs, _, err := a.Decode([]byte(snap), 0, nil)
	if err != nil || len(evs) != 1 {
		t.Fatal(err)
	}
	s := evs[0]
	if s.Type != bridge.EventBookSnapshot || s.LastID != 123456 || len(s.Bids) != 2 || len(s.Asks) != 1 || s.Asks[0] != (bridge.Level{"8476.98", "415"}) {
		t.Fatalf("%+v", s)
	}
	upd := `{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[["8476.97","0","0","0"]],"ts":"1597026383185","checksum":0,"prevSeqId":123456,"seqId":123460}]}`
	evs, _, err = a.Decode([]byte(upd), 0, nil)
	if err != nil || len(evs) != 1 {
		t.Fatal(err)
	}
	d := evs[0]
	if d.Type != bridge.EventBookDelta || d.PrevID != 123456 || d.FirstID != 123457 || d.LastID != 123460 || d.Asks != nil || len(d.Bids) != 1 {
		t.Fatalf("%+v", d)
	}
}

func TestDecodeControl(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	cases := []struct {
		in   string
		kind bridge.FrameKind
		id   string
		sym  string
	}{
		{"pong", bridge.FramePong, "", ""},
		{`{"id":"7","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}`, bridge.FrameAck, "7", ""},
		{`{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}`, bridge.FrameAck, "", ""},
		{`{"id":"8","event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:NOPE-USDT doesn't exist. Please use the correct URL, channel and parameters referring to API document.","connId":"a4d3ae55"}`, bridge.FrameError, "8", "NOPE-USDT"},
		{`{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}`, bridge.FrameShutdown, "", ""},
		{`{"event":"channel-conn-count","channel":"books","connCount":"2","connId":"a4d3ae55"}`, bridge.FrameIgnored, "", ""},
	}
	for _, c := range cases {
		evs, fr, err := a.Decode([]byte(c.in), 0, nil)
		if err != nil || len(evs) != 0 || fr.Kind != c.kind || fr.ReqID != c.id || fr.Symbol != c.sym {
			t.Errorf("%s: %v %+v", c.in, err, fr)
		}
		if fr.Kind == bridge.FrameError && !errors.Is(fr.Err, bridge.ErrExchange) {
			t.Errorf("error frame: %v", fr.Err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	bad := []string{
		``, `{`, `[]`, `{"arg":{"channel":"books","instId":"BTC-USDT"}}`,
		`{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1","seqId":5}]}`,
		`{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["1"]],"bids":[],"ts":"1","seqId":5}]}`,
		`{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[]}`,
		`{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"ETH-USDT","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}]}`,
		`{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":"-1","sz":"1","side":"buy","ts":"1"}]}`,
		`{"arg":{"channel":"trades-all","instId":"BTC.USDT"},"data":[]}`,
		`{"event":"subscribe","event":"error"}`,
	}
	dst := []bridge.Event{{ID: "keep"}}
	for _, f := range bad {
		out, _, err := a.Decode([]byte(f), 0, dst)
		if !errors.Is(err, bridge.ErrMalformed) || len(out) != 1 || out[0].ID != "keep" {
			t.Errorf("%q: err %v, %d events", f, err, len(out))
		}
	}
	if _, _, err := a.Decode([]byte(strings.Repeat(" ", int(DefaultMaxFrameBytes)+1)), 0, nil); !errors.Is(err, bridge.ErrMalformed) {
		t.Error("oversized frame accepted")
	}
}

func TestFramesAndURL(t *testing.T) {
	a := newTestAdapter(t, MarketSpot)
	trades := []bridge.Topic{{Symbol: "BTC-USDT", Channel: bridge.ChannelTrade}}
	both := append(trades, bridge.Topic{Symbol: "BTC-USDT", Channel: bridge.ChannelBook})
	if u := a.URL(trades); !strings.HasSuffix(u, "/ws/v5/business") {
		t.Fatal(u)
	}
	if u := a.URL(both); !strings.HasSuffix(u, "/ws/v5/public") {
		t.Fatal(u)
	}
	id := int64(0)
	next := func() int64 { id++; return id }
	fs := a.SubscribeFrames(trades, next)
	if len(fs) != 1 || string(fs[0]) != `{"id":"1","op":"subscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"}]}` {
		t.Fatalf("%s", fs)
	}
	fs = a.UnsubscribeFrames(both, next)
	if len(fs) != 1 || string(fs[0]) != `{"id":"2","op":"unsubscribe","args":[{"channel":"trades","instId":"BTC-USDT"},{"channel":"books","instId":"BTC-USDT"}]}` {
		t.Fatalf("%s", fs)
	}
	if string(a.Heartbeat().ClientPing(1)) != "ping" {
		t.Fatal("ping")
	}
}

// One subscribe request per instrument: an unknown one cannot take the
// others' subscriptions down with it.
func TestSubscribeOneRequestPerInstrument(t *testing.T) {
	a := newTestAdapter(t, MarketSwap)
	var topics []bridge.Topic
	for _, s := range []string{"BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"} {
		topics = append(topics, bridge.Topic{Symbol: s, Channel: bridge.ChannelTrade}, bridge.Topic{Symbol: s, Channel: bridge.ChannelBook})
	}
	id := int64(0)
	fs := a.SubscribeFrames(topics, func() int64 { id++; return id })
	if len(fs) != 3 {
		t.Fatalf("%d frames: %s", len(fs), fs)
	}
	if want := `{"id":"2","op":"subscribe","args":[{"channel":"trades","instId":"ETH-USDT-SWAP"},{"channel":"books","instId":"ETH-USDT-SWAP"}]}`; string(fs[1]) != want {
		t.Fatalf("frame 2: %s", fs[1])
	}
}
