package binance

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// Futures channel frames as documented (EXCHANGES-MORE.md 2.5-2.8), with
// the 2026 keys ps, st and ap the decoders ignore.
const (
	usdmBookTicker = `{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":9100000112,"E":1772000000201,"T":1772000000199,"s":"BTCUSDT",` +
		`"b":"97012.40","B":"1.500","a":"97012.60","A":"0.800","ps":"BTCUSDT","st":1}}`
	usdmKline = `{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1772000010123,"s":"BTCUSDT","k":{"t":1772000000000,"T":1772000059999,` +
		`"s":"BTCUSDT","i":"1m","f":6012345678,"L":6012345690,"o":"97000.10","c":"97012.50","h":"97020.00","l":"96990.00","v":"12.345","n":13,"x":false,` +
		`"q":"1197654.32","V":"6.000","Q":"582000.00","B":"0"}}}`
	usdmKlineClosed = `{"e":"kline","E":1772000060001,"s":"BTCUSDT","k":{"t":1772000000000,"T":1772000059999,"s":"BTCUSDT","i":"1m","f":6012345678,` +
		`"L":6012345699,"o":"97000.10","c":"97010.00","h":"97020.00","l":"96990.00","v":"13.000","n":22,"x":true,"q":"1261234.00","V":"6.5","Q":"630000.0","B":"0"}}`
	usdmMarkPrice = `{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1772000001000,"s":"BTCUSDT","p":"97011.23456789",` +
		`"P":"97050.12","i":"97008.50000000","r":"-0.00012345","T":1772006400000,"ap":"97010.5","st":1}}`
	usdmForceOrder = `{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1772000002345,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",` +
		`"q":"0.014","p":"96900.00","ap":"96950.10","X":"FILLED","l":"0.004","z":"0.014","T":1772000002340}}}`
)

// checkUSDMChannelEvent: the channel events of binance-usdm keep their
// rules (the bridge's contract checks ran before).
func checkUSDMChannelEvent(t *testing.T, ev bridge.Event) {
	t.Helper()
	switch ev.Type {
	case bridge.EventBBO:
		if ev.LastID < 0 || ev.TS < 0 {
			t.Fatalf("bbo u %d ts %d", ev.LastID, ev.TS)
		}
	case bridge.EventKline:
		if b := ev.Bar(); !b.Interval.Valid() || b.CloseTime < b.OpenTime {
			t.Fatalf("kline %+v", b)
		}
	case bridge.EventTicker:
		if tk := ev.Ticker(); tk.MarkPrice == "" || tk.IndexPrice == "" || tk.LastPrice != "" || tk.OpenInterest != "" || tk.Seq != 0 {
			t.Fatalf("ticker %+v", tk)
		}
	case bridge.EventLiquidation:
		if l := ev.Liquidation(); l.N != 0 || l.Side != bridge.SideBuy && l.Side != bridge.SideSell {
			t.Fatalf("liquidation %+v", l)
		}
	default:
		t.Fatalf("unexpected event type %v", ev.Type)
	}
}

func newUSDMChannels(t testing.TB) *Adapter {
	t.Helper()
	a := newUSDM(t, Config{MaxFrameBytes: 64 << 10})
	for _, c := range []bridge.Channel{bridge.ChannelBBO, bridge.ChannelTicker, bridge.ChannelLiquidation, bridge.KlineChannel(bridge.Interval1m)} {
		a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: c}})
	}
	return a
}

