package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/internal/node"
	"github.com/qldata/mdbridge/publisher"
)

// TestSubscribeCommand: `mdbridge subscribe` edits the runtime spec key:
// add/remove need a base (the key, else the set the replicas report), are
// compare-and-set (concurrent adds all land), refuse what MDB_SUBSCRIBE
// refuses with the same message, and show prints the key and the reports.
func TestSubscribeCommand(t *testing.T) {
	clearEnv(t)
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	ctx := context.Background()
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cmdSubscribe(ctx, append(append([]string{args[0]}, "-server", srv.ClientURL()), args[1:]...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{srv.ClientURL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	spec := func() string {
		t.Helper()
		kv, err := js.KeyValue(ctx, node.DefaultConfigBucket)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, node.DefaultSubscribeKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(e.Value())
	}

	// No key, no replica: add has no base.
	if code, _, msg := run("add", "binance:trade:ETHUSDT"); code != exitUsage || !strings.Contains(msg, "no replica reports") {
		t.Fatalf("add without base: %d %q", code, msg)
	}
	// A replica reports the MDB_SUBSCRIBE set it runs: add applies to it.
	kv, err := node.EnsureConfigBucket(ctx, js, "", jetstream.FileStorage, 1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(node.SubscribeStatus{Instance: "r1", Source: node.SourceStart, Spec: "binance:trade:BTCUSDT", Units: 1})
	if _, err := kv.Put(ctx, node.StatusKey("r1"), body); err != nil {
		t.Fatal(err)
	}
	if code, out, msg := run("add", "binance:trade:ETHUSDT"); code != exitOK || spec() != "binance:trade:BTCUSDT,ETHUSDT" {
		t.Fatalf("add: %d %q %q, spec %q", code, out, msg, spec())
	}
	if code, _, _ := run("add", "binance:book:BTCUSDT"); code != exitOK || spec() != "binance:trade,book:BTCUSDT;binance:trade:ETHUSDT" {
		t.Fatalf("add book: %d, spec %q", code, spec())
	}
	if code, _, _ := run("remove", "binance:*:ETHUSDT"); code != exitOK || spec() != "binance:trade,book:BTCUSDT" {
		t.Fatalf("remove: %d, spec %q", code, spec())
	}
	if code, _, msg := run("remove", "binance:trade:SOLUSDT"); code != exitUsage || !strings.Contains(msg, "binance:trade:SOLUSDT is not in the spec") {
		t.Fatalf("remove absent: %d %q", code, msg)
	}
	if code, _, msg := run("remove", "binance:*:BTCUSDT"); code != exitUsage || !strings.Contains(msg, "would be empty") {
		t.Fatalf("remove all: %d %q", code, msg)
	}

	// Invalid specs: the message MDB_SUBSCRIBE gives, and the key stays.
	for _, bad := range []string{"binance:trade:BTC.USDT", "kraken:trade:XBTUSD", "binance:trades,quotes:BTCUSDT", "binance:trade"} {
		clearEnv(t)
		t.Setenv("MDB_SUBSCRIBE", bad)
		_, cerr := loadConfig()
		want, ok := strings.CutPrefix(fmt.Sprint(cerr), "configuration: MDB_SUBSCRIBE: ")
		if !ok {
			t.Fatalf("MDB_SUBSCRIBE=%s: %v", bad, cerr)
		}
		for _, action := range []string{"set", "add"} {
			code, _, msg := run(action, bad)
			if code != exitUsage || msg != "mdbridge subscribe "+action+": "+want+"\n" {
				t.Errorf("%s %s: %d %q, want the MDB_SUBSCRIBE message %q", action, bad, code, msg, want)
			}
		}
	}
	// A channel the market lacks fails when a stream is built: refused too.
	if code, _, msg := run("set", "binance:liquidation:BTCUSDT"); code != exitUsage || !strings.Contains(msg, "does not have channel liquidation") {
		t.Fatalf("set liquidation: %d %q", code, msg)
	}
	if spec() != "binance:trade,book:BTCUSDT" {
		t.Fatalf("spec changed by a refused edit: %q", spec())
	}

	// Concurrent adds: compare-and-set keeps every one.
	var wg sync.WaitGroup
	const n = 8
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i], _, _ = run("add", fmt.Sprintf("bybit:trade:S%dUSDT", i))
		})
	}
	wg.Wait()
	got := spec()
	for i := range n {
		if codes[i] != exitOK || !strings.Contains(got, fmt.Sprintf("S%dUSDT", i)) {
			t.Fatalf("concurrent add %d: code %d, spec %q", i, codes[i], got)
		}
	}

	if code, _, _ := run("set", "binance:trade:BTCUSDT", "bybit:book:ETHUSDT"); code != exitOK || spec() != "binance:trade:BTCUSDT;bybit:book:ETHUSDT" {
		t.Fatalf("set: %d, spec %q", code, spec())
	}
	code, out, msg := run("show")
	if code != exitOK || !strings.Contains(out, "binance:trade:BTCUSDT;bybit:book:ETHUSDT") || !strings.Contains(out, "r1") || !strings.Contains(out, "MDB_SUBSCRIBE") {
		t.Fatalf("show: %d %q %q", code, out, msg)
	}
	code, out, _ = run("show", "-json")
	var doc showDoc
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || doc.Spec != "binance:trade:BTCUSDT;bybit:book:ETHUSDT" || len(doc.Replicas) != 1 {
		t.Fatalf("show -json: %d %q", code, out)
	}
	if code, _, _ := run("frobnicate"); code != exitUsage {
		t.Fatalf("unknown action: %d", code)
	}
}
