package helmtest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"
)

// update rewrites the golden configurations in testdata/ from the chart.
// cmd/correlatord/examples_test.go loads those files with the daemon's own
// strict loadConfig, so a chart that renders a configuration the daemon
// rejects fails one test or the other.
var update = flag.Bool("update", false, "rewrite testdata/*.correlatord.yml from the rendered chart")

const (
	chartDir  = "../correlatord"
	repoRoot  = "../../.."
	configDir = "/etc/correlatord"
)

// rendered is one chart rendering, every manifest decoded strictly into its
// Kubernetes type.
type rendered struct {
	notes          string
	deployment     *appsv1.Deployment
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	pdb            *policyv1.PodDisruptionBudget
	serviceMonitor *monitoringv1.ServiceMonitor
	configMaps     map[string]*corev1.ConfigMap
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// render is `helm template` through Helm's own install action, client-only:
// values are checked against values.schema.json and merged over values.yaml
// exactly as the helm CLI does.
func render(t *testing.T, release, namespace string, vals map[string]any) (*rendered, error) {
	t.Helper()
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = release
	install.Namespace = namespace
	// No KubeVersion: Helm's built-in capabilities, as `helm template` uses.
	rel, err := install.Run(loadChart(t), vals)
	if err != nil {
		return nil, err
	}
	if len(rel.Hooks) > 0 {
		t.Errorf("the chart has %d hooks; it is meant to have none", len(rel.Hooks))
	}
	out := &rendered{notes: rel.Info.Notes, configMaps: map[string]*corev1.ConfigMap{}}
	manifests := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(manifests))
	for k := range manifests {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		doc := manifests[k]
		var tm metav1.TypeMeta
		if err := sigsyaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("manifest %s: %v\n%s", k, err, doc)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			if out.deployment != nil {
				t.Fatal("two Deployments")
			}
			out.deployment = &appsv1.Deployment{}
			obj = out.deployment
		case "v1 Service":
			out.service = &corev1.Service{}
			obj = out.service
		case "v1 ServiceAccount":
			out.serviceAccount = &corev1.ServiceAccount{}
			obj = out.serviceAccount
		case "policy/v1 PodDisruptionBudget":
			out.pdb = &policyv1.PodDisruptionBudget{}
			obj = out.pdb
		case "monitoring.coreos.com/v1 ServiceMonitor":
			out.serviceMonitor = &monitoringv1.ServiceMonitor{}
			obj = out.serviceMonitor
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		default:
			t.Fatalf("manifest %s: unexpected %s %s", k, tm.APIVersion, tm.Kind)
		}
		// Strict: a misspelt or misplaced field (one Kubernetes would drop
		// or reject) fails here.
		if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("manifest %s (%s) does not decode strictly: %v\n%s", k, tm.Kind, err, doc)
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			if out.configMaps[cm.Name] != nil {
				t.Fatalf("two ConfigMaps named %s", cm.Name)
			}
			out.configMaps[cm.Name] = cm
		}
		meta := reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta)
		checkMeta(t, tm.Kind, meta, namespace)
	}
	return out, nil
}

func checkMeta(t *testing.T, kind string, m metav1.ObjectMeta, namespace string) {
	t.Helper()
	if errs := validation.IsDNS1123Subdomain(m.Name); len(errs) > 0 {
		t.Errorf("%s name %q: %v", kind, m.Name, errs)
	}
	if m.Namespace != namespace {
		t.Errorf("%s %s: namespace %q, want %q", kind, m.Name, m.Namespace, namespace)
	}
	checkLabels(t, kind+" "+m.Name, m.Labels)
}

func checkLabels(t *testing.T, what string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("%s: label key %q: %v", what, k, errs)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("%s: label %s value %q: %v", what, k, v, errs)
		}
	}
}

