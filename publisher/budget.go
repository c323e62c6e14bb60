package publisher

// budget is the buffer's occupancy (messages held until acknowledged, and
// their bytes) against its limits, Config.BufferMessages and
// Config.BufferBytes. Guarded by JetStream.mu.
type budget struct {
	msgs, maxMsgs   int
	bytes, maxBytes int64
}

// fits reports whether a message of size bytes can join without exceeding
// the limits. A message larger than maxBytes fits into an empty buffer.
func (b *budget) fits(size int64) bool {
	return b.msgs < b.maxMsgs && (b.bytes+size <= b.maxBytes || b.msgs == 0)
}

// over reports whether the buffer exceeds its limits.
func (b *budget) over() bool {
	return b.msgs > b.maxMsgs || (b.bytes > b.maxBytes && b.msgs > 1)
}

// add counts a message of size bytes in.
func (b *budget) add(size int64) {
	b.msgs++
	b.bytes += size
}

// remove counts a message of size bytes out.
func (b *budget) remove(size int64) {
	b.msgs--
	b.bytes -= size
}
