package exsim

import (
	"encoding/json"
	"testing"
	"time"
)

func okxMarkets() []MarketConfig {
	return []MarketConfig{
		{Venue: OKXSpot, Symbol: "BTC-USDT"},
		{Venue: OKXSwap, Symbol: "BTC-USDT-SWAP"},
		{Venue: OKXSwap, Symbol: "ETH-USDT-SWAP"},
	}
}

// TestOKXChannelSubscribe: each channel on its endpoint only, with OKX's
// error codes; bbo-tbt starts with the current best level, the ticker
// parts with their last push.
func TestOKXChannelSubscribe(t *testing.T) {
	s := startServer(t, Config{Markets: okxMarkets(), TickerPush: time.Hour, LiquidationRate: -1})
	pub := dial(t, s.OKXWSURL()+"/ws/v5/public")
	biz := dial(t, s.OKXWSURL()+"/ws/v5/business")
	for _, c := range []struct {
		biz  bool
		arg  string
		code string
	}{
		{false, `{"channel":"candle1m","instId":"BTC-USDT"}`, "60018"},
		{true, `{"channel":"bbo-tbt","instId":"BTC-USDT"}`, "64002"},
		{true, `{"channel":"candle1D","instId":"BTC-USDT"}`, "60018"}, // UTC+8 days: not simulated
		{false, `{"channel":"mark-price","instId":"BTC-USDT"}`, "60018"},
		{false, `{"channel":"index-tickers","instId":"XRP-USDT"}`, "60018"},
		{false, `{"channel":"liquidation-orders","instType":"FUTURES"}`, "60018"},
	} {
		ws := pub
		if c.biz {
			ws = biz
		}
		send(t, ws, `{"id":"1","op":"subscribe","args":[`+c.arg+`]}`)
		m := readObj(t, ws)
		if m["event"] != "error" || m["code"] != c.code {
			t.Fatalf("%s: %v", c.arg, m)
		}
	}
	send(t, pub, `{"id":"2","op":"subscribe","args":[{"channel":"bbo-tbt","instId":"BTC-USDT"}]}`)
	if m := readObj(t, pub); m["event"] != "subscribe" {
		t.Fatalf("ack %v", m)
	}
	var bbo struct {
		Data []struct {
			Asks, Bids [][]string
			TS         string
			SeqID      int64 `json:"seqId"`
		}
	}
	if err := json.Unmarshal(readFrame(t, pub), &bbo); err != nil || len(bbo.Data) != 1 || len(bbo.Data[0].Asks) != 1 ||
		len(bbo.Data[0].Bids) != 1 || len(bbo.Data[0].Asks[0]) != 4 {
		t.Fatalf("bbo snapshot %+v %v", bbo, err)
	}
	if seq, _ := s.OKXSeqID(OKXSpot, "BTC-USDT"); bbo.Data[0].SeqID != seq {
		t.Fatalf("bbo seqId %d, books %d", bbo.Data[0].SeqID, seq)
	}
	// A best-level change pushes bbo-tbt with the books seqId (200 book
	// updates of the seeded market move it).
	if err := s.Generate(OKXSpot, "BTC-USDT", 0, 200); err != nil {
		t.Fatal(err)
	}
	var next struct {
		Arg  struct{ Channel string }
		Data []struct {
			SeqID int64 `json:"seqId"`
		}
	}
	if err := json.Unmarshal(readFrame(t, pub), &next); err != nil || next.Arg.Channel != "bbo-tbt" || next.Data[0].SeqID <= bbo.Data[0].SeqID {
		t.Fatalf("bbo push %+v %v", next, err)
	}
}

