package charttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

// TestAlertsFire evaluates the rendered rules with Prometheus's own rule
// engine (rules.AlertingRule, `for` included) once a minute over 30 minutes
// of synthetic series, and checks which alerts fire, and which do not.
func TestAlertsFire(t *testing.T) {
	_, groups := parseRules(t, "prometheusRule.enabled=true")
	const minutes = 30
	rep := func(v string, n int) string { return strings.TrimSpace(strings.Repeat(v+" ", n)) }
	sel := `job="rel-mdbridge",namespace="md"`
	stale := func(inst, sym, values string) string {
		return fmt.Sprintf("  mdbridge_data_stale{%s,instance=%q,exchange=\"binance\",symbol=%q,channel=\"trade\"} %s\n", sel, inst, sym, values)
	}
	load := "load 1m\n" +
		stale("a", "FRESH", rep("0", minutes+1)) +
		stale("a", "STALE", rep("0", 6)+" "+rep("1", minutes-5)) + // stale from minute 6
		stale("a", "NEVER", rep("1", minutes+1)) + // no message since start
		stale("a", "BLIP", rep("0", 10)+" 1 "+rep("0", minutes-10)) + // one stale scrape: `for` absorbs it
		fmt.Sprintf("  mdbridge_data_stale{job=\"other\",namespace=\"md\",instance=\"z\",exchange=\"binance\",symbol=\"OTHER\",channel=\"trade\"} %s\n", rep("1", minutes+1)) +
		// FAILED flapping with CONNECTING from minute 5 (retries at the maximum delay), shard 1 healthy.
		fmt.Sprintf("  mdbridge_connection_state{%s,instance=\"a\",exchange=\"binance\",shard=\"0\",state=\"FAILED\"} %s %s\n", sel, rep("0", 5), rep("1 0", (minutes+1-5)/2)) +
		fmt.Sprintf("  mdbridge_connection_state{%s,instance=\"a\",exchange=\"binance\",shard=\"1\",state=\"FAILED\"} %s\n", sel, rep("0", minutes+1)) +
		fmt.Sprintf("  mdbridge_publish_dropped_total{%s,instance=\"a\"} %s %s\n", sel, rep("0", 10), rep("5", minutes-9)) + // 5 dropped at minute 10
		fmt.Sprintf("  mdbridge_publish_rejected_total{%s,instance=\"a\"} %s\n", sel, rep("0", minutes+1)) +
		fmt.Sprintf("  mdbridge_publish_abandoned_total{%s,instance=\"a\"} %s\n", sel, rep("0", minutes+1)) +
		fmt.Sprintf("  mdbridge_events_dropped_total{%s,instance=\"a\"} %s\n", sel, rep("0", minutes+1)) +
		fmt.Sprintf("  mdbridge_publish_unverified_total{%s,instance=\"a\"} %s %s\n", sel, rep("0", 10), rep("2", minutes-9)) + // 2 at minute 10
		fmt.Sprintf("  mdbridge_publish_unverified_total{%s,instance=\"b\"} %s\n", sel, rep("0", minutes+1)) +
		fmt.Sprintf("  mdbridge_missing_trades_total{%s,instance=\"a\",exchange=\"bybit\"} %s %s\n", sel, rep("0", 10), rep("1", minutes-9)) +
		fmt.Sprintf("  mdbridge_missing_trades_total{%s,instance=\"a\",exchange=\"binance\"} %s\n", sel, rep("0", minutes+1)) +
		fmt.Sprintf("  mdbridge_nats_connected{%s,instance=\"a\"} %s\n", sel, rep("1", minutes+1)) +
		fmt.Sprintf("  mdbridge_nats_connected{%s,instance=\"b\"} %s %s\n", sel, rep("1", 6), rep("0", minutes-5)) // down from minute 6
	storage := promqltest.LoadedStorage(t, load)
	t.Cleanup(func() { storage.Close() })
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	query := rules.EngineQueryFunc(engine, storage)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// firing[alert][minute] = the firing alerts' distinguishing labels.
	firing := map[string][][]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := promqlParser.ParseExpr(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			ar := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, logger)
			byMinute := make([][]string, minutes+1)
			for m := 0; m <= minutes; m++ {
				ts := time.Unix(0, 0).Add(time.Duration(m) * time.Minute)
				if _, err := ar.Eval(context.Background(), 0, ts, query, &url.URL{}, 0); err != nil {
					t.Fatalf("%s at minute %d: %v", r.Alert, m, err)
				}
				for _, a := range ar.ActiveAlerts() {
					if a.State != rules.StateFiring {
						continue
					}
					if a.Annotations.Get("summary") == "" || strings.Contains(a.Annotations.Get("summary"), "<no value>") {
						t.Errorf("%s: summary %q", r.Alert, a.Annotations.Get("summary"))
					}
					id := a.Labels.Get("instance")
					for _, l := range []string{"exchange", "symbol", "channel", "shard"} {
						if v := a.Labels.Get(l); v != "" {
							id += "/" + v
						}
					}
					byMinute[m] = append(byMinute[m], id)
				}
				slices.Sort(byMinute[m])
			}
			firing[r.Alert] = byMinute
		}
	}
	for _, c := range []struct {
		alert  string
		minute int
		want   []string
	}{
		{"MdbridgeDataStale", 1, nil},                               // NEVER pending since 0 (for: 2m)
		{"MdbridgeDataStale", 2, []string{"a/binance/NEVER/trade"}}, // stale since the start: no message yet
		{"MdbridgeDataStale", 7, []string{"a/binance/NEVER/trade"}}, // STALE pending since 6 (for: 2m)
		{"MdbridgeDataStale", 8, []string{"a/binance/NEVER/trade", "a/binance/STALE/trade"}},
		{"MdbridgeDataStale", minutes, []string{"a/binance/NEVER/trade", "a/binance/STALE/trade"}},
		{"MdbridgePublishUnverified", 9, nil},
		{"MdbridgePublishUnverified", 12, []string{"a"}},
		{"MdbridgePublishUnverified", minutes, []string{"a"}}, // within the 30m window
		{"MdbridgeConnectionFailed", 6, nil},
		{"MdbridgeConnectionFailed", 8, []string{"a/binance/0"}},
		{"MdbridgeConnectionFailed", minutes, []string{"a/binance/0"}},
		{"MdbridgePublishDropped", 9, nil},
		{"MdbridgePublishDropped", 12, []string{"a"}},
		{"MdbridgePublishDropped", minutes, nil}, // nothing dropped in the last 10m
		{"MdbridgePublishRejected", minutes, nil},
		{"MdbridgePublishAbandoned", minutes, nil},
		{"MdbridgeEventsDropped", minutes, nil},
		{"MdbridgeTradesMissing", 12, []string{"a/bybit"}},
		{"MdbridgeNATSDisconnected", 7, nil},
		{"MdbridgeNATSDisconnected", 8, []string{"b"}},
		{"MdbridgeNATSDisconnected", minutes, []string{"b"}},
	} {
		got := firing[c.alert][c.minute]
		if !slices.Equal(got, c.want) {
			t.Errorf("%s firing at minute %d: %v, want %v", c.alert, c.minute, got, c.want)
		}
	}
	for m, ids := range firing["MdbridgeDataStale"] {
		for _, id := range ids {
			if strings.Contains(id, "BLIP") || strings.Contains(id, "FRESH") || strings.Contains(id, "OTHER") {
				t.Errorf("MdbridgeDataStale fired for %s at minute %d", id, m)
			}
		}
	}
}
