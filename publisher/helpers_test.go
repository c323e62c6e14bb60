package publisher

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
)

// startServer runs an embedded JetStream server on a random loopback port
// with its store in a temporary directory.
func startServer(t testing.TB, configure func(*server.Options)) *Embedded {
	t.Helper()
	return startServerAt(t, -1, t.TempDir(), configure)
}

func startServerAt(t testing.TB, port int, dir string, configure func(*server.Options)) *Embedded {
	t.Helper()
	if port == 0 {
		// Port 0 means the default 4222, which other processes may hold.
		t.Fatal("startServerAt: port 0 (4222); tests use -1 or a port they were given")
	}
	e, err := StartEmbedded(EmbeddedConfig{Port: port, StoreDir: dir, Configure: configure}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

// connect dials url with fast reconnects for tests.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, ConnConfig{URLs: []string{url}, ReconnectWait: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newPublisher(t testing.TB, nc *nats.Conn, cfg Config) *JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := NewJetStream(ctx, nc, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewJetStream: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// testLogger writes to the test log at Warn and above.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// trade builds the i-th trade of a symbol.
func trade(exchange, symbol string, i int) bridge.Event {
	return bridge.Event{
		Type: bridge.EventTrade, Exchange: exchange, Symbol: symbol,
		TS: 1_700_000_000_000_000_000 + int64(i), RecvTS: 1_700_000_000_000_000_001 + int64(i),
		ID: strconv.Itoa(i), Seq: int64(i), Price: "50000.10", Qty: "0.001", Side: bridge.SideBuy,
	}
}

// streamMsg is one stored message.
type streamMsg struct {
	seq     uint64
	subject string
	msgID   string
	ev      bridge.Event
}

// readStream returns every message of the stream in stream order.
func readStream(t testing.TB, nc *nats.Conn, stream string) []streamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := info.State.Msgs
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]streamMsg, 0, total)
	for uint64(len(out)) < total {
		batch, err := c.Fetch(int(min(1000, total-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := bridge.DecodeJSON(m.Data())
			if err != nil {
				t.Fatalf("seq %d: %v", md.Sequence.Stream, err)
			}
			out = append(out, streamMsg{seq: md.Sequence.Stream, subject: m.Subject(), msgID: m.Headers().Get(HeaderMsgID), ev: ev})
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("read %d of %d messages, then nothing", len(out), total)
		}
	}
	return out
}

// slogTo returns a debug-level text logger writing to w.
func slogTo(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
