package publisher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	e := startServerAt(t, -1, dir, nil)
	if !strings.HasPrefix(e.ClientURL(), "nats://127.0.0.1:") || e.Port() <= 0 {
		t.Fatalf("ClientURL %s port %d", e.ClientURL(), e.Port())
	}
	port, url := e.Port(), e.ClientURL()
	if !e.Server().JetStreamEnabled() {
		t.Fatal("JetStream not enabled")
	}

	// The port is taken: a clear error, not a hang.
	_, err := StartEmbedded(EmbeddedConfig{Port: e.Port(), StoreDir: t.TempDir(), ReadyTimeout: 2 * time.Second}, nil)
	if !errors.Is(err, ErrEmbedded) {
		t.Errorf("second server on a used port: %v, want ErrEmbedded", err)
	}
	if _, err := StartEmbedded(EmbeddedConfig{Port: 70000}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("port 70000: %v, want ErrConfig", err)
	}

	// Data survives a restart on the same store.
	nc := connect(t, e.ClientURL())
	p := newPublisher(t, nc, Config{})
	if err := p.Publish(context.Background(), trades("binance", "BTCUSDT", 0, 3)); err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Port() != port || e.ClientURL() != url {
		t.Fatalf("after Shutdown: port %d URL %s, want %d %s", e.Port(), e.ClientURL(), port, url)
	}
	e2 := startServerAt(t, e.Port(), dir, nil)
	if e2.Port() != port {
		t.Fatalf("restarted on port %d, want %d", e2.Port(), port)
	}
	if msgs := readStream(t, connect(t, e2.ClientURL()), "MD"); len(msgs) != 3 {
		t.Errorf("after restart the stream holds %d messages, want 3", len(msgs))
	}
}
