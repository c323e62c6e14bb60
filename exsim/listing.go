package exsim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
)

// listing is which configured markets the venues' instrument lists show
// as trading: every market is listed at start; SetListed delists (Binance
// status BREAK, Bybit status Closed) and lists again at run time. A
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
// BREAK; Bybit /v5/market/instruments-info status Trading, or absent
// from the default list and Closed with status=Closed). Safe for
// concurrent use; an unknown market is an error.
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
