package jscan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
)

// MaxDepth is the deepest nesting of arrays and objects Skip accepts.
const MaxDepth = 64

// Errors of package jscan.
var (
	// ErrSyntax: the input is not valid JSON, or a value has the wrong type.
	ErrSyntax = errors.New("jscan: syntax error")
)

// Scanner reads JSON from a string. The zero value is not usable; use New.
type Scanner struct {
	s   string
	pos int
}

// New returns a Scanner positioned at the start of s.
func New(s string) Scanner { return Scanner{s: s} }

// Pos returns the current byte offset.
func (sc *Scanner) Pos() int { return sc.pos }

// Seek moves the cursor to byte offset pos (one obtained from Pos).
func (sc *Scanner) Seek(pos int) { sc.pos = pos }

// Input returns the whole input string.
func (sc *Scanner) Input() string { return sc.s }

func (sc *Scanner) errf(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, sc.pos)
}

func (sc *Scanner) ws() {
	if sc.pos < len(sc.s) && sc.s[sc.pos] > ' ' { // the usual case: no whitespace
		return
	}
	for sc.pos < len(sc.s) {
		switch sc.s[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// Peek skips whitespace and returns the next byte without consuming it, or 0
// at the end of input.
func (sc *Scanner) Peek() byte {
	sc.ws()
	if sc.pos < len(sc.s) {
		return sc.s[sc.pos]
	}
	return 0
}

// End reports an error unless only whitespace remains.
func (sc *Scanner) End() error {
	sc.ws()
	if sc.pos != len(sc.s) {
		return sc.errf("trailing data")
	}
	return nil
}

// EnterObject consumes the '{' that opens an object.
func (sc *Scanner) EnterObject() error {
	if sc.Peek() != '{' {
		return sc.errf("expected object")
	}
	sc.pos++
	return nil
}

// EnterArray consumes the '[' that opens an array.
func (sc *Scanner) EnterArray() error {
	if sc.Peek() != '[' {
		return sc.errf("expected array")
	}
	sc.pos++
	return nil
}

// Member advances to the next member of the object entered with
// EnterObject. first must be true for the first call after EnterObject. It
// returns the key's raw text (escapes not decoded) with the cursor at the
// value, which the caller must consume; ok is false (and the closing '}'
// consumed) when the object ends.
func (sc *Scanner) Member(first bool) (key string, ok bool, err error) {
	c := sc.Peek()
	if c == '}' {
		sc.pos++
		return "", false, nil
	}
	if !first {
		if c != ',' {
			return "", false, sc.errf("expected ',' or '}'")
		}
		sc.pos++
		c = sc.Peek()
	}
	if c != '"' {
		return "", false, sc.errf("expected object key")
	}
	key, _, err = sc.RawString()
	if err != nil {
		return "", false, err
	}
	if sc.Peek() != ':' {
		return "", false, sc.errf("expected ':'")
	}
	sc.pos++
	return key, true, nil
}

// Element advances to the next element of the array entered with
// EnterArray. first must be true for the first call after EnterArray. ok is
// false (and the closing ']' consumed) when the array ends; otherwise the
// cursor is at the element, which the caller must consume.
func (sc *Scanner) Element(first bool) (ok bool, err error) {
	c := sc.Peek()
	if c == ']' {
		sc.pos++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, sc.errf("expected ',' or ']'")
		}
		sc.pos++
		if sc.Peek() == ']' {
			return false, sc.errf("trailing comma")
		}
	}
	if sc.pos >= len(sc.s) {
		return false, sc.errf("unexpected end of input")
	}
	return true, nil
}

// Object reads an object, calling member for each key (its raw text, as
// Member returns it) with the cursor at the value, which member must
// consume. It stops at the first error and returns it.
func (sc *Scanner) Object(member func(key string) error) error {
	if err := sc.EnterObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := sc.Member(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := member(key); err != nil {
			return err
		}
	}
}

// RawString reads a string value and returns its content between the quotes
// as a substring of the input, escapes not decoded; escaped reports whether
// it contains any backslash escape (use Unquote then).
func (sc *Scanner) RawString() (raw string, escaped bool, err error) {
	if sc.Peek() != '"' {
		return "", false, sc.errf("expected string")
	}
	sc.pos++
	start := sc.pos
	s := sc.s
	// Fast path: plain ASCII/UTF-8 up to the closing quote.
	i := plainRun(s, start)
	if i < len(s) && s[i] == '"' {
		sc.pos = i + 1
		return s[start:i], false, nil
	}
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			sc.pos = i + 1
			return s[start:i], escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(s) {
				sc.pos = i
				return "", false, sc.errf("unterminated string")
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					sc.pos = i
					return "", false, sc.errf("unterminated string")
				}
				for j := i + 1; j <= i+4; j++ {
					if !isHex(s[j]) {
						sc.pos = j
						return "", false, sc.errf("bad \\u escape")
					}
				}
				i += 4
			default:
				sc.pos = i
				return "", false, sc.errf("bad escape")
			}
		case c < 0x20:
			sc.pos = i
			return "", false, sc.errf("control character in string")
		}
	}
	sc.pos = len(s)
	return "", false, sc.errf("unterminated string")
}

// String reads a string value and returns it decoded. It allocates only
// when the string contains escapes.
func (sc *Scanner) String() (string, error) {
	raw, esc, err := sc.RawString()
	if err != nil || !esc {
		return raw, err
	}
	return Unquote(raw)
}