func mustRender(t *testing.T, release, namespace string, vals map[string]any) *rendered {
	t.Helper()
	r, err := render(t, release, namespace, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// daemonConfig is the part of correlatord.yml these tests look at.
type daemonConfig struct {
	DataDir         string `yaml:"data_dir"`
	ShutdownDelay   string `yaml:"shutdown_delay"`
	ShutdownTimeout string `yaml:"shutdown_timeout"`
	Kafka           struct {
		Brokers []string `yaml:"brokers"`
		GroupID string   `yaml:"group_id"`
		SASL    *struct {
			Mechanism string `yaml:"mechanism"`
			Username  string `yaml:"username"`
		} `yaml:"sasl"`
	} `yaml:"kafka"`
	ClickHouse struct {
		Addr []string `yaml:"addr"`
	} `yaml:"clickhouse"`
	CMDB struct {
		File   string `yaml:"file"`
		Format string `yaml:"format"`
	} `yaml:"cmdb"`
	Rules struct {
		Files []string `yaml:"files"`
	} `yaml:"rules"`
}

// configOf returns correlatord.yml from the rendered config ConfigMap, checks
// it against the golden file and decodes it.
func configOf(t *testing.T, r *rendered, cmName, golden string) daemonConfig {
	t.Helper()
	cm := r.configMaps[cmName]
	if cm == nil {
		t.Fatalf("no ConfigMap %s (have %v)", cmName, mapKeys(r.configMaps))
	}
	text, ok := cm.Data["correlatord.yml"]
	if !ok || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap %s: want exactly the key correlatord.yml, have %v", cmName, mapKeys(cm.Data))
	}
	path := filepath.Join("testdata", golden)
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != text {
		t.Errorf("rendered correlatord.yml differs from %s (go test -update rewrites it; then run the main module's tests, which load it with loadConfig):\n--- rendered\n%s\n--- %s\n%s", path, text, path, want)
	}
	// Every top-level section must be one the daemon knows. The complete,
	// strict check is cmd/correlatord's loadConfig on the golden file.
	var top map[string]any
	if err := yaml.Unmarshal([]byte(text), &top); err != nil {
		t.Fatalf("correlatord.yml: %v", err)
	}
	known := exampleTopLevelKeys(t)
	for k := range top {
		if !known[k] {
			t.Errorf("correlatord.yml: top-level field %q is not in examples/correlatord.yml", k)
		}
	}
	var cfg daemonConfig
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("correlatord.yml: %v", err)
	}
	return cfg
}

// exampleTopLevelKeys are the top-level fields examples/correlatord.yml
// documents, commented-out sections (kafka, clickhouse, cmdb) included.
func exampleTopLevelKeys(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples/correlatord.yml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	re := regexp.MustCompile(`(?m)^(?:# )?([a-z_]+):`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		keys[m[1]] = true
	}
	for _, k := range []string{"data_dir", "kafka", "clickhouse", "cmdb", "rules", "http", "ingest"} {
		if !keys[k] {
			t.Fatalf("examples/correlatord.yml no longer documents %s; update this test", k)
		}
	}
	return keys
}

func mapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "correlatord" {
		t.Fatalf("want one container named correlatord, got %d", len(cs))
	}
	return cs[0]
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func mountPath(t *testing.T, c corev1.Container, name string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no volume mount %q", name)
	return corev1.VolumeMount{}
}

// projected returns, for the projected config volume, the file each path
// under /etc/correlatord comes from ("ConfigMap/key").
func projected(t *testing.T, d *appsv1.Deployment) map[string]string {
	t.Helper()
	v := volume(t, d, "config")
	if v.Projected == nil {
		t.Fatal("config volume is not projected")
	}
	files := map[string]string{}
	for _, s := range v.Projected.Sources {
		if s.ConfigMap == nil {
			t.Fatalf("config volume source is not a ConfigMap: %+v", s)
		}
		if s.ConfigMap.Optional != nil && *s.ConfigMap.Optional {
			t.Errorf("ConfigMap %s is optional: a missing one must stop the pod", s.ConfigMap.Name)
		}
		for _, it := range s.ConfigMap.Items {
			if _, dup := files[it.Path]; dup {
				t.Errorf("two sources for %s", it.Path)
			}
			files[it.Path] = s.ConfigMap.Name + "/" + it.Key
		}
	}
	return files
}

