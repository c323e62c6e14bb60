//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/qldata/mdbridge/exsim"
)

// The simulated markets and what the bridges subscribe to: every venue,
// trades and books, so trades of all three id schemes are checked.
const (
	simSymbols   = "BTCUSDT,ETHUSDT"
	simTradeRate = 25 // trades per second per market
	simBookRate  = 10 // book updates per second per market
	subscribe    = "binance:trade,book:BTCUSDT,ETHUSDT;bybit:trade,book:BTCUSDT;bybit-linear:trade:ETHUSDT"
)

// market is one subscribed market whose trades are checked.
type market struct {
	venue  exsim.Venue
	symbol string
}

func (m market) String() string { return string(m.venue) + "/" + m.symbol }

// tradeMarkets are the markets of subscribe with trades.
var tradeMarkets = []market{
	{exsim.Binance, "BTCUSDT"}, {exsim.Binance, "ETHUSDT"},
	{exsim.BybitSpot, "BTCUSDT"}, {exsim.BybitLinear, "ETHUSDT"},
}

// ---- NATS ----

// natsNode starts one NATS server with JetStream. With peers (all cluster
// member names, this one included) it joins a cluster over the network.
func (l *lab) natsNode(name string, nw *testcontainers.DockerNetwork, peers []string) *node {
	l.t.Helper()
	cmd := []string{"--server_name", name, "--jetstream", "--store_dir", "/data", "--http_port", "8222"}
	if len(peers) > 0 {
		routes := make([]string, len(peers))
		for i, p := range peers {
			routes[i] = "nats://" + p + ":6222"
		}
		// no_advertise: clients (the test, on 127.0.0.1) use the URLs they
		// were given, not the servers' container addresses.
		cmd = append(cmd, "--cluster_name", "md", "--cluster", "nats://0.0.0.0:6222",
			"--routes", strings.Join(routes, ","), "--no_advertise")
	}
	return l.start(spec{
		role: name, image: natsImage, cmd: cmd,
		networks: []attach{{nw, []string{name}}},
		ports:    []string{"4222/tcp"},
		wait:     wait.ForLog("Server is ready").WithStartupTimeout(60 * time.Second),
	})
}

// connectNATS connects the test to NATS servers through their published
// ports and waits until JetStream answers (a cluster has elected its meta
// leader).
func (l *lab) connectNATS(servers ...*node) (*nats.Conn, jetstream.JetStream) {
	l.t.Helper()
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = "nats://" + s.endpoint("4222/tcp")
	}
	return l.connectURL(urls...)
}

