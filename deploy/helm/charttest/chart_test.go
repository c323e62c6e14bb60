// Package charttest renders the mdbridge Helm chart with `helm template` and
// checks the manifests as Kubernetes API types. It is a module of its own so
// that k8s.io/api stays out of mdbridge's dependencies; .ci/run runs it with
// a helm binary built from the module proxy (HELM=path or helm on PATH).
package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const chartDir = "../mdbridge"

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm not found: install it with `go install helm.sh/helm/v3/cmd/helm@latest` or set HELM=/path/to/helm (.ci/run does this)")
	}
	return h
}

// render runs helm template with the given --set values and returns the
// documents keyed by "Kind/name".
func render(t *testing.T, sets ...string) map[string][]byte {
	t.Helper()
	out, err := helmTemplate(t, sets...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", sets, err, out)
	}
	docs := map[string][]byte{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if u.Object == nil {
			continue
		}
		docs[u.GetKind()+"/"+u.GetName()] = doc
	}
	return docs
}

func helmTemplate(t *testing.T, sets ...string) ([]byte, error) {
	args := []string{"template", "rel", chartDir, "--namespace", "md"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helmBin(t), args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}

func decode[T any](t *testing.T, docs map[string][]byte, key string) *T {
	t.Helper()
	doc, ok := docs[key]
	if !ok {
		t.Fatalf("no %s in rendered chart; have %v", key, keysOf(docs))
	}
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s does not decode strictly into %T: %v", key, v, err)
	}
	return v
}

func TestDefaultsAreSecureAndComplete(t *testing.T) {
	docs := render(t)
	d := decode[appsv1.Deployment](t, docs, "Deployment/rel-mdbridge")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %v, want 3 (partitioned, redundancy 2)", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("service account token must not be mounted")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context not restricted: %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container security context not restricted: %+v", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe = %+v, want GET /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe = %+v, want GET /readyz", c.ReadinessProbe)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory limit")
	}
	if env := findEnv(c.Env, "MDB_INSTANCE"); env == nil || env.ValueFrom == nil || env.ValueFrom.FieldRef == nil || env.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("MDB_INSTANCE must come from the pod name: %+v", env)
	}
	if len(pod.TopologySpreadConstraints) != 1 {
		t.Errorf("topology spread constraints = %+v", pod.TopologySpreadConstraints)
	}
	cm := decode[corev1.ConfigMap](t, docs, "ConfigMap/rel-mdbridge")
	for k, want := range map[string]string{
		"MDB_SUBSCRIBE": "binance:trade,book:BTCUSDT,ETHUSDT", "MDB_NATS_URL": "nats://nats:4222",
		"MDB_STREAM_REPLICAS": "3", "MDB_DUPLICATE_WINDOW": "2m", "MDB_HTTP_ADDR": ":8080",
		"MDB_BUFFER_BYTES": "268435456", "MDB_LOG_FORMAT": "json", "MDB_MAX_BYTES": "10737418240",
		"MDB_STALE_AFTER": "1m",
		"MDB_CLUSTER":     "true", "MDB_REDUNDANCY": "2", "MDB_MEMBERS_BUCKET": "md_members", "MDB_HANDOVER_TIMEOUT": "30s",
		"MDB_CLUSTER_HEARTBEAT": "1s", "MDB_CLUSTER_EXPIRY": "3s",
	} {
		if cm.Data[k] != want {
			t.Errorf("ConfigMap %s = %q, want %q", k, cm.Data[k], want)
		}
	}
	if v, ok := cm.Data["MDB_STALE_AFTER_CHANNELS"]; ok {
		t.Errorf("MDB_STALE_AFTER_CHANNELS = %q without staleness.channels", v)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cm.Name {
		t.Errorf("container does not load the ConfigMap: %+v", c.EnvFrom)
	}
	pdb := decode[policyv1.PodDisruptionBudget](t, docs, "PodDisruptionBudget/rel-mdbridge")
	if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB minAvailable = %v, maxUnavailable = %v; want maxUnavailable 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
	np := decode[networkingv1.NetworkPolicy](t, docs, "NetworkPolicy/rel-mdbridge")
	if len(np.Spec.Egress) != 3 {
		t.Errorf("egress rules = %d, want NATS, DNS, exchanges", len(np.Spec.Egress))
	}
	ex := np.Spec.Egress[2].To[0].IPBlock
	if ex == nil || len(ex.Except) != 3 {
		t.Errorf("exchange egress must exclude private ranges: %+v", ex)
	}
	decode[corev1.Service](t, docs, "Service/rel-mdbridge")
	if _, ok := docs["Secret/rel-mdbridge-nats-auth"]; ok {
		t.Error("no Secret expected without credentials")
	}
	if _, ok := docs["ServiceMonitor/rel-mdbridge"]; ok {
		t.Error("ServiceMonitor rendered while disabled")
	}
}

