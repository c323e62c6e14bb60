package exsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FaultKind names a fault.
type FaultKind string

// Fault kinds. "Action" kinds act once on each targeted connection;
// "policy" kinds stay in force until cleared; "global" kinds act on the
// server.
const (
	// FaultClose (action): close the TCP connection at once, without a
	// close frame.
	FaultClose FaultKind = "close"
	// FaultCloseAfter (action): close abruptly after Count more data frames.
	FaultCloseAfter FaultKind = "close_after"
	// FaultStall (action): stop writing (data, replies, pings and pongs)
	// for Duration, or until the connection ends when Duration is 0. Frames
	// queue up meanwhile; a full queue disconnects the client.
	FaultStall FaultKind = "stall"
	// FaultShutdown (action): send Binance's serverShutdown event, then
	// close (code 1001) after Duration (default Config.ShutdownGrace).
	// Bybit connections are just closed after the grace period.
	FaultShutdown FaultKind = "shutdown"
	// FaultResnapshot (action, Bybit): send a fresh snapshot of every
	// subscribed orderbook topic, as Bybit does when it has trouble.
	FaultResnapshot FaultKind = "resnapshot"

	// FaultDropPongs (policy): ignore client pongs on Binance (so the
	// server disconnects after PongTimeout) and client pings on Bybit (no
	// reply, and they do not keep the connection alive).
	FaultDropPongs FaultKind = "drop_pongs"
	// FaultDuplicate (policy): write each data frame twice with
	// probability Rate.
	FaultDuplicate FaultKind = "duplicate"
	// FaultGap (policy): with probability Rate, do not send a book diff
	// (Binance depthUpdate, Bybit delta) although its update ids advance.
	FaultGap FaultKind = "gap"
	// FaultMalformed (policy): replace data frames (with probability Rate,
	// or the next Count of them) by a malformed frame of Mode; with Extra
	// the malformed frame is sent before the real one instead.
	FaultMalformed FaultKind = "malformed"
	// FaultMaxAge (policy): connections close (code 1000) once they are
	// Duration old: a forced 24h-style cut, shortened.
	FaultMaxAge FaultKind = "max_age"
	// FaultMute (policy): stop sending data frames (of Symbol, or all)
	// while the connection stays up and answers pings, pongs and control
	// requests: a silent feed that a heartbeat alone does not detect. The
	// frames not sent are not delivered (the truth records them so).
	FaultMute FaultKind = "mute"

	// FaultREST (global): the next Count REST requests (0 = all until
	// cleared) to Venue (or any) answer HTTP Status: 429 or 418 with
	// Retry-After = Duration (default 1s), 403, or a 5xx.
	FaultREST FaultKind = "rest"
	// FaultSkew (global): the clock of Venue (or every venue) runs Duration
	// ahead (negative: behind): event times and the time endpoints.
	FaultSkew FaultKind = "skew"
)

// Scope says which connections a fault targets.
type Scope string

// Scopes. Actions default to ScopeNow, policies to ScopeAll.
const (
	ScopeNow Scope = "now" // connections open now
	ScopeNew Scope = "new" // connections accepted from now on
	ScopeAll Scope = "all" // both
)

// MalformedMode is the kind of broken frame FaultMalformed sends.
type MalformedMode string

// Malformed frame modes.
const (
	MalformedInvalidJSON MalformedMode = "invalid_json" // a syntax error
	MalformedWrongTypes  MalformedMode = "wrong_types"  // strings and numbers swapped
	MalformedTruncated   MalformedMode = "truncated"    // the first half of the frame
	MalformedOversized   MalformedMode = "oversized"    // the frame padded to Size bytes
)

// DefaultOversizedBytes is the default Size of an oversized frame: above
// every read limit an mdbridge stream uses by default (the adapters' 4 MiB,
// the stream's 16 MiB fallback), so the frame does hit the limit. A frame
// under the client's limit is just a valid frame with a padding field.
const DefaultOversizedBytes = 16<<20 + 64<<10

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s") and also reads integer nanoseconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string like \"5s\" or integer nanoseconds")
	}
	*d = Duration(n)
	return nil
}

