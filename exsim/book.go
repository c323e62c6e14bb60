package exsim

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Sides of a book.
const (
	bidSide = 0
	askSide = 1
)

// level is one price level: price in ticks, quantity in lots.
type level struct {
	px, qty int64
}

// change is one level change of an update: the new quantity (0 removes)
// and the quantity before.
type change struct {
	side   uint8
	px     int64
	qty    int64
	oldQty int64
}

// book is a price-level order book. bids are sorted descending, asks
// ascending. Not safe for concurrent use (the market's mutex guards it).
type book struct {
	sides [2][]level
	// minLevels and maxLevels bound each side.
	minLevels, maxLevels int
	maxLot               int64
}

// better reports whether price a is better than b on side (higher bid,
// lower ask).
func better(side uint8, a, b int64) bool {
	if side == bidSide {
		return a > b
	}
	return a < b
}

// find returns the index where px is or would be inserted on side.
func (b *book) find(side uint8, px int64) (int, bool) {
	lv := b.sides[side]
	i := sort.Search(len(lv), func(k int) bool { return !better(side, lv[k].px, px) })
	return i, i < len(lv) && lv[i].px == px
}

// qty returns the quantity at px on side (0 if absent).
func (b *book) qty(side uint8, px int64) int64 {
	if i, ok := b.find(side, px); ok {
		return b.sides[side][i].qty
	}
	return 0
}

// set sets the quantity at px on side; 0 removes the level.
func (b *book) set(side uint8, px, qty int64) {
	i, ok := b.find(side, px)
	lv := b.sides[side]
	switch {
	case ok && qty == 0:
		b.sides[side] = append(lv[:i], lv[i+1:]...)
	case ok:
		lv[i].qty = qty
	case qty != 0:
		lv = append(lv, level{})
		copy(lv[i+1:], lv[i:])
		lv[i] = level{px, qty}
		b.sides[side] = lv
	}
}

// best returns the best price of side, or a sentinel beyond any price when
// the side is empty.
func (b *book) best(side uint8) int64 {
	if len(b.sides[side]) == 0 {
		if side == bidSide {
			return 0
		}
		return math.MaxInt64
	}
	return b.sides[side][0].px
}

