package node

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/bridge/okx"
	"github.com/qldata/mdbridge/publisher"
	"github.com/qldata/mdbridge/resilience"
)

// adapterSet builds the exchange adapters on demand, one per exchange id,
// and keeps them: adapters of one venue share one REST limiter (the
// exchanges limit per IP; Bybit spot and linear share Bybit's). Runtime
// subscriptions may name an exchange the start did not; it is built then.
// Safe for concurrent use.
type adapterSet struct {
	v        Venues
	log      *slog.Logger
	offline  bool // no live rate-limit lookups (CheckSubscriptions)
	mu       sync.Mutex
	table    resilience.ExchangeLimitTable
	limiters map[string]*resilience.RateLimitManager
	adapters map[string]bridge.Exchange
}

func newAdapterSet(v Venues, logger *slog.Logger) *adapterSet {
	// The configured budgets override the seed's per-venue defaults.
	table := resilience.ExchangeLimitTable{}
	for venue, n := range map[string]int{"binance": v.BinanceWeightPerMinute, "bybit": v.BybitRequestsPerMinute} {
		if n > 0 {
			l, _ := resilience.ExchangeDefaults(venue)
			l.RequestsPerMinute = n
			table[venue] = l
		}
	}
	return &adapterSet{v: v, log: logger, table: table,
		limiters: map[string]*resilience.RateLimitManager{}, adapters: map[string]bridge.Exchange{}}
}

// limiter returns the REST limiter of a venue. a.mu held.
func (a *adapterSet) limiter(venue string) (*resilience.RateLimitManager, error) {
	if l, ok := a.limiters[venue]; ok {
		return l, nil
	}
	if venue == "okx" {
		// OKX's budget is per endpoint: the adapter's weights; a replica
		// sharing its IP takes its part of the budget and of the burst.
		l, err := resilience.NewRateLimitManager(resilience.RateLimitConfig{
			RequestsPerMinute: a.v.share(okx.RequestsPerMinute), Burst: a.v.share(okx.RequestBurst)})
		if err == nil {
			a.limiters[venue] = l
		}
		return l, err
	}
	if venue == binance.NameUSDM {
		if _, ok := a.table[venue]; !ok {
			// Binance USD-M is not in the seed's table: 2400 weight per
			// minute, or less if the venue's live rateLimits say so.
			budget := cmp.Or(a.v.BinanceUSDMWeightPerMinute, binance.DefaultUSDMWeightPerMinute)
			if !a.offline {
				budget = usdmBudget(a.v, a.log)
			}
			a.table[venue] = resilience.ExchangeLimits{RequestsPerMinute: budget, WSConnectionsPerIP: 10}
		}
	}
	lim, _ := a.table.Lookup(venue)
	l, err := resilience.NewRateLimitManager(lim.RateLimitConfig())
	if err == nil {
		a.limiters[venue] = l
	}
	return l, err
}

// get returns the adapter of an exchange id, building it the first time.
func (a *adapterSet) get(id string) (bridge.Exchange, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ex, ok := a.adapters[id]; ok {
		return ex, nil
	}
	ex, err := newExchange(id, a.v, a.limiter, a.log)
	if err != nil {
		return nil, err
	}
	a.adapters[id] = ex
	return ex, nil
}

// buildExchanges returns, for each subscription, its exchange's adapter
// from set. Errors are *SubscriptionError (StageAdapter).
func buildExchanges(subs []Subscription, set *adapterSet) ([]bridge.Exchange, error) {
	out := make([]bridge.Exchange, len(subs))
	for i, sub := range subs {
		ex, err := set.get(sub.Exchange)
		if err != nil {
			return nil, &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageAdapter, Err: err}
		}
		out[i] = ex
	}
	return out, nil
}

