package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
	"github.com/qldata/mdbridge/bridge/internal/rest"
)

// REST request weights (Binance Spot, 2026).
const (
	WeightTime             = 1
	WeightTrades           = 25
	WeightHistoricalTrades = 25
	MaxTradesLimit         = 1000
)

// Default waits when a rate-limit answer carries no Retry-After.
const (
	defaultRetry429 = time.Minute     // the weight window is one minute
	defaultRetry418 = 2 * time.Minute // the shortest IP ban
)

// checkResponse syncs the limiter from X-MBX-USED-WEIGHT-1M and maps
// statuses to errors: 429/418 -> *bridge.RateLimitError, other non-2xx ->
// *APIError (5xx: outcome unknown).
func (a *Adapter) checkResponse(resp *http.Response, body []byte) error {
	now := a.core.Now()
	if v := resp.Header.Get("X-MBX-USED-WEIGHT-1M"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			a.core.Limiter.UpdateUsedWeight(n, now)
		}
	}
	switch st := resp.StatusCode; {
	case st >= 200 && st < 300:
		return nil
	case st == http.StatusTooManyRequests:
		return &bridge.RateLimitError{Status: st, RetryAfter: rest.RetryAfter(resp.Header.Get("Retry-After"), now, defaultRetry429)}
	case st == http.StatusTeapot:
		return &bridge.RateLimitError{Status: st, Banned: true, RetryAfter: rest.RetryAfter(resp.Header.Get("Retry-After"), now, defaultRetry418)}
	default:
		e := &APIError{Status: st, Path: resp.Request.URL.Path}
		var b struct {
			Code *int   `json:"code"`
			Msg  string `json:"msg"`
		}
		parsed := json.Unmarshal(body, &b) == nil && b.Code != nil
		if parsed {
			e.Code = *b.Code
		}
		e.Msg = rest.ErrorMessage(st, b.Msg, parsed, body)
		return e
	}
}

// Snapshot fetches the order book of symbol with GET
// /api/v3/depth?symbol=&limit=<BookDepth> (weight by limit: 5, 25, 50 or
// 250) and returns it as an EventBookSnapshot with LastID = lastUpdateId.
// The response carries no exchange time, so TS is the local receive time
// like RecvTS. Errors: *bridge.RateLimitError, *APIError (e.g. CodeBadSymbol),
// bridge.ErrMalformed, ctx and transport errors, all wrapped.
func (a *Adapter) Snapshot(ctx context.Context, symbol string) (bridge.Event, error) {
	if a.usdm {
		return a.usdmSnapshot(ctx, symbol)
	}
	const path = "/api/v3/depth"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return bridge.Event{}, err
	}
	q := url.Values{"symbol": {sym}, "limit": {strconv.Itoa(a.cfg.BookDepth)}}
	body, err := a.core.Get(ctx, path, q, depthWeight(a.cfg.BookDepth))
	if err != nil {
		return bridge.Event{}, err
	}
	recv := a.core.Now().UnixNano()
	ev := bridge.Event{Type: bridge.EventBookSnapshot, Exchange: Name, Symbol: sym, TS: recv, RecvTS: recv}
	if ev.LastID, ev.Bids, ev.Asks, err = parseDepthSnapshot(string(body)); err != nil {
		return bridge.Event{}, a.core.Malformed(path, err)
	}
	return ev, nil
}

// Keys of a depth snapshot, as jscan.Seen bits.
const (
	snapLast jscan.Seen = 1 << iota
	snapBids
	snapAsks
)

// parseDepthSnapshot reads {"lastUpdateId":N,"bids":[..],"asks":[..]}.
func parseDepthSnapshot(body string) (last int64, bids, asks []bridge.Level, err error) {
	sc := jscan.New(body)
	var seen jscan.Seen
	bidPos, askPos, nb, na := 0, 0, 0, 0
	err = sc.Object(func(key string) (err error) {
		switch key {
		case "lastUpdateId":
			if err = seen.Add(snapLast, key); err == nil {
				last, _, err = sc.Uint()
			}
		case "bids":
			if err = seen.Add(snapBids, key); err == nil {
				bidPos = sc.Pos()
				nb, err = sc.SkipCount()
			}
		case "asks":
			if err = seen.Add(snapAsks, key); err == nil {
				askPos = sc.Pos()
				na, err = sc.SkipCount()
			}
		default:
			err = sc.Skip()
		}
		return err
	})
	if err == nil {
		err = sc.End()
	}
	if err != nil {
		return 0, nil, nil, err
	}
	if !seen.Has(snapLast | snapBids | snapAsks) {
		return 0, nil, nil, errors.New("missing lastUpdateId, bids or asks")
	}
	bids, asks, err = sc.Sides(bidPos, nb, askPos, na)
	return last, bids, asks, err
}

