package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/publisher"
)

// putState writes an md_state entry for exchange/symbol on instance "a".
func putState(t *testing.T, kv jetstream.KeyValue, symbol string, msgs uint64) {
	t.Helper()
	key, err := publisher.StateKey("binance", symbol, "a")
	if err != nil {
		t.Fatal(err)
	}
	st := bridge.SymbolState{Exchange: "binance", Symbol: symbol, Instance: "a", State: "CONNECTED", Updated: time.Now(), Since: time.Now(),
		Counters: bridge.Counters{Messages: msgs}}
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "put "+key, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := kv.Put(ctx, key, body)
		return err == nil, fmt.Sprint(err)
	})
}

// TestStatusWatchAfterReconnect: `status -watch` survives a NATS restart
// (same port and store): it keeps the last table with a "reconnecting"
// line while the connection is down, watches again once it is back, and
// shows an entry written after the restart.
func TestStatusWatchAfterReconnect(t *testing.T) {
	clearEnv(t)
	srv := startNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{srv.url()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := publisher.EnsureStateBucket(ctx, js, publisher.Config{KVBucket: "md_state", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	putState(t, kv, "BTCUSDT", 10)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cmdStatus(ctx, []string{"-watch", "-interval", "50ms", "-server", srv.url()}, &stdout, &stderr)
	}()
	shows := func(what, s string) {
		t.Helper()
		waitFor(t, 40*time.Second, what, func() (bool, string) {
			select {
			case code := <-done:
				t.Fatalf("status -watch ended (exit %d) before %s; stderr %q", code, what, stderr.String())
			default:
			}
			out := stdout.String()
			return strings.Contains(lastScreen(out), s), "last screen " + lastScreen(out) + " stderr " + stderr.String()
		})
	}
	shows("the entry before the restart", "BTCUSDT")
	srv.stop()
	shows("the reconnecting line while NATS is down", "reconnecting")
	if !strings.Contains(lastScreen(stdout.String()), "BTCUSDT") {
		t.Fatalf("the last table is gone while reconnecting: %q", lastScreen(stdout.String()))
	}
	srv.start()
	putState(t, kv, "ETHUSDT", 20)
	shows("the entry written after the restart", "ETHUSDT")
	if s := lastScreen(stdout.String()); strings.Contains(s, "reconnecting") || !strings.Contains(s, "BTCUSDT") {
		t.Fatalf("after the reconnect: %q", s)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// lastScreen is the output since the last clear-screen sequence.
func lastScreen(out string) string {
	if i := strings.LastIndex(out, "\033[H\033[2J"); i >= 0 {
		return out[i:]
	}
	return out
}

// TestTailAfterReconnect: `tail` survives a NATS restart (same port and
// store): it says it is reconnecting, and prints the events published
// after the restart, each once, in order.
func TestTailAfterReconnect(t *testing.T) {
	clearEnv(t)
	srv := startNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, err := publisher.Connect(ctx, publisher.ConnConfig{URLs: []string{srv.url()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MD", Subjects: []string{"md.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		t.Helper()
		ev := bridge.Event{Type: bridge.EventTrade, Exchange: "binance", Symbol: "BTCUSDT", TS: 1, RecvTS: 1, ID: id, Price: "1", Qty: "1", Side: bridge.SideBuy}
		waitFor(t, time.Minute, "publish trade "+id, func() (bool, string) {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := js.Publish(pctx, "md.binance.BTCUSDT", ev.AppendJSON(nil))
			return err == nil, fmt.Sprint(err)
		})
	}
	publish("t1")
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cmdTail(ctx, []string{"-all", "-server", srv.url(), "md.binance.BTCUSDT"}, &stdout, &stderr)
	}()
	prints := func(what string, cond func(out, errs string) bool) {
		t.Helper()
		waitFor(t, 40*time.Second, what, func() (bool, string) {
			select {
			case code := <-done:
				t.Fatalf("tail ended (exit %d) before %s; stdout %q stderr %q", code, what, stdout.String(), stderr.String())
			default:
			}
			return cond(stdout.String(), stderr.String()), "stdout " + stdout.String() + " stderr " + stderr.String()
		})
	}
	prints("the trade before the restart", func(out, _ string) bool { return strings.Contains(out, "trade t1 ") })
	srv.stop()
	prints("the reconnecting line", func(_, errs string) bool { return strings.Contains(errs, "reconnecting") })
	srv.start()
	publish("t2")
	publish("t3")
	prints("the trades published after the restart", func(out, _ string) bool { return strings.Contains(out, "trade t3 ") })
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	if strings.Count(out, "trade t1 ") != 1 || strings.Count(out, "trade t2 ") != 1 || strings.Count(out, "trade t3 ") != 1 ||
		strings.Index(out, "trade t2 ") > strings.Index(out, "trade t3 ") {
		t.Fatalf("each trade once, in order: %q", out)
	}
}
