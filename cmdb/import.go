package cmdb

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// Importers maps a format name, as configuration spells it, to the function
// that decodes that format into a Document. Every importer returns a Document
// whose CI ids are unique and whose relation endpoints all exist, with CIs
// sorted by ID and relations by (Source, Target, Type), so that the same input
// always yields the same Document. An importer never returns a partial
// Document: on error the Document is nil and the error is an *ImportError.
//
// The map is filled at package initialisation and must not be modified
// afterwards; reading it from several goroutines is safe.
var Importers = map[string]func(io.Reader) (*Document, error){
	"servicenow": DecodeServiceNow,
	"backstage":  DecodeBackstage,
	"netbox":     DecodeNetBox,
}

// ImportError reports input that an importer rejects. It names the format,
// the record (an index and, where there is one, the record's own id) and the
// field, so that an operator can find the offending line in the export.
type ImportError struct {
	// Format is the importer: "servicenow", "backstage" or "netbox".
	Format string
	// Record locates the record, for example `cmdb_ci[3] (sys_id 9f2c…)` or
	// `document 4 (component:default/orders-api)`; empty when the input as a
	// whole is at fault.
	Record string
	// Field is the field at fault, for example "name" or
	// "spec.dependsOn[1]"; empty when the whole record is at fault.
	Field string
	// Reason says what is wrong and, where it helps, what to change.
	Reason string
	// Err is the underlying error, such as a *json.SyntaxError; may be nil.
	Err error
}

func (e *ImportError) Error() string {
	var b strings.Builder
	b.WriteString(e.Format)
	b.WriteString(": ")
	if e.Record != "" {
		b.WriteString(e.Record)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		if e.Reason != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *ImportError) Unwrap() error { return e.Err }

// Is makes every ImportError an ErrInvalid: it is about the content of the
// input, not a failure to read it.
func (e *ImportError) Is(target error) bool { return target == ErrInvalid }

// importReader remembers the first error of the underlying reader other than
// io.EOF, so that an importer can tell a failure to read its input, returned
// as is, from malformed content, returned as an *ImportError.
type importReader struct {
	r   io.Reader
	err error
}

func (ir *importReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if err != nil && err != io.EOF && ir.err == nil {
		ir.err = err
	}
	return n, err
}

// readError returns the read failure behind a decoding error, wrapped with
// the format's name, or nil when decoding failed on the content.
func (ir *importReader) readError(format string) error {
	if ir.err == nil {
		return nil
	}
	return fmt.Errorf("%s: read: %w", format, ir.err)
}

// importBuilder accumulates the CIs and relations of one import and produces
// the sorted, de-duplicated Document. It is not safe for concurrent use.
type importBuilder struct {
	cis   []CI
	index map[string]int // CI ID -> position in cis
	rels  map[Relation]struct{}
}

func newImportBuilder() *importBuilder {
	return &importBuilder{index: map[string]int{}, rels: map[Relation]struct{}{}}
}

// add appends ci and reports whether its ID was new. Empty aliases and
// attribute values are dropped, and aliases are sorted and de-duplicated.
func (b *importBuilder) add(ci CI) bool {
	if _, dup := b.index[ci.ID]; dup {
		return false
	}
	ci.Aliases = importAliases(ci.Aliases)
	for k, v := range ci.Attributes {
		if v == "" {
			delete(ci.Attributes, k)
		}
	}
	if len(ci.Attributes) == 0 {
		ci.Attributes = nil
	}
	b.index[ci.ID] = len(b.cis)
	b.cis = append(b.cis, ci)
	return true
}

func (b *importBuilder) has(id string) bool {
	_, ok := b.index[id]
	return ok
}

// ci returns the CI with the given ID, or nil. The pointer is valid until the
// next add.
func (b *importBuilder) ci(id string) *CI {
	i, ok := b.index[id]
	if !ok {
		return nil
	}
	return &b.cis[i]
}

// relate records "source depends on target". Callers check that both ends
// exist; duplicates collapse into one relation.
func (b *importBuilder) relate(source, target, typ string) {
	b.rels[Relation{Source: source, Target: target, Type: typ}] = struct{}{}
}

// document returns the Document in canonical order.
func (b *importBuilder) document() *Document {
	doc := &Document{CIs: b.cis, Relations: make([]Relation, 0, len(b.rels))}
	if doc.CIs == nil {
		doc.CIs = []CI{}
	}
	slices.SortFunc(doc.CIs, func(x, y CI) int { return strings.Compare(x.ID, y.ID) })
	for r := range b.rels {
		doc.Relations = append(doc.Relations, r)
	}
	slices.SortFunc(doc.Relations, func(x, y Relation) int {
		return cmp.Or(
			strings.Compare(x.Source, y.Source),
			strings.Compare(x.Target, y.Target),
			strings.Compare(x.Type, y.Type),
		)
	})
	return doc
}

// importAliases trims, sorts and de-duplicates aliases, dropping empty ones.
func importAliases(in []string) []string {
	out := in[:0]
	for _, a := range in {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// importSnake lower-cases s and joins its words with underscores:
// "Managed by" becomes "managed_by". Only letters and digits are kept.
func importSnake(s string) string {
	var b strings.Builder
	pending := false
	for _, r := range strings.ToLower(s) {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte('_')
			pending = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// importKeys returns the keys of m sorted, so that errors about keys do not
// depend on map iteration order.
func importKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
