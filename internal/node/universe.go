package node

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/okx"
)

// DefaultUniverseRefresh is how often the instrument lists behind
// universe patterns are read again (Config.UniverseRefresh).
const DefaultUniverseRefresh = 5 * time.Minute

// ErrEmptyUniverse is wrapped by the error of a universe pattern that
// matches none of the venue's trading symbols.
var ErrEmptyUniverse = errors.New("node: empty universe")

// StageUniverse is the SubscriptionError stage of resolving a universe
// pattern against the venue's instrument list.
const StageUniverse = "universe"

// universeExchanges are the exchanges whose instrument lists the node
// reads for universe patterns.
var universeExchanges = []string{"binance", "binance-usdm", "bybit", "bybit-linear", "okx", "okx-swap"}

// IsPattern reports whether a subscription symbol is a universe pattern:
// '*' stands for any run of characters ("*USDT", "BTC*", "*").
func IsPattern(symbol string) bool { return strings.Contains(symbol, "*") }

func hasPatterns(subs []Subscription) bool {
	return slices.ContainsFunc(subs, func(s Subscription) bool { return slices.ContainsFunc(s.Symbols, IsPattern) })
}

// checkPatterns refuses patterns on an exchange without instrument
// listing; it returns sub with each pattern replaced by a plain symbol of
// its shape, for building a dry-run stream.
func checkPatterns(sub Subscription) (Subscription, error) {
	if !slices.ContainsFunc(sub.Symbols, IsPattern) {
		return sub, nil
	}
	if !slices.Contains(universeExchanges, sub.Exchange) {
		return sub, fmt.Errorf("universe patterns (%s) are supported on %s only", strings.Join(slices.DeleteFunc(slices.Clone(sub.Symbols), func(s string) bool { return !IsPattern(s) }), ","), strings.Join(universeExchanges, ", "))
	}
	out := sub
	out.Symbols = make([]string, len(sub.Symbols))
	for i, s := range sub.Symbols {
		out.Symbols[i] = strings.ReplaceAll(s, "*", "X")
	}
	return out, nil
}

// UniverseStats are the counters of universe resolution.
type UniverseStats struct {
	Refreshes uint64 `json:"universe_refreshes"`         // instrument-list refreshes done
	Failures  uint64 `json:"universe_refresh_failures"`  // refreshes that failed (the running set stayed)
	Listed    uint64 `json:"universe_listed"`            // units added because the venue listed them
	Delisted  uint64 `json:"universe_delisted"`          // units released because the venue delisted or halted them
	Symbols   int    `json:"universe_symbols,omitempty"` // units the patterns match now
}

// universe reads and caches the venues' trading symbols.
type universe struct {
	v      Venues
	set    *adapterSet
	client *http.Client
	// pageLimit is the Bybit page size asked for (default 1000, the
	// maximum; tests page with less).
	pageLimit int
	mu        sync.Mutex
	lists     map[string][]string // exchange → trading symbols, venue order
	stats     UniverseStats
}

func newUniverse(v Venues, set *adapterSet) *universe {
	return &universe{v: v, set: set, client: &http.Client{Timeout: 30 * time.Second}, lists: map[string][]string{}}
}

// symbols returns the trading symbols of exchange, read from the venue
// when refetch is set or nothing is cached.
func (u *universe) symbols(ctx context.Context, exchange string, refetch bool) ([]string, error) {
	u.mu.Lock()
	list, ok := u.lists[exchange]
	u.mu.Unlock()
	if ok && !refetch {
		return list, nil
	}
	var err error
	switch exchange {
	case "binance":
		list, err = u.binance(ctx)
	case "binance-usdm":
		list, err = u.binanceUSDM(ctx)
	case "bybit", "bybit-linear":
		list, err = u.bybit(ctx, exchange)
	case "okx", "okx-swap":
		list, err = u.okx(ctx, exchange)
	default:
		err = fmt.Errorf("no instrument list for %s", exchange)
	}
	if err != nil {
		return nil, fmt.Errorf("%s instrument list: %w", exchange, err)
	}
	u.mu.Lock()
	u.lists[exchange] = list
	u.mu.Unlock()
	return list, nil
}

