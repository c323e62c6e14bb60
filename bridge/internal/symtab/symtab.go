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
// connections are set up, never per frame).
package symtab

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qldata/mdbridge/bridge"
)

// Table is a set of canonical symbol strings. The zero value is ready.
type Table struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]string]
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
	t.m.Store(&next)
}

// Intern returns the canonical copy of s if it is registered; otherwise it
// validates s as an identifier and returns a copy of it. The error wraps
// bridge.ErrBadIdent.
func (t *Table) Intern(s string) (string, error) {
	if m := t.m.Load(); m != nil {
		if c, ok := (*m)[s]; ok {
			return c, nil
		}
	}
	if err := bridge.ValidateIdent(s); err != nil {
		return "", err
	}
	return strings.Clone(s), nil
}
