package exsim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// listing is which configured markets the venues' instrument lists show
// as trading: every market is listed at start; SetListed delists (Binance
// status BREAK, Binance USD-M SETTLING (a quarterly DELIVERING), Bybit
// status Closed, OKX state suspend) and lists again at run time. A
// delisted market keeps streaming on the WebSocket (a venue announces a
// delisting before it stops the feed); only the instrument lists change.
type listing struct {
	mu       sync.Mutex
	delisted map[Venue]map[string]bool
}

func (l *listing) listed(v Venue, symbol string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.delisted[v][symbol]
}

// SetListed lists (true) or delists (false) a configured market in its
// venue's instrument list (Binance /api/v3/exchangeInfo status TRADING or
// BREAK; Binance USD-M /fapi/v1/exchangeInfo TRADING or SETTLING; Bybit
// /v5/market/instruments-info status Trading, or absent from the default
// list and Closed with status=Closed; OKX /api/v5/public/instruments state
// live or suspend). Safe for concurrent use; an unknown market is an
// error.
func (s *Server) SetListed(v Venue, symbol string, listed bool) error {
	if s.markets[v][symbol] == nil {
		return fmt.Errorf("exsim: no market %s %s", v, symbol)
	}
	s.listing.mu.Lock()
	defer s.listing.mu.Unlock()
	if s.listing.delisted == nil {
		s.listing.delisted = map[Venue]map[string]bool{}
	}
	if s.listing.delisted[v] == nil {
		s.listing.delisted[v] = map[string]bool{}
	}
	if listed {
		delete(s.listing.delisted[v], symbol)
	} else {
		s.listing.delisted[v][symbol] = true
	}
	return nil
}

// binanceStatus is a Binance market's exchangeInfo status.
func (s *Server) binanceStatus(symbol string) string {
	if s.listing.listed(Binance, symbol) {
		return "TRADING"
	}
	return "BREAK"
}

// usdmStatus is a Binance USD-M market's exchangeInfo status.
func (s *Server) usdmStatus(symbol string) string {
	if s.listing.listed(BinanceUSDM, symbol) {
		return "TRADING"
	}
	return "SETTLING"
}

// okxInstruments serves /api/v5/public/instruments: instType SPOT (the
// okx markets), SWAP (the okx-swap "-SWAP" markets) or FUTURES (the
// okx-swap expiry futures, delivery.go), optionally one instId, in
// configuration order, state live or, delisted, suspend; an expired
// future is absent. All in one answer (OKX does not page this endpoint).
// MARGIN and OPTION list nothing; a missing or unknown instType is code
// 51000.
func (s *Server) okxInstruments(q url.Values) (code, msg string, data []byte) {
	var v Venue
	typ := q.Get("instType")
	switch typ {
	case "SPOT":
		v = OKXSpot
	case "SWAP", "FUTURES":
		v = OKXSwap
	case "MARGIN", "OPTION":
		return "0", "", []byte("[]")
	default:
		return "51000", "Parameter instType error", []byte("[]")
	}
	type item struct {
		InstType   string `json:"instType"`
		InstID     string `json:"instId"`
		Uly        string `json:"uly"`
		InstFamily string `json:"instFamily"`
		BaseCcy    string `json:"baseCcy"`
		QuoteCcy   string `json:"quoteCcy"`
		SettleCcy  string `json:"settleCcy"`
		CtVal      string `json:"ctVal"`
		CtValCcy   string `json:"ctValCcy"`
		CtType     string `json:"ctType"`
		Alias      string `json:"alias"`
		TickSz     string `json:"tickSz"`
		LotSz      string `json:"lotSz"`
		State      string `json:"state"`
		ListTime   string `json:"listTime"`
		ExpTime    string `json:"expTime"`
	}
	list := []item{}
	for _, m := range s.mlist {
		if m.venue != v || okxFutures(m.symbol) != (typ == "FUTURES") || q.Get("instId") != "" && q.Get("instId") != m.symbol {
			continue
		}
		parts := strings.Split(m.symbol, "-")
		it := item{InstType: typ, InstID: m.symbol, State: "live", ListTime: "1606468572000",
			TickSz: decimalStep(m.in.pxDec), LotSz: decimalStep(m.in.qtyDec)}
		if !s.listing.listed(v, m.symbol) {
			it.State = "suspend"
		}
		switch typ {
		case "SWAP":
			it.SettleCcy, it.CtVal, it.CtType = parts[min(1, len(parts)-1)], "1", "linear"
			it.Uly = strings.TrimSuffix(m.symbol, "-SWAP")
			it.InstFamily = it.Uly
		case "FUTURES":
			rank, at, _ := s.quarterRank(OKXSwap, m.symbol, '-')
			if !s.clock().Before(at) {
				continue // expired: OKX lists live instruments only
			}
			it.Uly, _, _ = splitDelivery(m.symbol, '-')
			it.InstFamily, it.ExpTime = it.Uly, strconv.FormatInt(at.UnixMilli(), 10)
			it.Alias = "quarter"
			if rank > 0 {
				it.Alias = "next_quarter"
			}
			if parts[1] == "USD" { // coin-margined: 100 USD a contract, settled in the base
				it.SettleCcy, it.CtVal, it.CtValCcy, it.CtType = parts[0], "100", "USD", "inverse"
			} else {
				it.SettleCcy, it.CtVal, it.CtValCcy, it.CtType = parts[1], "1", parts[0], "linear"
			}
		default:
			it.BaseCcy, it.QuoteCcy = parts[0], parts[min(1, len(parts)-1)]
		}
		list = append(list, it)
	}
	b, _ := json.Marshal(list)
	return "0", "", b
}

