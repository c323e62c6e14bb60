package exsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestAppendDecimal(t *testing.T) {
	for _, tc := range []struct {
		v        int64
		dec, out int
		want     string
	}{
		{1234567, 2, 8, "12345.67000000"},
		{5, 2, 2, "0.05"},
		{0, 5, 8, "0.00000000"},
		{100, 0, 0, "100"},
		{7, 0, 3, "7.000"},
		{-150, 2, 2, "-1.50"},
		{1000001, 6, 6, "1.000001"},
	} {
		got := string(appendDecimal(nil, tc.v, tc.dec, tc.out))
		if got != tc.want {
			t.Errorf("appendDecimal(%d,%d,%d) = %q, want %q", tc.v, tc.dec, tc.out, got, tc.want)
		}
		if back, ok := parseDecimal(got, tc.dec); !ok || back != tc.v {
			t.Errorf("parseDecimal(%q) = %d %v", got, back, ok)
		}
	}
	for _, bad := range []string{"", "1.2.3", "abc", "1.234", "-"} {
		if _, ok := parseDecimal(bad, 2); ok {
			t.Errorf("parseDecimal(%q) accepted", bad)
		}
	}
}

func TestRangeSet(t *testing.T) {
	var s rangeSet
	for _, r := range []Range{{10, 12}, {13, 15}, {20, 20}, {1, 3}, {5, 6}, {4, 4}, {17, 19}, {30, 31}, {16, 16}} {
		s.add(r.First, r.Last)
	}
	if got := fmt.Sprint(s.ranges()); got != "[{1 6} {10 20} {30 31}]" {
		t.Fatalf("ranges %s", got)
	}
	if s.count() != 6+11+2 || !s.contains(15) || s.contains(7) || s.contains(32) {
		t.Fatalf("count %d", s.count())
	}
	if got := fmt.Sprint(subtractRanges(Range{0, 35}, s.ranges())); got != "[{0 0} {7 9} {21 29} {32 35}]" {
		t.Fatalf("subtract %s", got)
	}
	if got := fmt.Sprint(unionRanges([]Range{{1, 2}}, []Range{{3, 5}, {9, 9}})); got != "[{1 5} {9 9}]" {
		t.Fatalf("union %s", got)
	}
	// A million ascending ids cost one range.
	var big rangeSet
	for i := int64(0); i < 1_000_000; i++ {
		big.add(i, i)
	}
	if len(big.rs) != 1 {
		t.Fatalf("%d ranges", len(big.rs))
	}
}

// TestViewDeltaProperty applies random book updates and checks that a
// depth-n view rebuilt from its deltas always equals the book's top n.
func TestViewDeltaProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 5, 50} {
		var b book
		b.init(r, 100000, 40, 1000)
		view := [2]map[int64]int64{{}, {}}
		for side := uint8(0); side < 2; side++ {
			for _, l := range topN(b.sides[side], n) {
				view[side][l.px] = l.qty
			}
		}
		var out [2][]level
		var ch []change
		for i := range 3000 {
			oldB := [2]int64{b.boundary(bidSide, n), b.boundary(askSide, n)}
			ch = b.update(r, ch[:0])
			if len(ch) == 0 {
				t.Fatal("update changed nothing")
			}
			b.viewDelta(n, oldB, ch, &out)
			for side := uint8(0); side < 2; side++ {
				for j, l := range out[side] {
					if j > 0 && !better(side, out[side][j-1].px, l.px) {
						t.Fatalf("delta not sorted: %v", out[side])
					}
					if l.qty == 0 {
						delete(view[side], l.px)
					} else {
						view[side][l.px] = l.qty
					}
				}
				top := topN(b.sides[side], n)
				if len(top) != len(view[side]) {
					t.Fatalf("depth %d update %d side %d: view has %d levels, book top %d", n, i, side, len(view[side]), len(top))
				}
				for _, l := range top {
					if view[side][l.px] != l.qty {
						t.Fatalf("depth %d update %d: level %d qty %d, want %d", n, i, l.px, view[side][l.px], l.qty)
					}
				}
			}
			if bb, ba := b.best(bidSide), b.best(askSide); bb >= ba {
				t.Fatalf("crossed book: bid %d ask %d", bb, ba)
			}
			if !sort.SliceIsSorted(b.sides[bidSide], func(i, j int) bool { return b.sides[bidSide][i].px > b.sides[bidSide][j].px }) {
				t.Fatal("bids unsorted")
			}
		}
	}
}

func TestSwapTypes(t *testing.T) {
	in := `{"e":"trade","t":12,"p":"1.50","b":[["1.0","2"]],"m":true}`
	got := string(swapTypes(nil, []byte(in)))
	want := `{"e":"trade","t":"12","p":1.50,"b":[[1.0,2]],"m":true}`
	if got != want {
		t.Fatalf("got %s", got)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("invalid JSON")
	}
}

func TestBybitTradeIDsInvertible(t *testing.T) {
	s := startServer(t, Config{Seed: 50})
	for _, v := range []Venue{BybitSpot, BybitLinear} {
		prev := ""
		for _, ord := range []int64{1, 2, 3, 1000, 123456789} {
			id, err := s.BybitTradeID(v, "BTCUSDT", ord)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := s.BybitTradeOrdinal(v, "BTCUSDT", id); !ok || got != ord {
				t.Fatalf("%s: %q -> %d %v, want %d", v, id, got, ok, ord)
			}
			if v == BybitSpot && len(prev) == len(id) && id <= prev {
				t.Fatalf("spot ids not increasing: %s after %s", id, prev)
			}
			prev = id
		}
		if _, ok := s.BybitTradeOrdinal(v, "BTCUSDT", "garbage"); ok {
			t.Fatal("garbage id accepted")
		}
	}
	if _, err := s.BybitTradeID(Binance, "BTCUSDT", 1); err == nil {
		t.Fatal("Binance has no derived ids")
	}
}

func TestParseMarkets(t *testing.T) {
	got, err := ParseMarkets(" binance:btcusdt@1000/200, ETHUSDT ; bybit-linear:BTCUSDT; okx:btc-usdt; okx-swap:BTC-USDT-SWAP@1/2", 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []MarketConfig{
		{Venue: Binance, Symbol: "BTCUSDT", TradeRate: 1000, BookRate: 200},
		{Venue: Binance, Symbol: "ETHUSDT", TradeRate: 10, BookRate: 5},
		{Venue: BybitLinear, Symbol: "BTCUSDT", TradeRate: 10, BookRate: 5},
		{Venue: OKXSpot, Symbol: "BTC-USDT", TradeRate: 10, BookRate: 5},
		{Venue: OKXSwap, Symbol: "BTC-USDT-SWAP", TradeRate: 1, BookRate: 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"", "binance", "kraken:BTCUSD", "binance:BTC-USDT", "binance:BTCUSDT@x/1",
		"binance:BTCUSDT@1", "binance:BTCUSDT,BTCUSDT", "binance:BTCUSDT@-1/0", "okx:BTCUSDT", "okx:BTC-USDT-SWAP", "okx-swap:BTC-USDT"} {
		if _, err := ParseMarkets(bad, 1, 1); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
