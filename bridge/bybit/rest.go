package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
	"github.com/qldata/mdbridge/bridge/internal/rest"
)

// RequestWeight is the limiter weight of every Bybit REST request: the IP
// limit counts requests (600 per 5 s).
const RequestWeight = 1

// MaxLinearSnapshotDepth is the most levels /v5/market/orderbook serves for
// linear.
const MaxLinearSnapshotDepth = 500

// MaxRecentTrades is the largest limit RecentTrades accepts (linear 1000;
// spot answers at most 60).
const MaxRecentTrades = 1000

// Default waits when a rate-limit answer carries no Retry-After.
const (
	defaultBan      = 10 * time.Minute // HTTP 403 "access too frequent": at least 10 minutes
	defaultRetry429 = 10 * time.Second
	defaultRetryUID = time.Second // retCode 10006 without a reset timestamp
)

// envelopeREST is Bybit's REST response envelope.
type envelopeREST struct {
	RetCode *int            `json:"retCode"`
	RetMsg  string          `json:"retMsg"`
	Result  json.RawMessage `json:"result"`
}

// checkResponse maps statuses and retCodes to errors: 403 -> IP ban
// (*bridge.RateLimitError, Banned), 429 and retCode 10006 ->
// *bridge.RateLimitError, other non-2xx or non-zero retCode -> *APIError.
func (a *Adapter) checkResponse(resp *http.Response, body []byte) error {
	now := a.core.Now()
	path := resp.Request.URL.Path
	st := resp.StatusCode
	switch {
	case st == http.StatusForbidden:
		return &bridge.RateLimitError{Status: st, Banned: true, RetryAfter: rest.RetryAfter(resp.Header.Get("Retry-After"), now, defaultBan)}
	case st == http.StatusTooManyRequests:
		return &bridge.RateLimitError{Status: st, RetryAfter: rest.RetryAfter(resp.Header.Get("Retry-After"), now, defaultRetry429)}
	}
	var env envelopeREST
	parsed := json.Unmarshal(body, &env) == nil && env.RetCode != nil
	switch {
	case st < 200 || st >= 300:
		e := &APIError{Status: st, Path: path, RetMsg: rest.ErrorMessage(st, env.RetMsg, parsed, body)}
		if parsed {
			e.RetCode = *env.RetCode
		}
		return e
	case !parsed:
		return fmt.Errorf("%w: bybit: %s: response is not a retCode envelope: %s", bridge.ErrMalformed, path, rest.Snippet(body))
	case *env.RetCode == RetCodeTooManyVisits:
		return &bridge.RateLimitError{Status: st, RetryAfter: resetAfter(resp.Header.Get("X-Bapi-Limit-Reset-Timestamp"), now)}
	case *env.RetCode != 0:
		return &APIError{Status: st, RetCode: *env.RetCode, RetMsg: env.RetMsg, Path: path}
	}
	return nil
}

// resetAfter turns X-Bapi-Limit-Reset-Timestamp (Unix ms) into a wait.
func resetAfter(v string, now time.Time) time.Duration {
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ms <= 0 {
		return defaultRetryUID
	}
	d := time.UnixMilli(ms).Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, defaultBan)
}

// get sends a GET and returns the envelope's result.
func (a *Adapter) get(ctx context.Context, path string, q url.Values) (json.RawMessage, error) {
	body, err := a.core.Get(ctx, path, q, RequestWeight)
	if err != nil {
		return nil, err
	}
	var env envelopeREST
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	return env.Result, nil
}

// RESTSnapshotSeries is the Depth of a REST order book snapshot: its u is
// the update id of the 1000-level stream, whatever limit was asked for, so
// it chains only to orderbook.1000 deltas. The bridge itself never
// publishes it: a Bybit book is resynchronized from the WebSocket stream
// the deltas come from (see bridge.BookStreamSnapshot).
const RESTSnapshotSeries = 1000

