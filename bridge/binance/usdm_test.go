package binance

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

// Futures frames as documented (EXCHANGES-MORE.md 2.3, 2.4), with the
// 2026 keys nq, st and ps that the decoder ignores.
const (
	usdmAggTrade = `{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1772000000123,"s":"BTCUSDT","a":2891234567,` +
		`"p":"97012.50","q":"0.125","nq":"0.125","f":6012345678,"l":6012345680,"T":1772000000120,"m":true,"st":1}}`
	usdmDepth = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1772000000200,"T":1772000000198,"s":"BTCUSDT",` +
		`"U":9100000105,"u":9100000112,"pu":9100000101,"b":[["97012.40","1.500"],["97012.30","0"]],"a":[["97012.60","0.800"]],"ps":"BTCUSDT","st":1}}`
	// usdmDepth20 has 10 bids and 10 asks (the benchmark frame).
	usdmDepth20 = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1772000000200,"T":1772000000198,"s":"BTCUSDT","U":9100000105,"u":9100000124,"pu":9100000101,` +
		`"b":[["97012.40","1.500"],["97012.30","0"],["97012.00","1.200"],["97011.90","0.500"],["97011.50","0"],["97011.10","2.000"],["97010.00","0.100"],["97009.50","0"],["97009.00","3.100"],["97008.20","0.400"]],` +
		`"a":[["97012.60","0.800"],["97012.70","0"],["97012.80","1.000"],["97012.90","0.250"],["97013.00","0"],["97013.10","4.000"],["97014.00","0.100"],["97014.50","0"],["97015.00","2.200"],["97016.00","0.700"]]}}`
)

func newUSDM(t testing.TB, cfg Config) *Adapter {
	t.Helper()
	cfg.Market = MarketUSDM
	a := newTest(t, cfg)
	a.URL([]bridge.Topic{{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}})
	return a
}

func TestUSDMDecode(t *testing.T) {
	a := newUSDM(t, Config{})
	if a.Name() != "binance-usdm" {
		t.Fatalf("Name %q", a.Name())
	}
	tests := []struct {
		name, frame string
		kind        bridge.FrameKind
		want        []bridge.Event
	}{
		{"aggTrade", usdmAggTrade, bridge.FrameData, []bridge.Event{{Type: bridge.EventTrade, Exchange: NameUSDM, Symbol: "BTCUSDT",
			TS: 1772000000120_000000, RecvTS: 5, ID: "2891234567", Seq: 2891234567, Price: "97012.50", Qty: "0.125", Side: bridge.SideSell}}},
		{"aggTrade raw", strings.TrimSuffix(strings.SplitN(usdmAggTrade, `"data":`, 2)[1], "}"), bridge.FrameData, []bridge.Event{{Type: bridge.EventTrade,
			Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1772000000120_000000, RecvTS: 5, ID: "2891234567", Seq: 2891234567, Price: "97012.50", Qty: "0.125", Side: bridge.SideSell}}},
		{"depthUpdate", usdmDepth, bridge.FrameData, []bridge.Event{{Type: bridge.EventBookDelta, Exchange: NameUSDM, Symbol: "BTCUSDT",
			TS: 1772000000200_000000, RecvTS: 5, FirstID: 9100000105, LastID: 9100000112, PrevID: 9100000101,
			Bids: []bridge.Level{{"97012.40", "1.500"}, {"97012.30", "0"}}, Asks: []bridge.Level{{"97012.60", "0.800"}}}}},
		{"markPrice", `{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","P":"1","r":"0.0001","T":2,"ap":"1"}}`, bridge.FrameData,
			[]bridge.Event{{Type: bridge.EventTicker, Exchange: NameUSDM, Symbol: "BTCUSDT", TS: 1_000000, RecvTS: 5, Seq: 2_000000, More: [3]string{"1", "1", "0.0001"}}}},
		{"other event ignored", `{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"1","o":"1","h":"1","l":"1","v":"1","q":"1"}}`, bridge.FrameIgnored, nil},
		{"ack", `{"result":null,"id":7}`, bridge.FrameAck, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fr, err := a.Decode([]byte(tt.frame), 5, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fr.Kind != tt.kind || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v %+v, want %v %+v", fr.Kind, got, tt.kind, tt.want)
			}
		})
	}
	for _, bad := range []string{
		strings.Replace(usdmDepth, `"pu":9100000101,`, ``, 1),                  // pu missing
		strings.Replace(usdmDepth, `"pu":9100000101`, `"pu":9100000112`, 1),    // pu not below u
		strings.Replace(usdmDepth, `"pu":9100000101`, `"pu":"9100000101"`, 1),  // pu a string
		strings.Replace(usdmAggTrade, `"a":2891234567`, `"a":"2891234567"`, 1), // a a string
		strings.Replace(usdmAggTrade, `"m":true,`, ``, 1),
		`{"e":"aggTrade"`,
	} {
		if _, _, err := a.Decode([]byte(bad), 1, nil); !errors.Is(err, bridge.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", bad, err)
		}
	}
}

