package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/event"
)

// The YAML of a rule file (docs/RULES.md). Decoded strictly: an unknown
// field rejects the file.
type fileDoc struct {
	Rules       []ruleDoc    `yaml:"rules"`
	Maintenance []windowDoc  `yaml:"maintenance"`
	Inhibit     []inhibitDoc `yaml:"inhibit"`
}

type ruleDoc struct {
	Name     string        `yaml:"name"`
	Matchers []string      `yaml:"matchers"`
	Drop     bool          `yaml:"drop"`
	Class    string        `yaml:"class"`
	Persist  time.Duration `yaml:"persist"`
	Set      *setDoc       `yaml:"set"`
	Enrich   []string      `yaml:"enrich"`
	Continue *bool         `yaml:"continue"`
}

type setDoc struct {
	Severity string            `yaml:"severity"`
	CI       *string           `yaml:"ci"`
	Labels   map[string]string `yaml:"labels"`
}

type windowDoc struct {
	Name        string    `yaml:"name"`
	Description string    `yaml:"description"`
	Matchers    []string  `yaml:"matchers"`
	CIs         []string  `yaml:"cis"`
	Start       string    `yaml:"start"`
	End         string    `yaml:"end"`
	Recurring   *recurDoc `yaml:"recurring"`
}

type recurDoc struct {
	Every    string        `yaml:"every"`
	Days     []string      `yaml:"days"`
	At       string        `yaml:"at"`
	Duration time.Duration `yaml:"duration"`
	TimeZone string        `yaml:"time_zone"`
}

type inhibitDoc struct {
	Name           string   `yaml:"name"`
	SourceMatchers []string `yaml:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers"`
	Equal          []string `yaml:"equal"`
	Topology       *topoDoc `yaml:"topology"`
}

type topoDoc struct {
	MaxHops int `yaml:"max_hops"`
}

// DefaultTopologyMaxHops is the max_hops of a topology inhibit rule that
// gives none.
const DefaultTopologyMaxHops = 3

// ErrInvalid is wrapped by every error about the content of a rule file.
var ErrInvalid = errors.New("invalid rule file")

// ValidationError names what is wrong in a rule file: the file, the entry
// (rules[2] "drop-test-env") and its field.
type ValidationError struct {
	File    string
	Section string // rules, maintenance or inhibit; empty for the file as a whole
	Index   int
	Name    string
	Field   string
	Msg     string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteString(": ")
	if e.Section != "" {
		fmt.Fprintf(&b, "%s[%d]", e.Section, e.Index)
		if e.Name != "" {
			fmt.Fprintf(&b, " %q", e.Name)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// RuleSet is a compiled, immutable set of rules, maintenance windows and
// inhibit rules, from one or more files in order. It is safe for concurrent
// use; the Manager swaps whole rule sets atomically.
type RuleSet struct {
	files    []string
	rules    []rule
	index    ruleIndex
	windows  []window
	inhibits []inhibitRule

	// Counters resolved by the Manager when it publishes the rule set; nil
	// for a rule set compiled without one.
	ruleHits    []prometheus.Counter
	windowHits  []prometheus.Counter
	inhibitHits []prometheus.Counter
}

type rule struct {
	name     string
	file     string
	matchers []matcher
	drop     bool
	class    Class
	persist  time.Duration
	severity event.Severity
	setCI    bool
	ci       string
	labels   []labelValue
	enrich   []string
	// enrichSrc is where each enrich name is read: a CI field or attribute.
	enrichSrc []fieldRef
	cont      bool
	mutates   bool
}

type labelValue struct{ name, value string }

type window struct {
	name     string
	matchers []matcher
	cis      map[string]struct{}
	sched    schedule
}

type inhibitRule struct {
	name     string
	source   []matcher
	target   []matcher
	equal    []string
	topology bool
	maxHops  int
	// key identifies the rule's definition: the engine keeps the sources
	// of an inhibit rule across a reload only when its key is unchanged.
	key string
}

// Empty is a rule set without rules: the severity defaults decide.
func Empty() *RuleSet { return &RuleSet{} }

// Files returns the files the rule set was loaded from, in order.
func (rs *RuleSet) Files() []string { return rs.files }

// Len returns the number of rules, maintenance windows and inhibit rules.
func (rs *RuleSet) Len() (rules, windows, inhibits int) {
	return len(rs.rules), len(rs.windows), len(rs.inhibits)
}

// RuleNames returns the rule names in evaluation order.
func (rs *RuleSet) RuleNames() []string {
	out := make([]string, len(rs.rules))
	for i := range rs.rules {
		out[i] = rs.rules[i].name
	}
	return out
}

// Parse compiles one rule file's content; name is the file name used in
// errors.
func Parse(name string, data []byte) (*RuleSet, error) {
	return compile([]sourceFile{{name: name, data: data}})
}

// Load reads and compiles rule files in order. A directory stands for its
// *.yml and *.yaml files, sorted by name (not recursive). Every file is
// checked; the error joins the problems of all of them.
func Load(paths []string) (*RuleSet, error) {
	files, err := readFiles(paths)
	if err != nil {
		return nil, err
	}
	return compile(files)
}

type sourceFile struct {
	name string
	data []byte
}

// ExpandPaths returns the rule files paths stand for: a file stands for
// itself, a directory for its *.yml and *.yaml files, sorted by name.
func ExpandPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("rule files: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("rule files: %w", err)
		}
		for _, e := range ents { // sorted by name
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".yaml")) {
				continue
			}
			out = append(out, filepath.Join(p, n))
		}
	}
	return out, nil
}

