package exsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestInstrumentLists: Binance exchangeInfo and Bybit instruments-info
// list the configured markets; SetListed delists (BREAK, Closed) and lists
// again; Bybit linear pages by cursor, spot does not.
func TestInstrumentLists(t *testing.T) {
	var markets []MarketConfig
	for _, s := range []string{"AUSDT", "BUSDT", "CUSDT"} {
		markets = append(markets, MarketConfig{Venue: Binance, Symbol: s}, MarketConfig{Venue: BybitLinear, Symbol: s}, MarketConfig{Venue: BybitSpot, Symbol: s})
	}
	s, err := New(Config{Markets: markets}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(url string, out any) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", url, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	binance := func() map[string]string {
		var info struct {
			Symbols []struct{ Symbol, Status string } `json:"symbols"`
		}
		get(s.BinanceRESTURL()+"/api/v3/exchangeInfo", &info)
		out := map[string]string{}
		for _, x := range info.Symbols {
			out[x.Symbol] = x.Status
		}
		return out
	}
	type page struct {
		RetCode int `json:"retCode"`
		Result  struct {
			List           []struct{ Symbol, Status string } `json:"list"`
			NextPageCursor string                            `json:"nextPageCursor"`
		} `json:"result"`
	}
	bybit := func(query string) ([]string, string) {
		var p page
		get(s.BybitRESTURL()+"/v5/market/instruments-info?"+query, &p)
		if p.RetCode != 0 {
			t.Fatalf("%s: retCode %d", query, p.RetCode)
		}
		var syms []string
		for _, x := range p.Result.List {
			syms = append(syms, x.Symbol+"="+x.Status)
		}
		return syms, p.Result.NextPageCursor
	}
	if got := binance(); len(got) != 3 || got["BUSDT"] != "TRADING" {
		t.Fatalf("exchangeInfo %v", got)
	}
	if err := s.SetListed(Binance, "BUSDT", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetListed(BybitLinear, "BUSDT", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetListed(Binance, "ZZZ", false); err == nil {
		t.Fatal("SetListed of an unknown market succeeded")
	}
	if got := binance(); got["BUSDT"] != "BREAK" || got["AUSDT"] != "TRADING" {
		t.Fatalf("exchangeInfo after delisting %v", got)
	}
	p1, c1 := bybit("category=linear&limit=1")
	p2, c2 := bybit("category=linear&limit=1&cursor=" + c1)
	if len(p1) != 1 || p1[0] != "AUSDT=Trading" || len(p2) != 1 || p2[0] != "CUSDT=Trading" || c2 != "" {
		t.Fatalf("linear pages %v %q, %v %q", p1, c1, p2, c2)
	}
	if closed, _ := bybit("category=linear&status=Closed"); len(closed) != 1 || closed[0] != "BUSDT=Closed" {
		t.Fatalf("closed %v", closed)
	}
	if spot, c := bybit("category=spot&limit=1"); len(spot) != 3 || c != "" {
		t.Fatalf("spot %v %q (no paging on spot)", spot, c)
	}
	if err := s.SetListed(Binance, "BUSDT", true); err != nil {
		t.Fatal(err)
	}
	if got := binance(); got["BUSDT"] != "TRADING" {
		t.Fatalf("relisted %v", got)
	}
}

// TestInstrumentListsUSDMOKX: Binance USD-M exchangeInfo and OKX
// public/instruments (SPOT, SWAP) list the configured markets; SetListed
// delists (SETTLING, suspend) and lists again; a bad instType is 51000.
func TestInstrumentListsUSDMOKX(t *testing.T) {
	markets := []MarketConfig{
		{Venue: BinanceUSDM, Symbol: "AUSDT"}, {Venue: BinanceUSDM, Symbol: "BUSDT"},
		{Venue: OKXSpot, Symbol: "A-USDT"}, {Venue: OKXSpot, Symbol: "B-USDT"},
		{Venue: OKXSwap, Symbol: "A-USDT-SWAP"}, {Venue: OKXSwap, Symbol: "B-USDT-SWAP"},
	}
	s, err := New(Config{Markets: markets}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(url string, out any) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", url, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	usdm := func() map[string]string {
		var info struct {
			Symbols []struct{ Symbol, Status, ContractType string } `json:"symbols"`
		}
		get(s.BinanceUSDMRESTURL()+"/fapi/v1/exchangeInfo", &info)
		out := map[string]string{}
		for _, x := range info.Symbols {
			out[x.Symbol] = x.Status
		}
		return out
	}
	okx := func(instType string) (string, map[string]string) {
		var env struct {
			Code string
			Data []struct{ InstType, InstID, State string }
		}
		get(s.OKXRESTURL()+"/api/v5/public/instruments?instType="+instType, &env)
		out := map[string]string{}
		for _, x := range env.Data {
			if x.InstType != instType {
				t.Fatalf("%s: instType %q", x.InstID, x.InstType)
			}
			out[x.InstID] = x.State
		}
		return env.Code, out
	}
	if got := usdm(); len(got) != 2 || got["AUSDT"] != "TRADING" || got["BUSDT"] != "TRADING" {
		t.Fatalf("exchangeInfo %v", got)
	}
	if code, got := okx("SPOT"); code != "0" || len(got) != 2 || got["A-USDT"] != "live" || got["B-USDT"] != "live" {
		t.Fatalf("SPOT %s %v", code, got)
	}
	if code, got := okx("SWAP"); code != "0" || len(got) != 2 || got["A-USDT-SWAP"] != "live" {
		t.Fatalf("SWAP %s %v", code, got)
	}
	for _, m := range []struct {
		v Venue
		s string
	}{{BinanceUSDM, "BUSDT"}, {OKXSpot, "B-USDT"}, {OKXSwap, "A-USDT-SWAP"}} {
		if err := s.SetListed(m.v, m.s, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := usdm(); got["AUSDT"] != "TRADING" || got["BUSDT"] != "SETTLING" {
		t.Fatalf("exchangeInfo after delisting %v", got)
	}
	if _, got := okx("SPOT"); got["A-USDT"] != "live" || got["B-USDT"] != "suspend" {
		t.Fatalf("SPOT after delisting %v", got)
	}
	if _, got := okx("SWAP"); got["A-USDT-SWAP"] != "suspend" || got["B-USDT-SWAP"] != "live" {
		t.Fatalf("SWAP after delisting %v", got)
	}
	if err := s.SetListed(OKXSpot, "B-USDT", true); err != nil {
		t.Fatal(err)
	}
	if _, got := okx("SPOT"); got["B-USDT"] != "live" {
		t.Fatalf("SPOT after listing again %v", got)
	}
	if code, got := okx("FUTURES"); code != "0" || len(got) != 0 {
		t.Fatalf("FUTURES %s %v", code, got)
	}
	if code, _ := okx("BAD"); code != "51000" {
		t.Fatalf("instType BAD: code %s", code)
	}
}

// TestInstrumentListsQuarterlies: delivery contracts are listed as the
// venues list them. Binance USD-M: "AUSDT_260925" with its pair,
// contractType CURRENT_QUARTER / NEXT_QUARTER by delivery date and
// deliveryDate at 08:00 UTC, TRADING until delisted (DELIVERING) or past
// its delivery (DELIVERED); the perpetual stays PERPETUAL. OKX: instType
// FUTURES lists the expiry futures (never SWAP, and the swaps never
// FUTURES) with expTime and alias, and drops one once it expired. A third
// quarterly of a pair, or an OKX future without a quote, is refused.
func TestInstrumentListsQuarterlies(t *testing.T) {
	markets := []MarketConfig{
		{Venue: BinanceUSDM, Symbol: "AUSDT"}, {Venue: BinanceUSDM, Symbol: "AUSDT_261225"}, {Venue: BinanceUSDM, Symbol: "AUSDT_260925"},
		{Venue: OKXSwap, Symbol: "A-USDT-SWAP"}, {Venue: OKXSwap, Symbol: "A-USD-261225"}, {Venue: OKXSwap, Symbol: "A-USDT-260925"},
	}
	s, err := New(Config{Markets: markets}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s.clock = func() time.Time { return time.Unix(0, now.Load()) }
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(url string, out any) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", url, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	type usdmSym struct {
		Symbol, Pair, ContractType, Status, BaseAsset string
		DeliveryDate                                  int64
	}
	usdm := func() map[string]usdmSym {
		var info struct{ Symbols []usdmSym }
		get(s.BinanceUSDMRESTURL()+"/fapi/v1/exchangeInfo", &info)
		out := map[string]usdmSym{}
		for _, x := range info.Symbols {
			out[x.Symbol] = x
		}
		return out
	}
	sep25 := time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC)
	dec25 := time.Date(2026, 12, 25, 8, 0, 0, 0, time.UTC)
	got := usdm()
	want := map[string]usdmSym{
		"AUSDT":        {"AUSDT", "AUSDT", "PERPETUAL", "TRADING", "A", 4133404800000},
		"AUSDT_260925": {"AUSDT_260925", "AUSDT", "CURRENT_QUARTER", "TRADING", "A", sep25.UnixMilli()},
		"AUSDT_261225": {"AUSDT_261225", "AUSDT", "NEXT_QUARTER", "TRADING", "A", dec25.UnixMilli()},
	}
	if len(got) != len(want) {
		t.Fatalf("exchangeInfo %+v", got)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("exchangeInfo %s: %+v, want %+v", k, got[k], w)
		}
	}
	type okxInst struct {
		InstType, InstID, Uly, SettleCcy, CtType, Alias, State, ExpTime string
	}
	okx := func(instType string) map[string]okxInst {
		var env struct {
			Code string
			Data []okxInst
		}
		get(s.OKXRESTURL()+"/api/v5/public/instruments?instType="+instType, &env)
		if env.Code != "0" {
			t.Fatalf("%s: code %s", instType, env.Code)
		}
		out := map[string]okxInst{}
		for _, x := range env.Data {
			out[x.InstID] = x
		}
		return out
	}
	if sw := okx("SWAP"); len(sw) != 1 || sw["A-USDT-SWAP"].State != "live" {
		t.Fatalf("SWAP %+v", sw)
	}
	fut := okx("FUTURES")
	wantFut := map[string]okxInst{
		"A-USDT-260925": {"FUTURES", "A-USDT-260925", "A-USDT", "USDT", "linear", "quarter", "live", strconv.FormatInt(sep25.UnixMilli(), 10)},
		"A-USD-261225":  {"FUTURES", "A-USD-261225", "A-USD", "A", "inverse", "quarter", "live", strconv.FormatInt(dec25.UnixMilli(), 10)},
	}
	if len(fut) != len(wantFut) {
		t.Fatalf("FUTURES %+v", fut)
	}
	for k, w := range wantFut {
		if fut[k] != w {
			t.Errorf("FUTURES %s: %+v, want %+v", k, fut[k], w)
		}
	}

	// Delisted before delivery: DELIVERING, suspend.
	if err := s.SetListed(BinanceUSDM, "AUSDT_261225", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetListed(OKXSwap, "A-USD-261225", false); err != nil {
		t.Fatal(err)
	}
	if got := usdm(); got["AUSDT_261225"].Status != "DELIVERING" || got["AUSDT"].Status != "TRADING" {
		t.Fatalf("exchangeInfo after delisting %+v", got)
	}
	if fut := okx("FUTURES"); fut["A-USD-261225"].State != "suspend" || fut["A-USDT-260925"].State != "live" {
		t.Fatalf("FUTURES after delisting %+v", fut)
	}
	// Past the September delivery: DELIVERED, absent from OKX's list.
	now.Store(sep25.UnixNano())
	if got := usdm(); got["AUSDT_260925"].Status != "DELIVERED" || got["AUSDT"].Status != "TRADING" {
		t.Fatalf("exchangeInfo after the delivery %+v", got)
	}
	if fut := okx("FUTURES"); len(fut) != 1 || fut["A-USD-261225"].InstID == "" {
		t.Fatalf("FUTURES after the expiry %+v", fut)
	}

	for _, bad := range [][]MarketConfig{
		{{Venue: BinanceUSDM, Symbol: "AUSDT_260925"}, {Venue: BinanceUSDM, Symbol: "AUSDT_261225"}, {Venue: BinanceUSDM, Symbol: "AUSDT_270326"}},
		{{Venue: BinanceUSDM, Symbol: "AUSDT_261332"}},
		{{Venue: Binance, Symbol: "AUSDT_260925"}},
		{{Venue: OKXSwap, Symbol: "A-260925"}},
	} {
		if _, err := New(Config{Markets: bad}, nil); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}
