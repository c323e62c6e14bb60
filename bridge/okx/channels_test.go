package okx

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/adaptertest"
)

const (
	bboFrame = `{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[["8476.98","415","0","13"]],` +
		`"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","seqId":123456}]}`
	candleFrame = `{"arg":{"channel":"candle1H","instId":"BTC-USDT-SWAP"},"data":[["1597024800000","8533.02","8553.74","8527.17",` +
		`"8548.26","45247","4.5247","38589.1","0"]]}`
	markFrame = `{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP",` +
		`"markPx":"42310.6","ts":"1630049139746"}]}`
	indexFrame = `{"arg":{"channel":"index-tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","idxPx":"42300.1",` +
		`"high24h":"43000","low24h":"41000","open24h":"42000","sodUtc0":"42100","sodUtc8":"42200","ts":"1630049139750"}]}`
	fundingFrame = `{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"formulaType":"noRate","fundingRate":"-0.0000515",` +
		`"fundingTime":"1700726400000","impactValue":"","instId":"BTC-USDT-SWAP","instType":"SWAP","interestRate":"","method":"current_period",` +
		`"maxFundingRate":"0.00375","minFundingRate":"-0.00375","nextFundingRate":"","nextFundingTime":"1700755200000","premium":"0.0001",` +
		`"settFundingRate":"0.0001","settState":"settled","ts":"1700724675402"}]}`
	oiFrame = `{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP",` +
		`"oi":"2216113.01","oiCcy":"22161.1301","oiUsd":"937000000","ts":"1630050480000"}]}`
	liqFrame = `{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0","bkPx":"0.007831",` +
		`"ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"},{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short",` +
		`"side":"buy","sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"},` +
		`{"details":[{"bkLoss":"0","bkPx":"42000.5","ccy":"","posSide":"long","side":"sell","sz":"2","ts":"1692266434011"}],` +
		`"instFamily":"BTC-USDT","instId":"BTC-USDT-SWAP","instType":"SWAP","uly":"BTC-USDT"}]}`
)

// newChanAdapter returns an okx-swap adapter subscribed to every channel
// of BTC-USDT-SWAP.
func newChanAdapter(t testing.TB) *Adapter {
	t.Helper()
	a := newTestAdapter(t, MarketSwap)
	var topics []bridge.Topic
	for _, c := range []bridge.Channel{bridge.ChannelBBO, bridge.ChannelTicker, bridge.ChannelLiquidation, bridge.KlineChannel(bridge.Interval1h)} {
		topics = append(topics, bridge.Topic{Symbol: "BTC-USDT-SWAP", Channel: c})
	}
	a.URL(topics)
	return a
}

func TestDecodeBBO(t *testing.T) {
	a := newChanAdapter(t)
	want := bridge.Event{Type: bridge.EventBBO, Exchange: NameSwap, Symbol: "BTC-USDT-SWAP", TS: 1597026383085e6, RecvTS: 7,
		Flags: bridge.FlagSeqMayReset}
	want.SetBBO(bridge.BBO{BidPrice: "8476.97", BidQty: "256", AskPrice: "8476.98", AskQty: "415", UpdateID: 123456})
	adaptertest.DecodeData(t, a, bboFrame, 7, want)
	if id := want.MsgID(); id != "okx-swap:BTC-USDT-SWAP:bbo:123456" {
		t.Fatal(id)
	}
	// No seqId: the ts in ms; an empty side: "" price and size.
	f := `{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[],"bids":[["1","2","0","1"]],"ts":"1597026383085"}]}`
	want.SetBBO(bridge.BBO{BidPrice: "1", BidQty: "2", UpdateID: 1597026383085})
	adaptertest.DecodeData(t, a, f, 7, want)
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"negative seqId", strings.Replace(bboFrame, "123456", "-5", 1)},
		{"no ts", strings.Replace(bboFrame, `"ts":"1597026383085",`, "", 1)},
		{"two objects", strings.Replace(bboFrame, `}]}`, `},{"asks":[],"bids":[],"ts":"1"}]}`, 1)},
		{"price not decimal", strings.Replace(bboFrame, `"8476.98"`, `"x"`, 1)},
		{"level without size", strings.Replace(bboFrame, `["8476.98","415","0","13"]`, `["8476.98"]`, 1)},
	})
}

