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