// ServerTime returns Binance's clock from GET /api/v3/time (weight 1).
func (a *Adapter) ServerTime(ctx context.Context) (time.Time, error) {
	path := "/api/v3/time"
	if a.usdm {
		path = "/fapi/v1/time"
	}
	body, err := a.core.Get(ctx, path, nil, WeightTime)
	if err != nil {
		return time.Time{}, err
	}
	var r struct {
		ServerTime *int64 `json:"serverTime"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return time.Time{}, a.core.Malformed(path, err)
	}
	if r.ServerTime == nil || *r.ServerTime <= 0 {
		return time.Time{}, a.core.Malformed(path, errors.New("missing serverTime"))
	}
	return time.UnixMilli(*r.ServerTime), nil
}

// restTrade is one element of /api/v3/trades and /api/v3/historicalTrades.
// Keys are long-form and distinct in case, so encoding/json is safe here.
type restTrade struct {
	ID           json.Number `json:"id"`
	Price        string      `json:"price"`
	Qty          string      `json:"qty"`
	Time         *int64      `json:"time"`
	IsBuyerMaker *bool       `json:"isBuyerMaker"`
}

// Trades returns up to limit (1..1000) trades of symbol with ids >= fromID,
// ascending and consecutive as Binance numbers them, from GET
// /api/v3/historicalTrades?symbol=&fromId=&limit= (weight 25).
//
// Fallback: if historicalTrades is refused (HTTP 401, or an API-key error
// code: some deployments require a key), the adapter remembers it and uses
// GET /api/v3/trades?symbol=&limit=1000 (weight 25), the most recent 1000
// trades, keeping those with id >= fromID. That can only backfill a gap
// still within the last 1000 trades: when the result starts above fromID,
// the trades in between are lost and the caller must count them missing.
//
// Errors: *bridge.RateLimitError, *APIError, bridge.ErrMalformed, ctx and
// transport errors, all wrapped.
func (a *Adapter) Trades(ctx context.Context, symbol string, fromID int64, limit int) ([]bridge.Event, error) {
	if a.usdm {
		return a.usdmTrades(ctx, symbol, fromID, limit)
	}
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	if fromID < 0 {
		return nil, fmt.Errorf("%w: binance: Trades fromID %d is negative", bridge.ErrNotSupported, fromID)
	}
	if limit <= 0 || limit > MaxTradesLimit {
		limit = MaxTradesLimit
	}
	if !a.historicalRefused.Load() {
		const path = "/api/v3/historicalTrades"
		q := url.Values{"symbol": {sym}, "fromId": {strconv.FormatInt(fromID, 10)}, "limit": {strconv.Itoa(limit)}}
		body, err := a.core.Get(ctx, path, q, WeightHistoricalTrades)
		if err == nil {
			return a.parseTrades(path, sym, body, fromID, limit)
		}
		var ae *APIError
		if !errors.As(err, &ae) || !historicalRefused(ae) {
			return nil, err
		}
		a.historicalRefused.Store(true)
		a.core.Log.Warn("historicalTrades refused; falling back to /api/v3/trades (recent 1000 trades only)", "err", err)
	}
	const path = "/api/v3/trades"
	q := url.Values{"symbol": {sym}, "limit": {strconv.Itoa(MaxTradesLimit)}}
	body, err := a.core.Get(ctx, path, q, WeightTrades)
	if err != nil {
		return nil, err
	}
	return a.parseTrades(path, sym, body, fromID, limit)
}

func historicalRefused(e *APIError) bool {
	if e.Status == http.StatusUnauthorized {
		return true
	}
	switch e.Code {
	case CodeUnauthorized, CodeBadAPIKey, CodeRejectedAPIKey, CodeNoAPIKey:
		return true
	}
	return false
}

// parseTrades decodes a trade list, checks ids ascend strictly, and keeps
// at most limit trades with id >= fromID.
func (a *Adapter) parseTrades(path, sym string, body []byte, fromID int64, limit int) ([]bridge.Event, error) {
	var list []restTrade
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
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: id %q is not a non-negative integer", i, id))
		case seq <= prev:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: id %d not above previous %d", i, seq, prev))
		case !jscan.IsDecimal(t.Price) || !jscan.IsDecimal(t.Qty):
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: price %q / qty %q not decimal", i, t.Price, t.Qty))
		case t.Time == nil || *t.Time < 0 || *t.Time > (1<<63-1)/1_000_000:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: missing or invalid time", i))
		case t.IsBuyerMaker == nil:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: missing isBuyerMaker", i))
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
			Type: bridge.EventTrade, Exchange: Name, Symbol: sym, TS: *t.Time * 1_000_000, RecvTS: recv,
			ID: id, Seq: seq, Price: t.Price, Qty: t.Qty, Side: side,
		})
	}
	return out, nil
}
