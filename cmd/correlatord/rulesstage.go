package main

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/rules"
)

// ruleTopology adapts a CMDB snapshot to what the rules stage asks of it.
// It is one pointer wide, so wrapping it in the interface does not allocate
// on the hot path.
type ruleTopology struct{ t *cmdb.Topology }

func (a ruleTopology) CI(id string) (*cmdb.CI, bool) { return a.t.CI(id) }

func (a ruleTopology) DependsOn(dependent, dependency string, maxHops int) bool {
	_, ok := a.t.DependsOn(dependent, dependency, maxHops)
	return ok
}

// rulesStage is what feeds the rules engines: the rule files (reloaded by
// the manager) and the change records. Each partition of the stateful stage
// has an engine of its own (its alerts' state moves with the partition);
// the engines share the rule set, the change records and the metrics.
type rulesStage struct {
	manager *rules.Manager
	changes *rules.ChangeStore
	opts    rules.EngineOptions
	// engine is the first engine, for the single-partition users (replay,
	// benchmarks).
	engine *rules.Engine
}

// newEngine returns a rules engine with empty state.
func (s *rulesStage) newEngine() (*rules.Engine, error) { return rules.NewEngine(s.opts) }

// newRulesStage builds the rules stage and loads the rule and change files.
// topology returns the current CMDB snapshot (nil: no CMDB).
func newRulesStage(cfg rules.Config, topology func() *cmdb.Topology, reg prometheus.Registerer, logger *zap.Logger) (*rulesStage, error) {
	changes := rules.NewChangeStore(rules.ChangeStoreOptions{Retention: cfg.Changes.Retention, MaxRecords: cfg.Changes.MaxRecords, Registerer: reg})
	mgr, err := rules.NewManager(rules.ManagerOptions{Config: cfg, Changes: changes, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := mgr.Reload(); err != nil {
		return nil, err
	}
	opts := rules.EngineOptions{Config: cfg, Rules: mgr.RuleSet, Changes: changes, Metrics: rules.NewEngineMetrics(reg)}
	if topology != nil {
		opts.Topology = func() rules.Topology {
			if t := topology(); t != nil {
				return ruleTopology{t}
			}
			return nil
		}
	}
	engine, err := rules.NewEngine(opts)
	if err != nil {
		return nil, err
	}
	return &rulesStage{manager: mgr, changes: changes, opts: opts, engine: engine}, nil
}

// decisionRecord is how a decision is stored with its event.
func decisionRecord(d *rules.Decision) analytics.DecisionRecord {
	return analytics.DecisionRecord{
		Class: d.Class.String(), Outcome: d.Outcome.String(), Rule: d.Rule, Maintenance: d.Maintenance,
		ChangeID: d.ChangeID, InhibitedBy: d.InhibitedBy, Correlate: d.Correlate, Flapping: d.Flapping,
		DedupCount: d.DedupCount,
	}
}

type rulesFileOptions struct {
	files []string
}

// runRulesTest is `correlatord rules test FILE...`.
func runRulesTest(w io.Writer, o rulesFileOptions) error {
	failed, err := rules.RunTestFiles(o.files, w)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("rules test: %d tests failed", failed)
	}
	return nil
}

// runRulesCheck is `correlatord rules check FILE...`.
func runRulesCheck(w io.Writer, o rulesFileOptions) error {
	return rules.CheckFiles(o.files, w)
}
