package exsim

import "strconv"

// Venue names one simulated market place. The values are the exchange ids
// of the bridge's wire contract (md.<exchange>.<symbol>).
type Venue string

// The simulated venues.
const (
	Binance     Venue = "binance"      // Binance Spot
	BybitSpot   Venue = "bybit"        // Bybit v5 spot
	BybitLinear Venue = "bybit-linear" // Bybit v5 linear (USDT perpetuals)
	OKXSpot     Venue = "okx"          // OKX v5 SPOT
	OKXSwap     Venue = "okx-swap"     // OKX v5 USDT-margined swaps
	BinanceUSDM Venue = "binance-usdm" // Binance USD-M futures (perpetuals)
)

// Venues lists every simulated venue.
// OKX venues are not in it: their markets are named by instrument ids
// (BTC-USDT, BTC-USDT-SWAP) and are configured explicitly.
func Venues() []Venue { return []Venue{Binance, BybitSpot, BybitLinear, BinanceUSDM} }

// allVenues is every simulated venue, OKX included.
func allVenues() []Venue { return append(Venues(), OKXSpot, OKXSwap) }

// Valid reports whether v is one of the simulated venues.
func (v Venue) Valid() bool {
	return v == Binance || v == BybitSpot || v == BybitLinear || v == BinanceUSDM || v.isOKX()
}

// isBinance: Binance Spot or USD-M (the same stream machinery).
func (v Venue) isBinance() bool { return v == Binance || v == BinanceUSDM }

func (v Venue) isBybit() bool { return v == BybitSpot || v == BybitLinear }

// Series names a sequence of ids the simulator generates for one market and
// records in the ground truth.
//
//   - SeriesTrade: trades. On Binance the values are the trade ids `t`
//     (consecutive); on Binance USD-M the aggregate trade ids `a`
//     (consecutive: the futures trade feed is @aggTrade). On Bybit they are trade ordinals (consecutive); the
//     wire id `i` is derived from them (see BybitTradeID, BybitTradeOrdinal).
//   - SeriesDepth: Binance depth update ids (the U..u ranges of depthUpdate;
//     on USD-M the pu+1..u ranges: futures ids are not contiguous, each
//     event covers the ids after the previous event's u).
//   - SeriesOrderbook(n): the `u` values of Bybit topic orderbook.<n>.<sym>.
type Series string

// Series of every market.
const (
	SeriesTrade Series = "trade"
	SeriesDepth Series = "depth"
)

// SeriesOrderbook returns the series of the Bybit topic orderbook.<depth>.
func SeriesOrderbook(depth int) Series { return Series("orderbook." + strconv.Itoa(depth)) }

// bybitDepths are the orderbook.<depth> topics served (EXCHANGES.md).
var bybitDepths = [...]int{1, 50, 200, 1000}
