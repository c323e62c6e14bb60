package publisher

import "sync"

// maxSubjects bounds the subject cache.
const maxSubjects = 1 << 16

// subjectCache interns the data subjects of valid events, so encoding an
// event of a known symbol allocates no subject string and validates no
// identifier. It is safe for concurrent use; the zero value is ready.
type subjectCache struct {
	mu sync.RWMutex
	m  map[string]string
}

// lookup returns the interned copy of subject b, if cached.
func (c *subjectCache) lookup(b []byte) (string, bool) {
	c.mu.RLock()
	s, ok := c.m[string(b)]
	c.mu.RUnlock()
	return s, ok
}

// add returns subject b as a string, interned unless the cache is full.
func (c *subjectCache) add(b []byte) string {
	s := string(b)
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if len(c.m) < maxSubjects {
		c.m[s] = s
	}
	c.mu.Unlock()
	return s
}