func TestUSDMDecodeChannels(t *testing.T) {
	a := newUSDMChannels(t)
	bbo := bridge.Event{Type: bridge.EventBBO, Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1772000000199e6, RecvTS: 7}
	bbo.SetBBO(bridge.BBO{BidPrice: "97012.40", BidQty: "1.500", AskPrice: "97012.60", AskQty: "0.800", UpdateID: 9100000112})
	adaptertest.DecodeData(t, a, usdmBookTicker, 7, bbo)
	bbo.TS = 1772000000201e6 // without T: the event time
	adaptertest.DecodeData(t, a, strings.Replace(usdmBookTicker, `"T":1772000000199,`, "", 1), 7, bbo)

	k := bridge.Event{Type: bridge.EventKline, Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1772000010123e6, RecvTS: 7}
	k.SetBar(bridge.Bar{Interval: bridge.Interval1m, OpenTime: 1772000000000e6, CloseTime: 1772000059999e6,
		Open: "97000.10", High: "97020.00", Low: "96990.00", Close: "97012.50", Volume: "12.345", QuoteVolume: "1197654.32", Trades: 13})
	adaptertest.DecodeData(t, a, usdmKline, 7, k)
	got, _, err := a.Decode([]byte(usdmKlineClosed), 7, nil)
	if err != nil || len(got) != 1 || !got[0].Bar().Closed || got[0].Bar().Trades != 22 || got[0].Bar().Close != "97010.00" {
		t.Fatalf("closed kline: %v %+v", err, got)
	}
	if id := got[0].MsgID(); id != "binance-usdm:BTCUSDT:kline:1m:1772000000000000000" {
		t.Fatalf("msg id %q", id)
	}

	tk := bridge.Event{Type: bridge.EventTicker, Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1772000001000e6, RecvTS: 7}
	tk.SetTicker(bridge.Ticker{MarkPrice: "97011.23456789", IndexPrice: "97008.50000000", FundingRate: "-0.00012345", NextFundingTime: 1772006400000e6})
	adaptertest.DecodeData(t, a, usdmMarkPrice, 7, tk)
	if id := tk.MsgID(); id != "binance-usdm:BTCUSDT:ticker:1772000001000000000:0" {
		t.Fatalf("ticker msg id %q", id)
	}
	// A quarterly contract: no funding ("" and T 0), left out of the body.
	tk.SetTicker(bridge.Ticker{MarkPrice: "97011.23456789", IndexPrice: "97008.50000000"})
	adaptertest.DecodeData(t, a, strings.NewReplacer(`"r":"-0.00012345"`, `"r":""`, `"T":1772006400000`, `"T":0`).Replace(usdmMarkPrice), 7, tk)
	if body := string(tk.AppendJSON(nil)); strings.Contains(body, "funding") {
		t.Fatalf("quarterly ticker body %s", body)
	}

	liq := bridge.Event{Type: bridge.EventLiquidation, Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1772000002340e6, RecvTS: 7,
		Side: bridge.SideSell, Price: "96950.10", Qty: "0.014"}
	adaptertest.DecodeData(t, a, usdmForceOrder, 7, liq)
	if id := liq.MsgID(); id != "binance-usdm:BTCUSDT:liquidation:1772000002340000000:sell:96950.10:0.014:0" {
		t.Fatalf("liquidation msg id %q", id)
	}
	liq.Side = bridge.SideBuy
	adaptertest.DecodeData(t, a, strings.Replace(usdmForceOrder, `"S":"SELL"`, `"S":"BUY"`, 1), 7, liq)
	adaptertest.DecodeOwns(t, a, usdmBookTicker, usdmKline, usdmMarkPrice, usdmForceOrder)

	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"bookTicker without A", strings.Replace(usdmBookTicker, `"A":"0.800",`, "", 1)},
		{"bookTicker without u", strings.Replace(usdmBookTicker, `"u":9100000112,`, "", 1)},
		{"bookTicker without times", strings.NewReplacer(`"T":1772000000199,`, "", `"E":1772000000201,`, "").Replace(usdmBookTicker)},
		{"bookTicker bad price", strings.Replace(usdmBookTicker, `"b":"97012.40"`, `"b":"x"`, 1)},
		{"bookTicker bad symbol", strings.Replace(usdmBookTicker, `"s":"BTCUSDT"`, `"s":"BTC.USDT"`, 1)},
		{"kline k not object", `{"e":"kline","E":1,"s":"BTCUSDT","k":[]}`},
		{"kline missing x", strings.Replace(usdmKline, `"x":false,`, "", 1)},
		{"kline bad interval", strings.Replace(usdmKline, `"i":"1m"`, `"i":"7m"`, 1)},
		{"kline close before open", strings.Replace(usdmKline, `"T":1772000059999`, `"T":1771999999999`, 1)},
		{"markPrice without i", strings.Replace(usdmMarkPrice, `"i":"97008.50000000",`, "", 1)},
		{"markPrice r a number", strings.Replace(usdmMarkPrice, `"r":"-0.00012345"`, `"r":-0.1`, 1)},
		{"markPrice bad r", strings.Replace(usdmMarkPrice, `"r":"-0.00012345"`, `"r":"--1"`, 1)},
		{"markPrice without T", strings.Replace(usdmMarkPrice, `,"T":1772006400000`, "", 1)},
		{"markPrice negative mark", strings.Replace(usdmMarkPrice, `"p":"97011.23456789"`, `"p":"-1"`, 1)},
		{"forceOrder o not object", `{"e":"forceOrder","E":1,"o":"x"}`},
		{"forceOrder without ap", strings.Replace(usdmForceOrder, `"ap":"96950.10",`, "", 1)},
		{"forceOrder without z", strings.Replace(usdmForceOrder, `"z":"0.014",`, "", 1)},
		{"forceOrder bad side", strings.Replace(usdmForceOrder, `"S":"SELL"`, `"S":"Sell"`, 1)},
		{"forceOrder duplicate S", strings.Replace(usdmForceOrder, `"S":"SELL"`, `"S":"SELL","S":"BUY"`, 1)},
		{"forceOrder bad symbol", strings.Replace(usdmForceOrder, `"s":"BTCUSDT"`, `"s":"BTC USDT"`, 1)},
	})
}

