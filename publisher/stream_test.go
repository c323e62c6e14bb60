package publisher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureStream(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s, err := EnsureStream(ctx, js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.Name != "MD" || len(got.Subjects) != 1 || got.Subjects[0] != "md.>" || got.Storage != jetstream.FileStorage ||
		got.Duplicates != 2*time.Minute || got.MaxAge != 24*time.Hour || got.Replicas != 1 || got.Discard != jetstream.DiscardOld {
		t.Fatalf("default stream config %+v", got)
	}

	// An operator's own setting survives; a second call with the same
	// configuration changes nothing.
	got.MaxMsgsPerSubject = 1_000_000
	if _, err := js.UpdateStream(ctx, got); err != nil {
		t.Fatal(err)
	}
	s, err = EnsureStream(ctx, js, Config{})
	if err != nil {
		t.Fatalf("second EnsureStream: %v", err)
	}
	if c := s.CachedInfo().Config; c.MaxMsgsPerSubject != 1_000_000 {
		t.Errorf("operator's MaxMsgsPerSubject lost: %+v", c)
	}

	// A changed managed field is applied.
	s, err = EnsureStream(ctx, js, Config{MaxAge: time.Hour, DuplicateWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.MaxAge != time.Hour || c.Duplicates != time.Minute || c.MaxMsgsPerSubject != 1_000_000 {
		t.Errorf("update not applied: %+v", c)
	}

	// The storage type of an existing stream cannot change.
	_, err = EnsureStream(ctx, js, Config{Storage: jetstream.MemoryStorage})
	if !errors.Is(err, ErrStreamConflict) || !strings.Contains(err.Error(), `"MD"`) || !strings.Contains(err.Error(), "storage") {
		t.Errorf("storage change: %v, want ErrStreamConflict naming the stream and storage", err)
	}

	// Overlapping subjects: the error names both streams and what to do.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LEGACY", Subjects: []string{"feed.binance.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err = EnsureStream(ctx, js, Config{Stream: "FEED", SubjectPrefix: "feed"})
	if !errors.Is(err, ErrStreamConflict) {
		t.Fatalf("overlap: %v, want ErrStreamConflict", err)
	}
	for _, want := range []string{`"FEED"`, `"LEGACY"`, "feed.>", "feed.binance.>", "subject prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("overlap error %q does not mention %s", err, want)
		}
	}

	// An invalid configuration fails before any request.
	if _, err := EnsureStream(ctx, js, Config{Stream: "bad.name"}); !errors.Is(err, ErrConfig) {
		t.Errorf("invalid name: %v", err)
	}
}

func TestEnsureStreamNoJetStream(t *testing.T) {
	srv := startServer(t, nil)
	nc := connect(t, srv.ClientURL())
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Server().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureStream(ctx, js, Config{})
	if !errors.Is(err, ErrNoStream) {
		t.Errorf("JetStream disabled: %v, want ErrNoStream", err)
	}
}

// TestEnsureStreamMaxBytes: a positive MaxBytes is applied and updated, -1
// removes the limit, 0 leaves it as it is; a limit the server cannot
// reserve names MaxBytes.
func TestEnsureStreamMaxBytes(t *testing.T) {
	srv := startServer(t, func(o *server.Options) { o.JetStreamMaxStore = 64 << 20 })
	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, step := range []struct {
		set, want int64
	}{
		{0, -1},              // new stream: unlimited
		{16 << 20, 16 << 20}, // applied
		{0, 16 << 20},        // kept
		{32 << 20, 32 << 20}, // updated
		{-1, -1},             // removed
	} {
		s, err := EnsureStream(ctx, js, Config{MaxBytes: step.set})
		if err != nil {
			t.Fatalf("MaxBytes %d: %v", step.set, err)
		}
		if got := s.CachedInfo().Config.MaxBytes; got != step.want {
			t.Fatalf("MaxBytes %d: stream has %d, want %d", step.set, got, step.want)
		}
	}
	_, err = EnsureStream(ctx, js, Config{Stream: "BIG", SubjectPrefix: "big", MaxBytes: 1 << 30})
	if !errors.Is(err, ErrStreamConflict) || !strings.Contains(err.Error(), "MaxBytes") {
		t.Fatalf("1 GiB on a 64 MiB server: %v, want ErrStreamConflict naming MaxBytes", err)
	}
}
