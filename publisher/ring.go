package publisher

// ring is a FIFO of *entry with indexed access, growing by doubling. It is
// not safe for concurrent use (JetStream guards it with its mutex).
type ring struct {
	buf  []*entry // len is a power of two
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) at(i int) *entry { return r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring) push(e *entry) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = e
	r.n++
}

func (r *ring) front() *entry { return r.buf[r.head] }

func (r *ring) pop() *entry {
	e := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return e
}

func (r *ring) grow() {
	size := max(64, 2*len(r.buf))
	nb := make([]*entry, size)
	for i := 0; i < r.n; i++ {
		nb[i] = r.at(i)
	}
	r.buf, r.head = nb, 0
}
