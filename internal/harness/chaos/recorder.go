package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/qldata/mdbridge/bridge"
)

// pairKey names one replica's view of one market.
type pairKey struct {
	replica  int
	exchange string
	symbol   string
}

// timeline is what one pair did: when its events were handed to the
// publisher and its state transitions.
type timeline struct {
	pubs   []int64 // Unix ns of each Publish call carrying the pair's events
	trans  []transition
	last   string // last reported state
	lastAt int64
	// maxTrade and maxBook are the highest consecutive trade id (Binance)
	// and book update id the replica has published or had published for
	// it; kept after stop, for the drain.
	maxTrade, maxBook int64
}

type transition struct {
	at    int64 // Unix ns
	state string
}

// recorder sits between the bridge and the publisher / state writer of
// every replica and keeps per-pair timelines for the recovery-time
// measurements. It records after the wrapped call returned and never
// changes what is passed through.
type recorder struct {
	mu      sync.Mutex
	pairs   map[pairKey]*timeline
	snaps   map[snapKey][]snapOrigin
	stopped bool
}

// snapKey names one book snapshot.
type snapKey struct {
	exchange, symbol string
	lastID           int64
}

// snapOrigin is a replica producing a snapshot: from its stream (Bybit) or
// fetched by its snapshot service (Binance, published by the service).
type snapOrigin struct {
	replica int
	at      int64
	via     string
}

func newRecorder() *recorder {
	return &recorder{pairs: map[pairKey]*timeline{}, snaps: map[snapKey][]snapOrigin{}}
}

// snapshot records that replica produced a snapshot.
func (r *recorder) snapshot(replica int, ev *bridge.Event, via string) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	k := snapKey{ev.Exchange, ev.Symbol, ev.LastID}
	if len(r.snaps[k]) < 4 {
		r.snaps[k] = append(r.snaps[k], snapOrigin{replica, now, via})
	}
}

// bookAt records that a snapshot with update id lastID was published for
// replica (through the control subject, by any replica's service).
func (r *recorder) bookAt(replica int, exchange, symbol string, lastID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.pair(pairKey{replica, exchange, symbol})
	t.maxBook = max(t.maxBook, lastID)
}

// progress returns the highest trade and book ids published for k.
func (r *recorder) progress(k pairKey) (trade, book int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.pairs[k]; t != nil {
		return t.maxTrade, t.maxBook
	}
	return 0, 0
}

// snapshotOrigin describes who produced a snapshot, with times relative to
// start.
func (r *recorder) snapshotOrigin(start time.Time, exchange, symbol string, lastID int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, o := range r.snaps[snapKey{exchange, symbol, lastID}] {
		parts = append(parts, fmt.Sprintf("%c %s at +%s", 'A'+o.replica, o.via, time.Duration(o.at-start.UnixNano()).Round(time.Millisecond)))
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, "; ")
}

func (r *recorder) pair(k pairKey) *timeline {
	t := r.pairs[k]
	if t == nil {
		t = &timeline{}
		r.pairs[k] = t
	}
	return t
}

// stop ends recording (generation stopped: silence is expected).
func (r *recorder) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

func (r *recorder) published(replica int, evs []bridge.Event) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range evs {
		t := r.pair(pairKey{replica, evs[i].Exchange, evs[i].Symbol})
		switch evs[i].Type {
		case bridge.EventTrade:
			t.maxTrade = max(t.maxTrade, evs[i].Seq)
		case bridge.EventBookSnapshot:
			if evs[i].Flags&bridge.FlagIDReset != 0 { // the venue's ids went down (OKX maintenance)
				t.maxBook = evs[i].LastID
			} else {
				t.maxBook = max(t.maxBook, evs[i].LastID)
			}
		default:
			t.maxBook = max(t.maxBook, evs[i].LastID)
		}
	}
	if r.stopped {
		return
	}
	var prev pairKey
	for i := range evs {
		if evs[i].Type == bridge.EventBookSnapshot {
			k := snapKey{evs[i].Exchange, evs[i].Symbol, evs[i].LastID}
			if len(r.snaps[k]) < 4 {
				r.snaps[k] = append(r.snaps[k], snapOrigin{replica, now, "published from its stream"})
			}
		}
		k := pairKey{replica, evs[i].Exchange, evs[i].Symbol}
		if i > 0 && k == prev {
			continue
		}
		prev = k
		t := r.pair(k)
		if n := len(t.pubs); n == 0 || t.pubs[n-1] != now {
			t.pubs = append(t.pubs, now)
		}
	}
}

