package exsim

import (
	"hash/fnv"
	"strings"
)

// instrument holds a market's price and size grid.
type instrument struct {
	pxDec, qtyDec int   // decimals of one tick and one lot
	outPx, outQty int   // decimals printed on the wire
	base          int64 // start mid price in ticks
	maxLot        int64 // largest random quantity in lots
}

// knownPrices are rough start prices (in quote units) for common bases.
var knownPrices = map[string]float64{
	"BTC": 65000, "ETH": 3500, "BNB": 600, "SOL": 150, "XRP": 0.6,
	"DOGE": 0.15, "ADA": 0.45, "LTC": 80, "TRX": 0.12, "DOT": 7,
}

// quoteSuffixes are stripped from a symbol to find its base asset.
var quoteSuffixes = []string{"USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR"}

func baseAsset(symbol string) (base, quote string) {
	if pair, _, ok := splitDelivery(symbol, '_'); ok { // a Binance USD-M quarterly
		symbol = pair
	}
	for _, q := range quoteSuffixes {
		if len(symbol) > len(q) && strings.HasSuffix(symbol, q) {
			return symbol[:len(symbol)-len(q)], q
		}
	}
	return symbol, "USDT"
}

// newInstrument derives a deterministic grid for symbol on venue.
func newInstrument(v Venue, symbol string) instrument {
	base, _ := baseAsset(symbol)
	price, ok := knownPrices[base]
	if !ok {
		h := fnv.New64a()
		h.Write([]byte(symbol))
		price = 1 + float64(h.Sum64()%20000)/100 // 1.00 .. 200.99
	}
	var in instrument
	switch {
	case price >= 1000:
		in.pxDec, in.qtyDec = 2, 5
		if v == BybitLinear {
			in.pxDec, in.qtyDec = 1, 3
		}
		in.maxLot = 2 * pow10[in.qtyDec]
	case price >= 1:
		in.pxDec, in.qtyDec = 3, 2
		in.maxLot = 50 * pow10[in.qtyDec]
	default:
		in.pxDec, in.qtyDec = 5, 0
		in.maxLot = 5000
	}
	in.base = int64(price * float64(pow10[in.pxDec]))
	in.outPx, in.outQty = in.pxDec, in.qtyDec
	if v == Binance {
		in.outPx, in.outQty = 8, 8
	}
	return in
}

// splitmix64 is a tiny bijective mixer used to derive seeds and ids.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// marketHash mixes the seed with a market's identity and a salt.
func marketHash(seed uint64, v Venue, symbol, salt string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(v))
	h.Write([]byte{0})
	h.Write([]byte(symbol))
	h.Write([]byte{0})
	h.Write([]byte(salt))
	return splitmix64(seed ^ h.Sum64())
}
