package bench

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ackPattern precedes the stream sequence in a JetStream PubAck body:
// {"stream":"MD","seq":42} or {"stream":"MD","seq":42,"duplicate":true}.
var ackPattern = []byte(`"seq":`)

// ackTap records, per stream sequence, when the acknowledgement carrying it
// reached the publishing client: it sees every byte the NATS client reads
// (see tapDialer) and timestamps PubAck bodies as they arrive. It is armed
// only while a phase runs, and only the publishing connection is tapped, so
// no other reply (stream info, KV acks) is mistaken for a PubAck.
type ackTap struct {
	now   func() time.Time
	armed atomic.Bool
	acks  atomic.Uint64 // PubAcks seen while armed (duplicates included)

	mu     sync.Mutex
	times  []int64 // Unix ns of the first ack of each sequence; index = seq
	last   int64   // latest ack time recorded
	writes []int64 // Unix ns each message was written to the socket; index = ordinal (0 unused)
}

func newAckTap(now func() time.Time) *ackTap {
	if now == nil {
		now = time.Now
	}
	return &ackTap{now: now}
}

// arm clears the record and starts recording, expecting about n sequences.
func (t *ackTap) arm(n int) {
	t.mu.Lock()
	t.times = make([]int64, 0, n+1)
	t.writes = make([]int64, 1, n+1)
	t.last = 0
	t.mu.Unlock()
	t.acks.Store(0)
	t.armed.Store(true)
}

// disarm stops recording and returns what was recorded: ack times indexed
// by stream sequence (0 where none was seen), the latest ack time, and the
// socket write times by ordinal.
func (t *ackTap) disarm() (times []int64, last int64, writes []int64) {
	t.armed.Store(false)
	t.mu.Lock()
	defer t.mu.Unlock()
	times, last, writes = t.times, t.last, t.writes
	t.times, t.last, t.writes = nil, 0, nil
	return times, last, writes
}

// record notes the acks of seqs at time at.
func (t *ackTap) record(seqs []uint64, at int64) {
	t.mu.Lock()
	for _, s := range seqs {
		if s > 1<<32 {
			continue // not a plausible sequence of a benchmark stream
		}
		if int(s) >= len(t.times) {
			t.times = append(t.times, make([]int64, int(s)+1-len(t.times))...)
		}
		if t.times[s] == 0 {
			t.times[s] = at
		}
	}
	if at > t.last {
		t.last = at
	}
	t.mu.Unlock()
	t.acks.Add(uint64(len(seqs)))
}

// seqScanner finds ackPattern followed by a decimal number in a byte stream
// delivered in arbitrary chunks.
type seqScanner struct {
	part  int  // bytes of ackPattern matched at the end of the last chunk
	inNum bool // ackPattern matched; digits may continue in the next chunk
	num   uint64
	out   []uint64
}

// feed scans b and returns the sequences completed in it (valid until the
// next call).
func (s *seqScanner) feed(b []byte) []uint64 {
	s.out = s.out[:0]
	i := 0
	// Finish a match or number left open by the previous chunk.
	for i < len(b) && (s.part > 0 || s.inNum) {
		c := b[i]
		if s.inNum {
			if c >= '0' && c <= '9' {
				s.num = s.num*10 + uint64(c-'0')
				i++
				continue
			}
			s.out = append(s.out, s.num)
			s.inNum, s.num = false, 0
			break
		}
		if c == ackPattern[s.part] {
			s.part++
			i++
			if s.part == len(ackPattern) {
				s.part, s.inNum, s.num = 0, true, 0
			}
			continue
		}
		s.part = 0 // mismatch: rescan from this byte
	}
	for i < len(b) {
		j := bytes.Index(b[i:], ackPattern)
		if j < 0 {
			tail := b[i:]
			for k := min(len(ackPattern)-1, len(tail)); k > 0; k-- {
				if bytes.HasSuffix(tail, ackPattern[:k]) {
					s.part = k
					break
				}
			}
			break
		}
		i += j + len(ackPattern)
		var n uint64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			n = n*10 + uint64(b[i]-'0')
			i++
		}
		if i == len(b) {
			s.inNum, s.num = true, n
			break
		}
		s.out = append(s.out, n)
	}
	return s.out
}

// tapConn is a net.Conn whose reads are scanned for PubAcks and whose
// writes for published messages.
type tapConn struct {
	net.Conn
	tap *ackTap
	sc  seqScanner
	pub pubScanner
}

// Write records when each published message goes to the socket. Only the
// NATS client's flusher (under its lock) writes, so the scanner needs no
// lock of its own.
func (c *tapConn) Write(b []byte) (int, error) {
	if n := c.pub.feed(b); n > 0 && c.tap.armed.Load() {
		c.tap.recordWrites(n, c.tap.now().UnixNano())
	}
	return c.Conn.Write(b)
}

// Read reads from the connection and records the PubAcks it carries. Only
// the NATS client's read loop calls it, so the scanner needs no lock.
func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if seqs := c.sc.feed(b[:n]); len(seqs) > 0 && c.tap.armed.Load() {
			c.tap.record(seqs, c.tap.now().UnixNano())
		}
	}
	return n, err
}

// tapDialer is a nats.CustomDialer that wraps each connection in a tapConn.
type tapDialer struct {
	tap     *ackTap
	timeout time.Duration
}

// Dial implements nats.CustomDialer.
func (d tapDialer) Dial(network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: d.timeout}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, tap: d.tap}, nil
}

// pubScanner follows the NATS client protocol written to the server and
// counts the messages (PUB and HPUB) in it, in order, across arbitrary
// chunks: a control line up to CRLF, and for PUB/HPUB the payload whose
// size ends that line, skipped.
type pubScanner struct {
	line []byte // the control line being read
	skip int    // payload bytes (with their CRLF) still to skip
}

// feed scans b and returns how many messages start in it.
func (p *pubScanner) feed(b []byte) (msgs int) {
	for len(b) > 0 {
		if p.skip > 0 {
			n := min(p.skip, len(b))
			p.skip -= n
			b = b[n:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			return msgs
		}
		p.line = append(p.line, b[:i]...)
		b = b[i+1:]
		line := bytes.TrimSuffix(p.line, []byte{'\r'})
		if size, ok := pubSize(line); ok {
			msgs++
			p.skip = size + 2
		}
		p.line = p.line[:0]
	}
	return msgs
}

// pubSize returns the total payload size of a PUB or HPUB control line.
func pubSize(line []byte) (int, bool) {
	if !bytes.HasPrefix(line, []byte("PUB ")) && !bytes.HasPrefix(line, []byte("HPUB ")) {
		return 0, false
	}
	n, err := strconv.Atoi(string(line[bytes.LastIndexByte(line, ' ')+1:]))
	return n, err == nil && n >= 0
}

// recordWrites notes that n messages were written at time at; the k-th
// message written since arm gets ordinal k (1-based), which on a fresh
// stream with one publishing connection and no retransmission is its
// stream sequence.
func (t *ackTap) recordWrites(n int, at int64) {
	t.mu.Lock()
	for range n {
		t.writes = append(t.writes, at)
	}
	t.mu.Unlock()
}