func TestUSDMChannelStreamsAndRoutes(t *testing.T) {
	a := newTest(t, Config{Market: MarketUSDM, WSURL: "wss://fstream.example"})
	for _, tc := range []struct {
		c           bridge.Channel
		name, route string
	}{
		{bridge.ChannelBBO, "btcusdt@bookTicker", "public"},
		{bridge.ChannelBook, "btcusdt@depth@100ms", "public"},
		{bridge.ChannelTrade, "btcusdt@aggTrade", "market"},
		{bridge.KlineChannel(bridge.Interval1h), "btcusdt@kline_1h", "market"},
		{bridge.KlineChannel(bridge.Interval1M), "btcusdt@kline_1M", "market"},
		{bridge.KlineChannel(bridge.Interval1s), "", "market"},
		{bridge.ChannelTicker, "btcusdt@markPrice@1s", "market"},
		{bridge.ChannelLiquidation, "btcusdt@forceOrder", "market"},
	} {
		tp := bridge.Topic{Symbol: "BTCUSDT", Channel: tc.c}
		if got, route := a.StreamName(tp), a.Route(tp); got != tc.name || route != tc.route {
			t.Errorf("%v: stream %q route %q, want %q %q", tc.c, got, route, tc.name, tc.route)
		}
	}
	want := bridge.ChannelTrade | bridge.ChannelBook | bridge.ChannelBBO | bridge.ChannelTicker | bridge.ChannelLiquidation
	if c := a.Channels(); c&want != want || c&bridge.KlineOpenChannel(bridge.Interval1m) == 0 || c&bridge.KlineChannel(bridge.Interval1s) != 0 {
		t.Fatalf("channels %v", c)
	}
	got := a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelBBO}, {Symbol: "BTCUSDT", Channel: bridge.ChannelBook}})
	if got != "wss://fstream.example/public/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms" {
		t.Fatalf("public URL %q", got)
	}
}

func TestUSDMKlinesREST(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		if r.URL.Path != "/fapi/v1/klines" {
			w.WriteHeader(404)
			return
		}
		_, _ = w.Write([]byte(`[[1772000000000,"97000.10","97020.00","96990.00","97010.00","13.000",1772000059999,"1261234.00",22,"6.5","630000.0","0"],` +
			`[1772000060000,"97010.00","97010.00","97010.00","97010.00","0",1772000119999,"0",0,"0","0","0"]]`))
	}))
	defer srv.Close()
	a := newTest(t, Config{Market: MarketUSDM, RESTURL: srv.URL})
	bars, err := a.Klines(t.Context(), "BTCUSDT", bridge.Interval1m, 1772000000000e6, 1772000060000e6, 1000)
	if err != nil || len(bars) != 2 {
		t.Fatalf("klines %+v, %v", bars, err)
	}
	want := bridge.Event{Type: bridge.EventKline, Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1772000059999e6, RecvTS: bars[0].RecvTS}
	want.SetBar(bridge.Bar{Interval: bridge.Interval1m, OpenTime: 1772000000000e6, CloseTime: 1772000059999e6, Open: "97000.10",
		High: "97020.00", Low: "96990.00", Close: "97010.00", Volume: "13.000", QuoteVolume: "1261234.00", Trades: 22, Closed: true})
	if !reflect.DeepEqual(bars[0], want) {
		t.Fatalf("bar %+v\nwant %+v", bars[0], want)
	}
	// Two bars asked for: limit 3 (weight 1), not 1000 (weight 5).
	if w := "/fapi/v1/klines?endTime=1772000060000&interval=1m&limit=3&startTime=1772000000000&symbol=BTCUSDT"; len(paths) != 1 || paths[0] != w {
		t.Fatalf("requests %q, want %q", paths, w)
	}
	for limit, w := range map[int]int{1: 1, 99: 1, 100: 2, 499: 2, 500: 5, 1000: 5, 1500: 10} {
		if got := usdmKlinesWeight(limit); got != w {
			t.Errorf("weight of limit %d: %d, want %d", limit, got, w)
		}
	}
}

