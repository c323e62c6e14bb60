package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/qldata/mdbridge/publisher"
)

// TestSnapshotNoBridge: without a bridge the command retries "no
// responders" for the whole -timeout, then the error names the control
// subject once, says it retried and how to point the command at the right
// NATS.
func TestSnapshotNoBridge(t *testing.T) {
	clearEnv(t)
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	var stdout, stderr bytes.Buffer
	code := cmdSnapshot(context.Background(), []string{"-server", srv.ClientURL(), "-timeout", "1s", "binance", "BTCUSDT"}, &stdout, &stderr)
	msg := stderr.String()
	if code != exitFailure || stdout.Len() != 0 {
		t.Fatalf("code %d, stdout %q, stderr %q", code, stdout.String(), msg)
	}
	if n := strings.Count(msg, "mdctl.snapshot.binance.BTCUSDT"); n != 1 {
		t.Errorf("the subject appears %d times in %q, want once", n, msg)
	}
	for _, want := range []string{"no bridge serves", "attempts", "retried for the whole -timeout 1s", "MDB_NATS_URL", "-server"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not mention %q", msg, want)
		}
	}
}
