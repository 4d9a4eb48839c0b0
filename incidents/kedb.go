package incidents

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/alertmanager/pkg/labels"
	"gopkg.in/yaml.v3"
)

// KnownError is an entry of the known-error database: a root cause with
// its workaround, and matchers that recognise new incidents it explains.
type KnownError struct {
	ID         string `yaml:"id" json:"id"`
	Title      string `yaml:"title" json:"title"`
	RootCause  string `yaml:"root_cause" json:"root_cause"`
	Workaround string `yaml:"workaround" json:"workaround"`
	ProblemID  string `yaml:"problem_id,omitempty" json:"problem_id,omitempty"`
	// Matchers use Alertmanager's syntax (name="v", name=~"re", !=, !~)
	// over the incident's labels: root_cause_ci, ci_type, category,
	// priority, support_group, alertname (the root cause's symptom) and
	// service (matches when any impacted service does). All must match.
	Matchers []string `yaml:"matchers" json:"matchers"`

	parsed []*labels.Matcher
}

// compile parses the matchers; field names the entry in errors.
func (k *KnownError) compile(field string) error {
	if k.ID == "" {
		return fmt.Errorf("%s.id: must not be empty", field)
	}
	if len(k.Matchers) == 0 {
		return fmt.Errorf("%s.matchers: at least one is needed, or every incident would match", field)
	}
	k.parsed = k.parsed[:0]
	for i, s := range k.Matchers {
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			return fmt.Errorf("%s.matchers[%d]: %w", field, i, err)
		}
		k.parsed = append(k.parsed, ms...)
	}
	return nil
}

// matchLabels are an incident's labels as known-error matchers see them.
type matchLabels struct {
	set      map[string]string
	services []string
}

func (k *KnownError) matches(l *matchLabels) bool {
	for _, m := range k.parsed {
		if m.Name == "service" {
			ok := false
			for _, s := range l.services {
				if m.Matches(s) {
					ok = true
					break
				}
			}
			// A negative matcher on no services holds.
			if !ok && !(len(l.services) == 0 && m.Matches("")) {
				return false
			}
			continue
		}
		if !m.Matches(l.set[m.Name]) {
			return false
		}
	}
	return true
}

// KEDB is the file-backed known-error database, shared by every partition
// and swapped whole on reload.
type KEDB struct {
	path string
	cur  atomic.Pointer[[]*KnownError]
}

// NewKEDB returns a database loaded from path ("" for an empty one).
func NewKEDB(path string) (*KEDB, error) {
	k := &KEDB{path: path}
	empty := []*KnownError{}
	k.cur.Store(&empty)
	if path == "" {
		return k, nil
	}
	return k, k.Reload()
}

// Reload reads the file again; on error the loaded entries stay.
func (k *KEDB) Reload() error {
	if k.path == "" {
		return nil
	}
	b, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("incidents.known_errors_file: %w", err)
	}
	es, err := ParseKnownErrors(b)
	if err != nil {
		return fmt.Errorf("incidents.known_errors_file %s: %w", k.path, err)
	}
	k.cur.Store(&es)
	return nil
}

// Len returns the number of entries.
func (k *KEDB) Len() int { return len(*k.cur.Load()) }

// Entries returns the entries; callers must not modify them.
func (k *KEDB) Entries() []*KnownError { return *k.cur.Load() }

// ParseKnownErrors parses a known-error file: `known_errors:` with a list
// of entries. Unknown fields and duplicate ids are errors.
func ParseKnownErrors(b []byte) ([]*KnownError, error) {
	var doc struct {
		KnownErrors []*KnownError `yaml:"known_errors"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !strings.Contains(err.Error(), "EOF") {
		return nil, err
	}
	seen := map[string]bool{}
	for i, e := range doc.KnownErrors {
		field := fmt.Sprintf("known_errors[%d]", i)
		if e == nil {
			return nil, fmt.Errorf("%s: empty entry", field)
		}
		if err := e.compile(field); err != nil {
			return nil, err
		}
		if seen[e.ID] {
			return nil, fmt.Errorf("%s.id: %q is used twice", field, e.ID)
		}
		seen[e.ID] = true
	}
	if doc.KnownErrors == nil {
		doc.KnownErrors = []*KnownError{}
	}
	return doc.KnownErrors, nil
}
