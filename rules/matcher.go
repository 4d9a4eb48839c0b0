package rules

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// source says where a matcher reads its value: a label, a field of the
// event, or the event's CI in the CMDB.
type source uint8

const (
	srcLabel    source = iota // labels.<name>, or any name that is not a field
	srcSource                 // source
	srcKind                   // kind
	srcCI                     // ci
	srcCIType                 // ci_type, ci.type
	srcSeverity               // severity (canonical)
	srcStatus                 // status
	srcCIName                 // ci.name
	srcCIGroup                // ci.support_group
	srcCICrit                 // ci.criticality
	srcCIAttr                 // ci.<attribute>
)

// needsCI reports whether reading the source needs a CMDB lookup.
func (s source) needsCI() bool { return s == srcCIType || s >= srcCIName }

// fieldSources are the event fields a matcher can name without a prefix.
// They shadow labels of the same name; labels.<name> reads the label.
var fieldSources = map[string]source{
	"source":   srcSource,
	"kind":     srcKind,
	"ci":       srcCI,
	"ci_type":  srcCIType,
	"severity": srcSeverity,
	"status":   srcStatus,
}

// ciSources are the CI fields ci.<name> reads; any other name reads
// CI.Attributes.
var ciSources = map[string]source{
	"id":            srcCI,
	"type":          srcCIType,
	"name":          srcCIName,
	"support_group": srcCIGroup,
	"criticality":   srcCICrit,
}

// matcher is one compiled Alertmanager matcher over an event.
type matcher struct {
	src  source
	name string // label or CI attribute name
	typ  labels.MatchType
	// value is the value of an equality matcher.
	value string
	// lits, when not nil, are the alternatives of a regular expression made
	// of literals only (critical|major): a membership test replaces the
	// regexp, several times faster.
	lits []string
	m    *labels.Matcher
	text string // as written, for messages
}

func (m *matcher) matches(v string) bool {
	switch m.typ {
	case labels.MatchEqual:
		return v == m.value
	case labels.MatchNotEqual:
		return v != m.value
	}
	if m.lits != nil {
		in := false
		for _, l := range m.lits {
			if l == v {
				in = true
				break
			}
		}
		return in == (m.typ == labels.MatchRegexp)
	}
	return m.m.Matches(v)
}

// cost ranks matchers by how expensive they are to evaluate.
func (m *matcher) cost() int {
	c := 0
	switch {
	case m.typ == labels.MatchEqual || m.typ == labels.MatchNotEqual:
	case m.lits != nil:
		c = 1
	default:
		c = 4
	}
	if m.src.needsCI() {
		c += 2
	}
	return c
}

// indexValues returns the values an event must have for m to match, when
// they form a finite set: the index of a rule set keys rules by them.
func (m *matcher) indexValues() []string {
	switch {
	case m.typ == labels.MatchEqual:
		return []string{m.value}
	case m.typ == labels.MatchRegexp && m.lits != nil:
		return m.lits
	}
	return nil
}

// parseMatchers parses one entry of a matchers list: one or more
// comma-separated Alertmanager matchers (severity=~"critical|major",
// job!="test"), parsed by Alertmanager's own parser. Names may also be
// dotted, which Alertmanager's grammar does not allow: ci.<attribute> reads
// the event's CI in the CMDB and labels.<name> reads a label that a field
// name shadows. A dotted name is replaced by a placeholder before parsing
// and restored after, so the value syntax is exactly Alertmanager's.
func parseMatchers(s string) ([]matcher, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "{")
	s = strings.TrimSuffix(s, "}")
	var out []matcher
	for _, tok := range splitMatchers(s) {
		m, err := parseMatcher(tok)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("empty matcher")
	}
	return out, nil
}