// Fault describes one injected misbehaviour. Target fields narrow it down:
// Conn (a connection id, 0 = any), Venue ("" = any) and Symbol ("" = any;
// for actions: connections subscribed to it; for frame faults: that
// symbol's frames; ignored by drop_pongs and max_age).
type Fault struct {
	Kind     FaultKind     `json:"kind"`
	Conn     uint64        `json:"conn,omitempty"`
	Venue    Venue         `json:"venue,omitempty"`
	Symbol   string        `json:"symbol,omitempty"`
	Scope    Scope         `json:"scope,omitempty"`
	Count    int64         `json:"count,omitempty"`
	Rate     float64       `json:"rate,omitempty"`
	Duration Duration      `json:"duration,omitempty"`
	Status   int           `json:"status,omitempty"`
	Mode     MalformedMode `json:"mode,omitempty"`
	Size     int           `json:"size,omitempty"` // oversized frame bytes (default DefaultOversizedBytes)
	Extra    bool          `json:"extra,omitempty"`
}

func (f Fault) isAction() bool {
	switch f.Kind {
	case FaultClose, FaultCloseAfter, FaultStall, FaultShutdown, FaultResnapshot:
		return true
	}
	return false
}

func (f Fault) isGlobal() bool { return f.Kind == FaultREST || f.Kind == FaultSkew }

func (f Fault) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrBadFault, f.Kind}, args...)...)
	}
	if f.Venue != "" && !f.Venue.Valid() {
		return bad("unknown venue %q", f.Venue)
	}
	switch f.Scope {
	case "", ScopeNow, ScopeNew, ScopeAll:
	default:
		return bad("unknown scope %q (want now, new or all)", f.Scope)
	}
	if f.Count < 0 || f.Rate < 0 || f.Rate > 1 || f.Size < 0 || f.Size > 64<<20 {
		return bad("count, rate (0..1) and size (at most 64 MiB) out of range")
	}
	switch f.Kind {
	case FaultClose, FaultResnapshot, FaultDropPongs, FaultMute:
	case FaultCloseAfter:
		if f.Count <= 0 {
			return bad("count must be positive")
		}
	case FaultStall, FaultShutdown:
		if f.Duration < 0 {
			return bad("duration must not be negative")
		}
	case FaultDuplicate, FaultGap:
		if f.Rate <= 0 {
			return bad("rate must be within (0, 1]")
		}
	case FaultMalformed:
		switch f.Mode {
		case "", MalformedInvalidJSON, MalformedWrongTypes, MalformedTruncated, MalformedOversized:
		default:
			return bad("unknown mode %q", f.Mode)
		}
	case FaultMaxAge:
		if f.Duration <= 0 {
			return bad("duration must be positive")
		}
	case FaultREST:
		switch f.Status {
		case 403, 418, 429, 500, 502, 503, 504:
		default:
			return bad("status %d not one of 403, 418, 429, 500, 502, 503, 504", f.Status)
		}
		if f.Duration < 0 {
			return bad("duration must not be negative")
		}
	case FaultSkew:
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadFault, f.Kind)
	}
	return nil
}

// withDefaults fills the optional values of a valid fault.
func (f Fault) withDefaults(cfg *Config) Fault {
	if f.Scope == "" {
		f.Scope = ScopeAll
		if f.isAction() {
			f.Scope = ScopeNow
		}
	}
	switch f.Kind {
	case FaultMalformed:
		if f.Mode == "" {
			f.Mode = MalformedInvalidJSON
		}
		if f.Rate == 0 && f.Count == 0 {
			f.Count = 1
		}
		if f.Size == 0 {
			f.Size = DefaultOversizedBytes
		}
	case FaultShutdown:
		if f.Duration == 0 {
			f.Duration = Duration(cfg.ShutdownGrace)
		}
	case FaultREST:
		if f.Duration == 0 {
			f.Duration = Duration(time.Second)
		}
	}
	return f
}

