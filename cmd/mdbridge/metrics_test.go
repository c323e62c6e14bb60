package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qldata/mdbridge/bridge"
	"github.com/qldata/mdbridge/bridge/binance"
	"github.com/qldata/mdbridge/publisher"
)

// exportedMetricsFile lists every mdbridge_* series name the binary exports.
// The chart tests (deploy/helm/charttest, a module of their own) check that
// every metric the PrometheusRule and the Grafana dashboard use is in it;
// TestMetricsEndpoint keeps it equal to a real scrape.
const exportedMetricsFile = "../../deploy/helm/charttest/testdata/exported_metrics.txt"

var updateMetrics = flag.Bool("update-metrics", false, "rewrite "+exportedMetricsFile+" from a scrape")

func TestDataAges(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	st := func(ex, sym string, last int64) bridge.SymbolState {
		return bridge.SymbolState{Exchange: ex, Symbol: sym, LastMessageTS: last}
	}
	got := dataAges([]bridge.SymbolState{
		st("binance", "BTCUSDT", ago(2*time.Second)),
		st("binance", "ETHUSDT", 0),                        // nothing received yet
		st("bybit", "BTCUSDT", ago(1500*time.Millisecond)), // same symbol, other exchange
		st("binance", "BTCUSDT", ago(90*time.Second)),      // a second stream (book) carrying it: the oldest counts
		st("binance", "SOLUSDT", ago(time.Second)),
		st("binance", "SOLUSDT", 0),                               // one of its streams has received nothing: NaN
		st("binance", "XRPUSDT", now.Add(time.Second).UnixNano()), // clock stepped back: 0
	}, now)
	want := []symbolAge{
		{"binance", "BTCUSDT", 90},
		{"binance", "ETHUSDT", math.NaN()},
		{"bybit", "BTCUSDT", 1.5},
		{"binance", "SOLUSDT", math.NaN()},
		{"binance", "XRPUSDT", 0},
	}
	if len(got) != len(want) {
		t.Fatalf("dataAges = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.exchange != w.exchange || g.symbol != w.symbol || !(g.seconds == w.seconds || math.IsNaN(g.seconds) && math.IsNaN(w.seconds)) {
			t.Errorf("dataAges[%d] = %+v, want %+v", i, g, w)
		}
	}
}

