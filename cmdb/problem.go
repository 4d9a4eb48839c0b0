package cmdb

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxProblems is how many errors, and separately how many warnings, a
// ValidationError, a Topology or a Report keeps; the totals count them all.
const MaxProblems = 100

// Problem is one error or warning about a document: where it is (cis[3],
// relations[12], or empty for the document as a whole), which CI or
// relation it is about, and what is wrong.
type Problem struct {
	// Where is the path of the item: cis[3] or relations[12]; empty for
	// problems that are about several items (a cycle).
	Where string `json:"where,omitempty"`
	// ID is the CI id, or "source -> target" for a relation.
	ID  string `json:"id,omitempty"`
	Msg string `json:"msg"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Where != "" {
		b.WriteString(p.Where)
	}
	if p.ID != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("(")
		b.WriteString(strconv.Quote(p.ID))
		b.WriteString(")")
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// problemList keeps the first MaxProblems problems and counts the rest.
type problemList struct {
	list  []Problem
	total int
}

func (l *problemList) add(where, id, format string, args ...any) {
	l.total++
	if len(l.list) < MaxProblems {
		l.list = append(l.list, Problem{Where: where, ID: id, Msg: fmt.Sprintf(format, args...)})
	}
}

// ValidationError lists what is wrong with a document: every problem that
// makes it unusable (up to MaxProblems of them; Total counts all). It wraps
// ErrInvalid.
type ValidationError struct {
	// Source names the file or URL, when known.
	Source   string
	Problems []Problem
	Total    int
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Total == 1 {
		b.WriteString("1 error: ")
	} else {
		fmt.Fprintf(&b, "%d errors: ", e.Total)
	}
	const shown = 10
	for i, p := range e.Problems {
		if i == shown {
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if e.Total > shown {
		fmt.Fprintf(&b, "; and %d more", e.Total-min(shown, len(e.Problems)))
	}
	return b.String()
}

// Unwrap makes every ValidationError an ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func ciWhere(i int) string  { return "cis[" + strconv.Itoa(i) + "]" }
func relWhere(i int) string { return "relations[" + strconv.Itoa(i) + "]" }
