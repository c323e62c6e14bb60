package bridge

import (
	"fmt"
	"os"
)

// MaxIdentLen is the longest exchange or symbol name accepted.
const MaxIdentLen = 64

// IsIdentChar reports whether c may appear in an identifier: a letter, a
// digit, '_' or '-'. It is the one identifier rule of mdbridge: exchange
// and symbol names, instance names, stream, bucket and subject-token
// names all follow it.
func IsIdentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// ValidateIdent reports whether s may be used as an exchange or symbol name in
// a NATS subject: 1 to 64 characters of [A-Za-z0-9_-]. Anything else (".",
// "*", ">", spaces) would inject subject tokens. The error wraps ErrBadIdent
// and names the offending character.
func ValidateIdent(s string) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: empty name", ErrBadIdent)
	}
	if len(s) > MaxIdentLen {
		return fmt.Errorf("%w: %q is %d characters, at most %d allowed", ErrBadIdent, s[:16]+"...", len(s), MaxIdentLen)
	}
	for i := 0; i < len(s); i++ {
		if !IsIdentChar(s[i]) {
			return fmt.Errorf("%w: %q has %q at offset %d; allowed are letters, digits, '_' and '-'", ErrBadIdent, s, s[i], i)
		}
	}
	return nil
}

// SanitizeIdent maps s to a valid identifier: every other character
// becomes '-' and the result is cut to MaxIdentLen; "" becomes def.
func SanitizeIdent(s, def string) string {
	if s == "" {
		return def
	}
	b := []byte(s)
	for i, c := range b {
		if !IsIdentChar(c) {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), MaxIdentLen)])
}

// HostIdent is the host name as a valid identifier ("mdbridge" if
// unknown): the default instance name.
func HostIdent() string {
	h, _ := os.Hostname()
	return SanitizeIdent(h, "mdbridge")
}
