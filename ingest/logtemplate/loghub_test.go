package logtemplate

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dataDir is the shared evaluation data, outside the repository: the Loghub
// files are under a research-only licence and are never copied in.
const dataDir = "../../../shared/data"

// loghubFormats are the header formats of the Loghub benchmark settings
// (logparser's benchmark scripts, e.g. Drain_benchmark.py), which say how
// each system's 2k sample is laid out. Only <Content> is mined.
var loghubFormats = []struct{ system, format string }{
	{"HDFS", `<Date> <Time> <Pid> <Level> <Component>: <Content>`},
	{"Hadoop", `<Date> <Time> <Level> \[<Process>\] <Component>: <Content>`},
	{"Spark", `<Date> <Time> <Level> <Component>: <Content>`},
	{"Zookeeper", `<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>`},
	{"BGL", `<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>`},
	{"HPC", `<LogId> <Node> <Component> <State> <Time> <Flag> <Content>`},
	{"Thunderbird", `<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>`},
	{"Windows", `<Date> <Time>, <Level>                  <Component>    <Content>`},
	{"Linux", `<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>`},
	{"Android", `<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>`},
	{"HealthApp", `<Time>\|<Component>\|<Pid>\|<Content>`},
	{"Apache", `\[<Time>\] \[<Level>\] <Content>`},
	{"Proxifier", `\[<Time>\] <Program> - <Content>`},
	{"OpenSSH", `<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>`},
	{"OpenStack", `<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>`},
	{"Mac", `<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>`},
}

// loghubRow is one labelled line of a structured CSV.
type loghubRow struct{ content, eventID, template string }

func readStructured(t testing.TB, path string) []loghubRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var rows []loghubRow
	for _, r := range recs[1:] {
		rows = append(rows, loghubRow{r[col["Content"]], r[col["EventId"]], r[col["EventTemplate"]]})
	}
	return rows
}

// loghubContents reads a system's raw 2k log and splits off the headers with
// its benchmark format, as the benchmark's loader does.
func loghubContents(t testing.TB, system, format string) (contents [][]byte, skipped int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, "loghub", system, system+"_2k.log"))
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ParseLogFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(raw) {
		c, ok := lf.Content(line)
		if !ok {
			skipped++
			continue
		}
		contents = append(contents, c)
	}
	return contents, skipped
}

func skipWithoutData(t testing.TB) {
	if _, err := os.Stat(filepath.Join(dataDir, "loghub")); err != nil {
		t.Skipf("Loghub data not found at %s (the shared evaluation data beside the repository): %v", dataDir, err)
	}
}

// groupingAccuracy is Loghub's GA (logparser's evaluator.get_accuracy): a
// line counts as correct when the set of lines of its predicted group is
// exactly the set of lines of its ground-truth group. Lines without a
// ground-truth id are left out, as the evaluator does.
func groupingAccuracy(pred []uint64, truth []string) float64 {
	predGroups := map[uint64][]int{}
	truthSize := map[string]int{}
	total := 0
	for i, tr := range truth {
		if tr == "" {
			continue
		}
		total++
		predGroups[pred[i]] = append(predGroups[pred[i]], i)
		truthSize[tr]++
	}
	correct := 0
	for _, lines := range predGroups {
		tr := truth[lines[0]]
		same := true
		for _, l := range lines[1:] {
			if truth[l] != tr {
				same = false
				break
			}
		}
		if same && truthSize[tr] == len(lines) {
			correct += len(lines)
		}
	}
	if total == 0 {
		return 0
	}
	return float64(correct) / float64(total)
}

// alignWithNullValues is Loghub-2.0's align_with_null_values: a <*> that
// matches an empty string of the line is dropped from the template.
func alignWithNullValues(content, template string) string {
	parts := strings.Split(template, "<*>")
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = regexp.QuoteMeta(p)
	}
	re, err := regexp.Compile("^" + strings.Join(quoted, "(.*?)") + "$")
	if err != nil {
		return template
	}
	m := re.FindStringSubmatch(content)
	if m == nil {
		return template
	}
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(p)
		if i+1 < len(m) {
			if m[i+1] != "" {
				b.WriteString("<*>")
			}
		}
	}
	return b.String()
}

// correctTemplateGeneral is Loghub-2.0's correct_template_general, applied
// to the ground truth: dotted variables and variables separated by nothing,
// a ':' or a space become one <*>.
func correctTemplateGeneral(t string) string {
	for {
		prev := t
		t = strings.ReplaceAll(t, "<*>.<*>", "<*>")
		if t == prev {
			break
		}
	}
	for {
		prev := t
		t = strings.ReplaceAll(t, "<*><*>", "<*>")
		t = strings.ReplaceAll(t, "<*>:<*>", "<*>")
		t = strings.ReplaceAll(t, "<*> <*>", "<*>")
		if t == prev {
			break
		}
	}
	return t
}

