package publisher

import (
	"sync"
	"time"
)

const (
	entryOverhead = 96       // bytes counted per message beyond body, subject and header values
	maxPooledBody = 64 << 10 // larger body buffers are not reused
	entryChunk    = 16       // entries allocated together when the free list is empty
	bodyReserve   = 256      // initial body capacity of a new entry (a trade is ~190 bytes)
	idReserve     = 96       // initial capacity for msg id and timestamp
)

type entryState uint8

const (
	stQueued   entryState = iota // waiting to be sent (again)
	stInflight                   // sent, awaiting ack or error
	stAcked                      // acknowledged; popped once at the head
	stDropped                    // discarded (DropOldest or rejected); popped once at the head
)

// entry is one buffered message. Entries are recycled through a free list,
// with their buffers: body, and idBuf holding the msg id and timestamp that
// vals[0] and vals[2] view without a copy (so those strings are valid only
// until the entry is recycled; anything that keeps one longer, such as a log
// attribute, clones it). Headers live in the pump's one header map, filled
// just before each write (nats.go reads it only during PublishMsg).
type entry struct {
	subject     string
	body        []byte
	idBuf       []byte
	vals        [3]string // header values: msg id, type, exchange ts
	size        int64
	enq         time.Time // when Publish queued it
	checked     time.Time // since when no copy can be stored beyond the duplicate window of a send: enq, or the last check (verify.go)
	sentAt      time.Time // when the current attempt was sent
	id          uint64    // current attempt while in flight (its reply subject), else 0
	epoch       uint64    // the connection's reconnect count when it was sent
	state       entryState
	sent        bool
	reorderRisk bool
	apiFails    uint8
	waiter      chan<- ackResult // PublishWait's, until resolved
}

// newEntries fills dst with new entries: the structs in one allocation, and
// one buffer per entry holding its body and idBuf.
func newEntries(dst []*entry) {
	es := make([]entry, len(dst))
	for i := range es {
		b := make([]byte, bodyReserve+idReserve)
		es[i].body = b[:0:bodyReserve]
		es[i].idBuf = b[bodyReserve:bodyReserve]
		dst[i] = &es[i]
	}
}

// entryPool recycles entries with their buffers. It is safe for concurrent
// use; its lock is a leaf (held for slice operations only).
type entryPool struct {
	mu   sync.Mutex
	free []*entry
	max  int // free list bound
}

// get fills dst with recycled or new entries. New entries are allocated
// entryChunk at a time, outside the lock; the spare ones join the free list.
func (ep *entryPool) get(dst []*entry) []*entry {
	ep.mu.Lock()
	n := min(len(dst), len(ep.free))
	copy(dst, ep.free[len(ep.free)-n:])
	clear(ep.free[len(ep.free)-n:])
	ep.free = ep.free[:len(ep.free)-n]
	ep.mu.Unlock()
	for n < len(dst) {
		var chunk [entryChunk]*entry
		newEntries(chunk[:])
		k := copy(dst[n:], chunk[:])
		n += k
		if k < len(chunk) {
			ep.mu.Lock()
			ep.free = append(ep.free, chunk[k:min(len(chunk), k+ep.max-len(ep.free))]...)
			ep.mu.Unlock()
		}
	}
	return dst
}

// put resets entries and returns them to the free list (or to the garbage
// collector when the list is full), taking the lock once.
func (ep *entryPool) put(es ...*entry) {
	for _, e := range es {
		if cap(e.body) > maxPooledBody {
			e.body = nil
		}
		e.id, e.subject, e.vals = 0, "", [3]string{}
		e.state, e.sent, e.reorderRisk, e.apiFails = stQueued, false, false, 0
		e.waiter = nil
	}
	ep.mu.Lock()
	ep.free = append(ep.free, es[:min(len(es), max(ep.max-len(ep.free), 0))]...)
	ep.mu.Unlock()
}
