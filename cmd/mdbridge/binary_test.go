package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/exsim"
	"github.com/qldata/mdbridge/publisher"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary compiles mdbridge once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mdbridge-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "mdbridge")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// testNATS is an embedded NATS server the test can stop and restart on the
// same port and store.
type testNATS struct {
	t    *testing.T
	port int
	dir  string
	srv  *publisher.Embedded
}

// startNATS starts the server on a port of the kernel's choosing; restarts
// reuse it (Embedded.Port keeps it after Shutdown).
func startNATS(t *testing.T) *testNATS {
	t.Helper()
	n := &testNATS{t: t, port: -1, dir: t.TempDir()}
	n.start()
	n.port = n.srv.Port()
	t.Cleanup(n.stop)
	return n
}

func (n *testNATS) start() {
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: n.port, StoreDir: n.dir}, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.srv = srv
}

func (n *testNATS) stop() {
	if n.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n.srv.Shutdown(ctx)
		cancel()
		n.srv = nil
	}
}

func (n *testNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func startSim(t *testing.T) *exsim.Server {
	t.Helper()
	sim, err := exsim.New(exsim.Config{Markets: []exsim.MarketConfig{
		{Venue: exsim.Binance, Symbol: "BTCUSDT", TradeRate: 50, BookRate: 50},
		{Venue: exsim.Binance, Symbol: "ETHUSDT", TradeRate: 50, BookRate: 50},
		{Venue: exsim.BybitSpot, Symbol: "BTCUSDT", TradeRate: 50, BookRate: 50},
	}, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// boundHTTPPort reads the port the bridge's HTTP server listens on from
// its "mdbridge running" log line (it is started with port 0, so no port
// is picked before the bridge binds it).
func boundHTTPPort(t *testing.T, logs *syncBuffer) int {
	t.Helper()
	port := 0
	waitFor(t, 30*time.Second, "the bridge's HTTP address in its log", func() (bool, string) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct{ Msg, HTTP string }
			if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "mdbridge running" {
				continue
			}
			_, p, err := net.SplitHostPort(l.HTTP)
			if err != nil {
				return false, fmt.Sprintf("http %q: %v", l.HTTP, err)
			}
			port, err = strconv.Atoi(p)
			return err == nil && port > 0, "http " + l.HTTP
		}
		return false, "no \"mdbridge running\" line yet"
	})
	return port
}

// bridgeEnv is the environment of a bridge process wired to sim and NATS.
func bridgeEnv(sim *exsim.Server, natsURL string, httpPort int) []string { // httpPort 0: the kernel picks (see boundHTTPPort)
	env := []string{
		"MDB_NATS_URL=" + natsURL,
		"MDB_SUBSCRIBE=binance:trade,book:BTCUSDT,ETHUSDT;bybit:trade,book:BTCUSDT",
		"MDB_INSTANCE=bin-test",
		"MDB_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(httpPort),
		"MDB_BINANCE_WS_URL=" + sim.BinanceWSURL(), "MDB_BINANCE_REST_URL=" + sim.BinanceRESTURL(),
		"MDB_BYBIT_WS_URL=" + sim.BybitWSURL(), "MDB_BYBIT_REST_URL=" + sim.BybitRESTURL(),
		"MDB_LOG_FORMAT=json",
		"MDB_READY_GRACE=0s",
	}
	return append(cleanEnv(), env...)
}

// cleanEnv is the test's environment without MDB_ variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix+"_") {
			out = append(out, kv)
		}
	}
	return out
}

// syncBuffer is a goroutine-safe log sink for a child process.
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

func readyz(port int) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

func TestBinaryEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	sim := startSim(t)
	ns := startNATS(t)

	var logs syncBuffer
	cmd := exec.Command(bin, "run")
	cmd.Env = bridgeEnv(sim, ns.url(), 0)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs.String())
		}
	}()

	httpPort := boundHTTPPort(t, &logs)
	waitFor(t, 30*time.Second, "/readyz with every connection CONNECTED", func() (bool, string) {
		code, body := readyz(httpPort)
		return code == 200 && strings.Contains(body, "all connections CONNECTED"), fmt.Sprint(code, " ", body)
	})

	// Events arrive on the right subjects with the contract's headers and body.
	nc, err := nats.Connect(ns.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "MD", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]int{} // subject -> Md-Type -> count
	for len(seen) < 3 || seen["md.bybit.BTCUSDT"]["trade"] == 0 || seen["md.binance.ETHUSDT"]["book.delta"] == 0 {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("reading the stream: %v (seen %v)", err, seen)
		}
		ev, err := bridge.DecodeJSON(m.Data())
		if err != nil {
			t.Fatalf("body on %s does not decode: %v: %s", m.Subject(), err, m.Data())
		}
		h := m.Headers()
		if want := "md." + ev.Exchange + "." + ev.Symbol; m.Subject() != want {
			t.Fatalf("event of %s %s on subject %s", ev.Exchange, ev.Symbol, m.Subject())
		}
		if got := h.Get("Nats-Msg-Id"); got != ev.MsgID() {
			t.Fatalf("Nats-Msg-Id %q, body says %q", got, ev.MsgID())
		}
		if got := h.Get("Md-Type"); got != ev.Type.String() {
			t.Fatalf("Md-Type %q, body type %q", got, ev.Type)
		}
		if got := h.Get("Md-Exchange-Ts"); got != strconv.FormatInt(ev.TS, 10) {
			t.Fatalf("Md-Exchange-Ts %q, body ts %d", got, ev.TS)
		}
		if ev.Type == bridge.EventTrade && (ev.Price == "" || ev.Qty == "" || ev.Side == bridge.SideUnknown || ev.ID == "") {
			t.Fatalf("incomplete trade %+v", ev)
		}
		if seen[m.Subject()] == nil {
			seen[m.Subject()] = map[string]int{}
		}
		seen[m.Subject()][ev.Type.String()]++
	}
	t.Logf("stream check: %v", seen)

	// status --json shows CONNECTED for every symbol of this instance.
	out, err := runCLI(t, bin, ns.url(), "status", "-json", "-sample", "0")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var rows []statusRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("status -json output: %v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("status rows = %d, want 3: %s", len(rows), out)
	}
	for _, r := range rows {
		if r.State.State != "CONNECTED" || r.State.Instance != "bin-test" || r.Stale {
			t.Fatalf("status row %+v, want CONNECTED, fresh", r.State)
		}
	}

	// /metrics parses with the Prometheus text parser and counts events.
	families := scrape(t, httpPort)
	for _, name := range []string{"mdbridge_events_received_total", "mdbridge_events_published_total", "mdbridge_events_acked_total",
		"mdbridge_publish_latency_seconds", "mdbridge_ingest_latency_seconds", "mdbridge_connection_state", "mdbridge_clock_offset_seconds",
		"mdbridge_publish_pending_acks", "mdbridge_publish_buffer_messages", "mdbridge_duplicates_dropped_total", "mdbridge_jetstream_duplicates_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if v := metricSum(families["mdbridge_events_acked_total"]); v <= 0 {
		t.Errorf("mdbridge_events_acked_total = %v", v)
	}

	// /readyz flips when NATS goes away and comes back.
	ns.stop()
	waitFor(t, 30*time.Second, "/readyz 503 while NATS is down", func() (bool, string) {
		code, body := readyz(httpPort)
		return code == http.StatusServiceUnavailable, fmt.Sprint(code, " ", body)
	})
	ns.start()
	waitFor(t, 30*time.Second, "/readyz 200 after NATS is back", func() (bool, string) {
		code, body := readyz(httpPort)
		return code == 200, fmt.Sprint(code, " ", body)
	})

	// SIGTERM: exit 0, every received event acked, DISCONNECTED written.
	time.Sleep(time.Second) // pacing: a second of traffic since NATS came back, so there is something to flush
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	var flushed struct {
		Published, Acked, Dropped uint64
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"publisher flushed"`) {
			json.Unmarshal([]byte(line), &flushed)
		}
	}
	if flushed.Published == 0 || flushed.Acked != flushed.Published || flushed.Dropped != 0 {
		t.Fatalf("at exit: published %d acked %d dropped %d; want all acked", flushed.Published, flushed.Acked, flushed.Dropped)
	}
	t.Logf("at exit: published %d, acked %d", flushed.Published, flushed.Acked)
	kv, err := js.KeyValue(ctx, "md_state")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := publisher.ReadStates(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.State.State != "DISCONNECTED" {
			t.Errorf("after shutdown %s is %s, want DISCONNECTED", e.Key, e.State.State)
		}
	}
	if len(entries) != 3 {
		t.Errorf("md_state entries = %d, want 3", len(entries))
	}
}

func runCLI(t *testing.T, bin, natsURL string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), "MDB_NATS_URL="+natsURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

func scrape(t *testing.T, port int) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func TestBadConfigurationExitsBeforeStarting(t *testing.T) {
	bin := buildBinary(t)
	ns := startNATS(t)
	tests := []struct {
		env  []string
		want []string
	}{
		{[]string{"MDB_SUBSCRIBE=kraken:trade:BTCUSD"}, []string{"MDB_SUBSCRIBE", "unknown exchange", "binance, bybit, bybit-linear"}},
		{[]string{"MDB_SUBSCRIBE=binance:trade:BTC.USDT"}, []string{"MDB_SUBSCRIBE", "'.'"}},
		{[]string{"MDB_SUBSCRIBE=okx:trade:BTC*"}, []string{"MDB_SUBSCRIBE", "universes are supported on"}},
		{[]string{"MDB_SUBSCRIBE=binance:trade:BTC>"}, []string{"MDB_SUBSCRIBE", "'>'"}},
		{[]string{"MDB_SUBSCRIBE=binance-trade-BTCUSDT"}, []string{"MDB_SUBSCRIBE", "<exchange>:<channels>:<symbols>"}},
		{[]string{"MDB_DUPLICATE_WINDOW=-2m"}, []string{"MDB_DUPLICATE_WINDOW"}},
		{[]string{"MDB_RESILIENCE_RECONNECT_DELAY=-1s"}, []string{"RECONNECT_DELAY"}},
		{[]string{"MDB_MAX_AGE=soon"}, []string{"MDB_MAX_AGE"}},
		{[]string{"MDB_BUFFER_POLICY=maybe"}, []string{"MDB_BUFFER_POLICY", "block, drop-oldest"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			cmd := exec.Command(bin, "run")
			cmd.Env = append(cleanEnv(), append([]string{"MDB_NATS_URL=" + ns.url(), "MDB_HTTP_ADDR="}, tt.env...)...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exit 0 for %v:\n%s", tt.env, out)
			}
			for _, w := range tt.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
	// Nothing was published: the stream was never created.
	nc, err := nats.Connect(ns.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), "MD"); err == nil {
		t.Fatal("stream MD exists after only bad configurations")
	}

	// An unreachable NATS URL at start exits non-zero, naming it.
	cmd := exec.Command(bin, "run")
	cmd.Env = append(cleanEnv(), "MDB_NATS_URL=nats://127.0.0.1:1", "MDB_NATS_CONNECT_TIMEOUT=2s", "MDB_HTTP_ADDR=")
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("MDB_NATS_URL")) {
		t.Fatalf("unreachable NATS: err %v, output:\n%s", err, out)
	}
}

func TestDemoShowsDataWithinSeconds(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "demo", "-duration", "8s", "-refresh", "2s", "-fault-every", "3s")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	// The last table must show stored events on every subject.
	tables := strings.Split(string(out), "SUBJECT")
	last := tables[len(tables)-1]
	for _, subj := range []string{"md.binance.BTCUSDT", "md.binance.ETHUSDT", "md.bybit.BTCUSDT", "md.bybit.ETHUSDT"} {
		i := strings.Index(last, subj)
		if i < 0 {
			t.Fatalf("%s missing from the demo summary:\n%s", subj, out)
		}
		fields := strings.Fields(last[i:])
		if n, err := strconv.Atoi(fields[1]); err != nil || n == 0 {
			t.Fatalf("%s stored %q events:\n%s", subj, fields[1], out)
		}
	}
	if !strings.Contains(string(out), "acked") {
		t.Fatalf("no publisher line in the demo summary:\n%s", out)
	}
}

// metricSum adds the values of every sample of a counter or gauge family.
func metricSum(f *dto.MetricFamily) float64 {
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.Metric {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}
