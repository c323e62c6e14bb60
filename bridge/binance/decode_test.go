package binance

import (
	"encoding/json"
	"errors"
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

// Real-shaped frames from EXCHANGES.md / the Binance docs.
const (
	tradeCombined = `{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":1672515782134,"m":true,"M":true}}`
	tradeRaw      = `{"e":"trade","E":1672515782136,"s":"BNBBTC","t":7,"p":"0.00100000","q":"100.00000000","T":1672515782135,"m":false,"M":true}`
	depthCombined = `{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"],["0.0027","0"]]}}`
)

func TestDecodeData(t *testing.T) {
	const recv = 99
	tests := []struct {
		name  string
		micro bool
		frame string
		want  bridge.Event
	}{
		{"trade combined, buyer maker => taker sold", false, tradeCombined, bridge.Event{
			Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1672515782134_000000, RecvTS: recv,
			ID: "12345", Seq: 12345, Price: "0.001", Qty: "100", Side: bridge.SideSell}},
		{"trade raw, buyer taker", false, tradeRaw, bridge.Event{
			Type: bridge.EventTrade, Exchange: "binance", Symbol: "BNBBTC", TS: 1672515782135_000000, RecvTS: recv,
			ID: "7", Seq: 7, Price: "0.00100000", Qty: "100.00000000", Side: bridge.SideBuy}},
		{"trade in microseconds", true,
			`{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136001,"s":"BTCUSDT","t":1,"p":"1","q":"2","T":1672515782136000,"m":false,"M":true}}`,
			bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1672515782136000_000, RecvTS: recv,
				ID: "1", Seq: 1, Price: "1", Qty: "2", Side: bridge.SideBuy}},
		{"trade with keys reordered and whitespace", false,
			"{ \"data\" : { \"M\":true, \"m\":true, \"T\":5, \"q\":\"3\", \"p\":\"2\", \"t\":0, \"s\":\"BTCUSDT\", \"E\":6, \"e\":\"trade\", \"X\":{\"a\":[1]} } ,\n \"stream\":\"btcusdt@trade\" }",
			bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 5_000000, RecvTS: recv,
				ID: "0", Seq: 0, Price: "2", Qty: "3", Side: bridge.SideSell}},
		{"trade id at int64 max", false,
			`{"e":"trade","E":1,"s":"BTCUSDT","t":9223372036854775807,"p":"1","q":"1","T":1,"m":false}`,
			bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1_000000, RecvTS: recv,
				ID: "9223372036854775807", Seq: 9223372036854775807, Price: "1", Qty: "1", Side: bridge.SideBuy}},
		{"depth combined", false, depthCombined, bridge.Event{
			Type: bridge.EventBookDelta, Exchange: "binance", Symbol: "BNBBTC", TS: 1672515782136_000000, RecvTS: recv,
			FirstID: 157, LastID: 160,
			Bids: []bridge.Level{{"0.0024", "10"}}, Asks: []bridge.Level{{"0.0026", "100"}, {"0.0027", "0"}}}},
		{"depth with empty sides", false,
			`{"stream":"bnbbtc@depth","data":{"e":"depthUpdate","E":2,"s":"BNBBTC","U":5,"u":5,"b":[],"a":[]}}`,
			bridge.Event{Type: bridge.EventBookDelta, Exchange: "binance", Symbol: "BNBBTC", TS: 2_000000, RecvTS: recv, FirstID: 5, LastID: 5}},
		{"depth asks only", false,
			`{"e":"depthUpdate","E":2,"s":"BNBBTC","U":5,"u":9,"b":[],"a":[["1.5","0"]]}`,
			bridge.Event{Type: bridge.EventBookDelta, Exchange: "binance", Symbol: "BNBBTC", TS: 2_000000, RecvTS: recv, FirstID: 5, LastID: 9,
				Asks: []bridge.Level{{"1.5", "0"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTest(t, Config{MicrosecondTimestamps: tt.micro})
			a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
			adaptertest.DecodeData(t, a, tt.frame, recv, tt.want)
		})
	}
}