// rule is a stored fault.
type rule struct {
	id      uint64
	f       Fault
	minConn uint64 // first connection id it applies to
	maxConn uint64 // last connection id it applies to; 0 = no bound
	left    atomic.Int64
}

// take consumes one use of a counted rule; rules without a count never
// run out.
func (r *rule) take() bool {
	for {
		n := r.left.Load()
		if n < 0 {
			return true
		}
		if n == 0 {
			return false
		}
		if r.left.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (r *rule) matchConn(c *conn) bool {
	f := &r.f
	return (f.Conn == 0 || f.Conn == c.id) && (f.Venue == "" || f.Venue == c.venue) &&
		c.id >= r.minConn && (r.maxConn == 0 || c.id <= r.maxConn)
}

func (r *rule) matchSym(sym string) bool { return r.f.Symbol == "" || r.f.Symbol == sym }

// faultTable holds the stored faults.
type faultTable struct {
	mu    sync.Mutex
	next  uint64
	rules []*rule
}

// FaultInfo is a stored fault.
type FaultInfo struct {
	ID    uint64 `json:"id"`
	Fault Fault  `json:"fault"`
	// Left is the remaining count of a counted fault (-1: unlimited).
	Left int64 `json:"left"`
}

// connPolicy is the compiled set of policy faults of one connection.
type connPolicy struct {
	dropPongs bool
	dup, gap  []*rule
	mal       []*rule
	mute      []*rule
}

// InjectFault injects f and returns its id. Actions with ScopeNow act on
// the matching open connections and are not stored (id 0 is never used,
// their id is still returned for logs); everything else is stored until
// ClearFault. Returns errors wrapping ErrBadFault or ErrClosed.
func (s *Server) InjectFault(f Fault) (uint64, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	return s.inject(f, s.liveConns())
}

func (s *Server) injectLocked(f Fault) (uint64, error) { return s.inject(f, nil) }

func (s *Server) inject(f Fault, live []*conn) (uint64, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	f = f.withDefaults(&s.cfg)
	t := &s.faults
	t.mu.Lock()
	t.next++
	r := &rule{id: t.next, f: f}
	t.mu.Unlock()
	r.left.Store(-1)
	if f.Count > 0 && (f.Kind == FaultMalformed || f.Kind == FaultREST) {
		r.left.Store(f.Count)
	}
	next := s.nextConnID.Load() + 1
	store := true
	switch {
	case f.isGlobal():
	case f.isAction():
		if f.Scope != ScopeNew {
			for _, c := range live {
				if r.matchConn(c) && (f.Symbol == "" || c.subscribedTo(f.Symbol)) {
					s.applyAction(r, c)
				}
			}
		}
		r.minConn = next
		store = f.Scope != ScopeNow
	default:
		switch f.Scope {
		case ScopeNow:
			r.maxConn = next - 1
			if r.maxConn == 0 { // no connection yet: nothing to target
				return r.id, nil
			}
		case ScopeNew:
			r.minConn = next
		}
	}
	if store {
		t.mu.Lock()
		t.rules = append(t.rules, r)
		t.mu.Unlock()
	}
	s.faultsChanged(live)
	s.log.Info("fault injected", "id", r.id, "kind", string(f.Kind), "conn", f.Conn, "venue", string(f.Venue), "symbol", f.Symbol)
	return r.id, nil
}

// ClearFault removes a stored fault. Returns an error wrapping ErrBadFault
// if there is none with that id.
func (s *Server) ClearFault(id uint64) error {
	t := &s.faults
	t.mu.Lock()
	found := false
	for i, r := range t.rules {
		if r.id == id {
			t.rules = append(t.rules[:i:i], t.rules[i+1:]...)
			found = true
			break
		}
	}
	t.mu.Unlock()
	if !found {
		return fmt.Errorf("%w: no fault %d", ErrBadFault, id)
	}
	s.faultsChanged(s.liveConns())
	return nil
}

// ClearFaults removes every stored fault (stalls in progress end too).
func (s *Server) ClearFaults() {
	t := &s.faults
	t.mu.Lock()
	t.rules = nil
	t.mu.Unlock()
	live := s.liveConns()
	for _, c := range live {
		if c.stallUntil.Load() != 0 {
			c.stallUntil.Store(0)
			c.signal(ctrlMsg{op: ctrlWake})
		}
	}
	s.faultsChanged(live)
}

// Faults lists the stored faults.
func (s *Server) Faults() []FaultInfo {
	t := &s.faults
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]FaultInfo, 0, len(t.rules))
	for _, r := range t.rules {
		out = append(out, FaultInfo{ID: r.id, Fault: r.f, Left: r.left.Load()})
	}
	return out
}