// splitMatchers splits s at the commas outside double quotes, as
// labels.ParseMatchers does, dropping empty tokens.
func splitMatchers(s string) []string {
	var (
		toks    []string
		start   int
		quoted  bool
		escaped bool
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			toks = append(toks, s[start:i])
			start = i + 1
		}
	}
	toks = append(toks, s[start:])
	out := toks[:0]
	for _, t := range toks {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// placeholder stands for a dotted name while Alertmanager parses a matcher.
const placeholder = "__correlator_dotted_name__"

func parseMatcher(tok string) (matcher, error) {
	tok = strings.TrimSpace(tok)
	// The name runs up to the operator or a space.
	end := strings.IndexAny(tok, "=!~ \t\n")
	if end < 0 {
		end = len(tok)
	}
	name := tok[:end]
	parse := tok
	var src source
	var attr string
	prefix, rest, dotted := strings.Cut(name, ".")
	if dotted {
		switch prefix {
		case "ci":
			if !validAttrName(rest) {
				return matcher{}, fmt.Errorf("%q: %q is not a valid CI attribute name (letters, digits, _ and -)", tok, rest)
			}
			if s, ok := ciSources[rest]; ok {
				src = s
			} else {
				src, attr = srcCIAttr, rest
			}
		case "labels":
			if !validLabelName(rest) {
				return matcher{}, fmt.Errorf("%q: %q is not a valid label name", tok, rest)
			}
			src, attr = srcLabel, rest
		default:
			return matcher{}, fmt.Errorf("%q: unknown prefix %q: a dotted name starts with ci. (CMDB attributes) or labels.", tok, prefix)
		}
		parse = placeholder + tok[end:]
	}
	lm, err := labels.ParseMatcher(parse)
	if err != nil {
		return matcher{}, fmt.Errorf("%q: %w", tok, err)
	}
	if !dotted {
		if s, ok := fieldSources[lm.Name]; ok {
			src = s
		} else {
			src, attr = srcLabel, lm.Name
		}
	}
	if src == srcSeverity && (lm.Type == labels.MatchEqual || lm.Type == labels.MatchNotEqual) && lm.Value != "" {
		if sev, ok := event.ParseSeverity(lm.Value); !ok || string(sev) != lm.Value {
			return matcher{}, fmt.Errorf("%q: severity is the canonical one of critical, major, minor, warning, info (use labels.severity for the raw label)", tok)
		}
	}
	m := matcher{src: src, name: attr, typ: lm.Type, value: lm.Value, m: lm, text: tok}
	if lm.Type == labels.MatchRegexp || lm.Type == labels.MatchNotRegexp {
		m.lits = regexpLiterals(lm.Value)
	}
	return m, nil
}

// regexpLiterals returns the strings re matches when it is an alternation
// of plain literals, nil otherwise.
func regexpLiterals(re string) []string {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	lit := func(r *syntax.Regexp) (string, bool) {
		switch {
		case r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0:
			return string(r.Rune), true
		case r.Op == syntax.OpEmptyMatch:
			return "", true
		}
		return "", false
	}
	if s, ok := lit(r); ok {
		return []string{s}
	}
	if r.Op != syntax.OpAlternate {
		return nil
	}
	out := make([]string, 0, len(r.Sub))
	for _, sub := range r.Sub {
		s, ok := lit(sub)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// evalCtx reads the values matchers test from one event. It looks the CI up
// in the topology at most once per event, and only when a matcher needs it.
type evalCtx struct {
	e      *event.Event
	topo   Topology
	ci     *cmdb.CI
	ciDone bool
}

func (c *evalCtx) reset(e *event.Event, topo Topology) {
	*c = evalCtx{e: e, topo: topo}
}

// lookupCI returns the event's CI, nil when it has none or the CMDB does not
// know it.
func (c *evalCtx) lookupCI() *cmdb.CI {
	if !c.ciDone {
		c.ciDone = true
		c.ci = nil
		if c.topo != nil && c.e.CI != "" {
			if ci, ok := c.topo.CI(c.e.CI); ok {
				c.ci = ci
			}
		}
	}
	return c.ci
}

// ciChanged forgets the CI looked up, after a rule set the event's CI.
func (c *evalCtx) ciChanged() { c.ciDone = false }

func (c *evalCtx) value(src source, name string) string {
	e := c.e
	switch src {
	case srcLabel:
		return e.Labels.Get(name)
	case srcSource:
		return e.Source
	case srcKind:
		return string(e.Kind)
	case srcCI:
		return e.CI
	case srcSeverity:
		return string(e.Severity)
	case srcStatus:
		return string(e.Status)
	}
	ci := c.lookupCI()
	if ci == nil {
		return ""
	}
	switch src {
	case srcCIType:
		return ci.Type
	case srcCIName:
		return ci.Name
	case srcCIGroup:
		return ci.SupportGroup
	case srcCICrit:
		if ci.Criticality == 0 {
			return strconv.Itoa(cmdb.DefaultCriticality)
		}
		return strconv.Itoa(ci.Criticality) // small ints do not allocate
	default: // srcCIAttr
		return ci.Attributes[name]
	}
}

func (c *evalCtx) match(m *matcher) bool { return m.matches(c.value(m.src, m.name)) }

// matchAll reports whether every matcher matches; an empty list matches.
func (c *evalCtx) matchAll(ms []matcher) bool {
	for i := range ms {
		if !c.match(&ms[i]) {
			return false
		}
	}
	return true
}