// TestOKXCandlesREST: candles serve the recent bars with the open one,
// history-candles closed ones, both newest first within (before, after),
// at most limit (300 / 100).
func TestOKXCandlesREST(t *testing.T) {
	s := startServer(t, Config{Markets: okxMarkets(), KlineSpeed: 600, LiquidationRate: -1})
	waitFor(t, "five closed 1m bars", func() bool {
		k, _ := s.Klines(OKXSwap, "BTC-USDT-SWAP", "1m")
		return len(k) >= 5
	})
	truth, _ := s.Klines(OKXSwap, "BTC-USDT-SWAP", "1m")
	type env struct {
		Code string
		Data [][]string
	}
	getRows := func(path string) env {
		t.Helper()
		st, _, b := get(t, s.OKXRESTURL()+path)
		var e env
		if st != 200 || json.Unmarshal(b, &e) != nil {
			t.Fatalf("%s: %d %s", path, st, b)
		}
		return e
	}
	e := getRows("/api/v5/market/candles?instId=BTC-USDT-SWAP&bar=1m")
	if e.Code != "0" || len(e.Data) < 6 || e.Data[0][8] != "0" || e.Data[1][8] != "1" || len(e.Data[0]) != 9 {
		t.Fatalf("candles %+v", e)
	}
	for i := 1; i < len(e.Data); i++ {
		if e.Data[i][0] >= e.Data[i-1][0] && len(e.Data[i][0]) == len(e.Data[i-1][0]) {
			t.Fatalf("not newest first at %d: %v", i, e.Data)
		}
	}
	// Swap volumes: vol in contracts, volCcy the base volume of the truth.
	k := truth[1]
	ms := func(ns int64) string { return jsonInt(ns / 1e6) }
	e = getRows("/api/v5/market/history-candles?instId=BTC-USDT-SWAP&bar=1m&before=" + ms(truth[0].OpenTime) + "&after=" + ms(truth[3].OpenTime) + "&limit=500")
	if len(e.Data) != 2 || e.Data[0][0] != ms(truth[2].OpenTime) || e.Data[1][0] != ms(k.OpenTime) || e.Data[1][6] != k.Volume ||
		e.Data[1][4] != k.Close || e.Data[1][7] != k.QuoteVolume {
		t.Fatalf("history-candles %v, truth %+v", e.Data, truth[:4])
	}
	if e = getRows("/api/v5/market/history-candles?instId=BTC-USDT-SWAP&bar=1m&limit=2"); len(e.Data) != 2 || e.Data[0][8] != "1" ||
		e.Data[1][0] >= e.Data[0][0] {
		t.Fatalf("history-candles limit 2: %v", e.Data)
	}
	if e = getRows("/api/v5/market/candles?instId=BTC-USDT&bar=1D"); e.Code != "51000" {
		t.Fatalf("bar 1D: %+v", e)
	}
}

// TestOKXLiquidationOrders: liquidation-orders (instType SWAP) delivers
// every swap market's liquidations, each the ground truth's.
func TestOKXLiquidationOrders(t *testing.T) {
	s := startServer(t, Config{Markets: okxMarkets(), LiquidationRate: 20})
	ws := dial(t, s.OKXWSURL()+"/ws/v5/public")
	send(t, ws, `{"id":"1","op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"}]}`)
	if m := readObj(t, ws); m["event"] != "subscribe" || m["arg"].(map[string]any)["instType"] != "SWAP" {
		t.Fatalf("ack %v", m)
	}
	seen := map[string]int{}
	for len(seen) < 2 {
		var f struct {
			Arg  struct{ Channel, InstType string }
			Data []struct {
				InstID  string `json:"instId"`
				Details []struct{ Side, PosSide, BkPx, Sz, TS string }
			}
		}
		if err := json.Unmarshal(readFrame(t, ws), &f); err != nil || f.Arg.Channel != "liquidation-orders" || len(f.Data) != 1 {
			t.Fatalf("frame %+v %v", f, err)
		}
		d := f.Data[0]
		truth, _ := s.Liquidations(OKXSwap, d.InstID)
		for _, x := range d.Details {
			found := false
			for _, l := range truth {
				side := "buy"
				if l.Long {
					side = "sell"
				}
				found = found || jsonInt(l.TS/1e6) == x.TS && side == x.Side && l.Price == x.BkPx && l.Qty == x.Sz
			}
			if !found {
				t.Fatalf("%s liquidation %+v not in the truth", d.InstID, x)
			}
		}
		seen[d.InstID]++
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
