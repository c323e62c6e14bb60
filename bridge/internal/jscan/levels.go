package jscan

import (
	"fmt"

	"github.com/qldata/mdbridge/bridge"
)

// MaxDecimalLen is the longest price or quantity string accepted.
const MaxDecimalLen = 64

// IsDecimal reports whether s is a plain non-negative decimal as exchanges
// send prices and quantities: digits with at most one '.' that has digits
// on both sides ("0.001", "27000", "27000.10"), at most MaxDecimalLen
// characters. Such strings never need JSON escaping.
func IsDecimal(s string) bool {
	if len(s) == 0 || len(s) > MaxDecimalLen {
		return false
	}
	dot := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if dot >= 0 || i == 0 || i == len(s)-1 {
				return false
			}
			dot = i
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Decimal reads a string value that must satisfy IsDecimal.
func (sc *Scanner) Decimal() (string, error) {
	raw, esc, err := sc.RawString()
	if err != nil {
		return "", err
	}
	if esc || !IsDecimal(raw) {
		return "", sc.errf("expected decimal string")
	}
	return raw, nil
}

// Levels reads an array of [price, qty] pairs of decimal strings into dst,
// which must have room for every element (size it with SkipCount first),
// and returns the filled prefix. A pair with other than two elements, or a
// non-decimal element, is an error.
func (sc *Scanner) Levels(dst []bridge.Level) ([]bridge.Level, error) {
	if err := sc.EnterArray(); err != nil {
		return nil, err
	}
	n := 0
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return dst[:n], nil
		}
		if n >= len(dst) {
			return nil, sc.errf("more levels than counted")
		}
		if err := sc.EnterArray(); err != nil {
			return nil, err
		}
		if ok, err := sc.Element(true); err != nil || !ok {
			return nil, sc.errf("empty level")
		}
		if dst[n][0], err = sc.Decimal(); err != nil {
			return nil, err
		}
		if ok, err := sc.Element(false); err != nil || !ok {
			return nil, sc.errf("level without quantity")
		}
		if dst[n][1], err = sc.Decimal(); err != nil {
			return nil, err
		}
		if ok, err := sc.Element(false); err != nil || ok {
			return nil, sc.errf("level with more than two elements")
		}
		n++
	}
}

// Sides reads a book's bid and ask level arrays, found earlier at offsets
// bidPos and askPos with nb and na elements (Pos before SkipCount), into
// one allocation; bids is capacity-limited so appending to it cannot
// overwrite asks. An empty side is nil. Errors name the side ("bids: ...").
func (sc *Scanner) Sides(bidPos, nb, askPos, na int) (bids, asks []bridge.Level, err error) {
	if nb+na == 0 {
		return nil, nil, nil
	}
	levels := make([]bridge.Level, nb+na)
	sc.Seek(bidPos)
	if bids, err = sc.Levels(levels[:nb:nb]); err != nil {
		return nil, nil, fmt.Errorf("bids: %w", err)
	}
	sc.Seek(askPos)
	if asks, err = sc.Levels(levels[nb:]); err != nil {
		return nil, nil, fmt.Errorf("asks: %w", err)
	}
	if nb == 0 {
		bids = nil
	}
	if na == 0 {
		asks = nil
	}
	return bids, asks, nil
}