func TestDecodeControl(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		kind    bridge.FrameKind
		reqID   string
		errCode int
		errMsg  string
	}{
		{"subscribe ack", `{"result":null,"id":1}`, bridge.FrameAck, "1", 0, ""},
		{"list subscriptions reply", `{"result":["btcusdt@trade"],"id":42}`, bridge.FrameAck, "42", 0, ""},
		{"string id", `{"result":null,"id":"abc"}`, bridge.FrameAck, "abc", 0, ""},
		{"error reply", `{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":7}`, bridge.FrameError, "7", 2, "Invalid request: unknown variant"},
		{"error reply, null id", `{"error":{"code":3,"msg":"Invalid JSON: expected value"},"id":null}`, bridge.FrameError, "", 3, "Invalid JSON: expected value"},
		{"error reply, escaped msg", `{"id":8,"error":{"msg":"bad \"x\"","code":1}}`, bridge.FrameError, "8", 1, `bad "x"`},
		{"server shutdown combined", `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1700000000000}}`, bridge.FrameShutdown, "", 0, ""},
		{"server shutdown raw", `{"e":"serverShutdown","E":1700000000000}`, bridge.FrameShutdown, "", 0, ""},
		{"aggTrade is ignored", `{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1","f":1,"l":2,"T":1,"m":true,"M":true}}`, bridge.FrameIgnored, "", 0, ""},
		{"ticker with a negative p is ignored", `{"e":"24hrTicker","E":1,"s":"BTCUSDT","p":"-0.5","P":"-1.2"}`, bridge.FrameIgnored, "", 0, ""},
		{"partial depth has no e", `{"stream":"btcusdt@depth5","data":{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}`, bridge.FrameIgnored, "", 0, ""},
		{"array data", `{"stream":"!ticker@arr","data":[]}`, bridge.FrameIgnored, "", 0, ""},
		{"empty object", `{}`, bridge.FrameIgnored, "", 0, ""},
	}
	a := newTest(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := adaptertest.DecodeControl(t, a, tt.frame, tt.kind, tt.reqID)
			var ae *APIError
			if tt.kind == bridge.FrameError && (!errors.As(fr.Err, &ae) || ae.Code != tt.errCode || ae.Msg != tt.errMsg) {
				t.Errorf("Err = %v, want *APIError {%d %q}", fr.Err, tt.errCode, tt.errMsg)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	trade := func(repl ...string) string { return strings.NewReplacer(repl...).Replace(tradeRaw) }
	depth := func(repl ...string) string { return strings.NewReplacer(repl...).Replace(depthCombined) }
	a := newTest(t, Config{})
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"empty", ``},
		{"whitespace", "  \n"},
		{"not JSON", `hello`},
		{"top-level array", `[1,2]`},
		{"top-level string", `"trade"`},
		{"truncated", tradeCombined[:len(tradeCombined)/2]},
		{"truncated by one", tradeCombined[:len(tradeCombined)-1]},
		{"trailing garbage", tradeCombined + `x`},
		{"two objects", tradeCombined + tradeCombined},
		{"trailing comma", `{"result":null,"id":1,}`},
		{"bad literal", `{"result":nul,"id":1}`},
		{"bad escape", `{"stream":"a\qb","data":{}}`},
		{"control char in string", "{\"stream\":\"a\x01b\",\"data\":{}}"},
		{"bad number", `{"result":null,"id":01}`},
		{"too deep", strings.Repeat(`{"x":`, 100) + `1` + strings.Repeat(`}`, 100)},
		{"trade id is a string", trade(`"t":7`, `"t":"abc"`)},
		{"trade id is a decimal string", trade(`"t":7`, `"t":"7"`)},
		{"trade id fraction", trade(`"t":7`, `"t":7.5`)},
		{"trade id exponent", trade(`"t":7`, `"t":7e3`)},
		{"trade id negative", trade(`"t":7`, `"t":-7`)},
		{"trade id overflows", trade(`"t":7`, `"t":9223372036854775808`)},
		{"trade id missing", trade(`"t":7,`, ``)},
		{"price is a number", trade(`"p":"0.00100000"`, `"p":0.001`)},
		{"price not decimal", trade(`"p":"0.00100000"`, `"p":"1e-3"`)},
		{"price negative", trade(`"p":"0.00100000"`, `"p":"-1"`)},
		{"price empty", trade(`"p":"0.00100000"`, `"p":""`)},
		{"price escaped", trade(`"p":"0.00100000"`, `"p":"0\u002e1"`)},
		{"qty missing", trade(`"q":"100.00000000",`, ``)},
		{"maker is a string", trade(`"m":false`, `"m":"false"`)},
		{"maker missing", trade(`,"m":false`, ``)},
		{"trade time missing", trade(`"T":1672515782135,`, ``)},
		{"trade time string", trade(`"T":1672515782135`, `"T":"1672515782135"`)},
		{"trade time overflows ns", trade(`"T":1672515782135`, `"T":9223372036855`)},
		{"symbol missing", trade(`"s":"BNBBTC",`, ``)},
		{"symbol number", trade(`"s":"BNBBTC"`, `"s":5`)},
		{"symbol with a dot", trade(`"s":"BNBBTC"`, `"s":"BNB.BTC"`)},
		{"symbol with subject wildcard", trade(`"s":"BNBBTC"`, `"s":"BNB>"`)},
		{"duplicate t", trade(`"t":7`, `"t":7,"t":8`)},
		{"duplicate data", `{"data":{},"data":{}}`},
		{"e is a number", `{"e":5}`},
		{"U greater than u", depth(`"U":157`, `"U":161`)},
		{"depth u missing", depth(`"u":160,`, ``)},
		{"depth E missing", depth(`"E":1672515782136,`, ``)},
		{"bids not array", depth(`"b":[["0.0024","10"]]`, `"b":{}`)},
		{"bids missing", depth(`"b":[["0.0024","10"]],`, ``)},
		{"level with three elements", depth(`["0.0024","10"]`, `["0.0024","10","x"]`)},
		{"level with one element", depth(`["0.0024","10"]`, `["0.0024"]`)},
		{"level empty", depth(`["0.0024","10"]`, `[]`)},
		{"level numbers", depth(`["0.0024","10"]`, `[0.0024,10]`)},
		{"level not array", depth(`["0.0024","10"]`, `"0.0024"`)},
		{"error code is a fraction", `{"error":{"code":2.5,"msg":"x"},"id":1}`},
	})
}

