package jscan

import (
	"math/bits"

	"github.com/qldata/mdbridge/bridge"
)

// Fast reads a frame of one exact, known layout (the adapters' fast paths
// for their most frequent frames): each step consumes an expected literal
// or value, and the first mismatch marks the scan failed, after which every
// step is a no-op; the caller checks Done at the end and falls back to its
// general decoder on any failure. Its value scanners read 8 bytes at a time
// and give exactly what their byte-at-a-time versions give (FuzzFastScan).
// Strings are substrings of the input (no escapes are accepted).
type Fast struct {
	s   string
	pos int
	ok  bool
}

// NewFast starts a scan of s.
func NewFast(s string) Fast { return Fast{s: s, ok: true} }

// OK reports whether every step so far succeeded.
func (f *Fast) OK() bool { return f.ok }

// Opt consumes lit if the input continues with it and reports whether it
// did; a mismatch is not a failure (an optional member, a list's end).
func (f *Fast) Opt(lit string) bool {
	if f.ok && len(f.s)-f.pos >= len(lit) && f.s[f.pos:f.pos+len(lit)] == lit {
		f.pos += len(lit)
		return true
	}
	return false
}

// Done reports whether every step succeeded and the whole input was read.
func (f *Fast) Done() bool { return f.ok && f.pos == len(f.s) }

// Lit consumes lit or marks the scan failed.
func (f *Fast) Lit(lit string) {
	if f.ok && len(f.s)-f.pos >= len(lit) && f.s[f.pos:f.pos+len(lit)] == lit {
		f.pos += len(lit)
		return
	}
	f.ok = false
}

// strSlow is Str a byte at a time.
func (f *Fast) strSlow() string {
	if !f.ok {
		return ""
	}
	i := f.pos
	for i < len(f.s) && f.s[i] != '"' {
		if c := f.s[i]; c == '\\' || c < 0x20 {
			f.ok = false
			return ""
		}
		i++
	}
	s := f.s[f.pos:i]
	f.pos = i
	return s
}

// uintSlow is Uint a byte at a time.
func (f *Fast) uintSlow() (int64, string) {
	if !f.ok {
		return 0, ""
	}
	start := f.pos
	end := min(len(f.s), start+19)
	var n int64
	i := start
	for ; i < end; i++ {
		c := f.s[i] - '0'
		if c > 9 {
			break
		}
		n = n*10 + int64(c)
	}
	if i == start || i-start > 18 || f.s[start] == '0' && i-start > 1 {
		f.ok = false
		return 0, ""
	}
	f.pos = i
	return n, f.s[start:i]
}

// decimalSlow is Decimal a byte at a time.
func (f *Fast) decimalSlow() string {
	if !f.ok {
		return ""
	}
	start := f.pos
	dot := -1
	i := start
	for ; i < len(f.s); i++ {
		c := f.s[i]
		if c-'0' <= 9 {
			continue
		}
		if c == '.' && dot < 0 {
			dot = i
			continue
		}
		break
	}
	if i == start || i-start > MaxDecimalLen || dot == start || dot == i-1 || i == len(f.s) || f.s[i] != '"' {
		f.ok = false
		return ""
	}
	f.pos = i
	return f.s[start:i]
}

// Bool consumes true or false.
func (f *Fast) Bool() bool {
	if !f.ok {
		return false
	}
	switch {
	case len(f.s)-f.pos >= 4 && f.s[f.pos:f.pos+4] == "true":
		f.pos += 4
		return true
	case len(f.s)-f.pos >= 5 && f.s[f.pos:f.pos+5] == "false":
		f.pos += 5
		return false
	}
	f.ok = false
	return false
}

// The word-at-a-time scanners below read 8 bytes of the frame at once
// (little-endian: the byte at the lower offset is the lower byte) and give
// exactly what their byte-at-a-time versions give (FuzzFastScan); where
// fewer than 16 bytes are left they call those.

// swarOnes and swarHigh are a byte's 1 and high bit in each byte of a word.
const (
	swarOnes = 0x01010101_01010101
	swarHigh = 0x80808080_80808080
)

// load64 reads s[i:i+8] as a little-endian word (the compiler merges the
// byte loads into one).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// nonDigits sets the high bit of the bytes of w that are not ASCII digits.
// Only the lowest set byte is exact (a borrow or carry moves up from a
// byte that is itself set), which is all its callers use.
func nonDigits(w uint64) uint64 {
	return ((w - '0'*swarOnes) | (w + 0x46*swarOnes) | w) & swarHigh
}

// strEnds sets the high bit of the bytes of w that end or spoil a plain
// string: '"', '\\' or a control character (lowest set byte exact).
func strEnds(w uint64) uint64 {
	ctl := (w - 0x20*swarOnes) &^ w
	q := w ^ '"'*swarOnes
	q = (q - swarOnes) &^ q
	bs := w ^ '\\'*swarOnes
	bs = (bs - swarOnes) &^ bs
	return (ctl | q | bs) & swarHigh
}

