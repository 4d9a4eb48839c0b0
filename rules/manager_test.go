package rules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHotReloadWithBadFile: a file that fails validation is rejected whole,
// the previous rules keep running, and the failure is counted.
func TestHotReloadWithBadFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yml")
	writeFile(t, file, `
rules:
  - {name: quiet-backups, matchers: ['alertname="Backup"'], class: informational}
  - {name: old-rule, matchers: ['alertname="Old"'], drop: true}
`)
	reg := prometheus.NewRegistry()
	mg, err := NewManager(ManagerOptions{Config: Config{Files: []string{dir}}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := mg.Reload(); err != nil {
		t.Fatal(err)
	}
	en, err := NewEngine(EngineOptions{Rules: mg.RuleSet, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, en: en}
	h.want(h.dec(0, alert("Backup")), ClassInformational, OutcomeRecorded, false)
	h.want(h.dec(0, alert("Old")), ClassException, OutcomeDropped, false)
	good := mg.RuleSet()

	// A bad edit: one rule of the file is wrong, the whole file is
	// rejected.
	writeFile(t, file, `
rules:
  - {name: quiet-backups, matchers: ['alertname="Backup"'], class: informational}
  - {name: broken, matchers: ['alertname=~"("'], drop: true}
  - {name: new-rule, matchers: ['alertname="New"'], drop: true}
`)
	err = mg.Reload()
	if err == nil {
		t.Fatal("bad file accepted")
	}
	for _, want := range []string{file, `rules[1] "broken"`, "matchers[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if mg.RuleSet() != good {
		t.Fatal("rule set replaced by a failed reload")
	}
	h.want(h.dec(time.Minute, alert("Old", "x", "1")), ClassException, OutcomeDropped, false)
	h.want(h.dec(time.Minute, alert("New")), ClassException, OutcomePass, true)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP correlator_rules_reloads_total Loads of the rule files, by result (success, failure). On failure the previous rules keep running.
# TYPE correlator_rules_reloads_total counter
correlator_rules_reloads_total{result="failure"} 1
correlator_rules_reloads_total{result="success"} 1
# HELP correlator_rules_last_reload_successful Whether the last load of the rule files succeeded (1) or failed (0).
# TYPE correlator_rules_last_reload_successful gauge
correlator_rules_last_reload_successful 0
# HELP correlator_rules_loaded Entries of the rule set in use, by kind (rules, maintenance_windows, inhibit_rules).
# TYPE correlator_rules_loaded gauge
correlator_rules_loaded{kind="inhibit_rules"} 0
correlator_rules_loaded{kind="maintenance_windows"} 0
correlator_rules_loaded{kind="rules"} 2
# HELP correlator_rules_rule_matches_total Events a rule matched, by rule name. Series of removed rules are deleted on reload.
# TYPE correlator_rules_rule_matches_total counter
correlator_rules_rule_matches_total{rule="old-rule"} 2
correlator_rules_rule_matches_total{rule="quiet-backups"} 1
`), "correlator_rules_reloads_total", "correlator_rules_last_reload_successful", "correlator_rules_loaded", "correlator_rules_rule_matches_total"); err != nil {
		t.Error(err)
	}

	// Fixed: the new rules run, the removed rule's series is deleted and
	// the new one exists at 0 before any match.
	writeFile(t, file, `
rules:
  - {name: quiet-backups, matchers: ['alertname="Backup"'], class: informational}
  - {name: new-rule, matchers: ['alertname="New"'], drop: true}
`)
	if err := mg.Reload(); err != nil {
		t.Fatal(err)
	}
	h.want(h.dec(2*time.Minute, alert("Old", "x", "2")), ClassException, OutcomePass, true)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP correlator_rules_last_reload_successful Whether the last load of the rule files succeeded (1) or failed (0).
# TYPE correlator_rules_last_reload_successful gauge
correlator_rules_last_reload_successful 1
# HELP correlator_rules_rule_matches_total Events a rule matched, by rule name. Series of removed rules are deleted on reload.
# TYPE correlator_rules_rule_matches_total counter
correlator_rules_rule_matches_total{rule="new-rule"} 0
correlator_rules_rule_matches_total{rule="quiet-backups"} 1
`), "correlator_rules_last_reload_successful", "correlator_rules_rule_matches_total"); err != nil {
		t.Error(err)
	}
}

func TestManagerReloadErrors(t *testing.T) {
	dir := t.TempDir()
	mg, err := NewManager(ManagerOptions{Config: Config{Files: []string{filepath.Join(dir, "missing.yml")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mg.Reload(); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("missing file: %v", err)
	}
	if r, _, _ := mg.RuleSet().Len(); r != 0 {
		t.Error("not the empty rule set")
	}
	if _, err := NewManager(ManagerOptions{Config: Config{PollInterval: time.Millisecond}}); err == nil || !strings.Contains(err.Error(), "rules.poll_interval") {
		t.Errorf("config not validated: %v", err)
	}
}

func TestManagerLoadsChangeFile(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "changes.yaml")
	writeFile(t, cf, "- {id: C1, cis: [db-1], status: approved, planned_start: 2026-01-05T10:00:00Z, planned_end: 2026-01-05T11:00:00Z}\n")
	store := NewChangeStore(ChangeStoreOptions{})
	mg, err := NewManager(ManagerOptions{Config: Config{Changes: ChangesConfig{File: cf}}, Changes: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := mg.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Active("db-1", t0); !ok {
		t.Error("change not loaded")
	}
	writeFile(t, cf, "- {id: C2, cis: [db-1], status: approved}\n")
	if err := mg.Reload(); err == nil || !strings.Contains(err.Error(), cf) {
		t.Errorf("bad change file: %v", err)
	}
	if _, ok := store.Get("C2"); ok {
		t.Error("invalid change applied")
	}
}

// TestManagerPollsFiles runs the polling loop on a fake clock.
func TestManagerPollsFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "r.yml")
		writeFile(t, file, "rules: [{name: a, drop: true}]\n")
		reg := prometheus.NewRegistry()
		mg, err := NewManager(ManagerOptions{Config: Config{Files: []string{file}, PollInterval: 10 * time.Second}, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		if err := mg.Reload(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = mg.Run(ctx) })

		first := mg.RuleSet()
		time.Sleep(25 * time.Second) // two polls, nothing changed
		synctest.Wait()
		if mg.RuleSet() != first {
			t.Error("reloaded unchanged files")
		}
		writeFile(t, file, "rules: [{name: a, drop: true}, {name: b, drop: true}]\n")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := strings.Join(mg.RuleSet().RuleNames(), ","); got != "a,b" {
			t.Errorf("after poll: %s", got)
		}
		writeFile(t, file, "rules: [{name: a, drop: maybe}]\n")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := strings.Join(mg.RuleSet().RuleNames(), ","); got != "a,b" {
			t.Errorf("bad file swapped in: %s", got)
		}
		time.Sleep(30 * time.Second) // the same bad file is not retried
		synctest.Wait()
		if v := testutil.ToFloat64(mg.m.reloadFail); v != 1 {
			t.Errorf("failures %v", v)
		}
		writeFile(t, file, "rules: [{name: c, drop: true}]\n")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := strings.Join(mg.RuleSet().RuleNames(), ","); got != "c" {
			t.Errorf("after fix: %s", got)
		}
		cancel()
		wg.Wait()
	})
}
