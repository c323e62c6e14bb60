package resilience

import (
	"math"
	"sync"
	"time"
)

// Dedup defaults, from the seed.
const (
	DefaultDedupWindowSize = 1000
	DefaultDedupTTL        = 60 * time.Second
)

// DedupConfig configures a MessageDeduplicator. The seed's buffer_size and
// window_size are the same knob (WindowSize).
type DedupConfig struct {
	// WindowSize is the number of most recent IDs remembered; it must be
	// positive (an unset window is an error rather than a silent default,
	// because a window too small for the feed lets duplicates through).
	// Default 1000 in DefaultDedupConfig. At most math.MaxInt32.
	WindowSize int
	// TTL is how long an ID is remembered. 0 means the default, 60s.
	TTL time.Duration
}

// DefaultDedupConfig returns the seed's defaults: 1000 IDs, 60s.
func DefaultDedupConfig() DedupConfig {
	return DedupConfig{WindowSize: DefaultDedupWindowSize, TTL: DefaultDedupTTL}
}

func (c DedupConfig) withDefaults() (DedupConfig, error) {
	switch {
	case c.WindowSize <= 0:
		return c, configError("DedupConfig.WindowSize", "must be positive (got %d; the seed's default is %d)", c.WindowSize, DefaultDedupWindowSize)
	case c.WindowSize > math.MaxInt32:
		return c, configError("DedupConfig.WindowSize", "must be at most %d (got %d)", math.MaxInt32, c.WindowSize)
	case c.TTL < 0:
		return c, configError("DedupConfig.TTL", "must not be negative (got %s)", c.TTL)
	}
	if c.TTL == 0 {
		c.TTL = DefaultDedupTTL
	}
	return c, nil
}

// DedupStats are a MessageDeduplicator's counters since creation or Reset.
type DedupStats struct {
	Checks     uint64 // IsDuplicate calls
	Recorded   uint64 // Record/RecordAt calls that returned true (new IDs)
	Duplicates uint64 // Record/RecordAt calls that returned false
	Evicted    uint64 // IDs forgotten because the window was full
	Expired    uint64 // IDs forgotten because they outlived TTL
	Len        int    // IDs currently remembered
	WindowSize int    // configured window
}

// dedupEntry is one remembered ID with its record time (ns since base).
type dedupEntry[K comparable] struct {
	key K
	at  int64
}

// MessageDeduplicator remembers the most recent IDs, at most WindowSize of
// them and each for at most TTL, and reports repeats. Keys are any
// comparable type: int64 trade ids, string ids, small structs.
//
// Storage is a fixed ring buffer of (key, time) in record order plus a map
// from key to ring slot, both allocated once at construction: every
// operation is O(1) and, once the map has reached its working size,
// allocation-free. An ID recorded at t is a duplicate until t+TTL
// (exclusive): at exactly t+TTL it has expired and may be recorded again.
// When the window is full, recording a new ID forgets the oldest.
//
// Record times must not go backwards for the ring to stay in time order:
// a time earlier than the newest record is treated as that newest time,
// which can only make an ID live slightly longer, never shorter. Times are
// monotonic (offsets from creation) when they come from time.Now.
//
// Safe for concurrent use (one mutex).
type MessageDeduplicator[K comparable] struct {
	ttl  int64
	base time.Time

	mu     sync.Mutex
	ring   []dedupEntry[K]
	head   int // oldest entry
	n      int // live entries
	newest int64
	index  map[K]int32
	stats  DedupStats
}

// NewMessageDeduplicator validates cfg and returns an empty deduplicator.
// Errors wrap ErrInvalidConfig and name the field.
func NewMessageDeduplicator[K comparable](cfg DedupConfig) (*MessageDeduplicator[K], error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &MessageDeduplicator[K]{
		ttl:   int64(c.TTL),
		base:  time.Now(),
		ring:  make([]dedupEntry[K], c.WindowSize),
		index: make(map[K]int32, c.WindowSize),
		stats: DedupStats{WindowSize: c.WindowSize},
	}, nil
}

// IsDuplicate reports whether id was recorded within the window and TTL.
// It does not record id.
func (d *MessageDeduplicator[K]) IsDuplicate(id K) bool {
	return d.IsDuplicateAt(id, time.Now())
}

// IsDuplicateAt is IsDuplicate as of now.
func (d *MessageDeduplicator[K]) IsDuplicateAt(id K, now time.Time) bool {
	at := int64(now.Sub(d.base))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Checks++
	i, ok := d.index[id]
	return ok && !d.expired(d.ring[i].at, at)
}

// Record remembers id and reports whether it is new (true) or a duplicate
// (false). A duplicate keeps its original record time.
func (d *MessageDeduplicator[K]) Record(id K) bool {
	return d.RecordAt(id, time.Now())
}

// RecordAt is Record at time now, so a frame's receive time can serve all
// the IDs it carries.
func (d *MessageDeduplicator[K]) RecordAt(id K, now time.Time) bool {
	at := int64(now.Sub(d.base))
	d.mu.Lock()
	defer d.mu.Unlock()
	if at < d.newest {
		at = d.newest
	}
	d.newest = at
	d.expire(at)
	if _, ok := d.index[id]; ok {
		d.stats.Duplicates++
		return false
	}
	if d.n == len(d.ring) {
		d.dropOldest()
		d.stats.Evicted++
	}
	slot := d.head + d.n
	if slot >= len(d.ring) {
		slot -= len(d.ring)
	}
	d.ring[slot] = dedupEntry[K]{key: id, at: at}
	d.index[id] = int32(slot)
	d.n++
	d.stats.Recorded++
	return true
}

// expire forgets entries recorded at or before at-TTL.
func (d *MessageDeduplicator[K]) expire(at int64) {
	for d.n > 0 && d.expired(d.ring[d.head].at, at) {
		d.dropOldest()
		d.stats.Expired++
	}
}

// expired reports whether an entry recorded at rec has outlived TTL at
// time at, without overflowing for extreme times.
func (d *MessageDeduplicator[K]) expired(rec, at int64) bool {
	return at >= rec && uint64(at)-uint64(rec) >= uint64(d.ttl)
}

func (d *MessageDeduplicator[K]) dropOldest() {
	e := &d.ring[d.head]
	delete(d.index, e.key)
	*e = dedupEntry[K]{} // release string keys to the GC
	d.head++
	if d.head == len(d.ring) {
		d.head = 0
	}
	d.n--
}

// Len returns the number of IDs currently remembered (expired IDs are
// dropped lazily, on the next Record).
func (d *MessageDeduplicator[K]) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// Stats returns the counters.
func (d *MessageDeduplicator[K]) Stats() DedupStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Len = d.n
	return s
}

// Reset forgets every ID and zeroes the counters.
func (d *MessageDeduplicator[K]) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.ring)
	clear(d.index)
	d.head, d.n = 0, 0
	d.stats = DedupStats{WindowSize: len(d.ring)}
}
