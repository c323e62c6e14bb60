package exsim

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
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