// TestDataAgeIsNaNBeforeTheFirstMessage: a stream that has received nothing
// exports its symbols' series as NaN (present, so dashboards list them and
// the stale-data alert matches them).
func TestDataAgeIsNaNBeforeTheFirstMessage(t *testing.T) {
	ex, err := binance.New(binance.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bridge.NewStream(bridge.StreamConfig{Exchange: ex, Symbols: []string{"BTCUSDT", "ETHUSDT"}, Channels: bridge.ChannelTrade}, bridge.HandlerFunc(func(context.Context, []bridge.Event) error { return nil }), nil)

	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fams := gather(t, newStreamCollector([]*bridge.Stream{s}))
	ages := fams["mdbridge_data_age_seconds"]
	if ages == nil || len(ages.Metric) != 2 {
		t.Fatalf("mdbridge_data_age_seconds = %v, want a series per symbol", ages)
	}
	for _, m := range ages.Metric {
		if v := m.GetGauge().GetValue(); !math.IsNaN(v) {
			t.Errorf("%v = %v before any message, want NaN", m.Label, v)
		}
	}
}

// TestMetricsEndpoint runs the bridge in-process against the exchange
// simulator and an embedded NATS server (random port, no HTTP listener: the
// handler is called directly), checks the data age and NATS metrics, and
// compares the exported mdbridge_* names with exportedMetricsFile
// (-update-metrics rewrites it).
func TestMetricsEndpoint(t *testing.T) {
	sim := startSim(t)
	srv, err := publisher.StartEmbedded(publisher.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	clearEnv(t)
	for k, v := range map[string]string{
		"NATS_URL":  srv.ClientURL(),
		"SUBSCRIBE": "binance:trade,book:BTCUSDT,ETHUSDT;bybit:trade,book:BTCUSDT",
		"INSTANCE":  "metrics-test", "HTTP_ADDR": "",
		"BINANCE_WS_URL": sim.BinanceWSURL(), "BINANCE_REST_URL": sim.BinanceRESTURL(),
		"BYBIT_WS_URL": sim.BybitWSURL(), "BYBIT_REST_URL": sim.BybitRESTURL(),
	} {
		t.Setenv(envPrefix+"_"+k, v)
	}
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			a.close()
		}
	})
	h := a.handler()

	symbols := []string{"binance/BTCUSDT", "binance/ETHUSDT", "bybit/BTCUSDT"}
	var fams map[string]*dto.MetricFamily
	waitFor(t, 30*time.Second, "a data age for every symbol", func() (bool, string) {
		fams = scrapeHandler(t, h)
		ages := map[string]float64{}
		for _, m := range fams["mdbridge_data_age_seconds"].GetMetric() {
			ages[label(m, "exchange")+"/"+label(m, "symbol")] = m.GetGauge().GetValue()
		}
		for _, s := range symbols {
			if v, ok := ages[s]; !ok || math.IsNaN(v) {
				return false, fmt.Sprint(ages)
			}
		}
		return len(ages) == len(symbols), fmt.Sprint(ages)
	})
	for _, m := range fams["mdbridge_data_age_seconds"].GetMetric() {
		if v := m.GetGauge().GetValue(); v < 0 || math.IsInf(v, 0) {
			t.Errorf("data age %v = %v", m.Label, v)
		}
	}
	if v := gaugeValue(fams, "mdbridge_nats_connected"); v != 1 {
		t.Errorf("mdbridge_nats_connected = %v while connected, want 1", v)
	}
	checkExportedNames(t, fams)

	// Stopped, the streams keep their last message times: the data age is
	// exactly the scrape clock minus the oldest of them per symbol.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	closed = true
	oldest := map[string]int64{}
	var newest int64
	for _, s := range a.node.Streams() {
		for _, st := range s.States() {
			k := st.Exchange + "/" + st.Symbol
			if o, ok := oldest[k]; !ok || st.LastMessageTS < o {
				oldest[k] = st.LastMessageTS
			}
			newest = max(newest, st.LastMessageTS)
		}
	}
	now := time.Unix(0, newest).Add(42 * time.Second)
	c := newStreamCollector(a.node.Streams())
	c.now = func() time.Time { return now }
	ages := gather(t, c)["mdbridge_data_age_seconds"].GetMetric()
	if len(ages) != len(symbols) {
		t.Fatalf("%d data age series after shutdown, want %d", len(ages), len(symbols))
	}
	for _, m := range ages {
		k := label(m, "exchange") + "/" + label(m, "symbol")
		want := now.Sub(time.Unix(0, oldest[k])).Seconds()
		if got := m.GetGauge().GetValue(); got != want {
			t.Errorf("data age %s = %v, want %v (scrape time minus last message)", k, got, want)
		}
	}
	if v := gaugeValue(scrapeHandler(t, h), "mdbridge_nats_connected"); v != 0 {
		t.Errorf("mdbridge_nats_connected = %v after shutdown, want 0", v)
	}
}

// checkExportedNames compares the scraped mdbridge_* series names (as
// PromQL sees them: a histogram is name_bucket, name_sum and name_count)
// with exportedMetricsFile.
func checkExportedNames(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	var lines []string
	for name, f := range fams {
		if !strings.HasPrefix(name, "mdbridge_") {
			continue // go_*, process_*: vary with the Go version and platform
		}
		typ := strings.ToLower(f.GetType().String())
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				lines = append(lines, name+s+" "+typ)
			}
		case dto.MetricType_SUMMARY:
			for _, s := range []string{"", "_sum", "_count"} {
				lines = append(lines, name+s+" "+typ)
			}
		default:
			lines = append(lines, name+" "+typ)
		}
	}
	slices.Sort(lines)
	got := "# Every mdbridge_* series name /metrics exports, and its type. Generated by\n" +
		"# go test ./cmd/mdbridge -run TestMetricsEndpoint -update-metrics\n" +
		"# (that test fails when this file is out of date); read by deploy/helm/charttest/alerts_test.go.\n" +
		strings.Join(lines, "\n") + "\n"
	if *updateMetrics {
		if err := os.MkdirAll(filepath.Dir(exportedMetricsFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exportedMetricsFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(exportedMetricsFile)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/mdbridge -run TestMetricsEndpoint -update-metrics)", err)
	}
	if string(want) != got {
		t.Errorf("exported metrics differ from %s; if the change is intended, run\n"+
			"  go test ./cmd/mdbridge -run TestMetricsEndpoint -update-metrics\n"+
			"and check the chart's rules and dashboard.\ngot:\n%s\nfile:\n%s", exportedMetricsFile, got, want)
	}
}

func scrapeHandler(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		out[f.GetName()] = f
	}
	return out
}

func gaugeValue(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil || len(f.Metric) != 1 {
		return math.NaN()
	}
	return f.Metric[0].GetGauge().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
