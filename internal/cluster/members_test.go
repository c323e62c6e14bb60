package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/publisher"
)

// TestEnsureBucketUpdatesTTL: a membership bucket left by replicas of
// another expiry gets the configured one as its TTL, with a warning; an
// invalid expiry is refused before anything is written.
func TestEnsureBucketUpdatesTTL(t *testing.T) {
	ns, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Shutdown(context.Background()) })
	nc, err := publisher.Connect(context.Background(), publisher.ConnConfig{URLs: []string{ns.ClientURL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	old := Config{Instance: "a", Heartbeat: 2 * time.Second, Expiry: 6 * time.Second}
	kv, err := EnsureBucket(ctx, js, old, logger)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := kv.Status(ctx); st.TTL() != 6*time.Second {
		t.Fatalf("new bucket TTL %s, want 6s", st.TTL())
	}
	if logs.Len() != 0 {
		t.Fatalf("warning on a new bucket: %s", logs.String())
	}
	if _, err := EnsureBucket(ctx, js, old, logger); err != nil || logs.Len() != 0 {
		t.Fatalf("same TTL: err %v, logs %q; want neither", err, logs.String())
	}

	kv, err = EnsureBucket(ctx, js, Config{Instance: "a", Heartbeat: time.Second, Expiry: 3 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := kv.Status(ctx); st.TTL() != 3*time.Second {
		t.Fatalf("bucket TTL %s after EnsureBucket with expiry 3s, want 3s", st.TTL())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "ttl=6s") || !strings.Contains(logs.String(), "expiry=3s") {
		t.Fatalf("want a warning naming the old TTL and the new expiry, got %q", logs.String())
	}
	// A fresh handle (another replica) sees the new TTL.
	kv2, err := js.KeyValue(ctx, DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := kv2.Status(ctx); st.TTL() != 3*time.Second {
		t.Fatalf("stored TTL %s, want 3s", st.TTL())
	}

	if _, err := EnsureBucket(ctx, js, Config{Instance: "a", Heartbeat: time.Second, Expiry: 1500 * time.Millisecond}, logger); !errors.Is(err, ErrConfig) {
		t.Fatalf("expiry below twice the heartbeat: %v, want ErrConfig", err)
	}
}

// TestConfigDefaults: heartbeat 1 s, expiry 3 s; the checks of Validate.
func TestConfigDefaults(t *testing.T) {
	d := Config{Instance: "a"}.withDefaults()
	if d.Heartbeat != time.Second || d.Expiry != 3*time.Second {
		t.Fatalf("defaults heartbeat %s expiry %s, want 1s and 3s", d.Heartbeat, d.Expiry)
	}
	for _, tc := range []struct {
		hb, exp time.Duration
		ok      bool
	}{
		{0, 0, true},
		{100 * time.Millisecond, time.Second, true},
		{time.Second, 2 * time.Second, true},
		{time.Second, 1999 * time.Millisecond, false},
		{100 * time.Millisecond, 900 * time.Millisecond, false},
		{-time.Second, 0, false},
	} {
		err := Config{Instance: "a", Heartbeat: tc.hb, Expiry: tc.exp}.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("heartbeat %s expiry %s: %v, want ok=%v", tc.hb, tc.exp, err, tc.ok)
		}
	}
}
