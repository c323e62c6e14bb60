package binance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
)

// usdmSnapshot fetches GET /fapi/v1/depth?symbol=&limit=<BookDepth>
// (weight 2, 5, 10 or 20 by limit) as an EventBookSnapshot with LastID =
// lastUpdateId. TS is the local receive time, as for Spot.
func (a *Adapter) usdmSnapshot(ctx context.Context, symbol string) (bridge.Event, error) {
	const path = "/fapi/v1/depth"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return bridge.Event{}, err
	}
	q := url.Values{"symbol": {sym}, "limit": {strconv.Itoa(a.cfg.BookDepth)}}
	body, err := a.core.Get(ctx, path, q, usdmDepthWeight(a.cfg.BookDepth))
	if err != nil {
		return bridge.Event{}, err
	}
	recv := a.core.Now().UnixNano()
	ev := bridge.Event{Type: bridge.EventBookSnapshot, Exchange: NameUSDM, Symbol: sym, TS: recv, RecvTS: recv}
	if ev.LastID, ev.Bids, ev.Asks, err = parseDepthSnapshot(string(body)); err != nil {
		return bridge.Event{}, a.core.Malformed(path, err)
	}
	return ev, nil
}

// restAggTrade is one row of /fapi/v1/aggTrades. Its keys differ in more
// than case (a p q nq f l T m), so encoding/json is safe here.
type restAggTrade struct {
	ID           json.Number `json:"a"`
	Price        string      `json:"p"`
	Qty          string      `json:"q"`
	Time         *int64      `json:"T"`
	IsBuyerMaker *bool       `json:"m"`
}

// usdmTrades returns up to limit (1..1000) aggregate trades of symbol with
// ids >= fromID from GET /fapi/v1/aggTrades?symbol=&fromId=&limit= (weight
// 20), ascending by aggregate id.
func (a *Adapter) usdmTrades(ctx context.Context, symbol string, fromID int64, limit int) ([]bridge.Event, error) {
	const path = "/fapi/v1/aggTrades"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	if fromID < 0 {
		return nil, fmt.Errorf("%w: %s: Trades fromID %d is negative", bridge.ErrNotSupported, NameUSDM, fromID)
	}
	if limit <= 0 || limit > MaxUSDMAggTradesLimit {
		limit = MaxUSDMAggTradesLimit
	}
	q := url.Values{"symbol": {sym}, "fromId": {strconv.FormatInt(fromID, 10)}, "limit": {strconv.Itoa(limit)}}
	body, err := a.core.Get(ctx, path, q, WeightUSDMAggTrades)
	if err != nil {
		return nil, err
	}
	var list []restAggTrade
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	recv := a.core.Now().UnixNano()
	out := make([]bridge.Event, 0, min(len(list), limit))
	prev := int64(-1)
	for i, t := range list {
		id := t.ID.String()
		seq, ok := parseUint(id)
		switch {
		case !ok:
			return nil, a.core.Malformed(path, fmt.Errorf("row %d: a %q is not a non-negative integer", i, id))
		case seq <= prev:
			return nil, a.core.Malformed(path, fmt.Errorf("row %d: a %d not above previous %d", i, seq, prev))
		case !jscan.IsDecimal(t.Price) || !jscan.IsDecimal(t.Qty):
			return nil, a.core.Malformed(path, fmt.Errorf("row %d: p %q / q %q not decimal", i, t.Price, t.Qty))
		case t.Time == nil || *t.Time < 0 || *t.Time > (1<<63-1)/1_000_000:
			return nil, a.core.Malformed(path, fmt.Errorf("row %d: missing or invalid T", i))
		case t.IsBuyerMaker == nil:
			return nil, a.core.Malformed(path, fmt.Errorf("row %d: missing m", i))
		}
		prev = seq
		if seq < fromID || len(out) == limit {
			continue
		}
		side := bridge.SideBuy
		if *t.IsBuyerMaker {
			side = bridge.SideSell
		}
		out = append(out, bridge.Event{
			Type: bridge.EventTrade, Exchange: NameUSDM, Symbol: sym, TS: *t.Time * 1_000_000, RecvTS: recv,
			ID: id, Seq: seq, Price: t.Price, Qty: t.Qty, Side: side,
		})
	}
	return out, nil
}