// Unquote decodes the escapes of a raw string returned by RawString.
func Unquote(raw string) (string, error) {
	var out string
	b := make([]byte, 0, len(raw)+2)
	b = append(b, '"')
	b = append(b, raw...)
	b = append(b, '"')
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return out, nil
}

// plainRun returns the index of the first byte of s at or after i that is
// '"', '\\' or a control character, or len(s): the same as a loop over
// the bytes, but reading 8 at a time where 8 are left. In each word a test
// sets the high bit of a byte that fails it; only the lowest set byte is
// exact (a borrow moves up from a byte that is itself set), and only it is
// used.
func plainRun(s string, i int) int {
	const ones, high = 0x01010101_01010101, 0x80808080_80808080
	for ; len(s)-i >= 8; i += 8 {
		t := s[i : i+8]
		w := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
		ctl := (w - 0x20*ones) &^ w
		q := w ^ '"'*ones
		q = (q - ones) &^ q
		bs := w ^ '\\'*ones
		bs = (bs - ones) &^ bs
		if m := (ctl | q | bs) & high; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Number reads a number value and returns its text, validated against the
// JSON number grammar.
func (sc *Scanner) Number() (string, error) {
	sc.ws()
	s := sc.s
	start := sc.pos
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		sc.pos = i
		return "", sc.errf("expected number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			sc.pos = i
			return "", sc.errf("bad number fraction")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			sc.pos = i
			return "", sc.errf("bad number exponent")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	sc.pos = i
	return s[start:i], nil
}

// Uint reads a non-negative integer that fits in an int64 and returns it
// together with its verbatim digits. Anything else (a string, a fraction,
// an exponent, a sign, an overflow) is an error.
func (sc *Scanner) Uint() (int64, string, error) {
	sc.ws()
	s := sc.s
	start := sc.pos
	i := start
	if i >= len(s) || !isDigit(s[i]) {
		return 0, "", sc.errf("expected non-negative integer")
	}
	if s[i] == '0' && i+1 < len(s) && isDigit(s[i+1]) {
		return 0, "", sc.errf("leading zero")
	}
	var n int64
	for i < len(s) && isDigit(s[i]) {
		d := int64(s[i] - '0')
		if n > (1<<63-1-d)/10 {
			sc.pos = i
			return 0, "", sc.errf("integer overflows int64")
		}
		n = n*10 + d
		i++
	}
	if i < len(s) && (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
		sc.pos = i
		return 0, "", sc.errf("expected integer")
	}
	sc.pos = i
	return n, s[start:i], nil
}

// Int reads an integer (possibly negative) that fits in an int64.
func (sc *Scanner) Int() (int64, error) {
	neg := false
	if sc.Peek() == '-' {
		neg = true
		sc.pos++
		if sc.pos < len(sc.s) && sc.s[sc.pos] == '-' {
			return 0, sc.errf("expected integer")
		}
	}
	n, _, err := sc.Uint()
	if neg {
		n = -n
	}
	return n, err
}

// Bool reads true or false.
func (sc *Scanner) Bool() (bool, error) {
	switch sc.Peek() {
	case 't':
		if hasPrefixAt(sc.s, sc.pos, "true") {
			sc.pos += 4
			return true, nil
		}
	case 'f':
		if hasPrefixAt(sc.s, sc.pos, "false") {
			sc.pos += 5
			return false, nil
		}
	}
	return false, sc.errf("expected boolean")
}

// Null consumes a null literal if one is next and reports whether it did.
func (sc *Scanner) Null() bool {
	if sc.Peek() == 'n' && hasPrefixAt(sc.s, sc.pos, "null") {
		sc.pos += 4
		return true
	}
	return false
}

// ID reads a request id as exchanges echo it: a string (decoded), a
// number (its text) or null ("").
func (sc *Scanner) ID() (string, error) {
	switch c := sc.Peek(); {
	case c == '"':
		return sc.String()
	case sc.Null():
		return "", nil
	default:
		return sc.Number()
	}
}

func hasPrefixAt(s string, pos int, lit string) bool {
	return len(s)-pos >= len(lit) && s[pos:pos+len(lit)] == lit
}

// Skip consumes one value of any type, validating it.
func (sc *Scanner) Skip() error { return sc.skip(0) }

// SkipCount consumes one array, validating it, and returns its number of
// elements.
func (sc *Scanner) SkipCount() (int, error) {
	if err := sc.EnterArray(); err != nil {
		return 0, err
	}
	n := 0
	for first := true; ; first = false {
		ok, err := sc.Element(first)
		if err != nil {
			return 0, err
		}
		if !ok {
			return n, nil
		}
		if err := sc.skip(1); err != nil {
			return 0, err
		}
		n++
	}
}

func (sc *Scanner) skip(depth int) error {
	if depth >= MaxDepth {
		return sc.errf("nesting too deep")
	}
	switch c := sc.Peek(); c {
	case '{':
		return sc.Object(func(string) error { return sc.skip(depth + 1) })
	case '[':
		sc.pos++
		for first := true; ; first = false {
			ok, err := sc.Element(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := sc.skip(depth + 1); err != nil {
				return err
			}
		}
	case '"':
		_, _, err := sc.RawString()
		return err
	case 't', 'f':
		_, err := sc.Bool()
		return err
	case 'n':
		if sc.Null() {
			return nil
		}
		return sc.errf("bad literal")
	case 0:
		return sc.errf("unexpected end of input")
	default:
		_, err := sc.Number()
		return err
	}
}
