package cmdb

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is what `correlatord cmdb check` prints: what a document holds and
// what is wrong with it.
type Report struct {
	// Source is the file checked, Format its format.
	Source string `json:"source,omitempty"`
	Format string `json:"format,omitempty"`
	// Version is the topology's Version; empty when the document has errors.
	Version   string         `json:"version,omitempty"`
	CIs       int            `json:"cis"`
	Relations int            `json:"relations"`
	CIsByType map[string]int `json:"cis_by_type"`
	// RelationsByType counts relations with the type defaulted.
	RelationsByType map[string]int `json:"relations_by_type"`
	// Services counts business services (type service).
	Services int `json:"services"`
	// Components counts connected components; LargestComponents lists the
	// sizes of the largest, up to five. Both need a valid document.
	Components        int   `json:"components"`
	LargestComponents []int `json:"largest_components,omitempty"`
	// Orphans counts CIs with no relation at all.
	Orphans int `json:"orphans"`
	// Warnings and Errors keep up to MaxProblems each; the totals count
	// all. A document with errors does not load.
	Warnings      []Problem `json:"warnings,omitempty"`
	WarningsTotal int       `json:"warnings_total"`
	Errors        []Problem `json:"errors,omitempty"`
	ErrorsTotal   int       `json:"errors_total"`
}

// OK reports whether the document has no errors (warnings are fine).
func (r *Report) OK() bool { return r.ErrorsTotal == 0 }

// Check validates doc and describes it. Like Build, it fills defaults into
// doc.
func Check(doc *Document) Report {
	r := Report{
		CIs:             len(doc.CIs),
		Relations:       len(doc.Relations),
		CIsByType:       map[string]int{},
		RelationsByType: map[string]int{},
	}
	for i := range doc.CIs {
		r.CIsByType[doc.CIs[i].Type]++
		if doc.CIs[i].Type == TypeService {
			r.Services++
		}
	}
	for i := range doc.Relations {
		typ := doc.Relations[i].Type
		if typ == "" {
			typ = RelDependsOn
		}
		r.RelationsByType[typ]++
	}
	t, errs := build(doc, BuildOptions{MaxImpactEntries: -1})
	r.Errors, r.ErrorsTotal = errs.list, errs.total
	warns := t.warnings
	if errs.total == 0 {
		r.Version = t.Version()
		r.Components = t.Components()
		sizes := slices.Clone(t.compSize)
		slices.SortFunc(sizes, func(a, b int32) int { return cmp.Compare(b, a) })
		for _, s := range sizes[:min(5, len(sizes))] {
			r.LargestComponents = append(r.LargestComponents, int(s))
		}
		var orphans []string
		for i := range t.cis {
			if t.out.start[i] == t.out.start[i+1] && t.in.start[i] == t.in.start[i+1] {
				r.Orphans++
				if len(orphans) < 5 {
					orphans = append(orphans, t.cis[i].ID)
				}
			}
		}
		if r.Orphans > 0 {
			more := ""
			if r.Orphans > len(orphans) {
				more = fmt.Sprintf(" and %d more", r.Orphans-len(orphans))
			}
			warns.add("", "", "%d orphan CIs (no relation: no impact reaches or leaves them): %s%s",
				r.Orphans, strings.Join(orphans, ", "), more)
		}
		if len(t.services) == 0 && len(t.cis) > 0 {
			warns.add("", "", "no business service (no CI of type %q): impacted services will always be empty", TypeService)
		}
	}
	r.Warnings, r.WarningsTotal = warns.list, warns.total
	return r
}

// CheckFile reads path in the named format ("" or FormatNative, else a
// name of formats or Importers) and checks it. A document that cannot be
// decoded gives a Report whose Errors say why; the error is for a file
// that cannot be read or an unknown format.
func CheckFile(path, format string, formats Formats) (Report, error) {
	src, err := NewFileSource(path, format, formats)
	if err != nil {
		return Report{}, err
	}
	if format == "" {
		format = FormatNative
	}
	doc, err := src.load(context.Background())
	if err != nil {
		if !errors.Is(err, ErrInvalid) && !isImportError(err) {
			return Report{}, err
		}
		return Report{Source: path, Format: format, Errors: []Problem{{Msg: err.Error()}}, ErrorsTotal: 1}, nil
	}
	r := Check(doc)
	r.Source, r.Format = path, format
	return r, nil
}

func isImportError(err error) bool {
	var ie *ImportError
	return errors.As(err, &ie)
}

// WriteText writes the report for a person to read.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	if r.Source != "" {
		p("%s (%s)\n", r.Source, r.Format)
	}
	if r.Version != "" {
		p("version %s\n", r.Version)
	}
	p("%d CIs, %d relations, %d business services\n", r.CIs, r.Relations, r.Services)
	counts := func(title string, m map[string]int) {
		if len(m) == 0 {
			return
		}
		p("%s:\n", title)
		keys := make([]string, 0, len(m))
		width := 0
		for k := range m {
			keys = append(keys, k)
			width = max(width, len(k))
		}
		slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
		for _, k := range keys {
			name := k
			if name == "" {
				name = "(empty)"
			}
			p("  %-*s %d\n", max(width, 7), name, m[k])
		}
	}
	counts("CIs by type", r.CIsByType)
	counts("relations by type", r.RelationsByType)
	if r.OK() {
		sizes := make([]string, len(r.LargestComponents))
		for i, s := range r.LargestComponents {
			sizes[i] = fmt.Sprint(s)
		}
		p("%d connected components", r.Components)
		if len(sizes) > 0 {
			p(" (largest: %s)", strings.Join(sizes, ", "))
		}
		p("\n%d orphan CIs\n", r.Orphans)
	}
	list := func(title string, ps []Problem, total int) {
		if total == 0 {
			return
		}
		p("%d %s:\n", total, title)
		for _, pr := range ps {
			p("  %s\n", pr.String())
		}
		if total > len(ps) {
			p("  ... and %d more\n", total-len(ps))
		}
	}
	list("warnings", r.Warnings, r.WarningsTotal)
	list("errors", r.Errors, r.ErrorsTotal)
	if r.OK() {
		p("OK\n")
	} else {
		p("FAILED: the document would not load\n")
	}
	return bw.Flush()
}
