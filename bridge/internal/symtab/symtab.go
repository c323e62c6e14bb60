// Package symtab interns exchange symbols for the adapters' decoders.
//
// A decoder takes a frame's symbol as a substring of the frame. Keeping
// that substring in an Event would pin the whole frame in memory for as
// long as anything (a dedup map key, a book) holds the symbol, so decoders
// replace it with the canonical string registered from the subscribed
// topics. Unknown symbols are validated with bridge.ValidateIdent and
// copied.
//
// A Table is safe for concurrent use: lookups are lock-free reads of an
// immutable map; Add copies the map under a mutex (symbols are added when
// connections are set up, never per frame). Beside the map, each version
// has an open-addressing index of the same symbols with a cheap hash of
// whole 8-byte words (Intern's lookup, a few ns instead of a map access).
package symtab

import (
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qldata/mdbridge/bridge"
)

// Table is a set of canonical symbol strings. The zero value is ready.
type Table struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]string]
	ix atomic.Pointer[index] // the same symbols as m, for Intern
}

// index is an immutable open-addressing set of canonical symbols: at most
// half of its power-of-two slots are used, so every probe sequence meets an
// empty slot.
type index struct {
	slots []string
	mask  uint64
}

func newIndex(m map[string]string) *index {
	n := 1 << bits.Len(uint(2*len(m)))
	ix := &index{slots: make([]string, n), mask: uint64(n - 1)}
	for _, s := range m {
		i := hash(s) & ix.mask
		for ix.slots[i] != "" {
			i = (i + 1) & ix.mask
		}
		ix.slots[i] = s
	}
	return ix
}

// lookup returns the canonical copy of s, or "" if s is not in ix.
func (ix *index) lookup(s string) string {
	i := hash(s) & ix.mask
	for {
		c := ix.slots[i]
		if c == s || c == "" {
			return c
		}
		i = (i + 1) & ix.mask
	}
}

// hash mixes s's bytes eight at a time (little-endian words; the last,
// partial word zero-padded) and its length.
func hash(s string) uint64 {
	const k = 0x9e3779b97f4a7c15
	h := uint64(len(s)) * k
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = bits.RotateLeft64((h^w)*k, 31)
		s = s[8:]
	}
	var w uint64
	for i := range len(s) {
		w |= uint64(s[i]) << (8 * i)
	}
	h = (h ^ w) * k
	return h ^ h>>29
}

// Add registers symbols (already in their canonical case). Invalid
// identifiers are not registered.
func (t *Table) Add(symbols ...string) {
	cur := t.m.Load()
	missing := false
	for _, s := range symbols {
		if cur == nil {
			missing = true
			break
		}
		if _, ok := (*cur)[s]; !ok {
			missing = true
			break
		}
	}
	if !missing {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur = t.m.Load()
	n := len(symbols)
	if cur != nil {
		n += len(*cur)
	}
	next := make(map[string]string, n)
	if cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	for _, s := range symbols {
		if bridge.ValidateIdent(s) != nil {
			continue
		}
		if _, ok := next[s]; !ok {
			s = strings.Clone(s)
			next[s] = s
		}
	}
	t.ix.Store(newIndex(next))
	t.m.Store(&next)
}

// Intern returns the canonical copy of s if it is registered; otherwise it
// validates s as an identifier and returns a copy of it. The error wraps
// bridge.ErrBadIdent.
func (t *Table) Intern(s string) (string, error) {
	if ix := t.ix.Load(); ix != nil && s != "" {
		if c := ix.lookup(s); c != "" {
			return c, nil
		}
	}
	if err := bridge.ValidateIdent(s); err != nil {
		return "", err
	}
	return strings.Clone(s), nil
}
