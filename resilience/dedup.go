package resilience

import (
	"hash/maphash"
	"math"
	"math/bits"
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

// dedupEntry is one remembered ID with its record time (ns since base)
// and the low 32 bits of its hash.
type dedupEntry[K comparable] struct {
	key K
	at  int64
	tag uint32
}

// dedupSlot is one cell of the open-addressing index: ring position + 1
// (0 = empty) and the key's hash tag.
type dedupSlot struct {
	pos int32
	tag uint32
}

// MessageDeduplicator remembers the most recent IDs, at most WindowSize of
// them and each for at most TTL, and reports repeats. Keys are any
// comparable type: int64 trade ids, string ids, small structs.
//
// Storage is a ring buffer of (key, time) in record order plus an
// open-addressing hash index (linear probing, backward-shift deletion, load
// factor at most 1/2) from key to ring position. Both start small
// (dedupInitialSize entries) and double when the ring is full, up to
// WindowSize, so an idle or quiet deduplicator costs little memory (a
// bridge keeps one per symbol); once grown they are kept (Reset included):
// every operation is O(1), and allocation-free once the ring has reached
// its working size. Keys are
// hashed with hash/maphash under a per-instance random seed, so ids chosen
// by a hostile peer cannot force collisions.
//
// An ID recorded at t is a duplicate until t+TTL (exclusive): at exactly
// t+TTL it has expired and may be recorded again. When the window is full,
// recording a new ID forgets the oldest.
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
	seed maphash.Seed

	mu     sync.Mutex
	window int             // configured WindowSize: the ring's upper bound
	ring   []dedupEntry[K] // grows by doubling up to window
	head   int             // oldest entry
	n      int             // live entries
	newest int64
	index  []dedupSlot // len is a power of two >= 2*len(ring)
	mask   uint32
	stats  DedupStats
}

// NewMessageDeduplicator validates cfg and returns an empty deduplicator.
// Errors wrap ErrInvalidConfig and name the field.
func NewMessageDeduplicator[K comparable](cfg DedupConfig) (*MessageDeduplicator[K], error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &MessageDeduplicator[K]{
		ttl:    int64(c.TTL),
		base:   time.Now(),
		seed:   maphash.MakeSeed(),
		window: c.WindowSize,
		stats:  DedupStats{WindowSize: c.WindowSize},
	}
	d.alloc(min(c.WindowSize, dedupInitialSize))
	return d, nil
}

// dedupInitialSize is the ring's starting capacity.
const dedupInitialSize = 8

// alloc gives d an empty ring of n entries and an index for it. d.mu held
// (or d not yet shared).
func (d *MessageDeduplicator[K]) alloc(n int) {
	size := 1 << bits.Len(uint(2*n-1)) // next power of two >= 2*n; <= 1<<32
	d.ring = make([]dedupEntry[K], n)
	d.index = make([]dedupSlot, size)
	d.mask = uint32(size - 1)
	d.head, d.n = 0, 0
}

// grow doubles the ring (up to the window) and rebuilds the index, keeping
// the live entries in record order. d.mu held.
func (d *MessageDeduplicator[K]) grow() {
	old, head, n := d.ring, d.head, d.n
	d.alloc(min(2*len(old), d.window))
	for i := range n {
		pos := head + i
		if pos >= len(old) {
			pos -= len(old)
		}
		e := old[pos]
		cell, _ := d.find(e.key, e.tag)
		d.ring[i] = e
		d.index[cell] = dedupSlot{pos: int32(i) + 1, tag: e.tag}
	}
	d.n = n
}

func (d *MessageDeduplicator[K]) tag(id K) uint32 { return uint32(maphash.Comparable(d.seed, id)) }

// find returns the index cell holding id, or the empty cell ending its
// probe sequence (found false). d.mu held.
func (d *MessageDeduplicator[K]) find(id K, tag uint32) (cell uint32, found bool) {
	for i := tag & d.mask; ; i = (i + 1) & d.mask {
		s := d.index[i]
		if s.pos == 0 {
			return i, false
		}
		if s.tag == tag && d.ring[s.pos-1].key == id {
			return i, true
		}
	}
}

// unindex removes the cell at i, shifting later members of the probe run
// back so that no tombstones are needed. d.mu held.
func (d *MessageDeduplicator[K]) unindex(i uint32) {
	for j := (i + 1) & d.mask; ; j = (j + 1) & d.mask {
		s := d.index[j]
		if s.pos == 0 {
			break
		}
		// s may move to i if its home is not cyclically within (i, j].
		if home := s.tag & d.mask; (j-home)&d.mask >= (j-i)&d.mask {
			d.index[i] = s
			i = j
		}
	}
	d.index[i] = dedupSlot{}
}

// IsDuplicate reports whether id was recorded within the window and TTL.
// It does not record id.
func (d *MessageDeduplicator[K]) IsDuplicate(id K) bool {
	return d.IsDuplicateAt(id, time.Now())
}

// IsDuplicateAt is IsDuplicate as of now.
func (d *MessageDeduplicator[K]) IsDuplicateAt(id K, now time.Time) bool {
	at := int64(now.Sub(d.base))
	tag := d.tag(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Checks++
	i, ok := d.find(id, tag)
	return ok && !d.expired(d.ring[d.index[i].pos-1].at, at)
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
	tag := d.tag(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if at < d.newest {
		at = d.newest
	}
	d.newest = at
	d.expire(at)
	cell, ok := d.find(id, tag)
	if ok {
		d.stats.Duplicates++
		return false
	}
	switch {
	case d.n == len(d.ring) && len(d.ring) < d.window:
		d.grow()
		cell, _ = d.find(id, tag) // a new index
	case d.n == len(d.ring):
		d.dropOldest()
		d.stats.Evicted++
		cell, _ = d.find(id, tag) // the removal may have shifted the probe run
	}
	pos := d.head + d.n
	if pos >= len(d.ring) {
		pos -= len(d.ring)
	}
	d.ring[pos] = dedupEntry[K]{key: id, at: at, tag: tag}
	d.index[cell] = dedupSlot{pos: int32(pos) + 1, tag: tag}
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
	// Its cell is on its probe run; match by position, not by key.
	want := int32(d.head) + 1
	for i := e.tag & d.mask; d.index[i].pos != 0; i = (i + 1) & d.mask {
		if d.index[i].pos == want {
			d.unindex(i)
			break
		}
	}
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

// Reset forgets every ID and zeroes the counters. The storage grown so far
// is kept.
func (d *MessageDeduplicator[K]) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.ring)
	clear(d.index)
	d.head, d.n = 0, 0
	d.stats = DedupStats{WindowSize: d.window}
}
