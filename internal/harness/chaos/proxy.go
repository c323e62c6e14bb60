package chaos

import (
	"io"
	"net"
	"sort"
	"sync"
	"time"
)

// proxy is a loopback TCP proxy in front of the simulator, one per replica.
// It lets the reconciliation attribute every simulator connection (whose
// remote address is the proxy's outbound socket) to the replica generation
// that opened it. It forwards bytes unchanged in both directions; when the
// simulator closes (or cuts) a connection, the bytes it wrote before are
// still delivered to the bridge, then the bridge side is closed.
type proxy struct {
	ln     net.Listener
	target string
	owner  func() string // the replica generation dialing now, e.g. "A#2"

	mu     sync.Mutex
	dials  map[string][]dialRecord // outbound local address -> dials from it
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

type dialRecord struct {
	at  time.Time
	gen string
}

// newProxy listens on loopback and forwards to target. setOwner must be
// called before the first connection arrives.
func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, dials: map[string][]dialRecord{}, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// setOwner sets the function naming the generation that dials now.
func (p *proxy) setOwner(owner func() string) {
	p.mu.Lock()
	p.owner = owner
	p.mu.Unlock()
}

// Addr is the proxy's listen address.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		owner := p.owner
		p.mu.Unlock()
		gen := "?"
		if owner != nil {
			gen = owner()
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		local := up.LocalAddr().String()
		p.dials[local] = append(p.dials[local], dialRecord{at: time.Now(), gen: gen})
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst; when src ends it closes both (the other pipe
// then ends too).
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// generationOf returns the replica generation that opened the simulator
// connection with remote address remote, opened at opened ("" if unknown).
func (p *proxy) generationOf(remote string, opened time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	recs := p.dials[remote]
	i := sort.Search(len(recs), func(i int) bool { return recs[i].at.After(opened.Add(time.Second)) })
	if i == 0 {
		return ""
	}
	return recs[i-1].gen
}

// close stops accepting and cuts every proxied connection.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