// parsingAccuracy is PA as the Loghub-2.0 evaluator (evaluator_main.py)
// computes it: the share of lines whose predicted template string equals the
// ground-truth template, after align_with_null_values on both and
// correct_template_general on the ground truth.
func parsingAccuracy(contents []string, pred []string, truth []loghubRow) float64 {
	correct := 0
	for i, r := range truth {
		gt := correctTemplateGeneral(alignWithNullValues(r.content, r.template))
		if alignWithNullValues(contents[i], pred[i]) == gt {
			correct++
		}
	}
	return float64(correct) / float64(len(truth))
}

type systemScore struct {
	system    string
	templates int
	ga, pa    float64
}

// evaluateSystem parses one system's 2k sample with a fresh parser and
// scores it: GA against the original labels, PA against the corrected
// templates of loghub_2k_corrected.
func evaluateSystem(t testing.TB, cfg Config, system, format string) (systemScore, []string, []loghubRow) {
	contents, skipped := loghubContents(t, system, format)
	orig := readStructured(t, filepath.Join(dataDir, "loghub", system, system+"_2k.log_structured.csv"))
	corr := readStructured(t, filepath.Join(dataDir, "loghub_2k_corrected", system, system+"_2k.log_structured_corrected.csv"))
	if len(contents) != len(orig) || len(orig) != len(corr) {
		t.Fatalf("%s: %d lines matched the format (%d skipped), %d labelled, %d corrected", system, len(contents), skipped, len(orig), len(corr))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, len(contents))
	var r Result
	for i, c := range contents {
		if string(c) != orig[i].content {
			t.Fatalf("%s line %d: content %q, labelled content %q", system, i+1, c, orig[i].content)
		}
		p.Parse(c, &r)
		ids[i] = r.ID
	}
	pred := make([]string, len(ids))
	strs := make([]string, len(ids))
	truthIDs := make([]string, len(ids))
	for i, id := range ids {
		final, ok := p.Resolve(id)
		if !ok {
			t.Fatalf("%s line %d: template %x was evicted", system, i+1, id)
		}
		ids[i] = final
		pred[i], _ = p.Template(final)
		strs[i] = string(contents[i])
		truthIDs[i] = orig[i].eventID
	}
	return systemScore{
		system:    system,
		templates: p.Len(),
		ga:        groupingAccuracy(ids, truthIDs),
		pa:        parsingAccuracy(strs, pred, corr),
	}, pred, corr
}

// TestLoghubAccuracy scores the parser, with one configuration (the
// defaults), on the 16 Loghub 2k samples and checks the averages: GA at least
// 0.90 against the original labels (Drain published 0.866), PA at least 0.50
// against the corrected templates (Drain: about 0.32).
//
//	go test -run TestLoghubAccuracy -v ./ingest/logtemplate
//
// LOGTEMPLATE_DIFF=<system> also logs that system's distinct mismatches
// between predicted and corrected templates, to study the misses.
func TestLoghubAccuracy(t *testing.T) {
	skipWithoutData(t)
	var cfg Config
	var sumGA, sumPA float64
	var table strings.Builder
	fmt.Fprintf(&table, "\n| system | templates | GA | PA |\n|---|---:|---:|---:|\n")
	for _, s := range loghubFormats {
		sc, pred, corr := evaluateSystem(t, cfg, s.system, s.format)
		sumGA += sc.ga
		sumPA += sc.pa
		fmt.Fprintf(&table, "| %s | %d | %.3f | %.3f |\n", sc.system, sc.templates, sc.ga, sc.pa)
		if os.Getenv("LOGTEMPLATE_DIFF") == s.system {
			seen := map[string]bool{}
			for i := range pred {
				gt := correctTemplateGeneral(alignWithNullValues(corr[i].content, corr[i].template))
				if pred[i] != gt && !seen[pred[i]+gt] {
					seen[pred[i]+gt] = true
					t.Logf("pred %q\n    want %q", pred[i], gt)
				}
			}
		}
	}
	n := float64(len(loghubFormats))
	fmt.Fprintf(&table, "| **average** | | **%.3f** | **%.3f** |\n", sumGA/n, sumPA/n)
	t.Log(table.String())
	if sumGA/n < 0.90 {
		t.Errorf("average GA %.3f, want at least 0.90", sumGA/n)
	}
	if sumPA/n < 0.50 {
		t.Errorf("average PA %.3f, want at least 0.50", sumPA/n)
	}
}