func TestValuesReachTheEnvironment(t *testing.T) {
	docs := render(t,
		"replicaCount=3",
		`subscribe=bybit-linear:trade:BTCUSDT`,
		"nats.url=nats://a:4222\\,nats://b:4222",
		"nats.stream.replicas=1",
		"nats.auth.user=alice", "nats.auth.password=s3cret",
		"nats.auth.credsSecret=my-creds",
		"nats.tls.secretName=nats-tls", "nats.tls.clientCert=true",
		"buffer.policy=drop-oldest",
		"serviceMonitor.enabled=true",
		"networkPolicy.enabled=false",
		"extraEnv[0].name=MDB_RESILIENCE_RECONNECT_DELAY_MAX", "extraEnv[0].value=30s",
		"staleness.after=90s", "staleness.channels.trade=5m", "staleness.channels.book=30s",
	)
	d := decode[appsv1.Deployment](t, docs, "Deployment/rel-mdbridge")
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
	cm := decode[corev1.ConfigMap](t, docs, "ConfigMap/rel-mdbridge")
	for k, want := range map[string]string{
		"MDB_SUBSCRIBE": "bybit-linear:trade:BTCUSDT", "MDB_NATS_URL": "nats://a:4222,nats://b:4222",
		"MDB_STREAM_REPLICAS": "1", "MDB_BUFFER_POLICY": "drop-oldest",
		"MDB_STALE_AFTER": "90s", "MDB_STALE_AFTER_CHANNELS": "book=30s,trade=5m",
	} {
		if cm.Data[k] != want {
			t.Errorf("ConfigMap %s = %q, want %q", k, cm.Data[k], want)
		}
	}
	sec := decode[corev1.Secret](t, docs, "Secret/rel-mdbridge-nats-auth")
	if sec.StringData["user"] != "alice" || sec.StringData["password"] != "s3cret" {
		t.Errorf("secret data = %v", sec.StringData)
	}
	c := d.Spec.Template.Spec.Containers[0]
	for _, name := range []string{"MDB_NATS_USER", "MDB_NATS_PASSWORD"} {
		e := findEnv(c.Env, name)
		if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != sec.Name {
			t.Errorf("%s must come from Secret %s: %+v", name, sec.Name, e)
		}
		if e != nil && e.Value != "" {
			t.Errorf("%s has a literal value in the pod spec", name)
		}
	}
	for name, want := range map[string]string{
		"MDB_NATS_CREDS_FILE": "/etc/mdbridge/creds/nats.creds", "MDB_NATS_TLS_CA": "/etc/mdbridge/tls/ca.crt",
		"MDB_NATS_TLS_CERT": "/etc/mdbridge/tls/tls.crt", "MDB_RESILIENCE_RECONNECT_DELAY_MAX": "30s",
	} {
		if e := findEnv(c.Env, name); e == nil || e.Value != want {
			t.Errorf("%s = %+v, want %q", name, e, want)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["creds"] != "/etc/mdbridge/creds" || mounts["tls"] != "/etc/mdbridge/tls" || mounts["tmp"] != "/tmp" {
		t.Errorf("volume mounts = %v", mounts)
	}
	if _, ok := docs["NetworkPolicy/rel-mdbridge"]; ok {
		t.Error("NetworkPolicy rendered while disabled")
	}
	if _, ok := docs["ServiceMonitor/rel-mdbridge"]; !ok {
		t.Error("ServiceMonitor not rendered while enabled")
	}
}

func TestExistingSecretIsUsedAndNotCreated(t *testing.T) {
	docs := render(t, "nats.auth.existingSecret=prod-nats", "nats.auth.token=ignored")
	if _, ok := docs["Secret/rel-mdbridge-nats-auth"]; ok {
		t.Error("chart created a Secret although existingSecret is set")
	}
	d := decode[appsv1.Deployment](t, docs, "Deployment/rel-mdbridge")
	e := findEnv(d.Spec.Template.Spec.Containers[0].Env, "MDB_NATS_TOKEN")
	if e == nil || e.ValueFrom.SecretKeyRef.Name != "prod-nats" {
		t.Errorf("MDB_NATS_TOKEN = %+v, want from secret prod-nats", e)
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	for _, set := range []string{
		"replicaCount=0",
		"podDisruptionBudget.enabled=maybe",
		"cluster.redundancy=0",
		"cluster.redundancy=two",
		"cluster.membersBucket=md.members",
		"cluster.handoverTimeout=soon",
		"cluster.heartbeat=fast",
		"cluster.expiry=3",
		"nats.stream.replicas=2",
		"nats.stream.duplicateWindow=two minutes",
		"nats.stream.maxBytes=5",
		"nats.stream.maxBytes=-2",
		"log.level=loud",
		"buffer.policy=yolo",
		"subscribe=kraken:trade:BTCUSD",
		"subscribe=binance:trade:BTC.USDT",
		"nats.url=http://nats:4222",
		"noSuchValue=1",
		"nats.stream.name=M.D",
		"extraEnv[0].name=PATH",
	} {
		t.Run(set, func(t *testing.T) {
			out, err := helmTemplate(t, set)
			if err == nil {
				t.Fatalf("helm template accepted --set %s", set)
			}
			if !strings.Contains(string(out), "values don't meet the specifications of the schema") && !strings.Contains(string(out), "schema") {
				t.Fatalf("rejected for another reason than the schema: %s", out)
			}
		})
	}
}

func TestHelmLint(t *testing.T) {
	for _, sets := range [][]string{nil, {"serviceMonitor.enabled=true", "networkPolicy.enabled=false", "replicaCount=1"}} {
		args := []string{"lint", chartDir, "--strict"}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		out, err := exec.Command(helmBin(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm lint %v: %v\n%s", sets, err, out)
		}
	}
}

func findEnv(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