// boundary returns the price of the n-th best level of side, or the
// sentinel worse than every price when the side has fewer than n levels:
// every level at or better than the boundary is inside a depth-n view.
func (b *book) boundary(side uint8, n int) int64 {
	if len(b.sides[side]) < n {
		if side == bidSide {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return b.sides[side][n-1].px
}

// initBook fills a fresh book around mid (in ticks).
func (b *book) init(r *rand.Rand, mid int64, levels int, maxLot int64) {
	b.minLevels = max(10, levels*3/4)
	b.maxLevels = levels + levels/4
	b.maxLot = maxLot
	for side := uint8(0); side < 2; side++ {
		px := mid
		lv := make([]level, 0, b.maxLevels+8)
		for range levels {
			if side == bidSide {
				px -= 1 + r.Int64N(2)
				if px < 1 {
					break
				}
			} else {
				px += 1 + r.Int64N(2)
			}
			lv = append(lv, level{px, b.lot(r)})
		}
		b.sides[side] = lv
	}
}

func (b *book) lot(r *rand.Rand) int64 { return 1 + r.Int64N(b.maxLot) }

// nearIndex picks an index among the first levels of a side, favouring
// the top of the book.
func nearIndex(r *rand.Rand, n int) int {
	if n <= 0 {
		return 0
	}
	k := min(n, 25)
	i := r.IntN(k)
	return min(i, r.IntN(k)) // skew towards 0
}

// update generates and applies one random update of one to three level
// changes, appending them to ch. Every change really changes the book and
// no price appears twice; bids never cross asks.
func (b *book) update(r *rand.Rand, ch []change) []change {
	start := len(ch)
	n := 1 + r.IntN(3)
	for range n {
		side := uint8(r.IntN(2))
		lv := b.sides[side]
		var px, qty int64
		switch x := r.IntN(100); {
		case x < 45 && len(lv) > 0: // change a quantity near the top
			px = lv[nearIndex(r, len(lv))].px
			qty = b.lot(r)
		case x < 75 || len(lv) <= b.minLevels: // add a level
			dir := int64(1)
			if side == bidSide {
				dir = -1
			}
			k := r.Int64N(40) - 2
			px = b.best(side) + dir*k
			if len(lv) == 0 {
				px = b.best(1-side) + dir
			}
			if px < 1 || !better(side, px, b.best(1-side)) {
				px = b.best(side) + dir*(1+r.Int64N(30))
			}
			if px < 1 {
				continue
			}
			qty = b.lot(r)
		default: // remove a level near the top
			if len(lv) <= b.minLevels {
				continue
			}
			px = lv[nearIndex(r, len(lv))].px
		}
		ch = b.apply(ch, start, side, px, qty)
	}
	// Keep the depth bounded: trim the worst level of an overgrown side,
	// extend a thin one at its far end.
	for side := uint8(0); side < 2; side++ {
		lv := b.sides[side]
		switch {
		case len(lv) > b.maxLevels:
			ch = b.apply(ch, start, side, lv[len(lv)-1].px, 0)
		case len(lv) < b.minLevels && len(lv) > 0:
			dir := int64(1)
			if side == bidSide {
				dir = -1
			}
			px := lv[len(lv)-1].px + dir*(1+r.Int64N(3))
			if px >= 1 {
				ch = b.apply(ch, start, side, px, b.lot(r))
			}
		}
	}
	if len(ch) == start { // nothing changed: force a quantity change at the top
		side := uint8(r.IntN(2))
		if lv := b.sides[side]; len(lv) > 0 {
			ch = b.apply(ch, start, side, lv[0].px, lv[0].qty%b.maxLot+1)
		}
	}
	return ch
}

// apply records and applies one change unless it is a no-op or its price
// is already in ch[start:].
func (b *book) apply(ch []change, start int, side uint8, px, qty int64) []change {
	for _, c := range ch[start:] {
		if c.px == px { // one change per price per update (either side)
			return ch
		}
	}
	old := b.qty(side, px)
	if old == qty {
		return ch
	}
	b.set(side, px, qty)
	return append(ch, change{side: side, px: px, qty: qty, oldQty: old})
}

// viewDelta computes how a depth-n view of the book changed through the
// update ch, given each side's view boundary before the update (see
// boundary). It appends the changed levels of the view to bids and asks
// (quantity 0 = the level left the view), sorted as the venue sends them.
func (b *book) viewDelta(n int, oldB [2]int64, ch []change, out *[2][]level) {
	for side := uint8(0); side < 2; side++ {
		res := out[side][:0]
		newB := b.boundary(side, n)
		inView := func(px, bound int64) bool { return px == bound || better(side, px, bound) }
		touched := func(px int64) bool {
			for _, c := range ch {
				if c.side == side && c.px == px {
					return true
				}
			}
			return false
		}
		for _, c := range ch {
			if c.side != side {
				continue
			}
			inOld := c.oldQty != 0 && inView(c.px, oldB[side])
			inNew := c.qty != 0 && inView(c.px, newB)
			switch {
			case inNew:
				res = append(res, level{c.px, c.qty})
			case inOld:
				res = append(res, level{c.px, 0})
			}
		}
		lv := b.sides[side]
		o := oldB[side]
		if newB != o {
			if better(side, o, newB) {
				// The view grew: untouched levels between the boundaries entered.
				for i := 0; i < len(lv) && i < n; i++ {
					if better(side, lv[i].px, o) || lv[i].px == o || touched(lv[i].px) {
						continue
					}
					res = append(res, lv[i])
				}
			} else {
				// The view shrank: untouched levels pushed past the new
				// boundary, at or better than the old one, left.
				for i := n; i < len(lv) && inView(lv[i].px, o); i++ {
					if touched(lv[i].px) {
						continue
					}
					res = append(res, level{lv[i].px, 0})
				}
			}
		}
		sort.Slice(res, func(i, j int) bool { return better(side, res[i].px, res[j].px) })
		out[side] = res
	}
}