func readFiles(paths []string) ([]sourceFile, error) {
	names, err := ExpandPaths(paths)
	if err != nil {
		return nil, err
	}
	files := make([]sourceFile, 0, len(names))
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("rule files: %w", err)
		}
		files = append(files, sourceFile{name: n, data: data})
	}
	return files, nil
}

func hashFiles(files []sourceFile) uint64 {
	d := xxhash.New()
	for _, f := range files {
		_, _ = d.WriteString(f.name)
		_, _ = d.Write([]byte{0})
		_, _ = d.Write(f.data)
		_, _ = d.Write([]byte{0})
	}
	return d.Sum64()
}

// decodeFile decodes one rule file strictly.
func decodeFile(f sourceFile) (*fileDoc, error) {
	var doc fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(f.data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &doc, nil // an empty file has no rules
		}
		return nil, yamlError(f, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{File: f.name, Msg: "more than one YAML document: put every rule of a file in one document"}
	}
	return &doc, nil
}

var (
	yamlLine      = regexp.MustCompile(`line (\d+): `)
	yamlUnknown   = regexp.MustCompile(`^line (\d+): field (\S+) not found in type ([^;]+)$`)
	yamlTypeNames = strings.NewReplacer(
		"rules.fileDoc", "rule file",
		"rules.ruleDoc", "rule",
		"rules.setDoc", "set",
		"rules.windowDoc", "maintenance window",
		"rules.recurDoc", "recurring schedule",
		"rules.inhibitDoc", "inhibit rule",
		"rules.topoDoc", "topology",
		"yaml: unmarshal errors:\n  ", "",
		"\n  ", "; ",
	)
)

// yamlError turns a decoding error into a ValidationError that names the
// entry the error is in, found by line in the document's node tree.
func yamlError(f sourceFile, err error) error {
	msg := yamlTypeNames.Replace(err.Error())
	msg = strings.TrimPrefix(msg, "yaml: ")
	ve := &ValidationError{File: f.name, Msg: msg}
	if u := yamlUnknown.FindStringSubmatch(msg); u != nil {
		ve.Field = u[2]
		ve.Msg = fmt.Sprintf("unknown field in %s (line %s): check its spelling against docs/RULES.md", u[3], u[1])
	}
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return ve
	}
	line, _ := strconv.Atoi(m[1])
	var root yaml.Node
	if yaml.Unmarshal(f.data, &root) != nil || len(root.Content) == 0 {
		return ve
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return ve
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		sec, list := top.Content[i].Value, top.Content[i+1]
		if list.Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range list.Content {
			next := int(^uint(0) >> 1)
			if j+1 < len(list.Content) {
				next = list.Content[j+1].Line
			} else if i+2 < len(top.Content) {
				next = top.Content[i+2].Line
			}
			if line >= item.Line && line < next {
				ve.Section, ve.Index = sec, j
				if item.Kind == yaml.MappingNode {
					for k := 0; k+1 < len(item.Content); k += 2 {
						if item.Content[k].Value == "name" {
							ve.Name = item.Content[k+1].Value
						}
					}
				}
				return ve
			}
		}
	}
	return ve
}

