package publisher

import (
	"bytes"
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// statusHeader and noRespondersStatus mark the server's reply to a request
// nobody answered (no stream binds the subject, or JetStream is off).
const (
	statusHeader       = "Status"
	noRespondersStatus = "503"
)

// ackReply is the JSON of a JetStream publish reply.
type ackReply struct {
	Error     *jetstream.APIError `json:"error"`
	Stream    string              `json:"stream"`
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate"`
}

// pubAck is a parsed publish acknowledgement. stream views the reply's data.
type pubAck struct {
	stream []byte
	seq    uint64
	dup    bool
}

// parseAck reads a JetStream publish reply: the stream and sequence that
// hold the message and whether it was a duplicate, or why it was not
// stored. The replies nats-server writes,
// {"stream":"MD"[,"domain":"hub"],"seq":7[,"duplicate": true]}, are read by
// scanAck without a JSON decoder and without allocating; anything else
// (errors, another shape) goes through encoding/json (parseAckJSON), and
// both give the same result for every input (FuzzParseAck).
func parseAck(m *nats.Msg) (pubAck, error) {
	if len(m.Data) == 0 {
		if m.Header.Get(statusHeader) == noRespondersStatus {
			return pubAck{}, nats.ErrNoResponders
		}
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if a, ok := scanAck(m.Data); ok {
		return a, nil
	}
	return parseAckJSON(m.Data)
}

// parseAckJSON is parseAck's general path.
func parseAckJSON(d []byte) (pubAck, error) {
	var r ackReply
	if err := json.Unmarshal(d, &r); err != nil {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return pubAck{}, r.Error
	}
	if r.Stream == "" {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	return pubAck{stream: []byte(r.Stream), seq: r.Seq, dup: r.Duplicate}, nil
}

// scanAck reads a successful publish reply of the simple shape: a JSON
// object whose members are "stream" (required, not empty), "seq", "domain"
// and "duplicate", each at most once, with string values of printable ASCII
// without escapes, an unsigned decimal seq and a true/false duplicate,
// whitespace allowed between tokens. On anything else it reports false and
// the caller decodes with encoding/json, so it never accepts an input that
// encoding/json reads differently.
func scanAck(d []byte) (a pubAck, ok bool) {
	if a, ok := scanServerAck(d); ok {
		return a, true
	}
	const (
		hasStream = 1 << iota
		hasSeq
		hasDomain
		hasDup
	)
	s := ackScanner{d: d}
	seen := 0
	if !s.byte('{') {
		return pubAck{}, false
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return pubAck{}, false
		}
		var bit int
		switch string(key) { // compared without allocating
		case "stream":
			bit = hasStream
			a.stream, ok = s.str()
			ok = ok && len(a.stream) > 0
		case "domain":
			bit = hasDomain
			_, ok = s.str()
		case "seq":
			bit = hasSeq
			a.seq, ok = s.uint()
		case "duplicate":
			bit = hasDup
			a.dup, ok = s.bool()
		}
		if bit == 0 || !ok || seen&bit != 0 {
			return pubAck{}, false // another key, a bad value, or a repeated key (encoding/json keeps the last)
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		if !s.byte('}') {
			return pubAck{}, false
		}
		s.ws()
		return a, s.i == len(d) && seen&hasStream != 0
	}
}

var (
	ackHead    = []byte(`{"stream":"`)
	ackSeq     = []byte(`","seq":`)
	ackDupTail = []byte(`,"duplicate": true}`) // as nats-server writes it
)

// scanServerAck reads the two replies nats-server writes for a stream
// without a domain, {"stream":"S","seq":N} and
// {"stream":"S","seq":N,"duplicate": true}, byte for byte: scanAck's
// shortcut for the common case.
func scanServerAck(d []byte) (pubAck, bool) {
	if !bytes.HasPrefix(d, ackHead) {
		return pubAck{}, false
	}
	d = d[len(ackHead):]
	i := bytes.IndexByte(d, '"')
	if i <= 0 {
		return pubAck{}, false
	}
	stream := d[:i]
	for _, c := range stream {
		if c == '\\' || c < 0x20 || c > 0x7e {
			return pubAck{}, false
		}
	}
	d = d[i:]
	if !bytes.HasPrefix(d, ackSeq) {
		return pubAck{}, false
	}
	s := ackScanner{d: d, i: len(ackSeq)}
	seq, ok := s.uint()
	if !ok {
		return pubAck{}, false
	}
	switch tail := d[s.i:]; {
	case len(tail) == 1 && tail[0] == '}':
		return pubAck{stream: stream, seq: seq}, true
	case bytes.Equal(tail, ackDupTail):
		return pubAck{stream: stream, seq: seq, dup: true}, true
	}
	return pubAck{}, false
}

// ackScanner reads the tokens scanAck accepts.
type ackScanner struct {
	d []byte
	i int
}

// ws skips JSON whitespace.
func (s *ackScanner) ws() {
	for s.i < len(s.d) && (s.d[s.i] == ' ' || s.d[s.i] == '\t' || s.d[s.i] == '\n' || s.d[s.i] == '\r') {
		s.i++
	}
}

// byte skips whitespace and then c, if it is next.
func (s *ackScanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.d) && s.d[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *ackScanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.d); s.i++ {
		switch c := s.d[s.i]; {
		case c == '"':
			s.i++
			return s.d[start : s.i-1], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, false
		}
	}
	return nil, false
}

// uint reads an unsigned decimal integer of at most 19 digits (so it
// cannot overflow a uint64) without leading zeros; longer ones are left to
// encoding/json.
func (s *ackScanner) uint() (uint64, bool) {
	s.ws()
	start := s.i
	var n uint64
	for ; s.i < len(s.d) && s.d[s.i] >= '0' && s.d[s.i] <= '9'; s.i++ {
		n = n*10 + uint64(s.d[s.i]-'0')
	}
	digits := s.i - start
	if digits == 0 || digits > 19 || digits > 1 && s.d[start] == '0' {
		return 0, false
	}
	return n, true
}

// bool reads true or false.
func (s *ackScanner) bool() (bool, bool) {
	s.ws()
	switch {
	case bytes.HasPrefix(s.d[s.i:], []byte("true")):
		s.i += 4
		return true, true
	case bytes.HasPrefix(s.d[s.i:], []byte("false")):
		s.i += 5
		return false, true
	}
	return false, false
}