func parseDuration(t *testing.T, field, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return d
}

// checkCommon asserts what holds for every rendering.
func checkCommon(t *testing.T, r *rendered, fullname string, cfg daemonConfig, replicas int32) {
	t.Helper()
	d := r.deployment
	if d == nil || r.service == nil || r.pdb == nil {
		t.Fatalf("want a Deployment, a Service and a PodDisruptionBudget")
	}
	if d.Name != fullname {
		t.Errorf("Deployment name %q, want %q", d.Name, fullname)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		got := "unset"
		if d.Spec.Replicas != nil {
			got = fmt.Sprint(*d.Spec.Replicas)
		}
		t.Errorf("replicas = %s, want %d", got, replicas)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	checkLabels(t, "pod template", podLabels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not match its pods %v (%v)", d.Spec.Selector, podLabels, err)
	}
	if !labels.SelectorFromSet(r.service.Spec.Selector).Matches(podLabels) || len(r.service.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not match the pods %v", r.service.Spec.Selector, podLabels)
	}
	psel, err := metav1.LabelSelectorAsSelector(r.pdb.Spec.Selector)
	if err != nil || psel.Empty() || !psel.Matches(podLabels) {
		t.Errorf("PDB selector %v does not match the pods", r.pdb.Spec.Selector)
	}
	if r.pdb.Spec.MaxUnavailable == nil || r.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable = %v, want 1", r.pdb.Spec.MaxUnavailable)
	}

	c := container(t, d)
	wantArgs := []string{"run", "--config.file=/etc/correlatord/correlatord.yml", "--web.listen-address=:9470",
		"--web.advertise-url=http://$(POD_IP):9470", "--log.format=json"}
	if len(c.Args) < len(wantArgs) || !slices.Equal(c.Args[:len(wantArgs)], wantArgs) {
		t.Errorf("args = %q, want them to start with %q", c.Args, wantArgs)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 9470 || c.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("ports = %+v, want http 9470/TCP", c.Ports)
	}
	if sp := r.service.Spec.Ports; len(sp) != 1 || sp[0].Port != 9470 || sp[0].TargetPort.String() != "http" || sp[0].Name != "http" {
		t.Errorf("service ports = %+v, want http 9470 -> http", sp)
	}
	// The paths cmd/correlatord/web.go serves.
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: missing or not HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: GET %s on %s, want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}

	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container securityContext = %+v: want read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	psc := d.Spec.Template.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v: want non-root and the runtime's seccomp profile", psc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if at := d.Spec.Template.Spec.AutomountServiceAccountToken; at == nil || *at {
		t.Error("the pod mounts a service account token it does not need")
	}

	// correlatord.yml is where --config.file says, and data_dir is the
	// writable data volume (the root file system is read-only).
	if m := mountPath(t, c, "config"); m.MountPath != configDir || !m.ReadOnly {
		t.Errorf("config mounted at %s (read-only %v), want %s read-only", m.MountPath, m.ReadOnly, configDir)
	}
	files := projected(t, d)
	if files["correlatord.yml"] != fullname+"-config/correlatord.yml" {
		t.Errorf("/etc/correlatord/correlatord.yml comes from %q", files["correlatord.yml"])
	}
	for path, src := range files {
		cm, key, _ := strings.Cut(src, "/")
		if r.configMaps[cm] == nil {
			t.Errorf("%s/%s: ConfigMap %s is not in the chart", configDir, path, cm)
		} else if _, ok := r.configMaps[cm].Data[key]; !ok {
			t.Errorf("%s/%s: ConfigMap %s has no key %s", configDir, path, cm, key)
		}
	}
	if m := mountPath(t, c, "data"); m.MountPath != cfg.DataDir || m.ReadOnly {
		t.Errorf("data volume mounted at %s (read-only %v), config data_dir is %s", m.MountPath, m.ReadOnly, cfg.DataDir)
	}

	// One consumer group: every replica reads the same file.
	if len(cfg.Kafka.Brokers) == 0 || cfg.Kafka.GroupID == "" {
		t.Errorf("kafka: brokers %v, group_id %q: want Kafka on with an explicit group", cfg.Kafka.Brokers, cfg.Kafka.GroupID)
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	stop := parseDuration(t, "shutdown_delay", cfg.ShutdownDelay) + parseDuration(t, "shutdown_timeout", cfg.ShutdownTimeout)
	if grace <= stop {
		t.Errorf("terminationGracePeriodSeconds %s <= shutdown_delay + shutdown_timeout %s: the final flush would be killed", grace, stop)
	}
	if sum := d.Spec.Template.Annotations["checksum/config"]; !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		t.Errorf("checksum/config annotation = %q", sum)
	}
}