// compile decodes, checks and compiles files into one rule set. Names are
// unique per section across all files.
func compile(files []sourceFile) (*RuleSet, error) {
	rs := &RuleSet{}
	var errs []error
	ruleNames := map[string]string{}
	windowNames := map[string]string{}
	inhibitNames := map[string]string{}
	for _, f := range files {
		rs.files = append(rs.files, f.name)
		doc, err := decodeFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := fileCompiler{file: f.name}
		for i := range doc.Rules {
			c.at("rules", i, doc.Rules[i].Name)
			r := c.rule(&doc.Rules[i])
			c.unique(ruleNames, r.name)
			rs.rules = append(rs.rules, r)
		}
		for i := range doc.Maintenance {
			c.at("maintenance", i, doc.Maintenance[i].Name)
			w := c.window(&doc.Maintenance[i])
			c.unique(windowNames, w.name)
			rs.windows = append(rs.windows, w)
		}
		for i := range doc.Inhibit {
			c.at("inhibit", i, doc.Inhibit[i].Name)
			ir := c.inhibit(&doc.Inhibit[i])
			c.unique(inhibitNames, ir.name)
			rs.inhibits = append(rs.inhibits, ir)
		}
		errs = append(errs, c.errs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rs.index = buildIndex(rs.rules)
	return rs, nil
}

// fileCompiler compiles the entries of one file, collecting every error.
type fileCompiler struct {
	file    string
	section string
	index   int
	name    string
	errs    []error
}

func (c *fileCompiler) at(section string, i int, name string) {
	c.section, c.index, c.name = section, i, name
}

func (c *fileCompiler) bad(field, format string, args ...any) {
	c.errs = append(c.errs, &ValidationError{
		File: c.file, Section: c.section, Index: c.index, Name: c.name,
		Field: field, Msg: fmt.Sprintf(format, args...),
	})
}

func (c *fileCompiler) unique(seen map[string]string, name string) {
	if name == "" {
		c.bad("name", "missing: every entry needs a name, unique across the rule files")
		return
	}
	if prev, ok := seen[name]; ok {
		c.bad("name", "%q is already used in %s: names are unique across the rule files", name, prev)
		return
	}
	seen[name] = c.file
}

// matchers compiles a list of matcher entries, all of which must match.
// They are sorted cheapest first (equality on a label or field, literal
// sets, CI lookups, regexps): a conjunction's result does not depend on
// the order, its cost does.
func (c *fileCompiler) matchers(field string, list []string) []matcher {
	var out []matcher
	for i, s := range list {
		ms, err := parseMatchers(s)
		if err != nil {
			c.bad(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			continue
		}
		out = append(out, ms...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].cost() < out[j].cost() })
	return out
}

func (c *fileCompiler) rule(d *ruleDoc) rule {
	r := rule{name: d.Name, file: c.file, drop: d.Drop, enrich: d.Enrich, persist: d.Persist}
	r.matchers = c.matchers("matchers", d.Matchers)
	decides := d.Drop
	if d.Class != "" {
		cl, ok := ParseClass(d.Class)
		if !ok {
			c.bad("class", "%q is not one of informational, warning, exception", d.Class)
		}
		r.class = cl
		decides = true
		if d.Drop {
			c.bad("class", "a rule either drops or classifies, not both")
		}
	}
	if d.Persist != 0 && r.class != ClassWarning {
		c.bad("persist", "only a rule with class: warning has a persist duration")
	}
	if d.Persist < 0 {
		c.bad("persist", "must be > 0, got %s", d.Persist)
	}
	if s := d.Set; s != nil {
		if d.Drop {
			c.bad("set", "a dropped event is not modified: remove set or drop")
		}
		if s.Severity != "" {
			sev, ok := event.ParseSeverity(s.Severity)
			if !ok {
				c.bad("set.severity", "%q is not one of critical, major, minor, warning, info", s.Severity)
			}
			r.severity = sev
		}
		if s.CI != nil {
			r.setCI, r.ci = true, *s.CI
		}
		names := make([]string, 0, len(s.Labels))
		for n := range s.Labels {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !validLabelName(n) {
				c.bad("set.labels", "%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", n)
			}
			r.labels = append(r.labels, labelValue{n, s.Labels[n]})
		}
		if s.Severity == "" && s.CI == nil && len(s.Labels) == 0 {
			c.bad("set", "empty: give severity, ci or labels")
		}
		r.mutates = true
	}
	for i, a := range d.Enrich {
		if !validAttrName(a) || !validLabelName(a) {
			c.bad(fmt.Sprintf("enrich[%d]", i), "%q is not a CI attribute name that is also a valid label name", a)
		}
	}
	for _, a := range d.Enrich {
		src, name := srcCIAttr, a
		if s, ok := ciSources[a]; ok {
			src, name = s, ""
		}
		r.enrichSrc = append(r.enrichSrc, fieldRef{src, name})
	}
	if len(d.Enrich) > 0 {
		if d.Drop {
			c.bad("enrich", "a dropped event is not enriched: remove enrich or drop")
		}
		r.mutates = true
	}
	// A rule that decides stops evaluation unless it says continue: true;
	// a rule that only sets or enriches continues unless it says
	// continue: false.
	r.cont = !decides
	if d.Continue != nil {
		r.cont = *d.Continue
		if d.Drop && r.cont {
			c.bad("continue", "a drop rule always stops: remove continue")
		}
	}
	if !decides && !r.mutates && r.cont {
		c.bad("name", "the rule does nothing: give drop, class, set, enrich or continue: false")
	}
	return r
}

func (c *fileCompiler) window(d *windowDoc) window {
	w := window{name: d.Name}
	w.matchers = c.matchers("matchers", d.Matchers)
	if len(d.Matchers) == 0 && len(d.CIs) == 0 {
		c.bad("matchers", "missing: a maintenance window needs matchers, cis or both")
	}
	if len(d.CIs) > 0 {
		w.cis = make(map[string]struct{}, len(d.CIs))
		for i, ci := range d.CIs {
			if ci == "" {
				c.bad(fmt.Sprintf("cis[%d]", i), "empty CI id")
			}
			w.cis[ci] = struct{}{}
		}
	}
	w.sched = compileSchedule(d, c.bad)
	return w
}

func (c *fileCompiler) inhibit(d *inhibitDoc) inhibitRule {
	ir := inhibitRule{name: d.Name, equal: d.Equal}
	if len(d.SourceMatchers) == 0 {
		c.bad("source_matchers", "missing: which alerts inhibit others")
	}
	ir.source = c.matchers("source_matchers", d.SourceMatchers)
	ir.target = c.matchers("target_matchers", d.TargetMatchers)
	for i, l := range d.Equal {
		if !validLabelName(l) {
			c.bad(fmt.Sprintf("equal[%d]", i), "%q is not a valid label name", l)
		}
	}
	if d.Topology != nil {
		ir.topology = true
		ir.maxHops = d.Topology.MaxHops
		if ir.maxHops == 0 {
			ir.maxHops = DefaultTopologyMaxHops
		}
		if ir.maxHops < 1 || ir.maxHops > 64 {
			c.bad("topology.max_hops", "must be between 1 and 64, got %d", d.Topology.MaxHops)
		}
		if len(d.Equal) > 0 {
			c.bad("equal", "a topology inhibit rule relates alerts by CI dependencies, not equal labels: remove equal or topology")
		}
	} else if len(d.TargetMatchers) == 0 {
		c.bad("target_matchers", "missing: which alerts are inhibited (or give topology: for CI dependencies)")
	}
	ir.key = fmt.Sprintf("%s\x00%q\x00%q\x00%v\x00%d", d.Name, d.SourceMatchers, d.Equal, ir.topology, ir.maxHops)
	return ir
}