// usdmBudget is the configured Binance USD-M weight budget, lowered to the
// live REQUEST_WEIGHT limit of /fapi/v1/exchangeInfo (its IPShare part)
// when that is smaller.
// The venue not answering within 5 s leaves the configured budget.
func usdmBudget(v Venues, logger *slog.Logger) int {
	budget := cmp.Or(v.BinanceUSDMWeightPerMinute, binance.DefaultUSDMWeightPerMinute)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a, err := binance.New(binance.Config{Market: binance.MarketUSDM, WSURL: v.BinanceUSDMWSURL, RESTURL: v.BinanceUSDMRESTURL}, logger)
	if err != nil {
		return budget // the real adapter reports the configuration error
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	live, err := a.WeightLimit(ctx)
	switch {
	case err != nil:
		logger.Warn("binance-usdm: live rate limits unknown; using the configured REST weight budget", "budget", budget, "err", err)
	case live > 0 && v.share(live) < budget:
		// The live limit is the IP's: a replica sharing it takes its part.
		logger.Info("binance-usdm: REST weight budget lowered to the venue's live limit", "configured", budget, "live", live, "ip_share", max(v.IPShare, 1))
		budget = v.share(live)
	}
	return budget
}

// venueOf returns the venue an exchange id belongs to: the unit of the
// per-IP limits (Bybit spot and linear are one venue).
func venueOf(exchange string) string {
	switch exchange {
	case "bybit-linear":
		return "bybit"
	case "okx-swap":
		return "okx"
	}
	return exchange
}

// newExchange builds the adapter of one exchange id.
func newExchange(id string, v Venues, limiter func(venue string) (*resilience.RateLimitManager, error), logger *slog.Logger) (bridge.Exchange, error) {
	switch id {
	case "binance":
		l, err := limiter("binance")
		if err != nil {
			return nil, err
		}
		return binance.New(binance.Config{WSURL: v.BinanceWSURL, RESTURL: v.BinanceRESTURL, BookDepth: v.BinanceBookDepth, Limiter: l}, logger)
	case binance.NameUSDM:
		l, err := limiter(binance.NameUSDM)
		if err != nil {
			return nil, err
		}
		return binance.New(binance.Config{Market: binance.MarketUSDM, WSURL: v.BinanceUSDMWSURL, RESTURL: v.BinanceUSDMRESTURL,
			BookDepth: v.BinanceUSDMBookDepth, OpenInterestEvery: v.BinanceUSDMOpenInterestEvery, Limiter: l}, logger)
	case "bybit", "bybit-linear":
		l, err := limiter("bybit")
		if err != nil {
			return nil, err
		}
		market := bybit.MarketSpot
		if id == "bybit-linear" {
			market = bybit.MarketLinear
		}
		return bybit.New(bybit.Config{WSURL: v.BybitWSURL, RESTURL: v.BybitRESTURL, Market: market, BookDepth: v.BybitBookDepth, Limiter: l}, logger)
	case "okx", "okx-swap":
		l, err := limiter("okx")
		if err != nil {
			return nil, err
		}
		market := okx.MarketSpot
		if id == "okx-swap" {
			market = okx.MarketSwap
		}
		return okx.New(okx.Config{WSURL: v.OKXWSURL, RESTURL: v.OKXRESTURL, Market: market, Limiter: l}, logger)
	}
	return nil, fmt.Errorf("unknown exchange %q", id)
}

// connectGate builds a venue's connect gate from the adapter's limits,
// the per-IP attempts divided among the replicas sharing the IP.
func (v Venues) connectGate(ex bridge.Exchange, spacing time.Duration) (*bridge.ConnectGate, error) {
	return bridge.NewConnectGate(v.shareLimits(ex.Limits()), spacing)
}

// snapshotsPerMinute is the REST order book snapshots per minute the
// venue's budget allows exchange id: the budget divided by one snapshot's
// weight (Binance), or the request budget (Bybit, OKX); 0 for an unknown
// id. It is the default of the streams' SnapshotsPerMinute and, summed
// over the venues, of the snapshot service's rate, so that neither paces
// book syncs slower than the venue allows (the venue's REST limiter,
// shared per IP, keeps the real bound).
func (v Venues) snapshotsPerMinute(id string) int {
	var n int
	switch id {
	case binance.Name:
		l, _ := resilience.ExchangeDefaults(binance.Name)
		n = cmp.Or(v.BinanceWeightPerMinute, l.RequestsPerMinute) / binance.SnapshotWeight(binance.MarketSpot, v.BinanceBookDepth)
	case binance.NameUSDM:
		n = cmp.Or(v.BinanceUSDMWeightPerMinute, binance.DefaultUSDMWeightPerMinute) / binance.SnapshotWeight(binance.MarketUSDM, v.BinanceUSDMBookDepth)
	case bybit.NameSpot, bybit.NameLinear:
		l, _ := resilience.ExchangeDefaults("bybit")
		n = cmp.Or(v.BybitRequestsPerMinute, l.RequestsPerMinute)
	case okx.NameSpot, okx.NameSwap:
		n = v.share(okx.RequestsPerMinute)
	default:
		return 0
	}
	return max(n, 1)
}

// snapshotDefaults fills the snapshot service's unset rate, burst and
// concurrency of c from the venues of subs (every venue when subs name
// none, e.g. runtime subscriptions): the sum of their snapshot budgets,
// a burst of 3 s of it, 4 fetch slots per venue (as each stream has).
func (v Venues) snapshotDefaults(c publisher.Config, subs []Subscription) publisher.Config {
	ids := map[string]bool{}
	for _, s := range subs {
		ids[s.Exchange] = true
	}
	if len(ids) == 0 {
		for _, id := range []string{binance.Name, binance.NameUSDM, bybit.NameSpot, okx.NameSpot} {
			ids[id] = true
		}
	}
	venues := map[string]bool{}
	perMin := 0
	for id := range ids {
		if venues[venueOf(id)] {
			continue // Bybit spot and linear share a budget, OKX's two markets too
		}
		venues[venueOf(id)] = true
		perMin += v.snapshotsPerMinute(id)
	}
	if perMin == 0 {
		return c
	}
	if c.SnapshotRate == 0 {
		c.SnapshotRate = max(float64(perMin)/60, 1)
	}
	if c.SnapshotBurst == 0 {
		c.SnapshotBurst = max(perMin/20, publisher.DefaultSnapshotBurst)
	}
	if c.SnapshotConcurrency == 0 {
		c.SnapshotConcurrency = max(4*len(venues), publisher.DefaultSnapshotConcurrency)
	}
	return c
}

// queueWait returns c with an unset RequestTimeout long enough for the
// streams' own snapshot requests to wait through a full queue of the
// serving replica (SnapshotMaxWaiters at SnapshotRate, plus one fetch):
// a book sync that gave up earlier would ask again at the back of the
// queue, its place lost.
func queueWait(c publisher.Config) publisher.Config {
	if c.RequestTimeout != 0 {
		return c
	}
	waiters := cmp.Or(c.SnapshotMaxWaiters, publisher.DefaultSnapshotMaxWaiters)
	rate := cmp.Or(c.SnapshotRate, publisher.DefaultSnapshotRate)
	queue := time.Duration(float64(waiters) / rate * float64(time.Second))
	c.RequestTimeout = max(publisher.DefaultRequestTimeout, queue+cmp.Or(c.SnapshotTimeout, publisher.DefaultSnapshotTimeout))
	return c
}
