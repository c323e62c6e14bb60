package bridge

import "context"

// HotPath feeds frames to a stream's first connection slot as if its
// primary connection had read them, without a socket: the per-message path
// of decode, dedup, sequence check and hand-over to the publisher. For
// benchmarks and tests in package bridge_test.
type HotPath struct {
	sh  *shard
	c   *conn
	buf []Event
}

// NewHotPath prepares s (not running) for HotPath.Frame.
func NewHotPath(s *Stream) *HotPath {
	s.pubCtx, s.pubCancel = context.WithCancel(context.Background())
	s.ioCtx, s.ioCancel = context.WithCancelCause(s.pubCtx)
	sh := s.shards[0]
	c := &conn{own: sh, env: sh.env, id: "hotpath"}
	sh.primary = c
	return &HotPath{sh: sh, c: c}
}

// Frame decodes frame and processes its events.
func (h *HotPath) Frame(frame []byte, recvTS int64) error {
	evs, _, err := h.sh.st.cfg.Exchange.Decode(frame, recvTS, h.buf[:0])
	if err != nil {
		return err
	}
	h.buf = evs[:0]
	h.sh.deliver(h.c, evs)
	return nil
}

// Events processes already decoded events as one frame of the primary
// connection.
func (h *HotPath) Events(evs []Event) { h.sh.deliver(h.c, evs) }

// Settled reports what is wrong with the shard's hand-over state between
// frames ("" if nothing): a lent decode buffer not returned, a batch left
// unpublished, or the decode buffer among the shard's own batch buffers
// (which would let a later batch overwrite a frame being decoded).
func (h *HotPath) Settled() string {
	sh := h.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch {
	case sh.lent || sh.ownOut != nil:
		return "decode buffer still lent"
	case len(sh.out) > 0 || len(sh.queue) > 0:
		return "batch left unpublished"
	}
	if cap(h.buf) == 0 {
		return ""
	}
	mine := &h.buf[:1][0]
	for _, b := range append(append([][]Event{sh.out}, sh.spare...), batchBufs(sh.done)...) {
		if cap(b) > 0 && &b[:1][0] == mine {
			return "decode buffer recycled as a batch buffer"
		}
	}
	return ""
}

// DecodeBuf is the first slot of the hot path's decode buffer (nil before
// the first frame).
func (h *HotPath) DecodeBuf() *Event {
	if cap(h.buf) == 0 {
		return nil
	}
	return &h.buf[:1][0]
}

func batchBufs(bs []batch) [][]Event {
	var out [][]Event
	for _, b := range bs {
		out = append(out, b.evs)
	}
	return out
}