// getJSON GETs u and decodes its JSON body into out (at most 64 MiB).
func (u *universe) getJSON(ctx context.Context, target string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.200s", target, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// binance reads GET /api/v3/exchangeInfo (weight 20, from the Binance
// REST budget) and keeps the symbols with status TRADING.
func (u *universe) binance(ctx context.Context) ([]string, error) {
	return u.exchangeInfo(ctx, "binance", 20, cmp.Or(u.v.BinanceRESTURL, "https://api.binance.com"), "/api/v3/exchangeInfo")
}

// binanceUSDM reads GET /fapi/v1/exchangeInfo (weight 1, from the
// binance-usdm REST budget) and keeps the symbols with status TRADING,
// whatever their contractType: a pattern matches perpetuals and delivery
// contracts alike. Their names tell them apart (BTCUSDT is the perpetual,
// BTCUSDT_260626 a quarterly), so "*USDT" selects perpetuals only and
// "*_*" the quarterlies; a quarterly leaves TRADING at its delivery and
// is released then like any delisting.
func (u *universe) binanceUSDM(ctx context.Context) ([]string, error) {
	return u.exchangeInfo(ctx, binance.NameUSDM, 1, cmp.Or(u.v.BinanceUSDMRESTURL, binance.DefaultUSDMRESTURL), "/fapi/v1/exchangeInfo")
}

// exchangeInfo reads a Binance exchangeInfo endpoint (Spot and USD-M share
// its shape) at the given weight of venue's REST budget and keeps the
// symbols with status TRADING.
func (u *universe) exchangeInfo(ctx context.Context, venue string, weight int, base, path string) ([]string, error) {
	if l, err := u.limiter(venue); err == nil {
		if err := l.AcquireN(ctx, weight); err != nil {
			return nil, err
		}
	}
	var info struct {
		Symbols []struct {
			Symbol string `json:"symbol"`
			Status string `json:"status"`
		} `json:"symbols"`
	}
	if err := u.getJSON(ctx, strings.TrimRight(base, "/")+path, &info); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range info.Symbols {
		if s.Status == "TRADING" && s.Symbol != "" {
			out = append(out, s.Symbol)
		}
	}
	return out, nil
}

// okxInstrumentsWeight is the weight of GET /api/v5/public/instruments on
// the OKX limiter: its limit is 20 requests / 2 s per IP, as
// history-trades', and the limiter gives 20 weight per second.
const okxInstrumentsWeight = 2

// okx reads GET /api/v5/public/instruments?instType=SPOT (okx) or SWAP
// (okx-swap) in one request (the endpoint has no paging) and keeps the
// instIds with state live ("BTC-USDT", "BTC-USDT-SWAP").
func (u *universe) okx(ctx context.Context, exchange string) ([]string, error) {
	typ := "SPOT"
	if exchange == "okx-swap" {
		typ = "SWAP"
	}
	if l, err := u.limiter("okx"); err == nil {
		if err := l.AcquireN(ctx, okxInstrumentsWeight); err != nil {
			return nil, err
		}
	}
	var env struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
		Data []struct {
			InstID string `json:"instId"`
			State  string `json:"state"`
		} `json:"data"`
	}
	base := strings.TrimRight(cmp.Or(u.v.OKXRESTURL, okx.DefaultRESTURL), "/")
	if err := u.getJSON(ctx, base+"/api/v5/public/instruments?"+url.Values{"instType": {typ}}.Encode(), &env); err != nil {
		return nil, err
	}
	if env.Code != "0" {
		return nil, fmt.Errorf("code %q: %s", env.Code, env.Msg)
	}
	var out []string
	for _, s := range env.Data {
		if s.State == "live" && s.InstID != "" {
			out = append(out, s.InstID)
		}
	}
	return out, nil
}

// maxPages bounds the cursor paging of one Bybit listing.
const maxPages = 100