func TestDecodeCandle(t *testing.T) {
	a := newChanAdapter(t)
	want := bridge.Event{Type: bridge.EventKline, Exchange: NameSwap, Symbol: "BTC-USDT-SWAP", TS: 1597024800000e6, RecvTS: 7}
	// Swap: volume is volCcy (base currency), not vol (contracts).
	want.SetBar(bridge.Bar{Interval: bridge.Interval1h, OpenTime: 1597024800000e6, CloseTime: 1597028399999e6, Open: "8533.02",
		High: "8553.74", Low: "8527.17", Close: "8548.26", Volume: "4.5247", QuoteVolume: "38589.1", Trades: -1})
	adaptertest.DecodeData(t, a, candleFrame, 7, want)
	if id := want.MsgID(); id != "okx-swap:BTC-USDT-SWAP:kline:1h:1597024800000000000:open:v4.5247:8548.26" {
		t.Fatal(id)
	}
	closed := strings.Replace(candleFrame, `"0"]]`, `"1"]]`, 1)
	want.Flags = bridge.FlagClosed
	adaptertest.DecodeData(t, a, closed, 7, want)
	if id := want.MsgID(); id != "okx-swap:BTC-USDT-SWAP:kline:1h:1597024800000000000" {
		t.Fatal(id)
	}
	// Spot: volume is vol; UTC-aligned day bars are 1d.
	s := newTestAdapter(t, MarketSpot)
	f := strings.NewReplacer("candle1H", "candle1Dutc", "BTC-USDT-SWAP", "BTC-USDT").Replace(candleFrame)
	evs, _, err := s.Decode([]byte(f), 7, nil)
	if err != nil || len(evs) != 1 || evs[0].Interval != bridge.Interval1d || evs[0].Qty != "45247" || evs[0].LastID != 1597024800000e6+86400e9-1e6 {
		t.Fatalf("%v %+v", err, evs)
	}
	// Bars the bridge does not offer (UTC+8 days) are ignored.
	evs, fr, err := s.Decode([]byte(strings.Replace(f, "candle1Dutc", "candle1D", 1)), 7, nil)
	if err != nil || fr.Kind != bridge.FrameIgnored || len(evs) != 0 {
		t.Fatalf("candle1D: %v %v %d", err, fr, len(evs))
	}
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"confirm 2", strings.Replace(candleFrame, `"0"]]`, `"2"]]`, 1)},
		{"eight values", strings.Replace(candleFrame, `,"0"]]`, `]]`, 1)},
		{"open not decimal", strings.Replace(candleFrame, `"8533.02"`, `"-1"`, 1)},
		{"ts not ms", strings.Replace(candleFrame, `"1597024800000"`, `"x"`, 1)},
		{"not an array", strings.Replace(candleFrame, `[["1597024800000"`, `[{"a":"1597024800000"`, 1)},
	})
	if _, err := a.Klines(context.Background(), "BTC-USDT-SWAP", bridge.Interval8h, 0, 1, 1); err == nil {
		t.Fatal("8h accepted")
	}
}

