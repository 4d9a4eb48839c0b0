package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/correlate/scenario"
)

type scenarioOptions struct {
	outDir string
	seed   uint64
	cis    int
	faults int
}

// runScenario is `correlatord scenario`: it writes a generated estate
// (cmdb.json, native format), its alert storm (events.jsonl, canonical
// events in time order) and the ground truth (truth.json) to a folder, for
// `replay` and `evaluate`.
func runScenario(w io.Writer, o scenarioOptions) error {
	s, err := scenario.Generate(scenario.Options{Seed: o.seed, CIs: o.cis, Faults: o.faults})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	writeJSON := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(o.outDir, name), b, 0o644)
	}
	if err := writeJSON("cmdb.json", s.Doc); err != nil {
		return fmt.Errorf("write cmdb.json: %w", err)
	}
	if err := writeJSON("truth.json", s.Truth); err != nil {
		return fmt.Errorf("write truth.json: %w", err)
	}
	f, err := os.Create(filepath.Join(o.outDir, "events.jsonl"))
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for i := range s.Events {
		if err := enc.Encode(&s.Events[i]); err != nil {
			return fmt.Errorf("write events.jsonl: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write events.jsonl: %w", err)
	}
	fmt.Fprintf(w, "scenario: %d CIs, %d relations, %d events, %d faults in %s\n",
		len(s.Doc.CIs), len(s.Doc.Relations), len(s.Events), len(s.Truth.Faults), o.outDir)
	return nil
}

type evaluateOptions struct {
	truth, incidents string
	minF1, minRCA    float64
}

// runEvaluate is `correlatord evaluate`: it scores replay's incidents
// against a scenario's ground truth (pairwise grouping precision, recall and
// F1; root-cause top-1 accuracy; noise reduction) and fails when a figure is
// under its --min-* bound.
func runEvaluate(w io.Writer, o evaluateOptions) error {
	tb, err := os.ReadFile(o.truth)
	if err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	var truth scenario.Truth
	if err := json.Unmarshal(tb, &truth); err != nil {
		return fmt.Errorf("--truth %s: %w", o.truth, err)
	}
	f, err := os.Open(o.incidents)
	if err != nil {
		return fmt.Errorf("--incidents: %w", err)
	}
	defer f.Close()
	var incidents []*correlate.Incident
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r replayIncident
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("--incidents %s line %d: %w", o.incidents, line, err)
		}
		in := &correlate.Incident{ID: r.ID, EventIDs: r.EventIDs}
		if r.RootCauseCI != nil {
			in.RootCauseCI = *r.RootCauseCI
		}
		incidents = append(incidents, in)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--incidents: %w", err)
	}
	res := scenario.Evaluate(truth, incidents)
	fmt.Fprintf(w, "events %d, faults %d, incidents %d\n", res.Events, res.Faults, res.Incidents)
	fmt.Fprintf(w, "grouping: precision %.3f, recall %.3f, F1 %.3f\n", res.Precision, res.Recall, res.F1)
	fmt.Fprintf(w, "root cause top-1 accuracy %.3f\n", res.RCAAccuracy)
	fmt.Fprintf(w, "noise reduction %.1fx\n", res.NoiseReduction)
	var errs []error
	if res.F1 < o.minF1 {
		errs = append(errs, fmt.Errorf("grouping F1 %.3f is under --min-f1 %.3f", res.F1, o.minF1))
	}
	if res.RCAAccuracy < o.minRCA {
		errs = append(errs, fmt.Errorf("root-cause accuracy %.3f is under --min-rca %.3f", res.RCAAccuracy, o.minRCA))
	}
	return errors.Join(errs...)
}
