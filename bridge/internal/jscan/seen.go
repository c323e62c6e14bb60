package jscan

import "fmt"

// Seen is the set of keys an object has had so far, one bit per key the
// reader knows (up to 32), for rejecting duplicate keys: a frame with a
// key twice is ambiguous and is refused rather than read either way.
type Seen uint32

// Add records key, whose bit is bit; a key already recorded is an error
// wrapping ErrSyntax.
func (s *Seen) Add(bit Seen, key string) error {
	if *s&bit != 0 {
		return fmt.Errorf("%w: duplicate key %q", ErrSyntax, key)
	}
	*s |= bit
	return nil
}

// Has reports whether every key of bits has been recorded.
func (s Seen) Has(bits Seen) bool { return s&bits == bits }