// connectURL connects the test to NATS at urls and waits until JetStream
// answers.
func (l *lab) connectURL(urls ...string) (*nats.Conn, jetstream.JetStream) {
	l.t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("e2e-test"),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.Timeout(2*time.Second),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		l.t.Fatalf("connect to NATS %v: %v", urls, err)
	}
	l.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		l.t.Fatal(err)
	}
	waitFor(l.t, 60*time.Second, "JetStream available", func() error {
		ctx, cancel := context.WithTimeout(l.ctx, 3*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
	return nc, js
}

// ---- simulator ----

// simNode starts `mdbridge sim` listening on the container's network,
// reachable as "sim" on nw and through a published port (admin API), with
// the markets of simMarketConfigs.
func (l *lab) simNode(nw *testcontainers.DockerNetwork, seed uint64) (*node, *simClient) {
	l.t.Helper()
	return l.simNodeMarkets(nw, seed, "")
}

// simNodeMarkets is simNode with the markets of a `mdbridge sim -markets`
// spec (exsim.ParseMarkets; simTradeRate and simBookRate where it gives no
// rates) instead of simSymbols on every venue, when marketSpec is not
// empty.
func (l *lab) simNodeMarkets(nw *testcontainers.DockerNetwork, seed uint64, marketSpec string) (*node, *simClient) {
	l.t.Helper()
	markets := simMarketConfigs()
	sel := []string{"-symbols", simSymbols}
	if marketSpec != "" {
		var err error
		if markets, err = exsim.ParseMarkets(marketSpec, simTradeRate, simBookRate); err != nil {
			l.t.Fatalf("simulator markets: %v", err)
		}
		sel = []string{"-markets", marketSpec}
	}
	cmd := append([]string{"sim", "-listen", "0.0.0.0:9000", "-any-addr"}, sel...)
	cmd = append(cmd, "-rate", strconv.Itoa(simTradeRate), "-book-rate", strconv.Itoa(simBookRate),
		"-seed", strconv.FormatUint(seed, 10))
	n := l.start(spec{
		role: "sim", image: bridgeImage, cmd: cmd,
		networks: []attach{{nw, []string{"sim"}}},
		ports:    []string{"9000/tcp"},
		wait:     wait.ForHTTP("/api/v3/ping").WithPort("9000/tcp").WithStartupTimeout(60 * time.Second),
	})
	sc := &simClient{base: "http://" + n.endpoint("9000/tcp"), hc: &http.Client{Timeout: 10 * time.Second}, seed: seed, markets: markets}
	ref, err := exsim.New(exsim.Config{Seed: seed, Markets: markets}, nil)
	if err != nil {
		l.t.Fatalf("reference simulator: %v", err)
	}
	sc.ref = ref
	return n, sc
}

// simMarketConfigs mirrors the markets `mdbridge sim -symbols simSymbols`
// creates (every symbol on every venue).
func simMarketConfigs() []exsim.MarketConfig {
	var out []exsim.MarketConfig
	for sym := range strings.SplitSeq(simSymbols, ",") {
		for _, v := range exsim.Venues() {
			out = append(out, exsim.MarketConfig{Venue: v, Symbol: sym, TradeRate: simTradeRate, BookRate: simBookRate})
		}
	}
	return out
}

// simClient talks to the simulator's admin API.
type simClient struct {
	base string
	hc   *http.Client
	seed uint64
	// markets are the simulator's markets.
	markets []exsim.MarketConfig
	// ref is an unstarted simulator with the same seed and markets: it maps
	// Bybit wire trade ids back to the ordinals the ground truth records.
	ref *exsim.Server
}

func (s *simClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sim %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// truth returns the simulator's ground truth of one market.
func (s *simClient) truth(ctx context.Context, m market) (exsim.Truth, error) {
	var tr exsim.Truth
	q := url.Values{"venue": {string(m.venue)}, "symbol": {m.symbol}}
	err := s.do(ctx, http.MethodGet, "/admin/truth?"+q.Encode(), nil, &tr)
	return tr, err
}

// book returns the simulator's current order book of one market.
func (s *simClient) book(ctx context.Context, m market) (exsim.BookSnapshot, error) {
	var b exsim.BookSnapshot
	q := url.Values{"venue": {string(m.venue)}, "symbol": {m.symbol}}
	err := s.do(ctx, http.MethodGet, "/admin/book?"+q.Encode(), nil, &b)
	return b, err
}

// generated returns the trade ids (Binance) or ordinals (Bybit) generated
// so far per market.
func (s *simClient) generated(t *testing.T, ms []market) map[market]exsim.Range {
	t.Helper()
	out := map[market]exsim.Range{}
	for _, m := range ms {
		tr, err := s.truth(t.Context(), m)
		if err != nil {
			t.Fatalf("ground truth %s: %v", m, err)
		}
		out[m] = tr.Get(exsim.SeriesTrade).Generated
	}
	return out
}

// stop sets every market's rates to zero: no new events, so the stream can
// catch up with a fixed ground truth.
func (s *simClient) stop(t *testing.T) {
	t.Helper()
	for _, mc := range s.markets {
		body := map[string]any{"venue": mc.Venue, "symbol": mc.Symbol, "trade_rate": 0, "book_rate": 0}
		if err := s.do(t.Context(), http.MethodPost, "/admin/rates", body, nil); err != nil {
			t.Fatalf("stop the simulator: %v", err)
		}
	}
	// POST /admin/rates returns once no generator tick at the old rates is
	// running (exsim SetRates), so the ground truth read next is final;
	// readers wait for the stream to reach it.
	t.Log("simulator stopped generating")
}

// ordinal maps a trade id as published to the number the ground truth
// records: the id itself on Binance, the ordinal on Bybit.
func (s *simClient) ordinal(m market, id string) (int64, bool) {
	if m.venue == exsim.Binance {
		n, err := strconv.ParseInt(id, 10, 64)
		return n, err == nil
	}
	return s.ref.BybitTradeOrdinal(m.venue, m.symbol, id)
}

// ---- bridge ----

// bridgeOpts configures one bridge container.
type bridgeOpts struct {
	instance string
	natsURL  string
	networks []attach
	env      map[string]string
}

// bridgeNode starts `mdbridge run` against the simulator (alias "sim") and
// waits for /readyz.
func (l *lab) bridgeNode(o bridgeOpts) *node {
	l.t.Helper()
	env := map[string]string{
		"MDB_NATS_URL":             o.natsURL,
		"MDB_SUBSCRIBE":            subscribe,
		"MDB_INSTANCE":             o.instance,
		"MDB_BINANCE_WS_URL":       "ws://sim:9000",
		"MDB_BINANCE_REST_URL":     "http://sim:9000",
		"MDB_BYBIT_WS_URL":         "ws://sim:9000",
		"MDB_BYBIT_REST_URL":       "http://sim:9000",
		"MDB_LOG_FORMAT":           "text",
		"MDB_NATS_CONNECT_TIMEOUT": "30s",
	}
	for k, v := range o.env {
		env[k] = v
	}
	return l.start(spec{
		role: o.instance, image: bridgeImage, cmd: []string{"run"}, env: env,
		networks: o.networks,
		ports:    []string{"8080/tcp"},
		wait:     wait.ForHTTP("/readyz").WithPort("8080/tcp").WithStartupTimeout(90 * time.Second),
	})
}

// ---- helpers ----

// waitFor polls f until it returns nil, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runFor lets the system run for d, logging the stream's message count
// every 5 s so a long run shows it is alive.
func runFor(t *testing.T, js jetstream.JetStream, d time.Duration, phase string) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		time.Sleep(min(left, 5*time.Second))
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		var msgs string
		if st, err := js.Stream(ctx, "MD"); err != nil {
			msgs = "unknown (" + err.Error() + ")"
		} else if info, err := st.Info(ctx); err != nil {
			msgs = "unknown (" + err.Error() + ")"
		} else {
			msgs = strconv.FormatUint(info.State.Msgs, 10)
		}
		cancel()
		t.Logf("%s: %s left, stream MD holds %s messages", phase, time.Until(end).Round(time.Second), msgs)
	}
}

// metrics scrapes the bridge's /metrics and returns the unlabelled samples
// (the publisher's counters and gauges).
func (n *node) metrics() (map[string]float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + n.endpoint("8080/tcp") + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// checkPublisher logs the bridge's publish counters and fails the test if
// it dropped or rejected anything or still holds unacknowledged messages.
// It returns the counters.
func (n *node) checkPublisher(t *testing.T) map[string]float64 {
	t.Helper()
	var m map[string]float64
	waitFor(t, 30*time.Second, n.role+" publish buffer drained", func() error {
		var err error
		if m, err = n.metrics(); err != nil {
			return err
		}
		if v := m["mdbridge_publish_buffer_messages"]; v != 0 {
			return fmt.Errorf("%v messages still buffered", v)
		}
		return nil
	})
	t.Logf("%s publisher: published %.0f, acked %.0f, jetstream duplicates %.0f, retries %.0f, failures %.0f, dropped %.0f, rejected %.0f",
		n.role, m["mdbridge_events_published_total"], m["mdbridge_events_acked_total"], m["mdbridge_jetstream_duplicates_total"],
		m["mdbridge_publish_retries_total"], m["mdbridge_publish_failures_total"], m["mdbridge_publish_dropped_total"], m["mdbridge_publish_rejected_total"])
	if _, ok := m["mdbridge_events_published_total"]; !ok {
		t.Errorf("%s: /metrics has no mdbridge_events_published_total", n.role)
	}
	if m["mdbridge_publish_dropped_total"] != 0 || m["mdbridge_publish_rejected_total"] != 0 {
		t.Errorf("%s dropped %.0f and rejected %.0f messages", n.role, m["mdbridge_publish_dropped_total"], m["mdbridge_publish_rejected_total"])
	}
	return m
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
