package bridge

// rotKind is the data kind of a rotation overlap key.
type rotKind uint8

const (
	rotTrade rotKind = iota
	rotBook
)

// rotKey identifies one sequence whose overlap a rotation waits for.
type rotKey struct {
	sym  *symbol
	kind rotKind
}

// rotFirst is the first id the replacement connection delivered for a key.
type rotFirst struct {
	seq int64  // consecutive trade id, Binance U, or Bybit u
	id  string // trade id of venues without consecutive ids
}

// rotation is the bookkeeping of a make-before-break rotation. While it
// runs, the old (primary) connection's events are emitted and the
// replacement's are buffered. A key overlaps once the primary has received
// everything up to just before the replacement's first event of that key;
// when every key overlaps (or the shard's OverlapTimeout passes), the
// replacement takes over, its buffer is replayed through the normal
// sequence logic (which drops what the primary already emitted) and the old
// connection is closed. Guarded by the shard's mu.
type rotation struct {
	subscribed bool // the replacement's subscriptions are acknowledged
	buf        []Event
	limit      int
	overflow   bool
	seen       map[rotKey]struct{}
	open       map[rotKey]rotFirst // seen but not yet overlapped
	total      int
	signaled   bool
}

func newRotation(sh *shard) *rotation {
	total := 0
	for _, sym := range sh.list {
		if sh.chans&ChannelTrade != 0 {
			total++
		}
		if sym.rest != nil || sym.stream != nil {
			total++
		}
	}
	return &rotation{
		limit: max(sh.st.cfg.PendingLimit, 1024),
		seen:  make(map[rotKey]struct{}, total),
		open:  make(map[rotKey]rotFirst),
		total: total,
	}
}

// keyOf returns the overlap key and first id of ev; ok is false for events
// that do not start a key (snapshots).
func keyOf(sym *symbol, ev *Event) (rotKey, rotFirst, bool) {
	switch ev.Type {
	case EventTrade:
		return rotKey{sym, rotTrade}, rotFirst{seq: ev.Seq, id: ev.ID}, true
	case EventBookDelta:
		if sym.stream != nil {
			return rotKey{sym, rotBook}, rotFirst{seq: ev.LastID}, true
		}
		if ev.PrevID > 0 { // pu chain: everything up to pu must be received
			return rotKey{sym, rotBook}, rotFirst{seq: ev.PrevID + 1}, true
		}
		return rotKey{sym, rotBook}, rotFirst{seq: ev.FirstID}, true
	}
	return rotKey{}, rotFirst{}, false
}

// overlapped reports whether the primary has received everything before f.
func overlapped(k rotKey, f rotFirst) bool {
	var hw int64
	switch {
	case k.kind == rotTrade && f.seq == 0:
		return k.sym.trades.lastID != "" && k.sym.trades.dedupID.IsDuplicate(f.id)
	case k.kind == rotTrade:
		hw = k.sym.trades.hw
	case k.sym.rest != nil:
		hw = k.sym.rest.hw
	case k.sym.stream != nil:
		hw = k.sym.stream.hw
	}
	return hw > 0 && hw >= f.seq-1
}

// collect buffers the replacement's events and notes first ids.
func (r *rotation) collect(sh *shard, evs []Event) {
	for i := range evs {
		ev := &evs[i]
		if len(r.buf) >= r.limit {
			r.overflow = true
			break
		}
		r.buf = append(r.buf, *ev)
		sym := sh.syms[ev.Symbol]
		if sym == nil {
			continue
		}
		k, f, ok := keyOf(sym, ev)
		if !ok {
			continue
		}
		if _, seen := r.seen[k]; seen {
			continue
		}
		r.seen[k] = struct{}{}
		if !overlapped(k, f) {
			r.open[k] = f
		}
	}
	r.check(sh)
}

// primaryProgress re-checks open keys touched by the primary's events.
func (r *rotation) primaryProgress(sh *shard, evs []Event) {
	if len(r.open) > 0 {
		for i := range evs {
			sym := sh.syms[evs[i].Symbol]
			if sym == nil {
				continue
			}
			for _, kind := range [...]rotKind{rotTrade, rotBook} {
				k := rotKey{sym, kind}
				if f, ok := r.open[k]; ok && overlapped(k, f) {
					delete(r.open, k)
				}
			}
		}
	}
	r.check(sh)
}

// setSubscribed marks the replacement as subscribed.
func (r *rotation) setSubscribed(sh *shard) {
	r.subscribed = true
	r.check(sh)
}

// check signals the shard's supervisor once the rotation may complete.
func (r *rotation) check(sh *shard) {
	if r.signaled || !r.subscribed {
		return
	}
	if r.overflow || len(r.seen)-len(r.open) >= r.total {
		r.signaled = true
		select {
		case sh.rotReady <- struct{}{}:
		default:
		}
	}
}
