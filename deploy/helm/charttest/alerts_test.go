package charttest

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// exportedMetricsFile lists the mdbridge_* series the binary exports; the
// cmd/mdbridge test TestMetricsEndpoint keeps it equal to a real scrape.
const exportedMetricsFile = "testdata/exported_metrics.txt"

func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(exportedMetricsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[strings.Fields(line)[0]] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("%s lists %d metrics; regenerate it with go test ./cmd/mdbridge -run TestMetricsEndpoint -update-metrics", exportedMetricsFile, len(names))
	}
	return names
}

var promqlParser = parser.NewParser(parser.Options{})

// selectors parses a PromQL expression and returns its vector selectors.
// Every selector must name its metric (no {__name__=~...}), so that the
// name can be checked.
func selectors(t *testing.T, expr string) []*parser.VectorSelector {
	t.Helper()
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Fatalf("PromQL does not parse: %v\n%s", err, expr)
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("selector %s names no metric: %s", vs, expr)
			}
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// parseRules renders the chart with sets and returns the PrometheusRule's
// object and its groups, parsed and validated by Prometheus's own rule file
// parser (rulefmt: YAML, PromQL, durations, label names, templates).
func parseRules(t *testing.T, sets ...string) (*unstructured.Unstructured, *rulefmt.RuleGroups) {
	t.Helper()
	docs := render(t, sets...)
	doc, ok := docs["PrometheusRule/rel-mdbridge"]
	if !ok {
		t.Fatalf("no PrometheusRule rendered with %v; have %v", sets, keysOf(docs))
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(doc, &u.Object); err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %q", u.GetAPIVersion())
	}
	spec, err := yaml.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promqlParser, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(errs) > 0 {
		t.Fatalf("Prometheus rejects the rules: %v\n%s", errs, spec)
	}
	return &u, groups
}

var allAlerts = []string{
	"MdbridgeConnectionFailed", "MdbridgeDataStale", "MdbridgeEventsDropped", "MdbridgeNATSDisconnected",
	"MdbridgePublishAbandoned", "MdbridgePublishDropped", "MdbridgePublishRejected", "MdbridgePublishUnverified",
	"MdbridgeTradesMissing",
}

func TestPrometheusRuleParsesAndUsesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	u, groups := parseRules(t, "prometheusRule.enabled=true", "prometheusRule.labels.release=kps")
	if u.GetLabels()["release"] != "kps" || u.GetLabels()["app.kubernetes.io/instance"] != "rel" {
		t.Errorf("PrometheusRule labels = %v", u.GetLabels())
	}
	rules := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("recording rule %q: only alerts expected", r.Record)
				continue
			}
			rules[r.Alert] = r
		}
	}
	var names []string
	for name := range rules {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, allAlerts) {
		t.Errorf("alerts = %v, want %v", names, allAlerts)
	}
	for name, r := range rules {
		if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no severity, summary or description: %+v", name, r)
		}
		for _, vs := range selectors(t, r.Expr) {
			if !exported[vs.Name] {
				t.Errorf("%s uses %s, which mdbridge does not export (%s)", name, vs.Name, exportedMetricsFile)
			}
			// Scoped to the release's targets (the ServiceMonitor's job).
			if !hasMatcher(vs, "job", "rel-mdbridge") || !hasMatcher(vs, "namespace", "md") {
				t.Errorf("%s: selector %s is not limited to job rel-mdbridge in namespace md", name, vs)
			}
		}
	}
	for name, want := range map[string]string{
		"MdbridgeDataStale": "2m", "MdbridgeConnectionFailed": "2m", "MdbridgeNATSDisconnected": "2m",
	} {
		if got := rules[name].For.String(); got != want {
			t.Errorf("%s for = %s, want %s", name, got, want)
		}
	}
	// The bridge's own per-channel verdict, so staleness.channels applies.
	if e := rules["MdbridgeDataStale"].Expr; !strings.Contains(e, "mdbridge_data_stale{") || !strings.Contains(e, "== 1") {
		t.Errorf("MdbridgeDataStale must fire on the per-channel stale gauge: %s", e)
	}
	if e := rules["MdbridgePublishUnverified"].Expr; !strings.Contains(e, "increase(mdbridge_publish_unverified_total{") {
		t.Errorf("MdbridgePublishUnverified: %s", e)
	}
	if e := rules["MdbridgeConnectionFailed"].Expr; !strings.Contains(e, `state="FAILED"`) {
		t.Errorf("MdbridgeConnectionFailed: %s", e)
	}
}

