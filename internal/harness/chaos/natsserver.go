package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/qldata/mdbridge/publisher"
)

// natsServer is an embedded NATS server that can be stopped and started
// again on the same port with the same JetStream store, like a restarted
// nats-server process.
type natsServer struct {
	port      int
	dir       string
	configure func(*server.Options)
	log       *slog.Logger

	mu       sync.Mutex
	cur      *publisher.Embedded
	restarts int
}

// startNATS starts the server on port, or on a port the system picks when
// port is 0 (restarts then reuse that port).
func startNATS(port int, dir string, configure func(*server.Options), logger *slog.Logger) (*natsServer, error) {
	n := &natsServer{port: port, dir: dir, configure: configure, log: logger}
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

// URL is the client URL (stable across restarts).
func (n *natsServer) URL() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
}

// start starts the server if it is down, retrying briefly while the port is
// still held by the previous instance.
func (n *natsServer) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur != nil {
		return nil
	}
	port := n.port
	if port == 0 {
		port = -1 // the first start: any free port
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var e *publisher.Embedded
		e, err = publisher.StartEmbedded(publisher.EmbeddedConfig{
			Host: "127.0.0.1", Port: port, StoreDir: n.dir, ServerName: "chaos-nats", Configure: n.configure,
		}, n.log)
		if err == nil {
			n.cur = e
			if n.port == 0 {
				n.port = e.Port() // once, before n is shared
			}
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%w: NATS on port %d: %w", ErrHarness, n.port, err)
}

// stop shuts the server down (JetStream flushed), like a process stop.
func (n *natsServer) stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.cur.Shutdown(ctx)
	n.cur = nil
	n.restarts++
	return err
}

// up reports whether the server runs.
func (n *natsServer) up() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur != nil
}
