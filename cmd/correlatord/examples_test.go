package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestExampleConfigs loads every configuration the repository ships for
// people to copy, with the daemon's own strict loader, so none of them can
// name a field that does not exist or a value the daemon rejects.
// (examples/*.yaml are CMDB documents, not configurations.)
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{"correlatord.yml", "single-host.yml", "multi-instance.yml"} {
		if !slices.Contains(names, want) {
			t.Errorf("examples/%s is missing (found %v)", want, names)
		}
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := loadConfig(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMultiInstanceExample checks what examples/multi-instance.yml promises:
// instances started from the one file (deploy/systemd/correlatord@.service,
// each in its own working directory) share a consumer group but never a
// data_dir, and read the same rule and CMDB files.
func TestMultiInstanceExample(t *testing.T) {
	cfg, err := loadConfig("../../examples/multi-instance.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Kafka.Enabled() || cfg.Kafka.GroupID == "" {
		t.Errorf("kafka must be on with a group_id: brokers %v, group_id %q", cfg.Kafka.Brokers, cfg.Kafka.GroupID)
	}
	if filepath.IsAbs(cfg.DataDir) {
		t.Errorf("data_dir %q is absolute: every instance would share it", cfg.DataDir)
	}
	if cfg.ShutdownDelay <= 0 {
		t.Error("shutdown_delay should let a load balancer move traffic to the other instance first")
	}
	for _, p := range append([]string{cfg.CMDB.File}, cfg.Rules.Files...) {
		if !filepath.IsAbs(p) {
			t.Errorf("%q is relative: each instance would look for it in its own working directory", p)
		}
	}
}

// TestHelmRenderedConfigs loads the correlatord.yml the Helm chart renders
// (deploy/helm/correlatord). deploy/helm/test renders the chart with Helm's
// engine, with the default values and a multi-instance values file, and
// compares the result with these files (go test -update there rewrites
// them), so the chart cannot produce a configuration this loader rejects.
func TestHelmRenderedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../deploy/helm/test/testdata/*.correlatord.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want the default and multi-instance renderings in deploy/helm/test/testdata, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := loadConfig(f)
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.Kafka.Enabled() || !cfg.ClickHouse.Enabled() {
				t.Errorf("the chart's configurations run with Kafka and ClickHouse")
			}
		})
	}
}

// TestSystemdUnitsFitExamples checks deploy/systemd against the example
// configurations they run: systemd must wait longer than the daemon's
// longest orderly stop before SIGKILL, and data_dir must be in the unit's
// state directory (the only writable place under ProtectSystem=strict).
func TestSystemdUnitsFitExamples(t *testing.T) {
	for _, tc := range []struct{ unit, config, stateDir string }{
		{"correlatord.service", "single-host.yml", "/var/lib/correlatord"},
		// The template's working directory is its state directory, and
		// multi-instance.yml's data_dir is relative to it.
		{"correlatord@.service", "multi-instance.yml", "."},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			unit, err := os.ReadFile(filepath.Join("../../deploy/systemd", tc.unit))
			if err != nil {
				t.Fatal(err)
			}
			directive := func(key string) string {
				m := regexp.MustCompile(`(?m)^` + key + `=(.*)$`).FindSubmatch(unit)
				if m == nil {
					t.Fatalf("%s has no %s=", tc.unit, key)
				}
				return string(m[1])
			}
			stop, err := time.ParseDuration(directive("TimeoutStopSec"))
			if err != nil {
				t.Fatalf("TimeoutStopSec: %v", err)
			}
			cfg, err := loadConfig(filepath.Join("../../examples", tc.config))
			if err != nil {
				t.Fatal(err)
			}
			// run.go: shutdown_delay, then the HTTP shutdown and the final
			// commit under shutdown_timeout, with the ClickHouse writer's
			// final flush bounded by clickhouse.shutdown_timeout in between.
			need := cfg.ShutdownDelay + cfg.ShutdownTimeout + cfg.ClickHouse.ShutdownTimeout
			if stop <= need {
				t.Errorf("TimeoutStopSec=%s, but an orderly stop with %s may take %s", stop, tc.config, need)
			}
			if !strings.Contains(string(unit), "--config.file=/etc/correlatord/") {
				t.Errorf("%s does not read its configuration from /etc/correlatord", tc.unit)
			}
			if rel, err := filepath.Rel(tc.stateDir, cfg.DataDir); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("data_dir %s of %s is outside the unit's state directory %s", cfg.DataDir, tc.config, tc.stateDir)
			}
			if !strings.Contains(directive("StateDirectory"), "correlatord") {
				t.Errorf("StateDirectory=%s", directive("StateDirectory"))
			}
		})
	}
}