func (t *faultTable) snapshot() []*rule {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*rule(nil), t.rules...)
}

// faultsChanged recompiles skew and the policies of the live connections.
func (s *Server) faultsChanged(live []*conn) {
	rules := s.faults.snapshot()
	for _, v := range allVenues() {
		skew := time.Duration(s.baseSkew.Load())
		for _, r := range rules {
			if r.f.Kind == FaultSkew && (r.f.Venue == "" || r.f.Venue == v) {
				skew = time.Duration(r.f.Duration)
			}
		}
		s.skew[venueIndex(v)].Store(int64(skew))
	}
	for _, c := range live {
		s.compilePolicy(c, rules)
	}
}

// compilePolicy sets c's policy faults and maximum age.
func (s *Server) compilePolicy(c *conn, rules []*rule) {
	var p connPolicy
	any := false
	age := c.baseMaxAge()
	for _, r := range rules {
		if r.f.isAction() || r.f.isGlobal() || !r.matchConn(c) {
			continue
		}
		switch r.f.Kind {
		case FaultDropPongs:
			p.dropPongs, any = true, true
		case FaultDuplicate:
			p.dup, any = append(p.dup, r), true
		case FaultGap:
			p.gap, any = append(p.gap, r), true
		case FaultMute:
			p.mute, any = append(p.mute, r), true
		case FaultMalformed:
			p.mal, any = append(p.mal, r), true
		case FaultMaxAge:
			age = min(age, time.Duration(r.f.Duration))
		}
	}
	if any {
		c.pol.Store(&p)
	} else {
		c.pol.Store(nil)
	}
	c.setMaxAge(age)
}

// onConnect applies stored faults to a new connection.
func (t *faultTable) onConnect(s *Server, c *conn) {
	rules := t.snapshot()
	s.compilePolicy(c, rules)
	for _, r := range rules {
		if r.f.isAction() && r.f.Symbol == "" && r.matchConn(c) {
			s.applyAction(r, c)
		}
	}
}

// onSubscribe applies stored symbol-targeted actions when a connection
// subscribes to symbol.
func (t *faultTable) onSubscribe(s *Server, c *conn, symbol string) {
	for _, r := range t.snapshot() {
		if r.f.isAction() && r.f.Symbol == symbol && r.matchConn(c) {
			s.applyAction(r, c)
		}
	}
}

// applyAction performs an action fault on c, once per rule and connection.
func (s *Server) applyAction(r *rule, c *conn) {
	c.mu.Lock()
	if c.applied[r.id] {
		c.mu.Unlock()
		return
	}
	c.applied[r.id] = true
	c.mu.Unlock()
	f := r.f
	switch f.Kind {
	case FaultClose:
		s.stats.faultCloses.Add(1)
		c.abort("fault: close")
	case FaultCloseAfter:
		c.closeAfter.Store(f.Count)
	case FaultStall:
		var until time.Time
		if f.Duration > 0 {
			until = time.Now().Add(time.Duration(f.Duration))
		}
		c.stall(until)
	case FaultShutdown:
		if c.venue.isBinance() {
			c.sendShutdown()
		}
		if c.venue.isOKX() {
			c.sendControl(c.okxNotice())
		}
		c.afterFunc(time.Duration(f.Duration), func() {
			s.stats.faultCloses.Add(1)
			c.closeGraceful(1001, "server shutdown")
		})
	case FaultResnapshot:
		s.bybitResnapshot(c, f.Symbol)
	}
}

