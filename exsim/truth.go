package exsim

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// connRecord is what the server remembers about a connection, open or
// closed: identity, lifecycle and the ids delivered on it. It outlives the
// connection (and its buffers) so tests can ask about closed connections,
// until Config.ClosedConns later closes (see retiredConns).
type connRecord struct {
	ID     uint64
	Venue  Venue
	Path   string
	Remote string
	Opened time.Time
	sent   atomic.Uint64
	// ready is set once the URL's subscriptions are in place; Conns hides
	// open connections until then, so a listed connection is subscribed.
	ready atomic.Bool

	mu        sync.Mutex
	closed    time.Time
	reason    string
	delivered map[*series]*rangeSet
	// inflight are delivered ids whose frames were still unsent when the
	// connection was closed (conn.inFlightAt).
	inflight  map[*series]*rangeSet
	ended     bool // the writer has finished: nothing more is recorded
	dups      uint64
	gaps      uint64
	muted     uint64
	malformed uint64
}

func (r *connRecord) setClosed(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.IsZero() {
		r.closed = time.Now()
		r.reason = reason
	}
}

// commit records flushed ranges as delivered.
func (r *connRecord) commit(ps []pend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		s := r.delivered[p.ser]
		if s == nil {
			s = &rangeSet{}
			r.delivered[p.ser] = s
		}
		s.add(p.lo, p.hi)
	}
}

// setEnded records that the connection's writer has finished.
func (r *connRecord) setEnded() {
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
}

// markInFlight records ranges as in flight at the close.
func (r *connRecord) markInFlight(ps []pend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight == nil {
		r.inflight = map[*series]*rangeSet{}
	}
	for _, p := range ps {
		s := r.inflight[p.ser]
		if s == nil {
			s = &rangeSet{}
			r.inflight[p.ser] = s
		}
		s.add(p.lo, p.hi)
	}
}

func (r *connRecord) count(field *uint64) {
	r.mu.Lock()
	*field++
	r.mu.Unlock()
}

// ConnInfo describes a connection the simulator accepted.
type ConnInfo struct {
	ID          uint64    `json:"id"`
	Venue       Venue     `json:"venue"`
	Path        string    `json:"path"` // request path and query
	Remote      string    `json:"remote"`
	Opened      time.Time `json:"opened"`
	Closed      time.Time `json:"closed,omitzero"` // zero while open
	CloseReason string    `json:"close_reason,omitempty"`
	Open        bool      `json:"open"`
	// Subscriptions are the Binance streams or Bybit topics (open
	// connections only).
	Subscriptions []string `json:"subscriptions,omitempty"`
	Sent          uint64   `json:"sent"`       // data frames written
	Duplicated    uint64   `json:"duplicated"` // data frames written twice (fault)
	Skipped       uint64   `json:"skipped"`    // depth diffs not sent (gap fault)
	Muted         uint64   `json:"muted"`      // data frames not sent (mute fault)
	Malformed     uint64   `json:"malformed"`  // malformed frames written (fault)
}

func (r *connRecord) info() ConnInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ConnInfo{
		ID: r.ID, Venue: r.Venue, Path: r.Path, Remote: r.Remote, Opened: r.Opened,
		Closed: r.closed, CloseReason: r.reason, Open: r.closed.IsZero(),
		Sent: r.sent.Load(), Duplicated: r.dups, Skipped: r.gaps, Muted: r.muted, Malformed: r.malformed,
	}
}

// SeriesTruth is the ground truth of one id series of one market.
type SeriesTruth struct {
	Series    Series `json:"series"`
	Generated Range  `json:"generated"` // every id generated so far
	// Delivered is the union over all connections (open or closed,
	// forgotten ones included) of the ids written to a socket.
	Delivered []Range `json:"delivered"`
	// Undelivered are generated ids no connection ever received.
	Undelivered []Range `json:"undelivered"`
	// PerConn maps connection ids to the ids delivered on them (open
	// connections and the closed ones Conns still lists).
	PerConn map[uint64][]Range `json:"per_conn,omitempty"`
	// InFlight maps closed connections (of PerConn) to the ids of PerConn
	// whose frames were still in the kernel's send buffer when the
	// simulator closed the connection. A client that writes after the
	// close (a ping) makes the kernel reset the connection and discard
	// them: they may never have reached the client. Written is not
	// received for them.
	InFlight map[uint64][]Range `json:"in_flight,omitempty"`
}

// Truth is the ground truth of one market.
type Truth struct {
	Venue  Venue         `json:"venue"`
	Symbol string        `json:"symbol"`
	Series []SeriesTruth `json:"series"`
}

// Get returns the truth of series name (zero value if absent).
func (t Truth) Get(name Series) SeriesTruth {
	for _, s := range t.Series {
		if s.Series == name {
			return s
		}
	}
	return SeriesTruth{}
}

