package chaos

import (
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
// still delivered to the bridge, then the bridge side is half-closed (the
// bridge reads them, then the end), and the bridge's side is closed once
// the bridge closes it (see pipeDown).
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
		gone := make(chan struct{})
		go p.pipeDown(c, up, gone)
		go p.pipeUp(up, c, gone)
	}
}

// pipeDown passes the simulator's bytes (up) to the bridge (down). When
// the simulator ends the connection, the bridge's side is half-closed: the
// bytes are on their way and the bridge reads them, then the end. Closing
// it instead (as the proxy did) lost them whenever the bridge was behind:
// a socket closed while its peer keeps writing (the bridge's ping) is
// reset, and a reset discards what the kernel has not delivered yet, so
// trades the simulator had written to a live replica's connection never
// reached it (issue 15). The bridge's side is closed by pipeUp, when the
// bridge closes it. gone is closed once the simulator's side has ended.
func (p *proxy) pipeDown(down, up net.Conn, gone chan struct{}) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if _, werr := down.Write(buf[:n]); werr != nil {
				p.closePair(down, up) // the bridge has gone
				close(gone)
				return
			}
		}
		if err != nil {
			break
		}
	}
	close(gone)
	up.Close()
	if tc, ok := down.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	down.Close()
}

// pipeUp passes the bridge's bytes (down) to the simulator (up) until the
// bridge closes its side, then closes both. Once the simulator's side has
// ended (gone), or a write to it fails, the bridge's bytes are read and
// discarded: they must not pile up unread, or closing the socket would
// reset it.
func (p *proxy) pipeUp(up, down net.Conn, gone chan struct{}) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	forward := true
	for {
		n, err := down.Read(buf)
		if n > 0 && forward {
			select {
			case <-gone:
				forward = false
			default:
				if _, werr := up.Write(buf[:n]); werr != nil {
					forward = false
				}
			}
		}
		if err != nil {
			break
		}
	}
	p.closePair(down, up)
}

// closePair closes both sides of a proxied connection.
func (p *proxy) closePair(a, b net.Conn) {
	a.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, a)
	delete(p.conns, b)
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