func TestPrometheusRuleValuesReachTheRules(t *testing.T) {
	_, groups := parseRules(t, "prometheusRule.enabled=true",
		"prometheusRule.selector=job=\"md-bridge\"",
		"prometheusRule.rules.staleData.for=10m",
		"prometheusRule.rules.staleData.severity=warning",
		"prometheusRule.rules.publishDrops.window=30m",
		"prometheusRule.rules.publishDrops.threshold=5",
		"prometheusRule.rules.missingTrades.threshold=3",
		"prometheusRule.rules.publishUnverified.window=2h",
		"prometheusRule.rules.natsDisconnected.enabled=false",
		"prometheusRule.rules.connectionFailed.enabled=false",
	)
	rules := map[string]rulefmt.Rule{}
	for _, r := range groups.Groups[0].Rules {
		rules[r.Alert] = r
	}
	if _, ok := rules["MdbridgeNATSDisconnected"]; ok {
		t.Error("MdbridgeNATSDisconnected rendered while disabled")
	}
	if _, ok := rules["MdbridgeConnectionFailed"]; ok {
		t.Error("MdbridgeConnectionFailed rendered while disabled")
	}
	st := rules["MdbridgeDataStale"]
	if st.For.String() != "10m" || st.Labels["severity"] != "warning" {
		t.Errorf("MdbridgeDataStale = %+v", st)
	}
	if e := rules["MdbridgePublishDropped"].Expr; !strings.Contains(e, "[30m]) > 5") {
		t.Errorf("MdbridgePublishDropped: %s", e)
	}
	if e := rules["MdbridgePublishUnverified"].Expr; !strings.Contains(e, "[2h]) > 0") {
		t.Errorf("MdbridgePublishUnverified: %s", e)
	}
	if e := rules["MdbridgeTradesMissing"].Expr; !strings.Contains(e, "[15m]) > 3") {
		t.Errorf("MdbridgeTradesMissing: %s", e)
	}
	for name, r := range rules {
		for _, vs := range selectors(t, r.Expr) {
			if !hasMatcher(vs, "job", "md-bridge") || hasLabel(vs, "namespace") {
				t.Errorf("%s: selector %s does not use prometheusRule.selector", name, vs)
			}
		}
	}
}

func TestEveryAlertDisabledLeavesAnEmptyGroup(t *testing.T) {
	sets := []string{"prometheusRule.enabled=true"}
	for _, r := range []string{"staleData", "connectionFailed", "publishDrops", "publishUnverified", "missingTrades", "natsDisconnected"} {
		sets = append(sets, "prometheusRule.rules."+r+".enabled=false")
	}
	u, groups := parseRules(t, sets...)
	if len(groups.Groups) != 1 || len(groups.Groups[0].Rules) != 0 {
		t.Errorf("groups = %+v, want one empty group", groups.Groups)
	}
	g, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
	if len(g) != 1 {
		t.Fatalf("spec.groups = %v", g)
	}
	if r, ok := g[0].(map[string]any)["rules"].([]any); !ok || len(r) != 0 {
		t.Errorf("rules = %#v, want [] (the CRD wants an array, not null)", g[0].(map[string]any)["rules"])
	}
}

func TestMonitoringIsOptional(t *testing.T) {
	docs := render(t)
	for _, k := range []string{"PrometheusRule/rel-mdbridge", "ConfigMap/rel-mdbridge-dashboard"} {
		if _, ok := docs[k]; ok {
			t.Errorf("%s rendered by default", k)
		}
	}
}

// grafanaVars replaces the dashboard's variables with values that make its
// queries plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$job", "rel-mdbridge", "$exchange", "binance")

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

func TestDashboardUsesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	docs := render(t, "grafanaDashboard.enabled=true", "grafanaDashboard.annotations.grafana_folder=Market data")
	cm := decode[corev1.ConfigMap](t, docs, "ConfigMap/rel-mdbridge-dashboard")
	if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Market data" || cm.Namespace != "md" {
		t.Errorf("dashboard ConfigMap metadata: labels %v, annotations %v, namespace %q", cm.Labels, cm.Annotations, cm.Namespace)
	}
	raw, ok := cm.Data["mdbridge.json"]
	if !ok || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap data = %d keys, want mdbridge.json only", len(cm.Data))
	}
	var dash struct {
		UID        string
		Title      string
		Templating struct {
			List []struct {
				Name  string
				Type  string
				Query json.RawMessage
			}
		}
		Panels []panel
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard uid %q title %q", dash.UID, dash.Title)
	}

	var exprs []string
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(<selector>, <label>)", v.Name, q.Query)
		}
		exprs = append(exprs, m[1])
	}
	titles := map[string]bool{}
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			titles[p.Title] = true
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && (p.Datasource.UID != "${datasource}" || len(p.Targets) == 0) {
				t.Errorf("panel %q: datasource %+v, %d targets", p.Title, p.Datasource, len(p.Targets))
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, want := range []string{
		"Messages/s", "Data age by symbol and channel", "Stale channels", "Connection states", "Gaps, missing trades, duplicates",
		"Publisher buffer", "Publisher drops and failures", "NATS status",
	} {
		if !titles[want] {
			t.Errorf("no panel %q; have %v", want, titles)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, vs := range selectors(t, grafanaVars.Replace(e)) {
			used[vs.Name] = true
			if !exported[vs.Name] {
				t.Errorf("dashboard query uses %s, which mdbridge does not export (%s): %s", vs.Name, exportedMetricsFile, e)
			}
		}
	}
	for _, m := range []string{"mdbridge_data_age_seconds", "mdbridge_data_stale", "mdbridge_stale_alerts_total", "mdbridge_connection_state", "mdbridge_nats_connected", "mdbridge_publish_buffer_messages", "mdbridge_missing_trades_total"} {
		if !used[m] {
			t.Errorf("dashboard does not show %s", m)
		}
	}
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource struct{ Type, UID string }
	Targets    []struct{ Expr string }
	Panels     []panel
}

func TestSchemaRejectsBadAlertValues(t *testing.T) {
	for set, path := range map[string]string{
		"prometheusRule.rules.staleData.thresholdSeconds=60": "thresholdSeconds", // replaced by staleness.after
		"staleness.after=0":                                   "after",
		"staleness.after=-1m":                                 "after",
		"staleness.after=soon":                                "after",
		"staleness.channels.book=0s":                          "book",
		"staleness.channels.trade=5 minutes":                  "trade",
		"prometheusRule.rules.publishUnverified.threshold=-1": "publishUnverified/threshold",
		"prometheusRule.rules.staleData.for=3 minutes":        "staleData/for",
		"prometheusRule.rules.publishDrops.window=0m":         "publishDrops/window",
		"prometheusRule.rules.publishDrops.threshold=-1":      "publishDrops/threshold",
		"prometheusRule.rules.missingTrades.threshold=1.5":    "missingTrades/threshold",
		"prometheusRule.rules.natsDisconnected.severity=page": "natsDisconnected/severity",
		"prometheusRule.rules.noSuchRule.enabled=true":        "noSuchRule",
		"prometheusRule.selector=job=\"x\"}":                  "selector",
		"grafanaDashboard.namespace=Monitoring":               "namespace",
		"grafanaDashboard.enabled=yes":                        "enabled",
	} {
		t.Run(set, func(t *testing.T) {
			out, err := helmTemplate(t, "prometheusRule.enabled=true", "grafanaDashboard.enabled=true", set)
			if err == nil {
				t.Fatalf("helm template accepted --set %s", set)
			}
			if !strings.Contains(string(out), "schema") || !strings.Contains(string(out), path) {
				t.Fatalf("rejected without naming %s: %s", path, out)
			}
		})
	}
}

func TestHelmLintWithMonitoring(t *testing.T) {
	out, err := exec.Command(helmBin(t), "lint", chartDir, "--strict",
		"--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true", "--set", "serviceMonitor.enabled=true").CombinedOutput()
	if err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

func hasMatcher(vs *parser.VectorSelector, name, value string) bool {
	for _, m := range vs.LabelMatchers {
		if m.Name == name && m.Type == labels.MatchEqual && m.Value == value {
			return true
		}
	}
	return false
}

func hasLabel(vs *parser.VectorSelector, name string) bool {
	for _, m := range vs.LabelMatchers {
		if m.Name == name {
			return true
		}
	}
	return false
}