// subscribedTo reports whether c has a subscription for symbol.
func (c *conn) subscribedTo(symbol string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.binStreams {
		if sym, _, _, ok := parseBinanceStream(n); ok && sym == toLower(symbol) {
			return true
		}
	}
	for _, t := range c.topics {
		if _, sym, ok := parseBybitTopic(t); ok && sym == symbol {
			return true
		}
		if a, ok := parseOKXTopic(t); ok && c.venue.isOKX() && a.InstID == symbol {
			return true
		}
	}
	return false
}

// applyPolicy writes a data frame under c's policy faults. It returns
// false when the frame was skipped (gap), so it does not count as sent.
func (c *conn) applyPolicy(p *connPolicy, f outFrame) bool {
	sym := ""
	if f.m != nil {
		sym = f.m.symbol
	}
	for _, r := range p.mute {
		if r.matchSym(sym) {
			c.rec.count(&c.rec.muted)
			return false
		}
	}
	if f.kind == fkDepth {
		for _, r := range p.gap {
			if r.matchSym(sym) && c.rng.Float64() < r.f.Rate {
				c.rec.count(&c.rec.gaps)
				return false
			}
		}
	}
	for _, r := range p.mal {
		if !r.matchSym(sym) {
			continue
		}
		hit := false
		if r.f.Rate > 0 {
			hit = c.rng.Float64() < r.f.Rate
		} else {
			hit = r.take()
		}
		if !hit {
			continue
		}
		if r.f.Mode == MalformedOversized {
			c.writeOversized(f.b, r.f.Size)
		} else {
			c.scratch = malformed(c.scratch[:0], f.b, r.f.Mode, r.f.Size)
			c.writeWS(opText, c.scratch)
		}
		c.rec.count(&c.rec.malformed)
		if !r.f.Extra {
			return true
		}
		break
	}
	c.writeData(f)
	for _, r := range p.dup {
		if r.matchSym(sym) && c.rng.Float64() < r.f.Rate {
			c.writeData(f)
			c.rec.count(&c.rec.dups)
			break
		}
	}
	return true
}

// malformed appends a broken version of frame b.
func malformed(dst, b []byte, mode MalformedMode, size int) []byte {
	body := b
	if len(body) > 0 && body[len(body)-1] == '}' {
		body = body[:len(body)-1]
	}
	switch mode {
	case MalformedTruncated:
		return append(dst, b[:len(b)/2]...)
	case MalformedWrongTypes:
		return swapTypes(dst, b)
	case MalformedOversized:
		dst = append(dst, body...)
		dst = append(dst, oversizedPad...)
		dst = append(dst, bytes.Repeat([]byte{'x'}, oversizedPadding(len(dst), size))...)
		return append(dst, oversizedEnd...)
	}
	dst = append(dst, body...)
	return append(dst, `,,}`...)
}

// An oversized frame is the frame without its closing brace, then
// oversizedPad, padding bytes 'x' up to the fault's Size, and oversizedEnd.
const (
	oversizedPad = `,"pad":"`
	oversizedEnd = `"}`
)

// padChunk is the padding an oversized frame is written from, a chunk at
// a time (read only).
var padChunk = bytes.Repeat([]byte{'x'}, 64<<10)

// oversizedPadding is how many padding bytes follow head bytes (the frame
// and oversizedPad) in an oversized frame of size bytes.
func oversizedPadding(head, size int) int { return max(size-head, 0) }

