package bybit

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

func newTest(t testing.TB, cfg Config) *Adapter {
	t.Helper()
	if cfg.WSURL == "" {
		cfg.WSURL = "ws://127.0.0.1:1"
	}
	if cfg.RESTURL == "" {
		cfg.RESTURL = "http://127.0.0.1:1"
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// Real-shaped frames from EXCHANGES.md / the Bybit v5 docs.
const (
	tradeFrame = `{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[` +
		`{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617},` +
		`{"T":1672304486866,"s":"BTCUSDT","S":"Sell","v":"0.010","p":"16578.00","L":"MinusTick","i":"2100000000007764263","BT":false,"RPI":false,"seq":1783284617}]}`
	bookSnapshot = `{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT",` +
		`"b":[["16493.50","0.006"],["16493.00","0.100"]],"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},"cts":1672304484976}`
	bookDelta = `{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT",` +
		`"b":[["30247.20","30.028"],["30245.40","0.224"],["30242.10","0"]],"a":[["30248.70","0"]],"u":177400507,"seq":66544703342},"cts":1687940967464}`
)

func TestDecodeData(t *testing.T) {
	const recv = 77
	tests := []struct {
		name   string
		market string
		frame  string
		want   []bridge.Event
	}{
		{"publicTrade, two trades", MarketSpot, tradeFrame, []bridge.Event{
			{Type: bridge.EventTrade, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1672304486865_000000, RecvTS: recv,
				ID: "20f43950-d8dd-5b31-9112-a178eb6023af", Price: "16578.50", Qty: "0.001", Side: bridge.SideBuy},
			{Type: bridge.EventTrade, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1672304486866_000000, RecvTS: recv,
				ID: "2100000000007764263", Price: "16578.00", Qty: "0.010", Side: bridge.SideSell},
		}},
		{"publicTrade linear", MarketLinear, strings.Replace(tradeFrame, `},{`, `},{"mP":"1","iP":"2",`, 1), []bridge.Event{
			{Type: bridge.EventTrade, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1672304486865_000000, RecvTS: recv,
				ID: "20f43950-d8dd-5b31-9112-a178eb6023af", Price: "16578.50", Qty: "0.001", Side: bridge.SideBuy},
			{Type: bridge.EventTrade, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1672304486866_000000, RecvTS: recv,
				ID: "2100000000007764263", Price: "16578.00", Qty: "0.010", Side: bridge.SideSell},
		}},
		{"publicTrade empty", MarketSpot, `{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}`, nil},
		{"data before topic", MarketSpot,
			`{"data":[{"T":5,"s":"ETHUSDT","S":"Sell","v":"1","p":"2","i":"9"}],"ts":1,"type":"snapshot","topic":"publicTrade.ETHUSDT"}`,
			[]bridge.Event{{Type: bridge.EventTrade, Exchange: "bybit", Symbol: "ETHUSDT", TS: 5_000000, RecvTS: recv,
				ID: "9", Price: "2", Qty: "1", Side: bridge.SideSell}}},
		{"orderbook snapshot", MarketSpot, bookSnapshot, []bridge.Event{
			{Type: bridge.EventBookSnapshot, Exchange: "bybit", Symbol: "BTCUSDT", TS: 1672304484978_000000, RecvTS: recv,
				LastID: 18521288, Seq: 7961638724,
				Bids: []bridge.Level{{"16493.50", "0.006"}, {"16493.00", "0.100"}},
				Asks: []bridge.Level{{"16611.00", "0.029"}, {"16612.00", "0.213"}}}}},
		{"orderbook delta", MarketLinear, bookDelta, []bridge.Event{
			{Type: bridge.EventBookDelta, Exchange: "bybit-linear", Symbol: "BTCUSDT", TS: 1687940967466_000000, RecvTS: recv,
				FirstID: 177400507, LastID: 177400507, Seq: 66544703342,
				Bids: []bridge.Level{{"30247.20", "30.028"}, {"30245.40", "0.224"}, {"30242.10", "0"}},
				Asks: []bridge.Level{{"30248.70", "0"}}}}},
		{"orderbook restart snapshot u=1, no seq", MarketSpot,
			`{"topic":"orderbook.1000.BTCUSDT","type":"snapshot","ts":5,"data":{"s":"BTCUSDT","b":[],"a":[["1","2"]],"u":1}}`,
			[]bridge.Event{{Type: bridge.EventBookSnapshot, Exchange: "bybit", Symbol: "BTCUSDT", TS: 5_000000, RecvTS: recv, Depth: 1000,
				LastID: 1, Asks: []bridge.Level{{"1", "2"}}}}},
		{"orderbook data before ts and type", MarketSpot,
			`{"topic":"orderbook.200.BTCUSDT","data":{"u":3,"seq":4,"a":[],"b":[["1","2"]],"s":"BTCUSDT"},"type":"delta","ts":6}`,
			[]bridge.Event{{Type: bridge.EventBookDelta, Exchange: "bybit", Symbol: "BTCUSDT", TS: 6_000000, RecvTS: recv,
				FirstID: 3, LastID: 3, Seq: 4, Bids: []bridge.Level{{"1", "2"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTest(t, Config{Market: tt.market})
			a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
			adaptertest.DecodeData(t, a, tt.frame, recv, tt.want...)
		})
	}
}

func TestDecodeControl(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		kind  bridge.FrameKind
		reqID string
		msg   string
	}{
		{"spot subscribe ack", `{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"10001","op":"subscribe"}`, bridge.FrameAck, "10001", ""},
		{"linear subscribe ack", `{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f","req_id":"5","op":"subscribe"}`, bridge.FrameAck, "5", ""},
		{"unsubscribe ack", `{"success":true,"ret_msg":"","conn_id":"x","req_id":"6","op":"unsubscribe"}`, bridge.FrameAck, "6", ""},
		{"ack without req_id", `{"success":true,"ret_msg":"subscribe","conn_id":"x","op":"subscribe"}`, bridge.FrameAck, "", ""},
		{"subscribe failure", `{"success":false,"ret_msg":"error:handler not found,topic:orderbook.7.BTCUSDT","conn_id":"x","req_id":"7","op":"subscribe"}`, bridge.FrameError, "7", "error:handler not found,topic:orderbook.7.BTCUSDT"},
		{"spot pong", `{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","req_id":"100001","op":"ping"}`, bridge.FramePong, "100001", ""},
		{"linear pong", `{"req_id":"100001","op":"pong","args":["1672916271846"],"conn_id":"cfcb4ocsvfriu23r7va0-1"}`, bridge.FramePong, "100001", ""},
		{"unknown topic", `{"topic":"insurance.USDT","type":"snapshot","ts":1,"cs":2,"data":{"symbol":"BTCUSDT","lastPrice":"1"}}`, bridge.FrameIgnored, "", ""},
		{"empty object", `{}`, bridge.FrameIgnored, "", ""},
	}
	a := newTest(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := adaptertest.DecodeControl(t, a, tt.frame, tt.kind, tt.reqID)
			var ae *APIError
			if tt.kind == bridge.FrameError && (!errors.As(fr.Err, &ae) || ae.RetMsg != tt.msg || ae.Op != "subscribe") {
				t.Errorf("Err = %v, want *APIError {subscribe %q}", fr.Err, tt.msg)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	trade := func(old, new string) string { return strings.Replace(tradeFrame, old, new, 1) }
	snap := func(old, new string) string { return strings.Replace(bookSnapshot, old, new, 1) }
	a := newTest(t, Config{})
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"empty", ``},
		{"not JSON", `pong`},
		{"top-level array", `[]`},
		{"truncated", tradeFrame[:len(tradeFrame)/2]},
		{"truncated by one", tradeFrame[:len(tradeFrame)-1]},
		{"trailing garbage", bookSnapshot + "]"},
		{"trade T is a string", trade(`"T":1672304486865`, `"T":"1672304486865"`)},
		{"trade T negative", trade(`"T":1672304486865`, `"T":-1`)},
		{"trade T fraction", trade(`"T":1672304486865`, `"T":1.5`)},
		{"trade T missing", trade(`"T":1672304486865,`, ``)},
		{"trade price is a number", trade(`"p":"16578.50"`, `"p":16578.5`)},
		{"trade price not decimal", trade(`"p":"16578.50"`, `"p":"abc"`)},
		{"trade size missing", trade(`"v":"0.001",`, ``)},
		{"trade side lower-case", trade(`"S":"Buy"`, `"S":"buy"`)},
		{"trade side missing", trade(`"S":"Buy",`, ``)},
		{"trade id missing", trade(`"i":"20f43950-d8dd-5b31-9112-a178eb6023af",`, ``)},
		{"trade id number", trade(`"i":"20f43950-d8dd-5b31-9112-a178eb6023af"`, `"i":5`)},
		{"trade id empty", trade(`"i":"20f43950-d8dd-5b31-9112-a178eb6023af"`, `"i":""`)},
		{"trade id with colon", trade(`"i":"20f43950-d8dd-5b31-9112-a178eb6023af"`, `"i":"a:b"`)},
		{"trade symbol differs from topic", trade(`"s":"BTCUSDT"`, `"s":"ETHUSDT"`)},
		{"trade duplicate p", trade(`"p":"16578.50"`, `"p":"16578.50","p":"1"`)},
		{"second trade bad", trade(`"v":"0.010"`, `"v":null`)},
		{"trade data is an object", `{"topic":"publicTrade.BTCUSDT","ts":1,"data":{}}`},
		{"trade item is a string", `{"topic":"publicTrade.BTCUSDT","ts":1,"data":["x"]}`},
		{"trade frame without data", `{"topic":"publicTrade.BTCUSDT","ts":1}`},
		{"topic symbol invalid", `{"topic":"publicTrade.BTC.USDT","ts":1,"data":[]}`},
		{"book type unknown", snap(`"type":"snapshot"`, `"type":"full"`)},
		{"book type missing", snap(`"type":"snapshot",`, ``)},
		{"book ts missing", snap(`"ts":1672304484978,`, ``)},
		{"book ts string", snap(`"ts":1672304484978`, `"ts":"1672304484978"`)},
		{"book u missing", snap(`"u":18521288,`, ``)},
		{"book u string", snap(`"u":18521288`, `"u":"18521288"`)},
		{"book seq fraction", snap(`"seq":7961638724`, `"seq":7961638724.5`)},
		{"book symbol differs", snap(`"s":"BTCUSDT"`, `"s":"ETHUSDT"`)},
		{"book symbol missing", snap(`"s":"BTCUSDT",`, ``)},
		{"book bids missing", snap(`"b":[["16493.50","0.006"],["16493.00","0.100"]],`, ``)},
		{"book level three elements", snap(`["16493.50","0.006"]`, `["16493.50","0.006","1"]`)},
		{"book level number", snap(`["16493.50","0.006"]`, `[16493.5,"0.006"]`)},
		{"book data is an array", `{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":[]}`},
		{"book without data", `{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1}`},
		{"success is a string", `{"success":"true","op":"subscribe"}`},
		{"duplicate topic", `{"topic":"publicTrade.BTCUSDT","topic":"x","data":[]}`},
	})
}

func TestDecodeOversized(t *testing.T) {
	a := newTest(t, Config{MaxFrameBytes: 2048})
	frame := `{"topic":"publicTrade.BTCUSDT","ts":1,"data":[],"pad":"` + strings.Repeat("a", 2048) + `"}`
	if _, _, err := a.Decode([]byte(frame), 1, nil); !errors.Is(err, bridge.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

// TestDecodeOwnsStrings: events and Frames never refer to the frame buffer,
// which the runner reuses for the next frame (the decoder reads it in
// place and copies what it keeps).
func TestDecodeOwnsStrings(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}, {Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	frames := []string{tradeFrame, oneTrade, bookSnapshot, bookDelta,
		`{"success":true,"ret_msg":"","conn_id":"c","req_id":"r-17","op":"subscribe"}`,
		`{"success":false,"ret_msg":"error:handler not found","conn_id":"c","req_id":"r-18","op":"subscribe"}`,
		`{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"p-1","op":"ping"}`,
		// An unregistered symbol is copied by the symbol table.
		`{"topic":"publicTrade.ETHBTC","ts":1,"data":[{"T":1,"s":"ETHBTC","S":"Sell","v":"1","p":"2","i":"x-1"}]}`}
	for i := range 50 { // enough trades to fill more than one arena chunk
		frames = append(frames, fmt.Sprintf(`{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.%d","p":"1%d.5","i":"%d-abc"},{"T":2,"s":"BTCUSDT","S":"Sell","v":"1","p":"2","i":"%d-def"}]}`, i, i, i, i))
	}
	adaptertest.DecodeOwns(t, a, frames...)
}
