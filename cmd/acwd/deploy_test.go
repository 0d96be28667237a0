package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/acwstream/acwstream/events"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/sink/metrics"
)

const repoRoot = "../.."

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// exposedMetrics lists the metric names acwd's /metrics exposes, with the
// _bucket, _sum and _count series of histograms.
func exposedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New("test")
	src := pipeline.Source{Topic: "acw.events", Partition: 0}
	m.Assigned(src, true)
	m.Progress(src, pipeline.Progress{Lag: 1, Watermark: 1, Open: 1})
	m.Segment(src, &events.Segment{DurationMS: 1000})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

var metricRef = regexp.MustCompile(`\bacw_[a-z0-9_]+`)

// checkExpr fails when expr uses a metric acwd does not expose.
func checkExpr(t *testing.T, where, expr string, exposed map[string]bool) {
	t.Helper()
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 && !strings.Contains(expr, "up{") {
		t.Errorf("%s: %q uses no acwd metric", where, expr)
	}
	for _, r := range refs {
		if !exposed[r] {
			t.Errorf("%s: %q uses %s, which /metrics does not expose", where, expr, r)
		}
	}
}

func TestPrometheusRulesUseExposedMetrics(t *testing.T) {
	exposed := exposedMetrics(t)
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	readYAML(t, "deploy/prometheus/rules.yml", &rules)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: alert, expr, for, severity and summary are required", r)
			}
			checkExpr(t, "rule "+r.Alert, r.Expr, exposed)
		}
	}
	// The list: lag growing, overrun rate, rejected rate, Redis
	// errors, no partitions assigned.
	for _, want := range []string{"AcwConsumerLagGrowing", "AcwOverrunRateHigh", "AcwRejectedEvents", "AcwRedisErrors", "AcwNoPartitionsAssigned"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("rule %s missing", want)
		}
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &prom)
	if len(prom.ScrapeConfigs) == 0 || prom.ScrapeConfigs[0].JobName != "acwd" || len(prom.ScrapeConfigs[0].StaticConfigs) == 0 ||
		!slices.Equal(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"acwd:8080"}) {
		t.Errorf("prometheus.yml does not scrape acwd:8080 as job acwd: %+v", prom.ScrapeConfigs)
	}
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	if !slices.Equal(prom.RuleFiles, []string{"/etc/prometheus/rules.yml"}) ||
		!slices.Contains(c.Services["prometheus"].Volumes, "./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro") {
		t.Errorf("the rules file is not where prometheus.yml loads it from: %v", prom.RuleFiles)
	}
}