// firstByte is the index of the lowest byte set in a nonDigits or strEnds
// mask (8 if none).
func firstByte(m uint64) int { return bits.TrailingZeros64(m) >> 3 }

// digits8 is the value of the first n (1..8) bytes of w, all digits.
func digits8(w uint64, n int) uint64 {
	v := (w - '0'*swarOnes) << (64 - 8*n) // the digits at the top, zeros before them
	v = (v*10 + v>>8) & 0x00ff00ff_00ff00ff
	v = (v*100 + v>>16) & 0x0000ffff_0000ffff
	return (v*10000 + v>>32) & 0xffffffff
}

var pow10 = [...]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// Str consumes the body of a string up to (not including) its closing
// quote: no escapes, no control characters.
func (f *Fast) Str() string {
	if !f.ok {
		return ""
	}
	i := f.pos
	for {
		if len(f.s)-i < 16 {
			return f.strSlow()
		}
		if m := strEnds(load64(f.s, i)); m != 0 {
			i += firstByte(m)
			break
		}
		i += 8
	}
	if f.s[i] != '"' {
		f.ok = false
		return ""
	}
	s := f.s[f.pos:i]
	f.pos = i
	return s
}

// Uint consumes a JSON integer of 1..18 digits (no leading zero), which
// always fits in an int64; longer ones are left to the general decoder.
func (f *Fast) Uint() (int64, string) {
	if !f.ok {
		return 0, ""
	}
	start := f.pos
	if len(f.s)-start < 16 {
		return f.uintSlow()
	}
	w := load64(f.s, start)
	var n uint64
	var k int
	if m := nonDigits(w); m != 0 {
		k = firstByte(m)
		if k == 0 {
			f.ok = false
			return 0, ""
		}
		n = digits8(w, k)
	} else {
		w2 := load64(f.s, start+8)
		m2 := nonDigits(w2)
		if m2 == 0 { // 16 digits or more
			return f.uintSlow()
		}
		k2 := firstByte(m2)
		n = digits8(w, 8)
		if k2 > 0 {
			n = n*pow10[k2] + digits8(w2, k2)
		}
		k = 8 + k2
	}
	if f.s[start] == '0' && k > 1 {
		f.ok = false
		return 0, ""
	}
	f.pos = start + k
	return int64(n), f.s[start:f.pos]
}

// Decimal consumes the body of a string up to its closing quote that must
// satisfy IsDecimal.
func (f *Fast) Decimal() string {
	if !f.ok {
		return ""
	}
	start := f.pos
	dot := -1
	i := start
	for {
		if len(f.s)-i < 16 || i-start > MaxDecimalLen {
			return f.decimalSlow()
		}
		m := nonDigits(load64(f.s, i))
		if m == 0 {
			i += 8
			continue
		}
		i += firstByte(m)
		if f.s[i] == '.' && dot < 0 {
			dot = i
			i++
			continue
		}
		break
	}
	if i == start || i-start > MaxDecimalLen || dot == start || dot == i-1 || f.s[i] != '"' {
		f.ok = false
		return ""
	}
	f.pos = i
	return f.s[start:i]
}

// Levels consumes an array of ["price","qty"] pairs of decimal strings
// (no whitespace) into dst[:0] and returns the filled prefix; the strings
// are substrings of the input. More than cap(dst) levels fails the scan,
// so cap(dst) bounds what a fast path takes.
func (f *Fast) Levels(dst []bridge.Level) []bridge.Level { return f.LevelsExtra(dst, 0) }

// LevelsExtra is Levels for levels of price, qty and then exactly extra
// more plain strings, which are skipped (OKX's ["px","sz","0","orders"]:
// extra 2).
func (f *Fast) LevelsExtra(dst []bridge.Level, extra int) []bridge.Level {
	dst = dst[:0]
	f.Lit("[")
	if f.Opt("]") {
		return dst
	}
	for f.ok {
		f.Lit(`["`)
		p := f.Decimal()
		f.Lit(`","`)
		q := f.Decimal()
		for range extra {
			f.Lit(`","`)
			f.Str()
		}
		f.Lit(`"]`)
		if !f.ok || len(dst) == cap(dst) {
			f.ok = false
			break
		}
		dst = append(dst, bridge.Level{p, q})
		if f.Opt("]") {
			return dst
		}
		f.Lit(",")
	}
	return dst[:0]
}

// Int consumes a JSON integer of 1..18 digits (no leading zero), with an
// optional minus sign.
func (f *Fast) Int() int64 {
	neg := f.Opt("-")
	n, _ := f.Uint()
	if neg {
		return -n
	}
	return n
}
