package exsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/websocket"
)

// handleBinanceWS serves /ws, /ws/<stream>[/<stream>...] (raw payloads)
// and /stream?streams=<s1>/<s2> (combined wrapper), with the optional
// timeUnit=MICROSECOND parameter.
func (s *Server) handleBinanceWS(w http.ResponseWriter, r *http.Request) {
	combined := r.URL.Path == "/stream"
	var names []string
	if combined {
		if q := r.URL.Query().Get("streams"); q != "" {
			names = strings.Split(q, "/")
		}
	} else {
		rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/ws"), "/")
		if rest != "" {
			names = strings.Split(rest, "/")
		}
	}
	micro := false
	switch strings.ToUpper(r.URL.Query().Get("timeUnit")) {
	case "", "MILLISECOND":
	case "MICROSECOND":
		micro = true
	default:
		writeJSONBytes(w, http.StatusBadRequest, binanceError(-1100, "Invalid timeUnit."))
		return
	}
	for _, n := range names {
		if !validStream(Binance, n) {
			writeJSONBytes(w, http.StatusBadRequest, binanceError(-1100, "Invalid stream name: "+n))
			return
		}
	}
	if len(names) > s.cfg.MaxStreams {
		writeJSONBytes(w, http.StatusBadRequest, binanceError(-1101, "Too many streams: at most "+strconv.Itoa(s.cfg.MaxStreams)+"."))
		return
	}
	s.accept(w, r, Binance, func(c *conn) {
		c.mu.Lock()
		c.combined, c.micro = combined, micro
		c.mu.Unlock()
		s.binanceSubscribe(c, names, nil)
	}, s.binanceRead)
}

// binanceError is a REST error body.
func binanceError(code int, msg string) []byte {
	b := []byte(`{"code":`)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, msg)
	return append(b, '}')
}

// binanceWSError is a control-frame error reply.
func binanceWSError(code int, msg string, id []byte) []byte {
	b := []byte(`{"error":{"code":`)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, `},"id":`...)
	b = append(b, id...)
	return append(b, '}')
}

func binanceResult(result, id []byte) []byte {
	b := []byte(`{"result":`)
	b = append(b, result...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}

var jsonNull = []byte("null")

// binanceMarket returns the market of a lower-case stream symbol, or nil.
func (s *Server) binanceMarket(v Venue, sym string) *market {
	for _, m := range s.mlist {
		if m.venue == v && m.lower == sym {
			return m
		}
	}
	return nil
}

// binanceSubscribe adds streams (already validated) to c; duplicates are
// ignored. The reply, if any, is queued while the markets are locked, so
// every event after it reaches c. It reports false when the stream limit
// would be exceeded.
func (s *Server) binanceSubscribe(c *conn, names []string, reply []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true
	}
	var add []string
	for _, n := range names {
		if !contains(c.binStreams, n) && !contains(add, n) {
			add = append(add, n)
		}
	}
	if len(c.binStreams)+len(add) > s.maxStreams(c.venue) {
		c.mu.Unlock()
		return false
	}
	var ms []*market
	for _, n := range add {
		sym, _, _, _ := parseBinanceStream(n)
		if m := s.binanceMarket(c.venue, sym); m != nil {
			ms = append(ms, m)
		}
	}
	unlock := lockMarkets(ms)
	if reply != nil {
		c.sendControl(reply)
	}
	var syms []string
	for _, n := range add {
		c.binStreams = append(c.binStreams, n)
		sym, kind, levels, _ := parseBinanceStream(n)
		if !c.routes(kind) {
			continue // acknowledged, never delivered: another route's stream
		}
		if m := s.binanceMarket(c.venue, sym); m != nil {
			m.binAddSubLocked(c, n, kind, levels, c.combined, c.micro)
			syms = append(syms, m.symbol)
		}
	}
	unlock()
	c.mu.Unlock()
	for _, sym := range syms {
		s.faults.onSubscribe(s, c, sym)
	}
	return true
}

// binanceUnsubscribe removes c from the market of stream name.
func (s *Server) binanceUnsubscribe(c *conn, name string, combined, micro bool) {
	sym, _, _, ok := parseBinanceStream(name)
	if !ok {
		return
	}
	if m := s.binanceMarket(c.venue, sym); m != nil {
		m.binRemoveSub(c, name, combined, micro)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validID checks a request id: an unsigned integer, a string of at most 36
// characters, or null.
func validID(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, jsonNull) {
		return true
	}
	if raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil && len(s) <= 36
	}
	_, err := strconv.ParseUint(string(raw), 10, 64)
	return err == nil
}

