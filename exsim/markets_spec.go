package exsim

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseMarkets parses a market list for command lines and environment
// variables:
//
//	<venue>:<SYMBOL>[@<trades>/<book>][,<SYMBOL>...][;<venue>:...]
//
// venue is binance, bybit, bybit-linear, okx or okx-swap (OKX symbols are
// instrument ids: BTC-USDT, BTC-USDT-SWAP); the optional @trades/book sets
// that symbol's rates (events per second), otherwise tradeRate and
// bookRate apply. Example: "binance:BTCUSDT@1000/200,ETHUSDT;bybit:BTCUSDT".
// Returns errors wrapping ErrConfig.
func ParseMarkets(spec string, tradeRate, bookRate float64) ([]MarketConfig, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: markets: "+format, append([]any{ErrConfig}, args...)...)
	}
	if len(spec) > 1<<16 {
		return nil, bad("spec of %d bytes is too long", len(spec))
	}
	var out []MarketConfig
	seen := map[string]bool{}
	for group := range strings.SplitSeq(spec, ";") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		vs, syms, ok := strings.Cut(group, ":")
		if !ok {
			return nil, bad("group %q must be <venue>:<SYMBOL>[,...]", group)
		}
		v := Venue(strings.ToLower(strings.TrimSpace(vs)))
		if !v.Valid() {
			return nil, bad("unknown venue %q (want binance, bybit, bybit-linear, okx or okx-swap)", vs)
		}
		for item := range strings.SplitSeq(syms, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			mc := MarketConfig{Venue: v, TradeRate: tradeRate, BookRate: bookRate}
			sym, rates, hasRates := strings.Cut(item, "@")
			mc.Symbol = strings.ToUpper(sym)
			if hasRates {
				ts, bs, ok := strings.Cut(rates, "/")
				tr, err1 := strconv.ParseFloat(ts, 64)
				br, err2 := strconv.ParseFloat(bs, 64)
				if !ok || err1 != nil || err2 != nil {
					return nil, bad("rates %q of %s must be <trades>/<book>, e.g. 100/50", rates, sym)
				}
				mc.TradeRate, mc.BookRate = tr, br
			}
			switch {
			case v.isOKX() && !validOKXInstID(v, mc.Symbol):
				return nil, bad("%s instrument %q must be letters, digits and '-' (e.g. BTC-USDT; okx-swap ids end in -SWAP)", v, sym)
			case !v.isOKX() && !validSymbol(mc.Symbol) && (v != BinanceUSDM || !validUSDMQuarterly(mc.Symbol)):
				return nil, bad("symbol %q must be 1-20 letters or digits", sym)
			}
			if mc.TradeRate < 0 || mc.BookRate < 0 || mc.TradeRate > maxRate || mc.BookRate > maxRate {
				return nil, bad("rates of %s must be within 0..%g", mc.Symbol, float64(maxRate))
			}
			key := string(v) + "/" + mc.Symbol
			if seen[key] {
				return nil, bad("%s %s listed twice", v, mc.Symbol)
			}
			seen[key] = true
			out = append(out, mc)
		}
	}
	if len(out) == 0 {
		return nil, bad("no market in %q", spec)
	}
	return out, nil
}