func FuzzUSDMBookTicker(f *testing.F) {
	adaptertest.FuzzDecode(f, newUSDMChannels(f), NameUSDM, []string{usdmBookTicker}, checkUSDMChannelEvent)
}

func FuzzUSDMKline(f *testing.F) {
	adaptertest.FuzzDecode(f, newUSDMChannels(f), NameUSDM, []string{usdmKline, usdmKlineClosed}, checkUSDMChannelEvent)
}

func FuzzUSDMMarkPrice(f *testing.F) {
	adaptertest.FuzzDecode(f, newUSDMChannels(f), NameUSDM, []string{usdmMarkPrice}, checkUSDMChannelEvent)
}

func FuzzUSDMForceOrder(f *testing.F) {
	adaptertest.FuzzDecode(f, newUSDMChannels(f), NameUSDM, []string{usdmForceOrder}, checkUSDMChannelEvent)
}

func BenchmarkDecodeUSDMBookTicker(b *testing.B) {
	adaptertest.BenchDecode(b, newUSDMChannels(b), usdmBookTicker)
}

func BenchmarkDecodeUSDMKline(b *testing.B) {
	adaptertest.BenchDecode(b, newUSDMChannels(b), usdmKline)
}

func BenchmarkDecodeUSDMMarkPrice(b *testing.B) {
	adaptertest.BenchDecode(b, newUSDMChannels(b), usdmMarkPrice)
}

func BenchmarkDecodeUSDMForceOrder(b *testing.B) {
	adaptertest.BenchDecode(b, newUSDMChannels(b), usdmForceOrder)
}

func TestUSDMOpenInterestREST(t *testing.T) {
	var paths []string
	body := `{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	a := newTest(t, Config{Market: MarketUSDM, RESTURL: srv.URL})
	if a.OpenInterestEvery() != DefaultUSDMOpenInterestEvery {
		t.Fatalf("default period %s", a.OpenInterestEvery())
	}
	oi, ms, err := a.OpenInterest(t.Context(), "btcusdt")
	if err != nil || oi != "10659.509" || ms != 1589437530011 || len(paths) != 1 || paths[0] != "/fapi/v1/openInterest?symbol=BTCUSDT" {
		t.Fatalf("open interest %q %d, %v (requests %q)", oi, ms, err, paths)
	}
	for _, bad := range []string{`{"openInterest":"-1","symbol":"BTCUSDT","time":1}`, `{"openInterest":"1","symbol":"ETHUSDT","time":1}`,
		`{"openInterest":"1","symbol":"BTCUSDT","time":0}`, `{"openInterest":1,"symbol":"BTCUSDT","time":1}`} {
		body = bad
		if _, _, err := a.OpenInterest(t.Context(), "BTCUSDT"); !errors.Is(err, bridge.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", bad, err)
		}
	}
	if off := newTest(t, Config{Market: MarketUSDM, RESTURL: srv.URL, OpenInterestEvery: -1}); off.OpenInterestEvery() != 0 {
		t.Fatalf("negative period polls every %s", off.OpenInterestEvery())
	}
	spot := newTest(t, Config{RESTURL: srv.URL})
	if _, _, err := spot.OpenInterest(t.Context(), "BTCUSDT"); spot.OpenInterestEvery() != 0 || !errors.Is(err, bridge.ErrNotSupported) {
		t.Fatalf("spot open interest: every %s, err %v", spot.OpenInterestEvery(), err)
	}
}
