package resilience

import "sync"

// dispatcher runs queued callbacks one at a time, in queue order, on the
// goroutine that finds the queue idle, outside any component lock. A
// callback that causes more callbacks to be queued (by calling back into
// its component) does not deadlock: they are queued and run after it
// returns, by the same loop.
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// enqueue adds f and reports whether the caller must run the queue (no
// other goroutine is running it). Call it while holding the component's
// lock, so queue order is event order; then release that lock and call run
// if told to.
func (d *dispatcher) enqueue(f func()) (mustRun bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue = append(d.queue, f)
	if d.running {
		return false
	}
	d.running = true
	return true
}

// run drains the queue. If a callback panics, the dispatcher is released
// (and the queue dropped) before the panic propagates, so the component
// keeps working.
func (d *dispatcher) run() {
	ok := false
	defer func() {
		if !ok {
			d.mu.Lock()
			d.queue, d.running = nil, false
			d.mu.Unlock()
		}
	}()
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.queue, d.running = d.queue[:0], false
			d.mu.Unlock()
			ok = true
			return
		}
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		f()
	}
}
