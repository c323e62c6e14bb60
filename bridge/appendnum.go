package bridge

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

// appendInt appends the decimal form of v, byte for byte what
// strconv.AppendInt(dst, v, 10) appends (FuzzAppendInt). Times in Unix ns
// have 19 digits: they are written 8 digits at a time with a few
// multiplications on one 64-bit word (appendDigits8) instead of a chain of
// divisions by 100, the largest single cost of a trade body.
func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		return strconv.AppendInt(dst, v, 10)
	}
	u := uint64(v)
	switch {
	case u < 1e8:
		return appendLead(dst, u)
	case u < 1e16:
		dst = appendLead(dst, u/1e8)
		return appendDigits8(dst, u%1e8)
	default:
		dst = appendLead(dst, u/1e16)
		dst = appendDigits8(dst, u/1e8%1e8)
		return appendDigits8(dst, u%1e8)
	}
}

// appendLead appends x < 1e8 without leading zeros ("0" for 0): the 8
// digits shifted down past the leading zeros are written as one word and
// dst is cut back to the digits (the bytes past len(dst) are spare
// capacity, overwritten by the next append).
func appendLead(dst []byte, x uint64) []byte {
	if x < 10 {
		return append(dst, byte('0'+x))
	}
	d := digitLanes(x)
	lz := bits.TrailingZeros64(d) >> 3 // zero digits before the first non-zero one
	dst = binary.LittleEndian.AppendUint64(dst, d>>(8*lz)|0x30303030_30303030)
	return dst[:len(dst)-lz]
}

// appendDigits8 appends x < 1e8 as exactly 8 digits (leading zeros kept).
func appendDigits8(dst []byte, x uint64) []byte {
	return binary.LittleEndian.AppendUint64(dst, digitLanes(x)|0x30303030_30303030)
}

// digitLanes returns the 8 decimal digits of x < 1e8 (values 0..9, not
// ASCII), one per byte, the first digit in the lowest byte. They are
// computed in lanes of one word: x splits into two 4-digit halves (32-bit
// lanes), each into two 2-digit pairs (16-bit lanes), each pair into tens
// and ones (8-bit lanes); the lanes never carry into each other (every
// product stays below its lane's width).
func digitLanes(x uint64) uint64 {
	v := x/10000 | x%10000<<32                   // [hi4, lo4]
	h := (v * 10486 >> 20) & 0x0000007f_0000007f // n/100 for n < 10000 in each lane
	v = h | (v-h*100)<<16                        // [a, b, c, d] pairs
	t := (v * 103 >> 10) & 0x000f000f_000f000f   // n/10 for n < 100 in each lane
	return t | (v-t*10)<<8
}

// swarOnes and swarHigh are a byte's 1 and high bit repeated in a word.
const (
	swarOnes = 0x01010101_01010101
	swarHigh = 0x80808080_80808080
)

// wordJSONSafe reports whether the 8 bytes of w are all jsonSafe: no byte
// below 0x20, no '"', no '\\', none at or above 0x80. Each test sets the
// high bit of a byte that fails it (exact for existence: borrows only
// reach bytes above a failing one).
func wordJSONSafe(w uint64) bool {
	ctl := (w - 0x20*swarOnes) &^ w
	q := w ^ '"'*swarOnes
	q = (q - swarOnes) &^ q
	bs := w ^ '\\'*swarOnes
	bs = (bs - swarOnes) &^ bs
	return (ctl|q|bs|w)&swarHigh == 0
}

// safePrefix returns the length of the longest prefix of s that needs no
// escaping in a JSON string, or len(s) when s needs none; it reads a word
// at a time where s is long enough.
func safePrefix(s string) int {
	if len(s) < 8 {
		// Symbols and exchange names ("BTCUSDT", "binance") are mostly 4..7
		// bytes: two overlapping 4-byte halves in one word cover them, and
		// only a string that fails goes on to the byte loop for its index.
		if len(s) >= 4 && wordJSONSafe(uint64(load32(s, 0))|uint64(load32(s, len(s)-4))<<32) {
			return len(s)
		}
		i := 0
		for i < len(s) && jsonSafe[s[i]] {
			i++
		}
		return i
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !wordJSONSafe(load64(s, i)) {
			break
		}
	}
	if i < len(s) && len(s) >= 8 && i+8 > len(s) {
		// The tail, as the last (overlapping) word.
		if wordJSONSafe(load64(s, len(s)-8)) {
			return len(s)
		}
	}
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	return i
}

// load32 reads s[i:i+4] as a little-endian word.
func load32(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// load64 reads s[i:i+8] as a little-endian word (the compiler merges the
// byte loads into one).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