// Snapshot fetches the order book with GET
// /v5/market/orderbook?category=<market>&symbol=&limit=<BookDepth> (linear
// serves at most 500 levels: the limit is capped there) and
// returns an EventBookSnapshot with LastID = u, Seq = seq, TS = ts and
// Depth = RESTSnapshotSeries.
// Errors: *bridge.RateLimitError, *APIError (e.g. an unknown symbol),
// bridge.ErrMalformed, ctx and transport errors, all wrapped.
func (a *Adapter) Snapshot(ctx context.Context, symbol string) (bridge.Event, error) {
	const path = "/v5/market/orderbook"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return bridge.Event{}, err
	}
	limit := a.cfg.BookDepth
	if a.cfg.Market == MarketLinear {
		limit = min(limit, MaxLinearSnapshotDepth)
	}
	q := url.Values{"category": {a.cfg.Market}, "symbol": {sym}, "limit": {strconv.Itoa(limit)}}
	res, err := a.get(ctx, path, q)
	if err != nil {
		return bridge.Event{}, err
	}
	recv := a.core.Now().UnixNano()
	// Keys s, b, a, ts, u, seq, cts differ by more than case:
	// encoding/json is safe here.
	var r struct {
		S   string     `json:"s"`
		B   [][]string `json:"b"`
		A   [][]string `json:"a"`
		TS  *int64     `json:"ts"`
		U   *int64     `json:"u"`
		Seq int64      `json:"seq"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return bridge.Event{}, a.core.Malformed(path, err)
	}
	switch {
	case r.S != sym:
		return bridge.Event{}, a.core.Malformed(path, fmt.Errorf("symbol %q, asked for %q", r.S, sym))
	case r.U == nil || *r.U < 0:
		return bridge.Event{}, a.core.Malformed(path, errors.New("missing or negative u"))
	case r.TS == nil || *r.TS < 0:
		return bridge.Event{}, a.core.Malformed(path, errors.New("missing or negative ts"))
	}
	ts, err := msToNS(*r.TS)
	if err != nil {
		return bridge.Event{}, a.core.Malformed(path, err)
	}
	ev := bridge.Event{Type: bridge.EventBookSnapshot, Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recv, LastID: *r.U, Seq: r.Seq, Depth: RESTSnapshotSeries}
	levels := make([]bridge.Level, 0, len(r.B)+len(r.A))
	if levels, err = appendLevels(levels, r.B); err != nil {
		return bridge.Event{}, a.core.Malformed(path, fmt.Errorf("b: %w", err))
	}
	nb := len(levels)
	if levels, err = appendLevels(levels, r.A); err != nil {
		return bridge.Event{}, a.core.Malformed(path, fmt.Errorf("a: %w", err))
	}
	if nb > 0 {
		ev.Bids = levels[:nb:nb]
	}
	if len(levels) > nb {
		ev.Asks = levels[nb:]
	}
	return ev, nil
}

func appendLevels(dst []bridge.Level, in [][]string) ([]bridge.Level, error) {
	for i, l := range in {
		if len(l) != 2 || !jscan.IsDecimal(l[0]) || !jscan.IsDecimal(l[1]) {
			return nil, fmt.Errorf("level %d is not [price, size] decimals: %q", i, l)
		}
		dst = append(dst, bridge.Level{l[0], l[1]})
	}
	return dst, nil
}

// ServerTime returns Bybit's clock from GET /v5/market/time (timeNano,
// falling back to timeSecond).
func (a *Adapter) ServerTime(ctx context.Context) (time.Time, error) {
	const path = "/v5/market/time"
	res, err := a.get(ctx, path, nil)
	if err != nil {
		return time.Time{}, err
	}
	var r struct {
		TimeSecond string `json:"timeSecond"`
		TimeNano   string `json:"timeNano"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return time.Time{}, a.core.Malformed(path, err)
	}
	if ns, err := strconv.ParseInt(r.TimeNano, 10, 64); err == nil && ns > 0 {
		return time.Unix(0, ns), nil
	}
	if s, err := strconv.ParseInt(r.TimeSecond, 10, 64); err == nil && s > 0 {
		return time.Unix(s, 0), nil
	}
	return time.Time{}, a.core.Malformed(path, fmt.Errorf("no valid timeNano or timeSecond: %q, %q", r.TimeNano, r.TimeSecond))
}

// Trades returns bridge.ErrNotSupported: Bybit trade ids are not
// consecutive, so a missing range cannot be requested by id. See
// RecentTrades for best-effort backfill.
func (a *Adapter) Trades(ctx context.Context, symbol string, fromID int64, limit int) ([]bridge.Event, error) {
	return nil, fmt.Errorf("%w: bybit trade ids are not consecutive; use RecentTrades", bridge.ErrNotSupported)
}

// RecentTrades returns up to limit (1..1000; spot serves at most 60) of
// symbol's most recent trades from GET
// /v5/market/recent-trade?category=&symbol=&limit=, oldest first, as
// EventTrade with ID = execId and Seq 0. It is a best-effort backfill: the
// caller matches ids against the last trade it delivered and emits the ones
// after it; trades older than the window are lost and must be counted.
// Errors as for Snapshot.
func (a *Adapter) RecentTrades(ctx context.Context, symbol string, limit int) ([]bridge.Event, error) {
	const path = "/v5/market/recent-trade"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxRecentTrades {
		limit = MaxRecentTrades
	}
	if a.cfg.Market == MarketSpot {
		limit = min(limit, 60)
	}
	q := url.Values{"category": {a.cfg.Market}, "symbol": {sym}, "limit": {strconv.Itoa(limit)}}
	res, err := a.get(ctx, path, q)
	if err != nil {
		return nil, err
	}
	recv := a.core.Now().UnixNano()
	var r struct {
		List []struct {
			ExecID string `json:"execId"`
			Symbol string `json:"symbol"`
			Price  string `json:"price"`
			Size   string `json:"size"`
			Side   string `json:"side"`
			Time   string `json:"time"`
		} `json:"list"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	out := make([]bridge.Event, 0, len(r.List))
	for i, t := range r.List {
		ms, err := strconv.ParseInt(t.Time, 10, 64)
		var ts int64
		if err == nil && ms >= 0 {
			ts, err = msToNS(ms)
		}
		switch {
		case t.Symbol != sym:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: symbol %q, asked for %q", i, t.Symbol, sym))
		case !validTradeID(t.ExecID):
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: invalid execId %q", i, t.ExecID))
		case !jscan.IsDecimal(t.Price) || !jscan.IsDecimal(t.Size):
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: price %q / size %q not decimal", i, t.Price, t.Size))
		case err != nil || ms < 0:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: invalid time %q", i, t.Time))
		}
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recv,
			ID: t.ExecID, Price: t.Price, Qty: t.Size}
		switch t.Side {
		case "Buy":
			ev.Side = bridge.SideBuy
		case "Sell":
			ev.Side = bridge.SideSell
		default:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: side %q", i, t.Side))
		}
		out = append(out, ev)
	}
	// Bybit lists newest first (within one millisecond too); return oldest
	// first.
	if len(out) > 1 && out[0].TS >= out[len(out)-1].TS {
		slices.Reverse(out)
	}
	return out, nil
}
