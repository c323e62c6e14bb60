package exsim

import (
	"strconv"
	"unicode/utf8"
)

// pow10 holds 10^0..10^18.
var pow10 = [...]int64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
}

// appendDecimal appends v units of 10^-dec as a decimal string with exactly
// out fractional digits (out >= dec), without allocating: 1234567 with dec 2
// and out 8 is "12345.67000000". Negative values get a leading '-'.
func appendDecimal(dst []byte, v int64, dec, out int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	if dec == 0 {
		dst = strconv.AppendInt(dst, v, 10)
		if out > 0 {
			dst = append(dst, '.')
			dst = appendZeros(dst, out)
		}
		return dst
	}
	p := pow10[dec]
	dst = strconv.AppendInt(dst, v/p, 10)
	dst = append(dst, '.')
	frac := v % p
	// Zero-pad the fraction to dec digits.
	for d := dec - 1; d > 0 && frac < pow10[d]; d-- {
		dst = append(dst, '0')
	}
	dst = strconv.AppendInt(dst, frac, 10)
	return appendZeros(dst, out-dec)
}

func appendZeros(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, '0')
	}
	return dst
}

// parseDecimal parses a decimal string with at most dec fractional digits
// (trailing zeros beyond dec are allowed) into units of 10^-dec. It is the
// inverse of appendDecimal and exists for tests and admin input.
func parseDecimal(s string, dec int) (int64, bool) {
	if s == "" {
		return 0, false
	}
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	var v int64
	seenDot, fracDigits, digits := false, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !seenDot:
			seenDot = true
		case c >= '0' && c <= '9':
			digits++
			if seenDot {
				if fracDigits >= dec {
					if c != '0' {
						return 0, false
					}
					continue
				}
				fracDigits++
			}
			if v > (1<<62)/10 {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	v *= pow10[dec-fracDigits]
	if neg {
		v = -v
	}
	return v, true
}

// appendJSONString appends s as a JSON string literal: quotes, backslashes
// and control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}