func TestDecodeTickerParts(t *testing.T) {
	a := newChanAdapter(t)
	// A second swap of the same index gets the index pushes too.
	a.URL([]bridge.Topic{{Symbol: "BTC-USD_UM-SWAP", Channel: bridge.ChannelTicker}, {Symbol: "BTC-USD-SWAP", Channel: bridge.ChannelTicker}})
	base := bridge.Event{Type: bridge.EventTicker, Exchange: NameSwap, Symbol: "BTC-USDT-SWAP", RecvTS: 7}

	mark := base
	mark.TS, mark.Flags, mark.Depth = 1630049139746e6, bridge.FlagDelta|bridge.HasMark, partMark
	mark.More[0], mark.LastID = "42310.6", partSeq(partMark, "42310.6", "")
	adaptertest.DecodeData(t, a, markFrame, 7, mark)

	fund := base
	fund.TS, fund.Flags, fund.Depth = 1700724675402e6, bridge.FlagDelta|bridge.HasFunding|bridge.HasNextFunding, partFunding
	fund.More[2], fund.Seq, fund.LastID = "-0.0000515", 1700726400000e6, partSeq(partFunding, "-0.0000515", "1700726400000")
	adaptertest.DecodeData(t, a, fundingFrame, 7, fund)

	oi := base
	oi.TS, oi.Flags, oi.Depth = 1630050480000e6, bridge.FlagDelta|bridge.HasOpenInterest, partOI
	oi.ID, oi.LastID = "2216113.01", partSeq(partOI, "2216113.01", "")
	adaptertest.DecodeData(t, a, oiFrame, 7, oi)

	idx := base
	idx.TS, idx.Flags, idx.Depth = 1630049139750e6, bridge.FlagDelta|bridge.HasIndex, partIndex
	idx.More[1], idx.LastID = "42300.1", partSeq(partIndex, "42300.1", "")
	adaptertest.DecodeData(t, a, indexFrame, 7, idx)
	usd := strings.ReplaceAll(indexFrame, "BTC-USDT", "BTC-USD")
	evs, _, err := a.Decode([]byte(usd), 7, nil)
	if err != nil || len(evs) != 2 || evs[0].Symbol != "BTC-USD_UM-SWAP" || evs[1].Symbol != "BTC-USD-SWAP" {
		t.Fatalf("index of two swaps: %v %+v", err, evs)
	}
	// An index nobody subscribed: no events.
	evs, fr, err := a.Decode([]byte(strings.ReplaceAll(indexFrame, "BTC-USDT", "ETH-USDT")), 7, nil)
	if err != nil || fr.Kind != bridge.FrameData || len(evs) != 0 {
		t.Fatalf("ETH index: %v %v %+v", err, fr, evs)
	}

	// Ids: the part's ts and seq; parts at one ts differ by tag, one part's
	// different values at one ts by hash.
	ids := map[string]bool{}
	for _, ev := range []bridge.Event{mark, fund, oi, idx} {
		e := ev
		e.TS = 1
		if ids[e.MsgID()] {
			t.Fatalf("id %s twice", e.MsgID())
		}
		ids[e.MsgID()] = true
	}
	if partSeq(partMark, "1", "") == partSeq(partMark, "2", "") || partSeq(partMark, "1", "")&7 != partMark {
		t.Fatal("partSeq")
	}
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"instId differs", strings.Replace(markFrame, `"instId":"BTC-USDT-SWAP","markPx"`, `"instId":"ETH-USDT-SWAP","markPx"`, 1)},
		{"no markPx", strings.Replace(markFrame, `"markPx":"42310.6",`, "", 1)},
		{"markPx negative", strings.Replace(markFrame, `"42310.6"`, `"-1"`, 1)},
		{"funding time", strings.Replace(fundingFrame, `"fundingTime":"1700726400000"`, `"fundingTime":"soon"`, 1)},
		{"oi not decimal", strings.Replace(oiFrame, `"2216113.01"`, `"1e3"`, 1)},
		{"no ts", strings.Replace(oiFrame, `,"ts":"1630050480000"`, "", 1)},
	})
}

func TestDecodeLiquidations(t *testing.T) {
	a := newChanAdapter(t)
	// IOST-USDT-SWAP is not subscribed: only BTC-USDT-SWAP's detail.
	want := bridge.Event{Type: bridge.EventLiquidation, Exchange: NameSwap, Symbol: "BTC-USDT-SWAP", TS: 1692266434011e6, RecvTS: 7,
		Side: bridge.SideSell, Price: "42000.5", Qty: "2"}
	adaptertest.DecodeData(t, a, liqFrame, 7, want)
	a.URL([]bridge.Topic{{Symbol: "IOST-USDT-SWAP", Channel: bridge.ChannelLiquidation}})
	evs, _, err := a.Decode([]byte(liqFrame), 7, nil)
	if err != nil || len(evs) != 3 {
		t.Fatalf("%v %+v", err, evs)
	}
	wantIDs := []string{
		"okx-swap:IOST-USDT-SWAP:liquidation:1692266434010000000:buy:0.007831:13:0",
		"okx-swap:IOST-USDT-SWAP:liquidation:1692266434010000000:buy:0.007831:13:1",
		"okx-swap:BTC-USDT-SWAP:liquidation:1692266434011000000:sell:42000.5:2:0",
	}
	for i, ev := range evs {
		if ev.MsgID() != wantIDs[i] {
			t.Fatalf("%d: %s", i, ev.MsgID())
		}
	}
	adaptertest.DecodeMalformed(t, a, [][2]string{
		{"side", strings.Replace(liqFrame, `"side":"sell"`, `"side":"long"`, 1)},
		{"no bkPx", strings.Replace(liqFrame, `"bkPx":"42000.5",`, "", 1)},
		{"no details", strings.Replace(liqFrame, `"details":[{"bkLoss":"0","bkPx":"42000.5","ccy":"","posSide":"long","side":"sell","sz":"2","ts":"1692266434011"}],`, "", 1)},
	})
}