func TestUSDMRoutesAndURLs(t *testing.T) {
	a := newTest(t, Config{Market: MarketUSDM, WSURL: "wss://fstream.example"})
	trade := bridge.Topic{Symbol: "BTCUSDT", Channel: bridge.ChannelTrade}
	book := bridge.Topic{Symbol: "BTCUSDT", Channel: bridge.ChannelBook}
	if a.Route(trade) != "market" || a.Route(book) != "public" {
		t.Fatalf("routes %q %q", a.Route(trade), a.Route(book))
	}
	if got := a.URL([]bridge.Topic{trade, {Symbol: "ETHUSDT", Channel: bridge.ChannelTrade}}); got != "wss://fstream.example/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade" {
		t.Fatalf("trade URL %q", got)
	}
	if got := a.URL([]bridge.Topic{book}); got != "wss://fstream.example/public/stream?streams=btcusdt@depth@100ms" {
		t.Fatalf("book URL %q", got)
	}
	l := a.Limits()
	if l.MaxTopicsPerConn != 200 || l.MaxInboundPerSecond != 10 || a.Heartbeat().Interval.Minutes() != 3 {
		t.Fatalf("limits %+v heartbeat %+v", l, a.Heartbeat())
	}
	if spot := newTest(t, Config{}); spot.Route(trade) != spot.Route(book) {
		t.Fatal("spot must have one route")
	}
	for _, cfg := range []Config{{Market: "coinm"}, {Market: MarketUSDM, BookDepth: 1001}, {Market: MarketUSDM, DepthSpeed: "1000ms"}} {
		cfg.WSURL, cfg.RESTURL = "ws://x", "http://x"
		if _, err := New(cfg, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", cfg, err)
		}
	}
}

func TestUSDMREST(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "20")
		switch r.URL.Path {
		case "/fapi/v1/depth":
			_, _ = w.Write([]byte(`{"lastUpdateId":9100000112,"E":1772000000200,"T":1772000000198,"bids":[["97012.40","1.500"]],"asks":[["97012.60","0.800"]]}`))
		case "/fapi/v1/aggTrades":
			_, _ = w.Write([]byte(`[{"a":10,"p":"1.5","q":"2","nq":"2","f":100,"l":101,"T":1772000000120,"m":false},{"a":11,"p":"1.6","q":"1","nq":"1","f":102,"l":102,"T":1772000000121,"m":true}]`))
		case "/fapi/v1/exchangeInfo":
			_, _ = w.Write([]byte(`{"timezone":"UTC","rateLimits":[{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2000}],"symbols":[]}`))
		case "/fapi/v1/time":
			_, _ = w.Write([]byte(`{"serverTime":1772000000000}`))
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	a := newTest(t, Config{Market: MarketUSDM, RESTURL: srv.URL, BookDepth: 500})
	snap, err := a.Snapshot(t.Context(), "btcusdt")
	if err != nil || snap.Exchange != NameUSDM || snap.LastID != 9100000112 || len(snap.Bids) != 1 {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}
	trades, err := a.Trades(t.Context(), "BTCUSDT", 11, 0)
	if err != nil || len(trades) != 1 || trades[0].ID != "11" || trades[0].Seq != 11 || trades[0].Side != bridge.SideSell {
		t.Fatalf("trades %+v, %v", trades, err)
	}
	if ts, err := a.ServerTime(t.Context()); err != nil || ts.UnixMilli() != 1772000000000 {
		t.Fatalf("time %v, %v", ts, err)
	}
	if n, err := a.WeightLimit(t.Context()); err != nil || n != 2000 {
		t.Fatalf("live weight limit %d, %v", n, err)
	}
	want := []string{"/fapi/v1/depth?limit=500&symbol=BTCUSDT", "/fapi/v1/aggTrades?fromId=11&limit=1000&symbol=BTCUSDT", "/fapi/v1/time", "/fapi/v1/exchangeInfo"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("requests %q, want %q", paths, want)
	}
}

// FuzzUSDMDecode: the binance-usdm decoder never panics, fails only with
// ErrMalformed, and emits events satisfying the Event contract; deltas
// carry pu < u.
func FuzzUSDMDecode(f *testing.F) {
	seeds := []string{usdmAggTrade, usdmDepth, usdmDepth20, `{"result":null,"id":1}`,
		`{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":9,"pu":2,"b":[],"a":[]}`}
	adaptertest.FuzzDecode(f, newUSDM(f, Config{MaxFrameBytes: 64 << 10}), NameUSDM, seeds, func(t *testing.T, ev bridge.Event) {
		t.Helper()
		switch ev.Type {
		case bridge.EventTrade:
			if n, err := strconv.ParseInt(ev.ID, 10, 64); err != nil || n != ev.Seq {
				t.Fatalf("ID %q / Seq %d", ev.ID, ev.Seq)
			}
		case bridge.EventBookDelta:
			if ev.FirstID > ev.LastID || ev.PrevID >= ev.LastID || ev.PrevID < 0 {
				t.Fatalf("U %d u %d pu %d", ev.FirstID, ev.LastID, ev.PrevID)
			}
		default:
			checkUSDMChannelEvent(t, ev)
		}
	})
}

func BenchmarkDecodeUSDMAggTrade(b *testing.B) {
	adaptertest.BenchDecode(b, newUSDM(b, Config{}), usdmAggTrade)
}

func BenchmarkDecodeUSDMDepth(b *testing.B) {
	adaptertest.BenchDecode(b, newUSDM(b, Config{}), usdmDepth20)
}
