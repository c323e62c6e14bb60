package okx

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/internal/jscan"
	"github.com/qldata/mdbridge/bridge/internal/rest"
)

// REST limits.
const (
	// SnapshotDepth is the levels per side GET /api/v5/market/books serves
	// at most (and the depth of the books channel).
	SnapshotDepth = 400
	// MaxHistoryTrades is the page size of GET /api/v5/market/history-trades.
	MaxHistoryTrades = 100
)

// defaultRetry is the wait after a 50011 answer (OKX sends no Retry-After;
// its windows are 2 s).
const defaultRetry = 2 * time.Second

// envelopeREST is OKX's REST response envelope.
type envelopeREST struct {
	Code *string         `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// checkResponse maps answers to errors: HTTP 429, or code 50011 with any
// status, -> *bridge.RateLimitError; other non-2xx or non-zero codes ->
// *APIError.
func (a *Adapter) checkResponse(resp *http.Response, body []byte) error {
	now := a.core.Now()
	path := resp.Request.URL.Path
	st := resp.StatusCode
	var env envelopeREST
	parsed := json.Unmarshal(body, &env) == nil && env.Code != nil
	switch {
	case st == http.StatusTooManyRequests || parsed && *env.Code == CodeRateLimit:
		return &bridge.RateLimitError{Status: st, RetryAfter: rest.RetryAfter(resp.Header.Get("Retry-After"), now, defaultRetry)}
	case st < 200 || st >= 300:
		e := &APIError{Status: st, Path: path, Msg: rest.ErrorMessage(st, env.Msg, parsed, body)}
		if parsed {
			e.Code = *env.Code
		}
		return e
	case !parsed:
		return fmt.Errorf("%w: okx: %s: response is not a code envelope: %s", bridge.ErrMalformed, path, rest.Snippet(body))
	case *env.Code != "0":
		return &APIError{Status: st, Code: *env.Code, Msg: env.Msg, Path: path}
	}
	return nil
}

// get sends a GET and returns the envelope's data.
func (a *Adapter) get(ctx context.Context, path string, q url.Values, weight int) (json.RawMessage, error) {
	body, err := a.core.Get(ctx, path, q, weight)
	if err != nil {
		return nil, err
	}
	var env envelopeREST
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	return env.Data, nil
}

// Snapshot fetches the order book with GET
// /api/v5/market/books?instId=&sz=400 and returns an EventBookSnapshot with
// LastID = seqId (the books channel's sequence). Errors:
// *bridge.RateLimitError, *APIError (e.g. an unknown instrument),
// bridge.ErrMalformed, ctx and transport errors, all wrapped.
func (a *Adapter) Snapshot(ctx context.Context, symbol string) (bridge.Event, error) {
	const path = "/api/v5/market/books"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return bridge.Event{}, err
	}
	data, err := a.get(ctx, path, url.Values{"instId": {sym}, "sz": {strconv.Itoa(SnapshotDepth)}}, weightBooks)
	if err != nil {
		return bridge.Event{}, err
	}
	recv := a.core.Now().UnixNano()
	var rows []struct {
		Asks  [][]string `json:"asks"`
		Bids  [][]string `json:"bids"`
		TS    string     `json:"ts"`
		SeqID *int64     `json:"seqId"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return bridge.Event{}, a.core.Malformed(path, err)
	}
	if len(rows) != 1 {
		return bridge.Event{}, a.core.Malformed(path, fmt.Errorf("%d books, want 1", len(rows)))
	}
	r := rows[0]
	if r.SeqID == nil || *r.SeqID < 0 {
		return bridge.Event{}, a.core.Malformed(path, errors.New("missing or negative seqId"))
	}
	ts, err := parseMS(r.TS)
	if err != nil {
		return bridge.Event{}, a.core.Malformed(path, err)
	}
	ev := bridge.Event{Type: bridge.EventBookSnapshot, Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recv, LastID: *r.SeqID}
	levels := make([]bridge.Level, 0, len(r.Bids)+len(r.Asks))
	if levels, err = appendLevels(levels, r.Bids); err != nil {
		return bridge.Event{}, a.core.Malformed(path, fmt.Errorf("bids: %w", err))
	}
	nb := len(levels)
	if levels, err = appendLevels(levels, r.Asks); err != nil {
		return bridge.Event{}, a.core.Malformed(path, fmt.Errorf("asks: %w", err))
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
		if len(l) < 2 || !jscan.IsDecimal(l[0]) || !jscan.IsDecimal(l[1]) {
			return nil, fmt.Errorf("level %d is not [px, sz, ...] decimals: %q", i, l)
		}
		dst = append(dst, bridge.Level{l[0], l[1]})
	}
	return dst, nil
}