func TestChannelArgs(t *testing.T) {
	a := newTestAdapter(t, MarketSwap)
	sym := "BTC-USDT-SWAP"
	pub := []bridge.Topic{{Symbol: sym, Channel: bridge.ChannelBook}, {Symbol: sym, Channel: bridge.ChannelBBO},
		{Symbol: sym, Channel: bridge.ChannelTicker}, {Symbol: sym, Channel: bridge.ChannelLiquidation}}
	if u := a.URL(pub); !strings.HasSuffix(u, "/ws/v5/public") {
		t.Fatal(u)
	}
	n := int64(0)
	frames := a.SubscribeFrames(pub, func() int64 { n++; return n })
	want := []string{
		`{"id":"1","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT-SWAP"},{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},` +
			`{"channel":"mark-price","instId":"BTC-USDT-SWAP"},{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},` +
			`{"channel":"open-interest","instId":"BTC-USDT-SWAP"},{"channel":"index-tickers","instId":"BTC-USDT"}]}`,
		`{"id":"2","op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"}]}`,
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames: %q", len(frames), frames)
	}
	for i := range want {
		if string(frames[i]) != want[i] {
			t.Fatalf("frame %d:\n%s\nwant\n%s", i, frames[i], want[i])
		}
	}
	frames = a.UnsubscribeFrames(pub, func() int64 { return 9 })
	if len(frames) != 1 || strings.Contains(string(frames[0]), "liquidation") || !strings.Contains(string(frames[0]), `"op":"unsubscribe"`) {
		t.Fatalf("unsubscribe %q", frames)
	}
	biz := []bridge.Topic{{Symbol: sym, Channel: bridge.KlineChannel(bridge.Interval1m)}, {Symbol: sym, Channel: bridge.KlineChannel(bridge.Interval1w)}}
	if u := a.URL(biz); !strings.HasSuffix(u, "/ws/v5/business") {
		t.Fatal(u)
	}
	frames = a.SubscribeFrames(biz, func() int64 { return 3 })
	if got := string(frames[0]); got != `{"id":"3","op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT-SWAP"},{"channel":"candle1Wutc","instId":"BTC-USDT-SWAP"}]}` {
		t.Fatal(got)
	}
	if a.Route(biz[0]) != "business" || a.Route(pub[1]) != "public" || a.Route(bridge.Topic{Channel: bridge.ChannelTrade}) != "public" {
		t.Fatal("routes")
	}
	// Spot: no ticker, no liquidation.
	s := newTestAdapter(t, MarketSpot)
	if c := s.Channels(); c&(bridge.ChannelTicker|bridge.ChannelLiquidation) != 0 || c&bridge.ChannelBBO == 0 || c&bridge.KlineOpenChannel(bridge.Interval1M) == 0 {
		t.Fatalf("spot channels %s", c)
	}
	if c := a.Channels(); c&(bridge.ChannelTicker|bridge.ChannelLiquidation) == 0 || c&bridge.KlineChannel(bridge.Interval8h) != 0 {
		t.Fatalf("swap channels %s", c)
	}
}