// binanceRead handles one client text frame: a live control request.
func (s *Server) binanceRead(c *conn, mt int, data []byte) {
	if mt != websocket.TextMessage {
		c.sendControl(binanceWSError(3, "Invalid JSON: expected value at line 1 column 1", jsonNull))
		return
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(data, &req); err != nil {
		if json.Valid(data) {
			c.sendControl(binanceWSError(2, "Invalid request: expected a JSON object", jsonNull))
		} else {
			c.sendControl(binanceWSError(3, "Invalid JSON: "+jsonErrText(err, data), jsonNull))
		}
		return
	}
	id := bytes.TrimSpace(req["id"])
	if !validID(id) {
		c.sendControl(binanceWSError(2, "Invalid request: request ID must be an unsigned integer", jsonNull))
		return
	}
	if len(id) == 0 {
		id = jsonNull
	}
	for k := range req {
		if k != "method" && k != "params" && k != "id" {
			c.sendControl(binanceWSError(2, "Invalid request: unknown field `"+k+"`, expected one of `method`, `params`, `id`", id))
			return
		}
	}
	rawMethod, ok := req["method"]
	if !ok {
		c.sendControl(binanceWSError(2, "Invalid request: missing field `method`", id))
		return
	}
	var method string
	if json.Unmarshal(rawMethod, &method) != nil {
		c.sendControl(binanceWSError(2, "Invalid request: method must be a string", id))
		return
	}
	var params []json.RawMessage
	if p := bytes.TrimSpace(req["params"]); len(p) > 0 && !bytes.Equal(p, jsonNull) {
		if json.Unmarshal(p, &params) != nil {
			c.sendControl(binanceWSError(2, "Invalid request: params must be an array", id))
			return
		}
	}
	switch method {
	case "SUBSCRIBE", "UNSUBSCRIBE":
		names := make([]string, 0, len(params))
		for _, p := range params {
			var n string
			if json.Unmarshal(p, &n) != nil {
				c.sendControl(binanceWSError(2, "Invalid request: stream name must be a string", id))
				return
			}
			if !validStream(c.venue, n) {
				c.sendControl(binanceWSError(2, "Invalid request: invalid stream name `"+n+"`", id))
				return
			}
			names = append(names, n)
		}
		if len(names) == 0 {
			c.sendControl(binanceWSError(2, "Invalid request: no streams", id))
			return
		}
		if method == "SUBSCRIBE" {
			c.mu.Lock()
			over := len(c.binStreams)+len(names) > s.maxStreams(c.venue)
			c.mu.Unlock()
			if over {
				c.sendControl(binanceWSError(2, "Invalid request: too many streams, at most "+strconv.Itoa(s.maxStreams(c.venue))+" per connection", id))
				return
			}
			s.binanceSubscribe(c, names, binanceResult(jsonNull, id))
			return
		}
		c.mu.Lock()
		for _, n := range names {
			for i, x := range c.binStreams {
				if x == n {
					c.binStreams = append(c.binStreams[:i], c.binStreams[i+1:]...)
					s.binanceUnsubscribe(c, n, c.combined, c.micro)
					break
				}
			}
		}
		c.mu.Unlock()
		c.sendControl(binanceResult(jsonNull, id))
	case "LIST_SUBSCRIPTIONS":
		c.mu.Lock()
		list, _ := json.Marshal(append([]string{}, c.binStreams...))
		c.mu.Unlock()
		c.sendControl(binanceResult(list, id))
	case "SET_PROPERTY", "GET_PROPERTY":
		want := 2
		if method == "GET_PROPERTY" {
			want = 1
		}
		if len(params) > want {
			c.sendControl(binanceWSError(2, "Invalid request: too many parameters", id))
			return
		}
		if len(params) < want {
			c.sendControl(binanceWSError(2, "Invalid request: missing parameters", id))
			return
		}
		var prop string
		if json.Unmarshal(params[0], &prop) != nil {
			c.sendControl(binanceWSError(2, "Invalid request: property name must be a string", id))
			return
		}
		if prop != "combined" {
			c.sendControl(binanceWSError(0, "Unknown property", id))
			return
		}
		if method == "GET_PROPERTY" {
			c.mu.Lock()
			v := c.combined
			c.mu.Unlock()
			c.sendControl(binanceResult(appendBool(nil, v), id))
			return
		}
		var v bool
		if json.Unmarshal(params[1], &v) != nil {
			c.sendControl(binanceWSError(1, "Invalid value type: expected Boolean", id))
			return
		}
		c.setCombined(v)
		c.sendControl(binanceResult(jsonNull, id))
	default:
		c.sendControl(binanceWSError(2, "Invalid request: unknown variant `"+method+
			"`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`", id))
	}
}

// setCombined switches c between raw and combined payloads.
func (c *conn) setCombined(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.combined == v || c.closed {
		c.combined = v
		return
	}
	for _, n := range c.binStreams {
		sym, kind, levels, _ := parseBinanceStream(n)
		if !c.routes(kind) {
			continue
		}
		if m := c.srv.binanceMarket(c.venue, sym); m != nil {
			m.binRemoveSub(c, n, c.combined, c.micro)
			m.binAddSub(c, n, kind, levels, v, c.micro)
		}
	}
	c.combined = v
}

// jsonErrText turns a decoding error into Binance's style of message.
func jsonErrText(err error, data []byte) string {
	off := int64(len(data))
	if se, ok := err.(*json.SyntaxError); ok {
		off = se.Offset
	}
	line, col := int64(1), int64(1)
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return "expected value at line " + strconv.FormatInt(line, 10) + " column " + strconv.FormatInt(col, 10)
}

// sendShutdown sends Binance's serverShutdown event to c.
func (c *conn) sendShutdown() {
	c.mu.Lock()
	combined, micro := c.combined, c.micro
	c.mu.Unlock()
	payload := []byte(`{"e":"serverShutdown","E":`)
	payload = appendTime(payload, c.srv.nowNs(c.venue), micro)
	payload = append(payload, '}')
	if combined {
		payload = append(append([]byte(`{"stream":"!serverShutdown","data":`), payload...), '}')
	}
	c.send(outFrame{b: payload, kind: fkOther})
}
