package bridge

import "fmt"

// MaxIdentLen is the longest exchange or symbol name accepted.
const MaxIdentLen = 64

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
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q has %q at offset %d; allowed are letters, digits, '_' and '-'", ErrBadIdent, s, c, i)
		}
	}
	return nil
}
