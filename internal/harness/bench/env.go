package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
)

// natsEnv is the NATS server the phases publish to: embedded (started and
// stopped here, labelled "nats") or external.
type natsEnv struct {
	url      string
	desc     string // "embedded" or the redacted external URL
	embedded *publisher.Embedded
	tmpDir   string
	log      *slog.Logger
}

// startNATS starts the embedded server, or checks the external URL.
func startNATS(ctx context.Context, natsURL, storeDir string, log *slog.Logger) (*natsEnv, error) {
	e := &natsEnv{log: log}
	if natsURL != "" {
		u, err := url.Parse(natsURL)
		if err != nil || u.Host == "" || u.Scheme != "nats" {
			return nil, fmt.Errorf("%w: NATSURL %q: want nats://host:port (the harness reads acknowledgements off a plain connection)", ErrConfig, redact(natsURL))
		}
		e.url, e.desc = natsURL, redact(natsURL)
		return e, nil
	}
	if storeDir == "" {
		dir, err := os.MkdirTemp("", "mdbridge-bench-")
		if err != nil {
			return nil, fmt.Errorf("%w: store directory: %w", ErrSetup, err)
		}
		e.tmpDir, storeDir = dir, dir
	}
	var err error
	withComponent(ctx, compNATS, func(context.Context) {
		e.embedded, err = publisher.StartEmbedded(publisher.EmbeddedConfig{Host: "127.0.0.1", Port: -1, StoreDir: storeDir}, log)
	})
	if err != nil {
		e.close()
		return nil, fmt.Errorf("%w: embedded NATS: %w", ErrSetup, err)
	}
	e.url, e.desc = e.embedded.ClientURL(), "embedded"
	return e, nil
}

func (e *natsEnv) close() {
	if e.embedded != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = e.embedded.Shutdown(ctx)
		cancel()
		e.embedded = nil
	}
	if e.tmpDir != "" {
		_ = os.RemoveAll(e.tmpDir)
		e.tmpDir = ""
	}
}

// connect opens a connection with publisher.Connect, as the bridge's; with
// a tap, its reads and writes go through tap.
func (e *natsEnv) connect(ctx context.Context, name string, tap *ackTap) (*nats.Conn, error) {
	cc := publisher.ConnConfig{URLs: []string{e.url}, Name: name}
	if tap != nil {
		cc.Dialer = tapDialer{tap: tap, timeout: 2 * time.Second}
	}
	nc, err := publisher.Connect(ctx, cc, e.log)
	if err != nil {
		return nil, fmt.Errorf("%w: NATS %s: %w", ErrSetup, e.desc, err)
	}
	return nc, nil
}

// freshStream deletes the benchmark stream if it exists and creates it with
// cfg (publisher.EnsureStream), so stream sequences start at 1.
func freshStream(ctx context.Context, js jetstream.JetStream, cfg publisher.Config) error {
	if err := js.DeleteStream(ctx, cfg.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: deleting stream %s: %w", ErrSetup, cfg.Stream, err)
	}
	// The server removes a deleted stream's store asynchronously; creating
	// the same name at once can fail with "error creating store for
	// stream" while the old files go. Retry for a short while.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if _, err = publisher.EnsureStream(ctx, js, cfg); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrSetup, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: %w", ErrSetup, err)
}

// redact removes user info from a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable url>"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return strings.TrimSuffix(u.String(), "/")
}