// writeOversized writes the oversized version of frame b (what malformed
// returns for MalformedOversized) without building it: the header goes out
// at once and the padding is written from padChunk. Building the 16 MiB
// frame first (an allocation and a fill, slow under the race detector on
// a loaded machine) kept the connection silent for longer than a client's
// heartbeat timeout: the client reconnected before it saw the frame, on
// every connection while the fault lasted.
func (c *conn) writeOversized(b []byte, size int) {
	body := b
	if len(body) > 0 && body[len(body)-1] == '}' {
		body = body[:len(body)-1]
	}
	head := len(body) + len(oversizedPad)
	pad := oversizedPadding(head, size)
	if !c.writeWSHeader(opText, head+pad+len(oversizedEnd)) || !c.writeWSBody(body) || !c.writeWSBody([]byte(oversizedPad)) {
		return
	}
	for pad > 0 {
		n := min(pad, len(padChunk))
		if !c.writeWSBody(padChunk[:n]) {
			return
		}
		pad -= n
	}
	c.writeWSBody([]byte(oversizedEnd))
}

// swapTypes rewrites a JSON frame so that quoted numbers become bare and
// bare numbers become quoted: every decimal string turns into a number and
// every integer id or time into a string.
func swapTypes(dst, b []byte) []byte {
	isNum := func(s []byte) bool {
		if len(s) == 0 {
			return false
		}
		for _, c := range s {
			if !(c >= '0' && c <= '9' || c == '.' || c == '-') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				j++
			}
			s := b[i+1 : min(j, len(b))]
			if isNum(s) {
				dst = append(dst, s...)
			} else {
				dst = append(dst, b[i:min(j+1, len(b))]...)
			}
			i = j + 1
		case c >= '0' && c <= '9' || c == '-':
			j := i
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == '-') {
				j++
			}
			dst = append(dst, '"')
			dst = append(dst, b[i:j]...)
			dst = append(dst, '"')
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// restFault returns the REST fault that answers the next request to v, if
// any.
func (t *faultTable) restFault(v Venue) *rule {
	for _, r := range t.snapshot() {
		if r.f.Kind == FaultREST && (r.f.Venue == "" || r.f.Venue == v) && r.take() {
			return r
		}
	}
	return nil
}

// writeRESTFault answers a request as a REST fault says.
func (s *Server) writeRESTFault(w http.ResponseWriter, v Venue, r *rule) {
	st := r.f.Status
	retry := strconv.FormatInt(ceilSeconds(time.Duration(r.f.Duration)), 10)
	if v.isOKX() {
		writeOKXRESTFault(w, st, retry)
		return
	}
	if v.isBinance() {
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "0")
		switch st {
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", retry)
			writeJSONBytes(w, st, binanceError(-1003, "Too much request weight used; current limit is "+
				strconv.Itoa(s.cfg.BinanceWeightLimit)+" request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."))
		case http.StatusTeapot:
			w.Header().Set("Retry-After", retry)
			until := s.clock().Add(time.Duration(r.f.Duration)).UnixMilli()
			writeJSONBytes(w, st, binanceError(-1003, "Way too much request weight used; IP banned until "+
				strconv.FormatInt(until, 10)+". Please use WebSocket Streams for live updates to avoid bans."))
		case http.StatusForbidden:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(st)
			_, _ = w.Write([]byte("<html><body><h1>403 Forbidden</h1></body></html>"))
		case http.StatusServiceUnavailable:
			writeJSONBytes(w, st, binanceError(-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."))
		default:
			writeJSONBytes(w, st, binanceError(-1000, "An unknown error occurred while processing the request."))
		}
		return
	}
	switch st {
	case http.StatusForbidden:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(st)
		_, _ = w.Write([]byte("access too frequent"))
	case http.StatusTooManyRequests, http.StatusTeapot:
		w.Header().Set("Retry-After", retry)
		writeJSONBytes(w, st, bybitEnvelope(10006, "Too many visits!", []byte("{}"), s.nowNs(v)))
	default:
		writeJSONBytes(w, st, bybitEnvelope(10016, "Internal server error.", []byte("{}"), s.nowNs(v)))
	}
}
