package node

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/bridge/bybit"
	"github.com/qldata/mdbridge/bridge/okx"
	"github.com/qldata/mdbridge/resilience"
)

// buildExchanges builds one adapter per exchange id and returns, for each
// subscription, its exchange's adapter. Adapters of one venue share one
// REST limiter (the exchanges limit per IP; Bybit spot and linear share
// Bybit's).
func buildExchanges(subs []Subscription, v Venues, logger *slog.Logger) ([]bridge.Exchange, error) {
	// The configured budgets override the seed's per-venue defaults.
	table := resilience.ExchangeLimitTable{}
	for venue, n := range map[string]int{"binance": v.BinanceWeightPerMinute, "bybit": v.BybitRequestsPerMinute} {
		if n > 0 {
			l, _ := resilience.ExchangeDefaults(venue)
			l.RequestsPerMinute = n
			table[venue] = l
		}
	}
	// Binance USD-M is not in the seed's table: 2400 weight per minute, or
	// less if the venue's live rateLimits say so.
	if slices.ContainsFunc(subs, func(s Subscription) bool { return s.Exchange == binance.NameUSDM }) {
		table[binance.NameUSDM] = resilience.ExchangeLimits{
			RequestsPerMinute: usdmBudget(v, logger), WSConnectionsPerIP: 10}
	}
	limiters := map[string]*resilience.RateLimitManager{}
	limiter := func(venue string) (*resilience.RateLimitManager, error) {
		if l, ok := limiters[venue]; ok {
			return l, nil
		}
		if venue == "okx" {
			l, err := okx.NewLimiter() // OKX's budget is per endpoint: the adapter's weights
			limiters[venue] = l
			return l, err
		}
		lim, _ := table.Lookup(venue)
		l, err := resilience.NewRateLimitManager(lim.RateLimitConfig())
		limiters[venue] = l
		return l, err
	}
	adapters := map[string]bridge.Exchange{}
	out := make([]bridge.Exchange, len(subs))
	for i, sub := range subs {
		ex, ok := adapters[sub.Exchange]
		if !ok {
			var err error
			if ex, err = newExchange(sub.Exchange, v, limiter, logger); err != nil {
				return nil, &SubscriptionError{Index: i, Exchange: sub.Exchange, Stage: StageAdapter, Err: err}
			}
			adapters[sub.Exchange] = ex
		}
		out[i] = ex
	}
	return out, nil
}

// usdmBudget is the configured Binance USD-M weight budget, lowered to the
// live REQUEST_WEIGHT limit of /fapi/v1/exchangeInfo when that is smaller.
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
	case live > 0 && live < budget:
		logger.Info("binance-usdm: REST weight budget lowered to the venue's live limit", "configured", budget, "live", live)
		budget = live
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
