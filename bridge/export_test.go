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
