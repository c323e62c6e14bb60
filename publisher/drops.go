package publisher

import "sync"

// subjectDrops counts, per data subject, the messages the publisher did not
// store: dropped by DropOldest, rejected by the server, or abandoned by
// Close. Drops are rare, so a mutex and a map do. The zero value is ready.
type subjectDrops struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (d *subjectDrops) add(subject string, k uint64) {
	d.mu.Lock()
	if d.n == nil {
		d.n = map[string]uint64{}
	}
	d.n[subject] += k
	d.mu.Unlock()
}

func (d *subjectDrops) get(subject string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[subject]
}

// SymbolDropped returns how many events of one exchange and symbol the
// publisher did not store: dropped under DropOldest, rejected by JetStream,
// or abandoned at Close (the per-symbol share of Stats.Dropped, Rejected
// and Abandoned; events refused before they had a valid subject are not
// counted here). The state writer reports it in md_state
// (StateWriter.SetDropCounter).
func (p *JetStream) SymbolDropped(exchange, symbol string) uint64 {
	return p.drops.get(p.cfg.SubjectPrefix + "." + exchange + "." + symbol)
}