func TestGrafanaDashboardUsesExposedMetrics(t *testing.T) {
	exposed := exposedMetrics(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/dashboards/acwstream.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Title  string
		Panels []struct {
			Title   string
			Type    string
			GridPos struct{ H, W, X, Y int }
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard %q has %d panels", d.UID, len(d.Panels))
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.GridPos.W == 0 {
			t.Errorf("panel %q has no query or no size", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, exposed)
			for _, r := range metricRef.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(r, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for _, want := range []string{"acw_events_total", "acw_segments_total", "acw_wrapup_duration_seconds", "acw_alerts_total",
		"acw_open_wrapups", "acw_consumer_lag_messages", "acw_watermark_lag_seconds", "acw_event_to_redis_seconds",
		"acw_redis_flush_seconds", "acw_errors_total", "acw_assigned_partitions", "acw_rebalances_total"} {
		if !used[want] {
			t.Errorf("no dashboard panel shows %s", want)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string
		Build       map[string]string
		Command     []string
		Environment map[string]string
		Volumes     []string
		Ports       []string
		DependsOn   any `yaml:"depends_on"`
	}
}

func TestComposeStackIsComplete(t *testing.T) {
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	for _, s := range []string{"kafka", "redis", "acwd", "generator", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	k := c.Services["kafka"]
	if !strings.HasPrefix(k.Image, "apache/kafka:") || k.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Errorf("kafka is not apache/kafka in KRaft mode: %s %v", k.Image, k.Environment)
	}
	if !strings.HasPrefix(c.Services["redis"].Image, "redis:7") {
		t.Errorf("redis image %s, want redis:7", c.Services["redis"].Image)
	}
	// acwd's environment names real settings, and they form a valid
	// configuration.
	var f runFlags
	var ss settings
	f.register(&ss)
	known := map[string]bool{"ACW_CONFIG": true}
	for _, s := range ss.list {
		known[s.env()] = true
	}
	a := c.Services["acwd"]
	if a.Build["dockerfile"] != "deploy/Dockerfile" {
		t.Errorf("acwd is not built from deploy/Dockerfile: %v", a.Build)
	}
	for k := range a.Environment {
		if !known[k] {
			t.Errorf("acwd environment %s is not a setting", k)
		}
	}
	withEnv(t, a.Environment)
	if code, _, stderr := acwd(t, "", "config", "check"); code != 0 {
		t.Errorf("acwd's compose environment is not a valid configuration: %s", stderr)
	}
	// The generator's command is a valid acwd sim invocation.
	g := c.Services["generator"].Command
	if len(g) == 0 || g[0] != "sim" {
		t.Fatalf("generator command %v", g)
	}
	var args []string
	for i := 1; i < len(g); i++ {
		if g[i] == "--brokers" || g[i] == "--speed" || g[i] == "--topic" {
			i++ // checked below, not used offline
			continue
		}
		args = append(args, g[i])
	}
	if !slices.Contains(g, "--brokers") || !slices.Contains(g, "--speed") {
		t.Errorf("the generator does not produce a live feed to Kafka: %v", g)
	}
	if code, out, stderr := acwd(t, "", append(append([]string{"sim"}, args...), "--events", "50")...); code != 0 || strings.Count(out, "\n") != 50 {
		t.Errorf("generator flags %v: exit %d, %d lines: %s", args, code, strings.Count(out, "\n"), stderr)
	}
	// Mounted files exist.
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("volume %s: %v", v, err)
				}
			}
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	var kust struct{ Resources []string }
	readYAML(t, "deploy/kubernetes/kustomization.yaml", &kust)
	kinds := map[string]map[string]any{}
	for _, r := range kust.Resources {
		var doc map[string]any
		readYAML(t, "deploy/kubernetes/"+r, &doc)
		if doc["apiVersion"] == nil || doc["kind"] == nil {
			t.Errorf("%s: no apiVersion or kind", r)
		}
		kinds[doc["kind"].(string)] = doc
	}
	for _, k := range []string{"Deployment", "ConfigMap", "Service", "PodDisruptionBudget"} {
		if kinds[k] == nil {
			t.Errorf("no %s", k)
		}
	}
	var dep struct {
		Spec struct {
			Replicas int
			Template struct {
				Spec struct {
					SecurityContext struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					Containers []struct {
						Args          []string
						LivenessProbe struct {
							HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						ReadinessProbe struct {
							HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						Resources struct{ Requests map[string]string }
						Ports     []struct {
							Name          string
							ContainerPort int `yaml:"containerPort"`
						}
					}
				}
			}
		}
	}
	readYAML(t, "deploy/kubernetes/deployment.yaml", &dep)
	ps := dep.Spec.Template.Spec
	if dep.Spec.Replicas < 2 || !ps.SecurityContext.RunAsNonRoot || len(ps.Containers) != 1 {
		t.Fatalf("deployment: %+v", dep.Spec)
	}
	c := ps.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %s, readiness %s", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("no resource requests: %v", c.Resources.Requests)
	}
	if len(c.Ports) == 0 || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %v", c.Ports)
	}
	// The ConfigMap's config file is valid.
	var cm struct{ Data map[string]string }
	readYAML(t, "deploy/kubernetes/configmap.yaml", &cm)
	file := writeFile(t, "acwd.yaml", cm.Data["acwd.yaml"])
	withEnv(t, nil)
	if code, out, stderr := acwd(t, "", "config", "check", file); code != 0 || !strings.Contains(out, "replication_factor: 3") {
		t.Errorf("the ConfigMap's acwd.yaml: exit %d: %s%s", code, stderr, out)
	}
}

func TestDockerfileBuildsAStaticNonRootImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/acwd", "USER 65532", "ENTRYPOINT"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := regexp.MustCompile(`(?m)^FROM `).FindAllString(s, -1); len(n) != 2 {
		t.Errorf("want a two-stage build, got %d FROM lines", len(n))
	}
	if !strings.Contains(s, "FROM golang:1.26") {
		t.Error("the build stage should use the Go version of go.mod (1.26)")
	}
}
