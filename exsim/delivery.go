package exsim

import (
	"slices"
	"strings"
	"time"
)

// Delivery contracts (quarterly futures). A market is one when its name
// ends in its delivery date, YYMMDD:
//
//   - Binance USD-M: "BTCUSDT_261225", the pair BTCUSDT, contractType
//     CURRENT_QUARTER for the pair's nearest delivery and NEXT_QUARTER
//     for the one after (EXCHANGES-MORE.md §2, exchangeInfo). A pair has
//     at most these two. Its exchangeInfo status is TRADING until it
//     delivers: DELIVERING once delisted (SetListed false), DELIVERED
//     once the clock passes the delivery time (the status names beyond
//     TRADING are UNCONFIRMED by EXCHANGES-MORE.md; a client treats any
//     status but TRADING as not tradable).
//   - OKX: instType FUTURES, "BTC-USD-261225" (coin-margined) or
//     "BTC-USDT-261225" (USDT-margined), a market of the okx-swap venue
//     (the derivatives one) that /api/v5/public/instruments lists under
//     FUTURES, never SWAP, state live until it expires (then absent, as
//     OKX drops expired instruments) or suspend once delisted.
//
// Both deliver at 08:00 UTC of their date.

// deliveryHour is the UTC hour at which a delivery contract delivers.
const deliveryHour = 8

// splitDelivery splits a delivery contract's name at sep ('_' on Binance,
// '-' on OKX) into its pair ("BTCUSDT", "BTC-USD") and delivery time.
func splitDelivery(symbol string, sep byte) (pair string, delivery time.Time, ok bool) {
	i := strings.LastIndexByte(symbol, sep)
	if i <= 0 || len(symbol)-i-1 != 6 {
		return "", time.Time{}, false
	}
	d, err := time.Parse("060102", symbol[i+1:])
	if err != nil {
		return "", time.Time{}, false
	}
	return symbol[:i], d.Add(deliveryHour * time.Hour), true
}

// validUSDMQuarterly reports whether s is a Binance USD-M delivery
// contract's name: a valid symbol, '_', a date.
func validUSDMQuarterly(s string) bool {
	pair, _, ok := splitDelivery(s, '_')
	return ok && validSymbol(pair)
}

// okxFutures reports whether an OKX instrument id is an expiry future.
func okxFutures(instID string) bool {
	_, _, ok := splitDelivery(instID, '-')
	return ok
}

// quarterRank is the rank of a delivery contract among the configured
// ones of its venue and pair by delivery time (0 the nearest), and
// whether symbol is one.
func (s *Server) quarterRank(v Venue, symbol string, sep byte) (int, time.Time, bool) {
	pair, at, ok := splitDelivery(symbol, sep)
	if !ok {
		return 0, time.Time{}, false
	}
	var dates []time.Time
	for _, m := range s.mlist {
		if p, d, ok := splitDelivery(m.symbol, sep); ok && m.venue == v && p == pair {
			dates = append(dates, d)
		}
	}
	slices.SortFunc(dates, func(a, b time.Time) int { return a.Compare(b) })
	return slices.Index(dates, at), at, true
}

// usdmContract is a Binance USD-M market's exchangeInfo pair,
// contractType, status and deliveryDate (ms).
func (s *Server) usdmContract(symbol string) (pair, contractType, status string, deliveryMs int64) {
	rank, at, ok := s.quarterRank(BinanceUSDM, symbol, '_')
	if !ok {
		return symbol, "PERPETUAL", s.usdmStatus(symbol), perpetualDelivery
	}
	pair, _, _ = splitDelivery(symbol, '_')
	contractType = "CURRENT_QUARTER"
	if rank > 0 {
		contractType = "NEXT_QUARTER"
	}
	switch {
	case !s.clock().Before(at):
		status = "DELIVERED"
	case !s.listing.listed(BinanceUSDM, symbol):
		status = "DELIVERING"
	default:
		status = "TRADING"
	}
	return pair, contractType, status, at.UnixMilli()
}

// perpetualDelivery is the deliveryDate Binance gives a perpetual
// (2100-12-25 08:00 UTC).
const perpetualDelivery = 4133404800000

// checkQuarterlies refuses more than two delivery contracts of one pair
// on Binance USD-M (CURRENT_QUARTER and NEXT_QUARTER).
func checkQuarterlies(markets []MarketConfig) (string, bool) {
	n := map[string]int{}
	for _, m := range markets {
		if pair, _, ok := splitDelivery(m.Symbol, '_'); ok && m.Venue == BinanceUSDM {
			if n[pair]++; n[pair] > 2 {
				return pair, false
			}
		}
	}
	return "", true
}
