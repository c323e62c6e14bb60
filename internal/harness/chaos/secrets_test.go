package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
)

// captureLog is a slog destination that keeps every line (debug level).
type captureLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *captureLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *captureLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// TestSecretsNeverLeak runs a replica against NATS servers requiring a
// token, a user and password, or credentials embedded in the URL, with every
// log line captured at debug level (the embedded server's too), through a
// wrong-credentials attempt, a NATS restart and reconnect, an abrupt kill and
// a restart. The secrets must appear nowhere: not in logs, not in errors,
// not in md_state values, not in the stream, not in formatted configs.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		token    = "tok-9f8e7d6c5b4a-SECRET"
		user     = "mdbridge"
		password = "pw-1a2b3c4d5e6f-SECRET"
	)
	tests := []struct {
		name      string
		configure func(*server.Options)
		conn      publisher.ConnConfig
		url       func(port int) string
		wrong     publisher.ConnConfig
		secrets   []string
	}{
		{
			name:      "token",
			configure: func(o *server.Options) { o.Authorization = token },
			conn:      publisher.ConnConfig{Token: token},
			wrong:     publisher.ConnConfig{Token: token + "-wrong"},
			secrets:   []string{token},
		},
		{
			name:      "user and password",
			configure: func(o *server.Options) { o.Users = []*server.User{{Username: user, Password: password}} },
			conn:      publisher.ConnConfig{User: user, Password: password},
			wrong:     publisher.ConnConfig{User: user, Password: password + "-wrong"},
			secrets:   []string{password},
		},
		{
			name:      "credentials in the URL",
			configure: func(o *server.Options) { o.Users = []*server.User{{Username: user, Password: password}} },
			url:       func(port int) string { return fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", user, password, port) },
			wrong:     publisher.ConnConfig{User: user, Password: password + "-wrong"},
			secrets:   []string{password},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &captureLog{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var errs []string
			note := func(err error) {
				if err != nil {
					errs = append(errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
				}
			}
			ns, err := startNATS(0, t.TempDir(), tt.configure, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer ns.stop()
			url := ns.URL()
			if tt.url != nil {
				url = tt.url(ns.port)
			}
			// Wrong credentials: a clear error, no secret in it.
			wrong := tt.wrong
			wrong.URLs = []string{url}
			if tt.url != nil {
				wrong.URLs = []string{strings.Replace(url, password, password+"-wrong", 1)}
			}
			wrong.ConnectTimeout = 2 * time.Second
			_, err = publisher.Connect(context.Background(), wrong, logger)
			if !errors.Is(err, publisher.ErrAuth) {
				t.Fatalf("wrong credentials: %v, want ErrAuth", err)
			}
			note(err)
			for _, c := range []publisher.ConnConfig{tt.conn, wrong} {
				c.URLs = []string{url}
				js, _ := json.Marshal(c)
				errs = append(errs, fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, js))
				logger.Info("config", "conn", c)
			}

			sim, err := exsim.New(exsim.Config{Markets: []exsim.MarketConfig{{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 20, BookRate: 10}}}, logger)
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			rep := newReplica(replicaConfig{
				index: 0, instance: "secrets", natsURL: url, conn: tt.conn,
				pub:   publisher.Config{Storage: jetstream.MemoryStorage, StateRefresh: 200 * time.Millisecond},
				subs:  []subscription{{exchange: "binance", symbols: []string{"BTCUSDT"}}},
				wsURL: "ws://" + sim.Addr(), restURL: "http://" + sim.Addr(),
				tune:   func(sc *bridge.StreamConfig) { sc.StateInterval = 200 * time.Millisecond },
				logger: logger, rec: newRecorder(),
			})
			ctx := context.Background()
			if err := rep.start(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "events acknowledged", func() bool {
				st, _ := rep.pubStats()
				return st.Acked > 20
			})
			// NATS restart: reconnect logs; memory storage comes back empty,
			// so the replica re-provisions nothing, it just republishes.
			note(ns.stop())
			time.Sleep(300 * time.Millisecond)
			note(ns.start())
			waitFor(t, 15*time.Second, "publishing after the restart", func() bool {
				st, _ := rep.pubStats()
				return st.BufferedMsgs == 0 && st.Acked > 40
			})
			rep.kill()
			note(rep.start(ctx))
			waitFor(t, 10*time.Second, "the restarted replica publishing", func() bool {
				st, _ := rep.pubStats()
				return st.Acked > 20
			})
			// Read md_state and the stream back with the good credentials.
			rc := tt.conn
			rc.URLs = []string{url}
			nc, err := publisher.Connect(ctx, rc, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, publisher.DefaultKVBucket)
			if err != nil {
				t.Fatal(err)
			}
			var state bytes.Buffer
			waitFor(t, 10*time.Second, "md_state entries", func() bool {
				keys, err := kv.Keys(ctx)
				if err != nil || len(keys) == 0 {
					return false
				}
				state.Reset()
				for _, k := range keys {
					if e, err := kv.Get(ctx, k); err == nil {
						state.WriteString(k + "=" + string(e.Value()) + "\n")
					}
				}
				return true
			})
			var stream bytes.Buffer
			n, err := readStream(ctx, nc, publisher.DefaultStream, func(m *StreamMsg, _ error) {
				stream.WriteString(m.Subject + " " + m.MsgID + " ")
				stream.Write(m.Event.AppendJSON(nil))
			})
			if err != nil || n == 0 {
				t.Fatalf("stream: %d messages, %v", n, err)
			}
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err = rep.shutdown(sctx)
			note(err)
			for _, e := range rep.history {
				errs = append(errs, e.Errors...)
			}

			out := map[string]string{
				"logs": logs.String(), "errors": strings.Join(errs, "\n"),
				"md_state": state.String(), "stream": stream.String(),
			}
			if !strings.Contains(out["logs"], "NATS reconnected") && !strings.Contains(out["logs"], "reconnect") {
				t.Errorf("the logs do not show the reconnect the test meant to exercise")
			}
			if !strings.Contains(out["md_state"], `"state"`) {
				t.Errorf("md_state values missing: %q", out["md_state"])
			}
			for where, text := range out {
				for _, s := range tt.secrets {
					if i := strings.Index(text, s); i >= 0 {
						lo, hi := max(0, i-200), min(len(text), i+len(s)+50)
						t.Errorf("secret found in %s: ...%s...", where, text[lo:hi])
					}
				}
			}
			t.Logf("checked %d bytes of logs, %d of errors, %d of md_state, %d of stream", len(out["logs"]), len(out["errors"]), len(out["md_state"]), len(out["stream"]))
		})
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
