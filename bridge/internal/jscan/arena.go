package jscan

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/qldata/mdbridge/bridge"
)

// ArenaChunk is the size of the chunks an Arena copies strings into.
const ArenaChunk = 4 << 10

// arenaMaxString is the longest string an Arena packs into a chunk; longer
// ones get an allocation of their own, so one chunk holds many values.
const arenaMaxString = ArenaChunk / 8

// Arena gives a decoder that reads a frame in place (the frame's memory is
// reused for the next frame) owned copies of the few strings its events keep:
// Copy appends them to a 4 KiB chunk, so about a hundred trades share one
// allocation instead of one copy of the frame each.
//
// Bytes written to a chunk are never written again: when a chunk is full
// the Arena starts a new one and forgets the old, which the garbage
// collector frees once no string refers to it. The strings an Arena returns
// are therefore immutable for as long as anyone holds them, as the
// bridge.Publisher contract requires (events' strings may be kept), and no
// event can alias a recycled buffer. The cost is that a kept string pins its
// chunk (at most ArenaChunk bytes).
//
// An Arena is not safe for concurrent use; Arenas hands one to each
// concurrent caller.
type Arena struct {
	buf []byte         // current chunk: len is the used part
	lv  []bridge.Level // current level chunk (CopySides): len is the used part
}

// LevelChunk is the number of levels in the chunks CopySides carves book
// sides from (4 KiB); a book frame with more than a quarter of that gets
// an allocation of its own.
const LevelChunk = 128

// Copy returns a copy of s that does not share memory with s.
func (a *Arena) Copy(s string) string {
	n := len(s)
	if n == 0 {
		return ""
	}
	if n > arenaMaxString {
		return strings.Clone(s)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, ArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], n)
}

// Copy3 returns copies of x, y and z (as Copy does) placed one after the
// other in one chunk when they fit: one capacity check for the three
// strings a trade keeps.
func (a *Arena) Copy3(x, y, z string) (string, string, string) {
	n := len(x) + len(y) + len(z)
	if n == 0 || n > arenaMaxString {
		return a.Copy(x), a.Copy(y), a.Copy(z)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, ArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, x...)
	a.buf = append(a.buf, y...)
	a.buf = append(a.buf, z...)
	b := a.buf[start:]
	return sub(b, 0, len(x)), sub(b, len(x), len(y)), sub(b, len(x)+len(y), len(z))
}

// CopySides returns owned copies of a book's bid and ask levels (read in
// place from a frame that will be reused): the level slices are carved
// from a level chunk, each capacity-limited so appending to one cannot
// overwrite the other or a later frame's levels, and their strings are
// copied into the string chunk with one capacity check when they fit
// (arenaMaxString bytes in all), else one Copy each. An empty side is nil.
// Like the string chunks, a level chunk is never written again once
// carved, so the returned slices stay as they are for as long as they are
// held; a held slice pins its chunk (LevelChunk levels).
func (a *Arena) CopySides(bids, asks []bridge.Level) (ob, oa []bridge.Level) {
	nb, na := len(bids), len(asks)
	n := nb + na
	if n == 0 {
		return nil, nil
	}
	var lv []bridge.Level
	if n > LevelChunk/4 {
		lv = make([]bridge.Level, n)
	} else {
		if cap(a.lv)-len(a.lv) < n {
			a.lv = make([]bridge.Level, 0, LevelChunk)
		}
		start := len(a.lv)
		a.lv = a.lv[:start+n]
		lv = a.lv[start : start+n : start+n]
	}
	text := 0
	for _, l := range bids {
		text += len(l[0]) + len(l[1])
	}
	for _, l := range asks {
		text += len(l[0]) + len(l[1])
	}
	if text == 0 || text > arenaMaxString {
		for i, l := range bids {
			lv[i] = bridge.Level{a.Copy(l[0]), a.Copy(l[1])}
		}
		for i, l := range asks {
			lv[nb+i] = bridge.Level{a.Copy(l[0]), a.Copy(l[1])}
		}
	} else {
		if cap(a.buf)-len(a.buf) < text {
			a.buf = make([]byte, 0, ArenaChunk)
		}
		b := a.buf[len(a.buf) : len(a.buf)+text]
		a.buf = a.buf[:len(a.buf)+text]
		at := 0
		put := func(s string) string {
			copy(b[at:], s)
			at += len(s)
			return sub(b, at-len(s), len(s))
		}
		for i, l := range bids {
			lv[i] = bridge.Level{put(l[0]), put(l[1])}
		}
		for i, l := range asks {
			lv[nb+i] = bridge.Level{put(l[0]), put(l[1])}
		}
	}
	if nb > 0 {
		ob = lv[:nb:nb]
	}
	if na > 0 {
		oa = lv[nb:]
	}
	return ob, oa
}

// sub returns b[at:at+n] as a string sharing b's memory ("" when n is 0,
// so no string points past a chunk's end).
func sub(b []byte, at, n int) string {
	if n == 0 {
		return ""
	}
	return unsafe.String(&b[at], n)
}

// Arenas is a pool of Arenas for a decoder called from several goroutines
// at once (one per connection). The zero value is ready to use.
//
// One Arena sits in a slot taken and given back with one atomic operation
// each (the common case: one goroutine decodes at a time); callers that
// find the slot empty use the sync.Pool behind it.
type Arenas struct {
	one    atomic.Pointer[Arena]
	p      sync.Pool
	shared atomic.Pointer[sharedChunk] // Arenas.Copy3's chunk
}

// Get returns an Arena for the caller's exclusive use until Put.
func (as *Arenas) Get() *Arena {
	if a := as.one.Swap(nil); a != nil {
		return a
	}
	if a, ok := as.p.Get().(*Arena); ok {
		return a
	}
	return new(Arena)
}

// Put returns a to the pool. The strings a returned stay valid.
func (as *Arenas) Put(a *Arena) {
	if !as.one.CompareAndSwap(nil, a) {
		as.p.Put(a)
	}
}

// sharedChunk is a chunk that concurrent callers fill by reserving
// disjoint byte ranges with one atomic addition each. It has no pointers
// (the collector never scans it) and is exactly ArenaChunk bytes.
type sharedChunk struct {
	used atomic.Int64 // bytes reserved; may run past len(buf) when full
	buf  [ArenaChunk - 8]byte
}

// Copy3 is Arena.Copy3 for any number of concurrent callers without taking
// an Arena: the three strings are copied back to back into a range of the
// current shared chunk reserved with one atomic addition (no Get and Put,
// no pointer swaps). A full chunk is replaced, never rewritten, so the
// returned strings stay immutable as Arena's do.
func (as *Arenas) Copy3(x, y, z string) (string, string, string) {
	n := len(x) + len(y) + len(z)
	if n == 0 || n > arenaMaxString {
		var a Arena
		return a.Copy(x), a.Copy(y), a.Copy(z)
	}
	var b []byte
	if c := as.shared.Load(); c != nil {
		if end := c.used.Add(int64(n)); end <= int64(len(c.buf)) {
			b = c.buf[end-int64(n) : end]
		}
	}
	if b == nil { // no chunk yet, or this one is full: start another
		c := new(sharedChunk)
		c.used.Store(int64(n))
		as.shared.Store(c) // a racing caller's chunk is simply dropped
		b = c.buf[:n]
	}
	copy(b, x)
	copy(b[len(x):], y)
	copy(b[len(x)+len(y):], z)
	return sub(b, 0, len(x)), sub(b, len(x), len(y)), sub(b, len(x)+len(y), len(z))
}