// WeightLimit reads the REQUEST_WEIGHT limit per minute from GET
// /fapi/v1/exchangeInfo (weight 1) for Market "usdm" (GET
// /api/v3/exchangeInfo, weight 20, for Spot): the live figure is
// authoritative, the configured budget a default. It returns 0 when the
// answer lists no per-minute REQUEST_WEIGHT limit.
func (a *Adapter) WeightLimit(ctx context.Context) (int, error) {
	path, weight := "/api/v3/exchangeInfo", 20
	if a.usdm {
		path, weight = "/fapi/v1/exchangeInfo", 1
	}
	body, err := a.core.Get(ctx, path, nil, weight)
	if err != nil {
		return 0, err
	}
	var info struct {
		RateLimits []struct {
			Type        string `json:"rateLimitType"`
			Interval    string `json:"interval"`
			IntervalNum int    `json:"intervalNum"`
			Limit       int    `json:"limit"`
		} `json:"rateLimits"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return 0, a.core.Malformed(path, err)
	}
	for _, l := range info.RateLimits {
		if l.Type == "REQUEST_WEIGHT" && l.Interval == "MINUTE" && l.IntervalNum == 1 && l.Limit > 0 {
			return l.Limit, nil
		}
	}
	return 0, nil
}

// usdmKlinesLimit bounds the limit of a /fapi/v1/klines call to the bars
// of [fromNS, toNS] (plus one), so a short fill costs weight 1 rather
// than 5; months (no fixed length) keep limit.
func usdmKlinesLimit(iv bridge.Interval, fromNS, toNS int64, limit int) int {
	if d := int64(iv.Duration()); d > 0 && toNS >= fromNS {
		if n := (toNS-fromNS)/d + 2; n < int64(limit) {
			return int(n)
		}
	}
	return limit
}

// usdmKlinesWeight is the request weight of GET /fapi/v1/klines by limit:
// [1,100) 1, [100,500) 2, [500,1000] 5, above 10.
func usdmKlinesWeight(limit int) int {
	switch {
	case limit < 100:
		return 1
	case limit < 500:
		return 2
	case limit <= 1000:
		return 5
	}
	return 10
}

var _ bridge.OpenInterestPoller = (*Adapter)(nil)

// OpenInterestEvery is Config.OpenInterestEvery for Market "usdm" (0 when
// negative, and on Spot: no open interest there).
func (a *Adapter) OpenInterestEvery() time.Duration {
	if !a.usdm {
		return 0
	}
	return max(a.cfg.OpenInterestEvery, 0)
}

// OpenInterest fetches GET /fapi/v1/openInterest?symbol= (weight 1):
// {"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}.
// It returns the open interest as the venue wrote it and its time (Unix
// ms). Errors: bridge.ErrNotSupported on Spot, *bridge.RateLimitError,
// *APIError, bridge.ErrMalformed, ctx and transport errors, all wrapped.
func (a *Adapter) OpenInterest(ctx context.Context, symbol string) (string, int64, error) {
	const path = "/fapi/v1/openInterest"
	if !a.usdm {
		return "", 0, fmt.Errorf("%w: %s has no open interest", bridge.ErrNotSupported, Name)
	}
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return "", 0, err
	}
	body, err := a.core.Get(ctx, path, url.Values{"symbol": {sym}}, WeightUSDMOpenInterest)
	if err != nil {
		return "", 0, err
	}
	var r struct {
		OpenInterest string `json:"openInterest"`
		Symbol       string `json:"symbol"`
		Time         int64  `json:"time"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", 0, a.core.Malformed(path, err)
	}
	switch {
	case r.Symbol != sym:
		return "", 0, a.core.Malformed(path, fmt.Errorf("symbol %q, asked for %q", r.Symbol, sym))
	case !jscan.IsDecimal(r.OpenInterest):
		return "", 0, a.core.Malformed(path, fmt.Errorf("openInterest %q is not a decimal", r.OpenInterest))
	case r.Time <= 0 || r.Time > (1<<63-1)/1_000_000:
		return "", 0, a.core.Malformed(path, fmt.Errorf("time %d", r.Time))
	}
	return r.OpenInterest, r.Time, nil
}