func envByName(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestDefaultValues(t *testing.T) {
	r := mustRender(t, "correlatord", "monitoring", nil)
	cfg := configOf(t, r, "correlatord-config", "default.correlatord.yml")
	checkCommon(t, r, "correlatord", cfg, 2)

	d := r.deployment
	c := container(t, d)
	if !slices.Equal(c.Command, []string{"correlatord"}) {
		t.Errorf("command = %q", c.Command)
	}
	// No secret is configured by default; the Go runtime learns the
	// container's memory limit, and the pod its IP, which it advertises.
	if len(c.Env) != 2 || c.Env[1].Name != "GOMEMLIMIT" || c.Env[1].ValueFrom == nil ||
		c.Env[1].ValueFrom.ResourceFieldRef == nil || c.Env[1].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("env = %+v, want POD_IP and GOMEMLIMIT from limits.memory", c.Env)
	}
	if e := c.Env[0]; e.Name != "POD_IP" || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("env[0] = %+v, want POD_IP from status.podIP", e)
	}
	if v := volume(t, d, "data"); v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
		t.Errorf("data volume = %+v, want a size-limited emptyDir", v.VolumeSource)
	}
	if cfg.DataDir != "/var/lib/correlatord" {
		t.Errorf("data_dir = %q", cfg.DataDir)
	}
	if len(cfg.Rules.Files) != 0 || cfg.CMDB.File != "" {
		t.Errorf("no rules or CMDB by default, got %v %q", cfg.Rules.Files, cfg.CMDB.File)
	}
	if files := projected(t, d); len(files) != 1 {
		t.Errorf("only correlatord.yml is mounted by default, got %v", files)
	}
	if len(r.configMaps) != 1 {
		t.Errorf("ConfigMaps = %v, want only the config", mapKeys(r.configMaps))
	}
	if r.serviceMonitor != nil {
		t.Error("ServiceMonitor rendered although serviceMonitor.enabled is false")
	}
	if r.serviceAccount == nil || d.Spec.Template.Spec.ServiceAccountName != r.serviceAccount.Name {
		t.Errorf("pods run as %q, not the chart's ServiceAccount", d.Spec.Template.Spec.ServiceAccountName)
	}
	if aff := d.Spec.Template.Spec.Affinity; aff == nil || aff.PodAntiAffinity == nil ||
		len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("want a preferred pod anti-affinity by default, got %+v", aff)
	}
	if !strings.Contains(r.notes, "unauthenticated") {
		t.Errorf("NOTES do not warn about the missing ingest token:\n%s", r.notes)
	}
}