// TestKlinesREST: the window asked for, newest-first rows reversed, open
// bars and bars outside the range left out, history-candles when candles
// has none.
func TestKlinesREST(t *testing.T) {
	var queries []string
	rows := `[["1700000180000","4","4","4","4","1","2","3","0"],["1700000120000","3","3","3","3","1","2","3","1"],` +
		`["1700000060000","2","2","2","2","1","2","3","1"],["1700000000000","1","1","1","1","1","2","3","1"]]`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		if r.URL.Path == "/api/v5/market/candles" && r.URL.Query().Get("instId") == "OLD-USDT" {
			adaptertest.Respond(200, `{"code":"0","msg":"","data":[]}`)(w, r)
			return
		}
		if r.URL.Path == "/api/v5/market/candles" && r.URL.Query().Get("instId") == "PART-USDT" {
			adaptertest.Respond(200, `{"code":"0","msg":"","data":[["1700000120000","3","3","3","3","1","2","3","1"]]}`)(w, r)
			return
		}
		adaptertest.Respond(200, `{"code":"0","msg":"","data":`+rows+`}`)(w, r)
	})
	u := adaptertest.Serve(t, h)
	a, err := New(Config{Market: MarketSpot, RESTURL: u}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bars, err := a.Klines(context.Background(), "BTC-USDT", bridge.Interval1m, 1700000060000e6, 1700000180000e6, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(bars) != 2 || bars[0].FirstID != 1700000060000e6 || bars[1].FirstID != 1700000120000e6 || bars[1].Price != "3" ||
		bars[1].Flags != bridge.FlagClosed || bars[1].TS != bars[1].LastID || bars[1].LastID != 1700000180000e6-1e6 {
		t.Fatalf("%+v", bars)
	}
	q, _ := url.ParseQuery(strings.SplitN(queries[0], "?", 2)[1])
	if !strings.HasPrefix(queries[0], "/api/v5/market/candles?") || q.Get("bar") != "1m" || q.Get("after") != "1700000180001" ||
		q.Get("before") != "1700000059999" || q.Get("limit") != "10" {
		t.Fatal(queries[0])
	}
	// A window of limit bars from the start.
	queries = nil
	if _, err := a.Klines(context.Background(), "BTC-USDT", bridge.Interval1m, 1700000000000e6, 1800000000000e6, 2); err != nil {
		t.Fatal(err)
	}
	if q, _ := url.ParseQuery(strings.SplitN(queries[0], "?", 2)[1]); q.Get("after") != "1700000120000" {
		t.Fatal(queries[0])
	}
	queries = nil
	bars, err = a.Klines(context.Background(), "OLD-USDT", bridge.Interval1m, 1700000000000e6, 1700000180000e6, 500)
	if err != nil || len(bars) != 3 || len(queries) != 2 || !strings.HasPrefix(queries[1], "/api/v5/market/history-candles?") ||
		!strings.Contains(queries[1], "limit=100") || !strings.Contains(queries[0], "limit=300") {
		t.Fatalf("%v %d %q", err, len(bars), queries)
	}
	// candles has only the end of the window: history-candles has its start.
	queries = nil
	bars, err = a.Klines(context.Background(), "PART-USDT", bridge.Interval1m, 1700000000000e6, 1700000180000e6, 500)
	if err != nil || len(bars) != 3 || bars[0].FirstID != 1700000000000e6 || len(queries) != 2 {
		t.Fatalf("%v %d %q", err, len(bars), queries)
	}
	// A window candles covers from its start costs one request.
	queries = nil
	if bars, err = a.Klines(context.Background(), "BTC-USDT", bridge.Interval1m, 1700000000000e6, 1700000180000e6, 500); err != nil || len(bars) != 3 || len(queries) != 1 {
		t.Fatalf("%v %d %q", err, len(bars), queries)
	}
}

var chanSeeds = []string{bboFrame, candleFrame, markFrame, indexFrame, fundingFrame, oiFrame, liqFrame}

func fuzzChannel(f *testing.F, seed string) {
	a := newChanAdapter(f)
	seeds := []string{seed}
	for _, s := range chanSeeds {
		if s != seed {
			seeds = append(seeds, s)
		}
	}
	adaptertest.FuzzDecode(f, a, NameSwap, seeds, checkEvent)
}

// TestDecodeChannelsOwnStrings: channel events never refer to the frame
// buffer.
func TestDecodeChannelsOwnStrings(t *testing.T) {
	adaptertest.DecodeOwns(t, newChanAdapter(t), chanSeeds...)
}

func FuzzOKXBBO(f *testing.F)         { fuzzChannel(f, bboFrame) }
func FuzzOKXCandle(f *testing.F)      { fuzzChannel(f, candleFrame) }
func FuzzOKXTicker(f *testing.F)      { fuzzChannel(f, fundingFrame) }
func FuzzOKXLiquidation(f *testing.F) { fuzzChannel(f, liqFrame) }

func BenchmarkDecodeBBO(b *testing.B)       { adaptertest.BenchDecode(b, newChanAdapter(b), bboFrame) }
func BenchmarkDecodeCandle(b *testing.B)    { adaptertest.BenchDecode(b, newChanAdapter(b), candleFrame) }
func BenchmarkDecodeMarkPrice(b *testing.B) { adaptertest.BenchDecode(b, newChanAdapter(b), markFrame) }
func BenchmarkDecodeFunding(b *testing.B) {
	adaptertest.BenchDecode(b, newChanAdapter(b), fundingFrame)
}
func BenchmarkDecodeLiquidation(b *testing.B) {
	adaptertest.BenchDecode(b, newChanAdapter(b), liqFrame)
}