// decimalStep is the step of dec decimals: "0.01" for 2, "1" for 0.
func decimalStep(dec int) string {
	if dec <= 0 {
		return "1"
	}
	return "0." + strings.Repeat("0", dec-1) + "1"
}

// bybitInstruments serves /v5/market/instruments-info for category spot or
// linear: the venue's markets in configuration order, status Trading by
// default (the status parameter selects another), symbol filtering, and
// for linear cursor paging (limit 1..1000, default 500; the cursor is the
// offset as an opaque string). Spot ignores limit and cursor, as Bybit's.
func (s *Server) bybitInstruments(v Venue, q url.Values) (int, string, []byte) {
	want := q.Get("status")
	if want == "" {
		want = "Trading"
	}
	limit := 500
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return 10001, "Illegal limit", nil
		}
		limit = n
	}
	offset := 0
	if c := q.Get("cursor"); c != "" && v == BybitLinear {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return 10001, "Illegal cursor", nil
		}
		offset = n
	}
	type item struct {
		Symbol       string `json:"symbol"`
		ContractType string `json:"contractType,omitempty"`
		Status       string `json:"status"`
		BaseCoin     string `json:"baseCoin"`
		QuoteCoin    string `json:"quoteCoin"`
		SettleCoin   string `json:"settleCoin,omitempty"`
	}
	var all []item
	for _, m := range s.mlist {
		if m.venue != v || q.Get("symbol") != "" && q.Get("symbol") != m.symbol {
			continue
		}
		st := "Trading"
		if !s.listing.listed(v, m.symbol) {
			st = "Closed"
		}
		if st != want {
			continue
		}
		base, quote := baseAsset(m.symbol)
		it := item{Symbol: m.symbol, Status: st, BaseCoin: base, QuoteCoin: quote}
		if v == BybitLinear {
			it.ContractType, it.SettleCoin = "LinearPerpetual", quote
		}
		all = append(all, it)
	}
	page, next := all, ""
	if v == BybitLinear {
		page = all[min(offset, len(all)):min(offset+limit, len(all))]
		if offset+limit < len(all) {
			next = strconv.Itoa(offset + limit)
		}
	}
	if page == nil {
		page = []item{}
	}
	cat := "spot"
	if v == BybitLinear {
		cat = "linear"
	}
	res, _ := json.Marshal(struct {
		Category       string `json:"category"`
		List           []item `json:"list"`
		NextPageCursor string `json:"nextPageCursor"`
	}{cat, page, next})
	return 0, "OK", res
}