// multiValues is testdata/multi-values.yaml plus the repository's example
// rule files and CMDB, so the chart is tried with real documents of the size
// the demo uses.
func multiValues(t *testing.T) (map[string]any, map[string]string, string) {
	t.Helper()
	vals, err := chartutil.ReadValuesFile("testdata/multi-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ruleFiles, _ := filepath.Glob(filepath.Join(repoRoot, "examples/rules/*.yml"))
	if len(ruleFiles) == 0 {
		t.Fatal("no examples/rules/*.yml")
	}
	rules := map[string]string{}
	rulesVal := map[string]any{}
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rules[filepath.Base(f)] = string(b)
		rulesVal[filepath.Base(f)] = string(b)
	}
	topo, err := os.ReadFile(filepath.Join(repoRoot, "examples/topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vals["rules"] = rulesVal
	vals["cmdb"] = map[string]any{"topology": string(topo), "format": "native"}
	return vals.AsMap(), rules, string(topo)
}

func TestMultiInstanceValues(t *testing.T) {
	vals, rules, topo := multiValues(t)
	r := mustRender(t, "prod", "correlator", vals)
	cfg := configOf(t, r, "prod-correlatord-config", "multi.correlatord.yml")
	checkCommon(t, r, "prod-correlatord", cfg, 4)
	d := r.deployment
	c := container(t, d)

	// Secrets reach the daemon as the variables it reads, from the named
	// Secrets, and the configuration leaves room for them.
	env := envByName(c)
	for name, ref := range map[string][2]string{
		"CORRELATOR_KAFKA_SASL_PASSWORD": {"kafka-correlatord", "password"},
		"CORRELATOR_CLICKHOUSE_PASSWORD": {"clickhouse-correlatord", "password"},
		"CORRELATOR_INGEST_TOKEN":        {"correlatord-ingest", "token"},
	} {
		e, ok := env[name]
		if !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s = %+v, want a secretKeyRef", name, e)
			continue
		}
		if got := e.ValueFrom.SecretKeyRef; got.Name != ref[0] || got.Key != ref[1] {
			t.Errorf("env %s from %s/%s, want %s/%s", name, got.Name, got.Key, ref[0], ref[1])
		}
	}
	if e := env["GODEBUG"]; e.Value != "madvdontneed=1" {
		t.Errorf("extraEnv not passed: %+v", env)
	}
	if cfg.Kafka.SASL == nil || cfg.Kafka.SASL.Mechanism != "SCRAM-SHA-512" || cfg.Kafka.SASL.Username == "" {
		t.Errorf("kafka.sasl = %+v", cfg.Kafka.SASL)
	}
	if cfg.Kafka.GroupID != "correlatord-prod" || len(cfg.ClickHouse.Addr) != 2 {
		t.Errorf("values not taken: group_id %q, clickhouse.addr %v", cfg.Kafka.GroupID, cfg.ClickHouse.Addr)
	}
	if !slices.Contains(c.Args, "--log.level=debug") {
		t.Errorf("extraArgs not appended: %q", c.Args)
	}

	// Rules and CMDB: mounted where the configuration points, byte for byte.
	if len(cfg.Rules.Files) == 0 || cfg.Rules.Files[0] != configDir+"/rules" {
		t.Errorf("rules.files = %v, want %s/rules first", cfg.Rules.Files, configDir)
	}
	if cfg.CMDB.File != configDir+"/cmdb/topology.yaml" || cfg.CMDB.Format != "native" {
		t.Errorf("cmdb = %+v", cfg.CMDB)
	}
	files := projected(t, d)
	for name, content := range rules {
		src, ok := files["rules/"+name]
		if !ok {
			t.Errorf("rule file %s is not mounted under rules/", name)
			continue
		}
		cm, key, _ := strings.Cut(src, "/")
		if got := r.configMaps[cm].Data[key]; got != content {
			t.Errorf("rule file %s differs once rendered (%d bytes, want %d)", name, len(got), len(content))
		}
	}
	if src := files["cmdb/topology.yaml"]; src != "prod-correlatord-cmdb/topology.yaml" {
		t.Errorf("cmdb/topology.yaml comes from %q", src)
	} else if got := r.configMaps["prod-correlatord-cmdb"].Data["topology.yaml"]; got != topo {
		t.Errorf("topology differs once rendered (%d bytes, want %d)", len(got), len(topo))
	}
	for name, cm := range r.configMaps {
		size := 0
		for _, v := range cm.Data {
			size += len(v)
		}
		if size > 1<<20 {
			t.Errorf("ConfigMap %s holds %d bytes, over Kubernetes' 1 MiB", name, size)
		}
	}
	// Rules and CMDB are polled by the daemon; only the configuration rolls
	// the pods.
	// (rules.files names the folder, so a new file leaves correlatord.yml as
	// it is.)
	more := mustRender(t, "prod", "correlator", withRules(vals, map[string]any{"99-extra.yml": "rules: []\n"}))
	if got, want := more.deployment.Spec.Template.Annotations["checksum/config"], d.Spec.Template.Annotations["checksum/config"]; got != want {
		t.Errorf("adding a rule file changed checksum/config (%s -> %s): pods would restart for a polled file", want, got)
	}
	if _, ok := projected(t, more.deployment)["rules/99-extra.yml"]; !ok {
		t.Error("a new rule file is not mounted")
	}

	// The generic ephemeral data volume replaces the emptyDir.
	if v := volume(t, d, "data"); v.Ephemeral == nil || v.EmptyDir != nil {
		t.Errorf("data volume = %+v, want the ephemeral volume from values", v.VolumeSource)
	}

	sm := r.serviceMonitor
	if sm == nil {
		t.Fatal("no ServiceMonitor although serviceMonitor.enabled is true")
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v", sm.Spec.Endpoints)
	}
	smsel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || smsel.Empty() || !smsel.Matches(labels.Set(r.service.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not match the Service's labels %v", sm.Spec.Selector, r.service.Labels)
	}
	// deploy/prometheus/correlatord-rules.yml selects job="correlatord".
	if sm.Spec.JobLabel != "app.kubernetes.io/name" || r.service.Labels["app.kubernetes.io/name"] != "correlatord" {
		t.Errorf("ServiceMonitor jobLabel %q (Service label %q): the job label must come out as correlatord",
			sm.Spec.JobLabel, r.service.Labels[sm.Spec.JobLabel])
	}
	if sm.Labels["release"] != "kube-prometheus" {
		t.Errorf("serviceMonitor.labels not applied: %v", sm.Labels)
	}
	if strings.Contains(r.notes, "unauthenticated") {
		t.Errorf("NOTES warn about a missing token although one is configured")
	}
}

func withRules(vals map[string]any, extra map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range vals {
		out[k] = v
	}
	rules := map[string]any{}
	for k, v := range vals["rules"].(map[string]any) {
		rules[k] = v
	}
	for k, v := range extra {
		rules[k] = v
	}
	out["rules"] = rules
	return out
}

func TestConfigChangeRollsPods(t *testing.T) {
	a := mustRender(t, "correlatord", "default", nil)
	b := mustRender(t, "correlatord", "default", map[string]any{"config": map[string]any{"shutdown_delay": "10s"}})
	if a.deployment.Spec.Template.Annotations["checksum/config"] == b.deployment.Spec.Template.Annotations["checksum/config"] {
		t.Error("checksum/config did not change with the configuration")
	}
	text := b.configMaps["correlatord-config"].Data["correlatord.yml"]
	if !strings.Contains(text, "shutdown_delay: 10s") || !strings.Contains(text, "group_id: correlatord") {
		t.Errorf("a value override must merge into the defaults:\n%s", text)
	}
	// null drops a section: analytics off.
	c := mustRender(t, "correlatord", "default", map[string]any{"config": map[string]any{"clickhouse": nil}})
	if strings.Contains(c.configMaps["correlatord-config"].Data["correlatord.yml"], "clickhouse") {
		t.Error("config.clickhouse=null did not remove the section")
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals string
		want string
	}{
		{"data_dir owned by the chart", "config: {data_dir: /data}", "config.data_dir"},
		{"sasl secret without sasl block", "secrets: {kafkaSaslPassword: {existingSecret: k}}", "config.kafka.sasl needs mechanism and username"},
		{"sasl secret shadowed", "secrets: {kafkaSaslPassword: {existingSecret: k}}\nconfig: {kafka: {sasl: {mechanism: PLAIN, username: u, password_file: /x}}}", "would win over it"},
		{"sasl secret without kafka", "secrets: {kafkaSaslPassword: {existingSecret: k}}\nconfig: {kafka: null}", "Kafka is off"},
		{"clickhouse secret shadowed", "secrets: {clickhousePassword: {existingSecret: c}}\nconfig: {clickhouse: {password: inline}}", "would win over it"},
		{"clickhouse secret without clickhouse", "secrets: {clickhousePassword: {existingSecret: c}}\nconfig: {clickhouse: null}", "analytics is off"},
		{"token shadowed", "secrets: {ingestToken: {existingSecret: t}}\nconfig: {http: {bearer_token_file: /t}}", "would win over it"},
		{"cmdb twice", "cmdb: {topology: 'cis: []'}\nconfig: {cmdb: {url: 'http://cmdb/export'}}", "use one"},
		{"rule file name", "rules: {noise.txt: 'rules: []'}", "noise.txt"},
		{"unknown top-level value", "replicas: 3", "replicas"},
		{"wrong type", "replicaCount: two", "replicaCount"},
		{"bad cmdb format", "cmdb: {format: csv}", "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(tc.vals))
			if err != nil {
				t.Fatal(err)
			}
			_, err = render(t, "correlatord", "default", vals.AsMap())
			if err == nil {
				t.Fatalf("values %q rendered without error", tc.vals)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestLint runs helm lint's checks (chart metadata, template syntax,
// values schema, YAML of each manifest) with the default and the
// multi-instance values.
func TestLint(t *testing.T) {
	multi, _, _ := multiValues(t)
	for name, vals := range map[string]map[string]any{"default": nil, "multi": multi} {
		t.Run(name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir, vals, "default", nil)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				} else {
					t.Logf("lint: %s", m)
				}
			}
		})
	}
}

// TestValuesDocumented keeps values.yaml and values.schema.json in step: the
// schema rejects unknown top-level keys, so each one must be in both.
func TestValuesDocumented(t *testing.T) {
	ch := loadChart(t)
	var schema struct {
		Properties map[string]any `json:"properties"`
	}
	if err := sigsyaml.Unmarshal(ch.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	for k := range ch.Values {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("values.yaml key %s is not in values.schema.json", k)
		}
	}
	for k := range schema.Properties {
		if _, ok := ch.Values[k]; !ok && k != "global" {
			t.Errorf("values.schema.json has %s, which values.yaml does not document", k)
		}
	}
}

// TestAdvertiseURL: the pods advertise their IP by default, another URL
// when given (IPv6), and none when it is "".
func TestAdvertiseURL(t *testing.T) {
	for _, tc := range []struct {
		value any // nil: the default
		want  string
	}{
		{nil, "--web.advertise-url=http://$(POD_IP):9470"},
		{"http://[$(POD_IP)]:9470", "--web.advertise-url=http://[$(POD_IP)]:9470"},
		{"", ""},
	} {
		var vals map[string]any
		if tc.value != nil {
			vals = map[string]any{"advertiseURL": tc.value}
		}
		c := container(t, mustRender(t, "correlatord", "default", vals).deployment)
		var got string
		for _, a := range c.Args {
			if strings.HasPrefix(a, "--web.advertise-url") {
				got = a
			}
		}
		if got != tc.want {
			t.Errorf("advertiseURL %v: argument %q, want %q", tc.value, got, tc.want)
		}
	}
}