// Truth returns the ground truth of a market: per series, the ids
// generated, the ids delivered on each connection and on any, and the ids
// never delivered. Frames still queued are not delivered yet. Returns an
// error wrapping ErrUnknownMarket.
func (s *Server) Truth(v Venue, symbol string) (Truth, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return Truth{}, err
	}
	t := Truth{Venue: v, Symbol: symbol}
	m.mu.Lock()
	all := m.allSeries()
	gen := make([]Range, len(all))
	for i, ser := range all {
		gen[i] = ser.generated()
	}
	m.mu.Unlock()
	recs, forgotten := s.recordsAnd(all)
	for i, ser := range all {
		st := SeriesTruth{Series: ser.name, Generated: gen[i], PerConn: map[uint64][]Range{}}
		lists := [][]Range{forgotten[i]}
		for _, r := range recs {
			r.mu.Lock()
			if d := r.delivered[ser]; d != nil {
				rs := d.ranges()
				st.PerConn[r.ID] = rs
				lists = append(lists, rs)
			}
			if d := r.inflight[ser]; d != nil {
				if st.InFlight == nil {
					st.InFlight = map[uint64][]Range{}
				}
				st.InFlight[r.ID] = d.ranges()
			}
			r.mu.Unlock()
		}
		st.Delivered = unionRanges(lists...)
		if st.Delivered == nil {
			st.Delivered = []Range{}
		}
		st.Undelivered = subtractRanges(gen[i], st.Delivered)
		if st.Undelivered == nil {
			st.Undelivered = []Range{}
		}
		t.Series = append(t.Series, st)
	}
	return t, nil
}

// Generated returns the ids of series name generated so far by a market.
// Returns errors wrapping ErrUnknownMarket.
func (s *Server) Generated(v Venue, symbol string, name Series) (Range, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return Range{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ser := m.seriesByName(name)
	if ser == nil {
		return Range{}, fmt.Errorf("%w: %s %s has no series %q", ErrUnknownMarket, v, symbol, name)
	}
	return ser.generated(), nil
}

// Delivered returns the ids of series name of a market written to
// connection conn (open, or closed and not yet forgotten: see
// Config.ClosedConns). Returns errors wrapping ErrUnknownConn or
// ErrUnknownMarket.
func (s *Server) Delivered(conn uint64, v Venue, symbol string, name Series) ([]Range, error) {
	m, err := s.market(v, symbol)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	ser := m.seriesByName(name)
	m.mu.Unlock()
	if ser == nil {
		return nil, fmt.Errorf("%w: %s %s has no series %q", ErrUnknownMarket, v, symbol, name)
	}
	s.mu.Lock()
	r := s.recs[conn]
	s.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownConn, conn)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.delivered[ser]; d != nil {
		return d.ranges(), nil
	}
	return nil, nil
}

// records returns every connection record kept, ordered by id.
func (s *Server) records() []*connRecord {
	out, _ := s.recordsAnd(nil)
	return out
}

// recordsAnd returns every connection record kept, ordered by id, and,
// taken at the same instant, the ids of each of sers delivered on
// forgotten connections. Together they cover every delivery: a record is
// folded into the forgotten ids and dropped in one step under s.mu.
func (s *Server) recordsAnd(sers []*series) ([]*connRecord, [][]Range) {
	s.mu.Lock()
	out := make([]*connRecord, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	forgotten := make([][]Range, len(sers))
	for i, ser := range sers {
		if d := s.retired.delivered[ser]; d != nil {
			forgotten[i] = d.ranges()
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, forgotten
}

// retiredConns bounds the records of closed connections: it queues them
// in the order they closed and, past Config.ClosedConns, drops the oldest
// after folding the ids delivered on it into delivered, which is all the
// ground truth still needs of it. Guarded by Server.mu.
type retiredConns struct {
	closed    []uint64 // ids of kept closed connections, oldest first
	delivered map[*series]*rangeSet
	forgotten uint64
}

// retireLocked queues the record of closed connection id and forgets the
// oldest closed records beyond the limit. s.mu must be held; the record
// must be final (no commit can follow).
func (s *Server) retireLocked(id uint64) {
	if s.recs[id] == nil {
		return
	}
	rc := &s.retired
	rc.closed = append(rc.closed, id)
	limit := s.cfg.ClosedConns
	if limit < 0 {
		return
	}
	for len(rc.closed) > limit {
		old := rc.closed[0]
		rc.closed = rc.closed[1:]
		r := s.recs[old]
		delete(s.recs, old)
		rc.forgotten++
		r.mu.Lock()
		for ser, d := range r.delivered {
			if rc.delivered == nil {
				rc.delivered = map[*series]*rangeSet{}
			}
			agg := rc.delivered[ser]
			if agg == nil {
				agg = &rangeSet{}
				rc.delivered[ser] = agg
			}
			for _, x := range d.rs {
				agg.add(x.First, x.Last)
			}
		}
		r.mu.Unlock()
	}
}