func parseMS(s string) (int64, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 || ms > (1<<63-1)/1_000_000 {
		return 0, fmt.Errorf("invalid ms time %q", s)
	}
	return ms * 1_000_000, nil
}

// ServerTime returns OKX's clock from GET /api/v5/public/time.
func (a *Adapter) ServerTime(ctx context.Context) (time.Time, error) {
	const path = "/api/v5/public/time"
	data, err := a.get(ctx, path, nil, weightTime)
	if err != nil {
		return time.Time{}, err
	}
	var rows []struct {
		TS string `json:"ts"`
	}
	if err := json.Unmarshal(data, &rows); err != nil || len(rows) != 1 {
		return time.Time{}, a.core.Malformed(path, fmt.Errorf("want one row with ts: %v", err))
	}
	ns, err := parseMS(rows[0].TS)
	if err != nil || ns == 0 {
		return time.Time{}, a.core.Malformed(path, fmt.Errorf("ts %q", rows[0].TS))
	}
	return time.Unix(0, ns), nil
}

// Trades returns up to limit (at most MaxHistoryTrades) trades of symbol
// with ids >= fromID in ascending id order, from GET
// /api/v5/market/history-trades?instId=&type=1&after=<fromID+limit>&limit=
// (after = older than that id; OKX trade ids are consecutive per
// instrument, so the page is exactly [fromID, fromID+limit-1] of what OKX
// still has: the last three months). Events have ID = tradeId and Seq = its
// value, as trades-all pushes. Errors as for Snapshot.
func (a *Adapter) Trades(ctx context.Context, symbol string, fromID int64, limit int) ([]bridge.Event, error) {
	const path = "/api/v5/market/history-trades"
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxHistoryTrades {
		limit = MaxHistoryTrades
	}
	if fromID < 1 {
		fromID = 1
	}
	q := url.Values{"instId": {sym}, "type": {"1"}, "after": {strconv.FormatInt(fromID+int64(limit), 10)}, "limit": {strconv.Itoa(limit)}}
	data, err := a.get(ctx, path, q, weightTrades)
	if err != nil {
		return nil, err
	}
	recv := a.core.Now().UnixNano()
	var rows []struct {
		InstID  string `json:"instId"`
		TradeID string `json:"tradeId"`
		Px      string `json:"px"`
		Sz      string `json:"sz"`
		Side    string `json:"side"`
		TS      string `json:"ts"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	out := make([]bridge.Event, 0, len(rows))
	for i, t := range rows {
		id, ierr := strconv.ParseInt(t.TradeID, 10, 64)
		ts, terr := parseMS(t.TS)
		switch {
		case t.InstID != sym:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: instId %q, asked for %q", i, t.InstID, sym))
		case ierr != nil || id <= 0:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: tradeId %q", i, t.TradeID))
		case !jscan.IsDecimal(t.Px) || !jscan.IsDecimal(t.Sz):
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: px %q / sz %q not decimal", i, t.Px, t.Sz))
		case terr != nil:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: %v", i, terr))
		}
		if id < fromID {
			continue
		}
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: a.core.Name, Symbol: sym, TS: ts, RecvTS: recv,
			ID: t.TradeID, Seq: id, Price: t.Px, Qty: t.Sz}
		switch t.Side {
		case "buy":
			ev.Side = bridge.SideBuy
		case "sell":
			ev.Side = bridge.SideSell
		default:
			return nil, a.core.Malformed(path, fmt.Errorf("trade %d: side %q", i, t.Side))
		}
		out = append(out, ev)
	}
	slices.SortFunc(out, func(x, y bridge.Event) int { return cmp.Compare(x.Seq, y.Seq) })
	return out, nil
}

// Checksum is OKX's pre-2026 book checksum (books, books-l2-tbt,
// books50-l2-tbt; the field is 0 since 2026-06-23): the CRC-32 (IEEE) of
// "bid1px:bid1sz:ask1px:ask1sz:..." over up to 25 levels of each side, best
// first, with the strings as received, as a signed int32. A non-zero
// checksum of a replayed feed can be compared with it after applying the
// message to a book (bridge.BookBuilder's Bids and Asks).
func Checksum(bids, asks []bridge.Level) int32 {
	var b []byte
	for i := 0; i < 25 && (i < len(bids) || i < len(asks)); i++ {
		if i < len(bids) {
			if len(b) > 0 {
				b = append(b, ':')
			}
			b = append(b, bids[i][0]...)
			b = append(b, ':')
			b = append(b, bids[i][1]...)
		}
		if i < len(asks) {
			if len(b) > 0 {
				b = append(b, ':')
			}
			b = append(b, asks[i][0]...)
			b = append(b, ':')
			b = append(b, asks[i][1]...)
		}
	}
	return int32(crc32.ChecksumIEEE(b))
}

// Kline REST limits: GET /api/v5/market/candles serves the latest 1,440
// bars, at most MaxCandles per call; /api/v5/market/history-candles older
// ones, at most MaxHistoryCandles.
const (
	MaxCandles        = 300
	MaxHistoryCandles = 100
	weightCandles     = 1 // 40 / 2 s
	weightHistory     = 2 // 20 / 2 s
)

// Klines returns the closed bars of symbol and iv whose open time is in
// [fromNS, toNS], ascending, at most limit (at most MaxCandles), from GET
// /api/v5/market/candles?instId=&bar=&after=&before=&limit= (after: older
// than that ts, before: newer; OKX answers newest first), or from
// /api/v5/market/history-candles when candles lacks the start of the
// range (older than its latest 1,440 bars). The window asked for is at most limit bars
// from fromNS, so a long range is read oldest page first (the caller asks
// again from after the last bar). Open bars (confirm "0") are left out.
// Errors as for Snapshot.
func (a *Adapter) Klines(ctx context.Context, symbol string, iv bridge.Interval, fromNS, toNS int64, limit int) ([]bridge.Event, error) {
	sym, err := a.core.Canonical(symbol)
	if err != nil {
		return nil, err
	}
	bar := okxBars[iv]
	if bar == "" {
		return nil, fmt.Errorf("%w: okx: kline interval %q", bridge.ErrNotSupported, iv.String())
	}
	if limit <= 0 || limit > MaxCandles {
		limit = MaxCandles
	}
	out, err := a.candlesREST(ctx, "/api/v5/market/candles", sym, bar, iv, fromNS, toNS, limit, weightCandles)
	if err != nil || len(out) > 0 && out[0].FirstID <= fromNS {
		return out, err
	}
	// The window's start is not among candles' recent bars (or the venue
	// has no bar there): ask history-candles, and keep whichever starts
	// earlier.
	hist, herr := a.candlesREST(ctx, "/api/v5/market/history-candles", sym, bar, iv, fromNS, toNS, min(limit, MaxHistoryCandles), weightHistory)
	switch {
	case herr != nil && len(out) > 0:
		return out, nil
	case herr != nil:
		return nil, herr
	case len(hist) > 0 && (len(out) == 0 || hist[0].FirstID < out[0].FirstID):
		return hist, nil
	}
	return out, nil
}

func (a *Adapter) candlesREST(ctx context.Context, path, sym, bar string, iv bridge.Interval, fromNS, toNS int64, limit, weight int) ([]bridge.Event, error) {
	d := iv.Duration()
	if d == 0 {
		d = 28 * 24 * time.Hour // the shortest month
	}
	if w := int64(limit) * int64(d); toNS-fromNS >= w {
		toNS = fromNS + w - 1
	}
	q := url.Values{"instId": {sym}, "bar": {bar}, "limit": {strconv.Itoa(limit)},
		"after": {strconv.FormatInt(toNS/1_000_000+1, 10)}}
	if fromNS >= 1_000_000 {
		q.Set("before", strconv.FormatInt(fromNS/1_000_000-1, 10))
	}
	data, err := a.get(ctx, path, q, weight)
	if err != nil {
		return nil, err
	}
	recv := a.core.Now().UnixNano()
	var rows [][]string
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, a.core.Malformed(path, err)
	}
	out := make([]bridge.Event, 0, len(rows))
	for i := len(rows) - 1; i >= 0; i-- {
		if len(rows[i]) < 9 {
			return nil, a.core.Malformed(path, fmt.Errorf("candle row %d: %d values, want 9", i, len(rows[i])))
		}
		row := [9]string(rows[i][:9])
		ev, err := a.candleEvent(sym, iv, &row, recv)
		if err != nil {
			return nil, a.core.Malformed(path, fmt.Errorf("candle row %d: %w", i, err))
		}
		if len(out) > 0 && ev.FirstID <= out[len(out)-1].FirstID {
			return nil, a.core.Malformed(path, fmt.Errorf("candle rows not newest first at %d", i))
		}
		if ev.FirstID < fromNS || ev.FirstID > toNS || ev.Flags&bridge.FlagClosed == 0 {
			continue
		}
		ev.TS = ev.LastID
		out = append(out, ev)
	}
	return out, nil
}