func (r *recorder) state(replica int, st bridge.SymbolState) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.pair(pairKey{replica, st.Exchange, st.Symbol})
	if st.State != t.last {
		t.trans = append(t.trans, transition{at: now, state: st.State})
		t.last, t.lastAt = st.State, now
	}
}

// markDown records a state for every pair of replica (its process died, so
// it reports nothing itself).
func (r *recorder) markDown(replica int, state string) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, t := range r.pairs {
		if k.replica == replica && t.last != state {
			t.trans = append(t.trans, transition{at: now, state: state})
			t.last, t.lastAt = state, now
		}
	}
}

// nextPublish returns the first publish of k at or after t (0 if none).
func (r *recorder) nextPublish(k pairKey, t int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	tl := r.pairs[k]
	if tl == nil {
		return 0
	}
	i := sort.Search(len(tl.pubs), func(i int) bool { return tl.pubs[i] >= t })
	if i == len(tl.pubs) {
		return 0
	}
	return tl.pubs[i]
}

// outageEnd returns the end of the latest interruption of k that began in
// [from, to]: a state other than CONNECTED (until the next CONNECTED) or a
// silence of the publish flow longer than pause (until the next publish)
// whose last publish was at most pause before from (the market was not
// already silent when the fault hit). ok is false when there was none.
func (r *recorder) outageEnd(k pairKey, from, to int64, pause time.Duration) (end int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tl := r.pairs[k]
	if tl == nil {
		return 0, false
	}
	for i, tr := range tl.trans {
		if tr.state == "CONNECTED" || tr.at < from || tr.at > to {
			continue
		}
		if i > 0 && tl.trans[i-1].state != "CONNECTED" && tl.trans[i-1].at >= from {
			continue // counted from the earlier transition of the same outage
		}
		e := int64(0)
		for _, nx := range tl.trans[i+1:] {
			if nx.state == "CONNECTED" {
				e = nx.at
				break
			}
		}
		if e == 0 {
			continue // never reconnected (the replica was killed, or the run ended)
		}
		end, ok = max(end, e), true
	}
	p := int64(pause)
	i := sort.Search(len(tl.pubs), func(i int) bool { return tl.pubs[i] > from })
	for ; i < len(tl.pubs); i++ {
		a := int64(0)
		if i > 0 {
			a = tl.pubs[i-1]
		}
		if a > to {
			break
		}
		if a > 0 && a >= from-p && tl.pubs[i]-a > p {
			end, ok = max(end, tl.pubs[i]), true
		}
	}
	return end, ok
}

// teePublisher passes events to the replica's publisher and records them.
type teePublisher struct {
	next    bridge.Publisher
	rec     *recorder
	replica int
}

func (t teePublisher) Publish(ctx context.Context, evs []bridge.Event) error {
	err := t.next.Publish(ctx, evs)
	if err == nil {
		t.rec.published(t.replica, evs)
	}
	return err
}

// teeSink passes states to the replica's state writer and records
// transitions.
type teeSink struct {
	next    bridge.StateSink
	rec     *recorder
	replica int
}

func (t teeSink) PutState(st bridge.SymbolState) {
	t.rec.state(t.replica, st)
	t.next.PutState(st)
}

var (
	_ bridge.Publisher = teePublisher{}
	_ bridge.StateSink = teeSink{}
)

// recordingSource records the snapshots a replica's control service fetched.
type recordingSource struct {
	bridge.Streams
	rec     *recorder
	replica int
}

func (s recordingSource) Snapshot(ctx context.Context, exchange, symbol string) (bridge.Event, error) {
	ev, err := s.Streams.Snapshot(ctx, exchange, symbol)
	if err == nil {
		s.rec.snapshot(s.replica, &ev, "fetched for the control subject")
	}
	return ev, err
}

// recordingRequester records the snapshot ids the control subject returned
// to a replica.
type recordingRequester struct {
	next    bridge.SnapshotRequester
	rec     *recorder
	replica int
}

func (q recordingRequester) RequestSnapshot(ctx context.Context, exchange, symbol string) (int64, error) {
	id, err := q.next.RequestSnapshot(ctx, exchange, symbol)
	if err == nil {
		q.rec.bookAt(q.replica, exchange, symbol, id)
	}
	return id, err
}