func TestDecodeOversized(t *testing.T) {
	a := newTest(t, Config{MaxFrameBytes: 1024})
	frame := `{"stream":"x","data":{"pad":"` + strings.Repeat("a", 1024) + `"}}`
	if _, _, err := a.Decode([]byte(frame), 1, nil); !errors.Is(err, bridge.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if got := a.Limits().MaxFrameBytes; got != 1024 {
		t.Errorf("Limits().MaxFrameBytes = %d, want 1024", got)
	}
}

// TestDecodeCaseSensitive guards the encoding/json pitfall: e/E, t/T, m/M,
// b/B, a/A must not be confused, whatever their order.
func TestDecodeCaseSensitive(t *testing.T) {
	a := newTest(t, Config{})
	frame := `{"M":false,"T":1000,"E":2000,"m":true,"t":3,"e":"trade","s":"BTCUSDT","p":"1","q":"2"}`
	got, _, err := a.Decode([]byte(frame), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Seq != 3 || got[0].TS != 1000_000000 || got[0].Side != bridge.SideSell {
		t.Errorf("got Seq %d TS %d Side %v, want 3, 1e9, sell", got[0].Seq, got[0].TS, got[0].Side)
	}
	// "B"/"A" (bookTicker quantities) next to depth's "b"/"a".
	frame = `{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"B":"9","A":"9","b":[["1","2"]],"a":[]}`
	got, _, err = a.Decode([]byte(frame), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Bids) != 1 || len(got[0].Asks) != 0 {
		t.Errorf("bids %v asks %v", got[0].Bids, got[0].Asks)
	}
}

// TestDecodeSymbolInterned: a subscribed symbol is the canonical string,
// not a substring pinning the frame.
func TestDecodeSymbolInterned(t *testing.T) {
	a := newTest(t, Config{})
	a.URL([]bridge.Topic{{Symbol: "btcusdt", Channel: bridge.ChannelTrade}})
	e1, _, _ := a.Decode([]byte(tradeCombined), 0, nil)
	e2, _, _ := a.Decode([]byte(tradeCombined), 0, nil)
	if e1[0].Symbol != "BTCUSDT" || !sameString(e1[0].Symbol, e2[0].Symbol) {
		t.Errorf("symbols %q and %q are not one interned string", e1[0].Symbol, e2[0].Symbol)
	}
}

func sameString(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafeData(a) == unsafeData(b))
}

// TestDecodeMatchesEncodingJSON cross-checks the scanner against a decoder
// built on encoding/json that declares every key of the frame.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	a := newTest(t, Config{})
	for _, frame := range []string{tradeCombined, `{"data":` + tradeRaw + `}`} {
		got, _, err := a.Decode([]byte(frame), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := decodeTradeStdlib([]byte(frame))
		if err != nil {
			t.Fatal(err)
		}
		adaptertest.AssertEvent(t, got[0], want)
	}
}

// stdTrade declares every key of a trade payload so encoding/json's
// case-insensitive matching cannot mix e/E, t/T, m/M.
type stdTrade struct {
	Stream string `json:"stream"`
	Data   struct {
		LowerE string      `json:"e"`
		UpperE int64       `json:"E"`
		S      string      `json:"s"`
		LowerT json.Number `json:"t"`
		P      string      `json:"p"`
		Q      string      `json:"q"`
		UpperT int64       `json:"T"`
		LowerM bool        `json:"m"`
		UpperM bool        `json:"M"`
	} `json:"data"`
}

func decodeTradeStdlib(frame []byte) (bridge.Event, error) {
	var w stdTrade
	if err := json.Unmarshal(frame, &w); err != nil {
		return bridge.Event{}, err
	}
	seq, err := w.Data.LowerT.Int64()
	if err != nil {
		return bridge.Event{}, err
	}
	side := bridge.SideBuy
	if w.Data.LowerM {
		side = bridge.SideSell
	}
	return bridge.Event{Type: bridge.EventTrade, Exchange: Name, Symbol: w.Data.S, TS: w.Data.UpperT * 1e6,
		ID: w.Data.LowerT.String(), Seq: seq, Price: w.Data.P, Qty: w.Data.Q, Side: side}, nil
}