// bybit reads GET /v5/market/instruments-info for the market's category,
// following nextPageCursor (one request of the Bybit budget per page), and
// keeps the symbols with status Trading.
func (u *universe) bybit(ctx context.Context, exchange string) ([]string, error) {
	cat := "spot"
	if exchange == "bybit-linear" {
		cat = "linear"
	}
	l, lerr := u.limiter("bybit")
	base := strings.TrimRight(cmp.Or(u.v.BybitRESTURL, "https://api.bybit.com"), "/")
	var out []string
	cursor := ""
	for range maxPages {
		if lerr == nil {
			if err := l.Acquire(ctx); err != nil {
				return nil, err
			}
		}
		q := url.Values{"category": {cat}, "limit": {strconv.Itoa(cmp.Or(u.pageLimit, 1000))}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var env struct {
			RetCode int    `json:"retCode"`
			RetMsg  string `json:"retMsg"`
			Result  struct {
				List []struct {
					Symbol string `json:"symbol"`
					Status string `json:"status"`
				} `json:"list"`
				NextPageCursor string `json:"nextPageCursor"`
			} `json:"result"`
		}
		if err := u.getJSON(ctx, base+"/v5/market/instruments-info?"+q.Encode(), &env); err != nil {
			return nil, err
		}
		if env.RetCode != 0 {
			return nil, fmt.Errorf("retCode %d: %s", env.RetCode, env.RetMsg)
		}
		for _, s := range env.Result.List {
			if s.Status == "Trading" && s.Symbol != "" {
				out = append(out, s.Symbol)
			}
		}
		// Spot has no paging; a cursor that does not move ends the loop.
		if env.Result.NextPageCursor == "" || env.Result.NextPageCursor == cursor || cat == "spot" {
			return out, nil
		}
		cursor = env.Result.NextPageCursor
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

func (u *universe) limiter(venue string) (interface {
	AcquireN(context.Context, int) error
	Acquire(context.Context) error
}, error) {
	u.set.mu.Lock()
	defer u.set.mu.Unlock()
	return u.set.limiter(venue)
}

// resolve replaces the universe patterns of subs by the trading symbols
// they match (explicit symbols stay, whatever the list says), reading the
// lists again when refetch is set. A pattern that matches nothing is a
// *SubscriptionError (StageUniverse) wrapping ErrEmptyUniverse.
func (u *universe) resolve(ctx context.Context, subs []Subscription, refetch bool) ([]Subscription, error) {
	if !hasPatterns(subs) {
		return subs, nil
	}
	fetched := map[string]bool{}
	out := make([]Subscription, 0, len(subs))
	for i, sub := range subs {
		if !slices.ContainsFunc(sub.Symbols, IsPattern) {
			out = append(out, sub)
			continue
		}
		list, err := u.symbols(ctx, sub.Exchange, refetch && !fetched[sub.Exchange])
		if err != nil {
			return nil, &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageUniverse, Err: err}
		}
		fetched[sub.Exchange] = true
		seen := map[string]bool{}
		var syms []string
		for _, s := range sub.Symbols {
			if IsPattern(s) {
				n := 0
				for _, t := range list {
					if ok, _ := path.Match(s, t); ok {
						n++
						if !seen[t] {
							seen[t] = true
							syms = append(syms, t)
						}
					}
				}
				if n == 0 {
					return nil, &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageUniverse,
						Err: fmt.Errorf("%w: %s matches none of the %d trading symbols of %s's instrument list", ErrEmptyUniverse, s, len(list), sub.Exchange)}
				}
			} else if !seen[s] {
				seen[s] = true
				syms = append(syms, s)
			}
		}
		r := sub
		r.Symbols = syms
		out = append(out, r)
	}
	return out, nil
}

// refreshLoop reads the instrument lists every period and converges the
// running set on them, until ctx ends.
func (n *Node) refreshLoop(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.refreshUniverse(ctx)
		}
	}
}

// refreshUniverse resolves the spec's patterns against fresh instrument
// lists: new listings start, delisted or halted symbols are released
// (their md_state entries deleted), both logged and counted. A failed
// refresh, or a pattern left with no symbol, keeps the running set.
func (n *Node) refreshUniverse(ctx context.Context) {
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	spec := n.specSet()
	if !hasPatterns(spec) {
		return
	}
	resolved, err := n.uni.resolve(ctx, spec, true)
	n.uni.mu.Lock()
	n.uni.stats.Refreshes++
	if err != nil {
		n.uni.stats.Failures++
	}
	n.uni.mu.Unlock()
	if err != nil {
		n.log.Error("universe refresh failed; the running set stays", "err", err)
		return
	}
	added, removed := n.changeSubscriptions(ctx, resolved)
	n.uni.mu.Lock()
	n.uni.stats.Listed += uint64(len(added))
	n.uni.stats.Delisted += uint64(len(removed))
	n.uni.stats.Symbols = len(unitsOf(resolved))
	n.uni.mu.Unlock()
	if len(added)+len(removed) > 0 && n.rt != nil {
		n.rt.mu.Lock()
		n.rt.st.Units = len(unitsOf(resolved))
		n.rt.mu.Unlock()
		n.rt.writeStatus(ctx)
	}
	if len(added)+len(removed) > 0 {
		n.log.Info("universe changed", "listed", len(added), "delisted", len(removed), "listed_units", unitNames(added, 10), "delisted_units", unitNames(removed, 10))
	}
}

// Universe returns the universe counters.
func (n *Node) Universe() UniverseStats {
	n.uni.mu.Lock()
	defer n.uni.mu.Unlock()
	return n.uni.stats
}
