package logtemplate

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// LogFormat splits a line into the header fields of a Loghub-style format
// string and its <Content>, the part a template is mined from.
//
// The format is turned into a regular expression exactly as the Loghub
// benchmark's loader does it (logparser's generate_logformat_regex): the
// format is split at the fields <Name>; the text between fields is itself a
// regular expression (so \[ is a literal bracket and (\[<PID>\])? an
// optional part), in which every run of spaces becomes \s+; every field
// becomes the lazy group (?P<Name>.*?); and the whole is anchored, ^...$.
// The loader matches the line with its leading and trailing white space
// removed, and so does Content.
//
// Two differences from Python's re are inherent to Go's regexp (RE2): \s is
// ASCII white space only, and look-arounds and back-references in the text
// between fields are rejected when the format is compiled.
type LogFormat struct {
	re      *regexp.Regexp
	fields  []string
	content int // submatch index of Content
}

var fieldRE = regexp.MustCompile(`<[^<>]+>`)
var fieldNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseLogFormat compiles a Loghub header format such as
// "<Date> <Time> <Pid> <Level> <Component>: <Content>". It must have a
// <Content> field.
func ParseLogFormat(format string) (*LogFormat, error) {
	if format == "" {
		return nil, fmt.Errorf("log format is empty; want fields like <Date> <Time> <Content>")
	}
	var b strings.Builder
	b.WriteString("^")
	var fields []string
	seen := map[string]bool{}
	last := 0
	spaces := regexp.MustCompile(` +`)
	for _, loc := range fieldRE.FindAllStringIndex(format, -1) {
		b.WriteString(spaces.ReplaceAllLiteralString(format[last:loc[0]], `\s+`))
		name := format[loc[0]+1 : loc[1]-1]
		if !fieldNameRE.MatchString(name) {
			return nil, fmt.Errorf("log format: field <%s> is not a valid name; use letters, digits and _", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("log format: field <%s> appears twice", name)
		}
		seen[name] = true
		fields = append(fields, name)
		fmt.Fprintf(&b, "(?P<%s>.*?)", name)
		last = loc[1]
	}
	b.WriteString(spaces.ReplaceAllLiteralString(format[last:], `\s+`))
	b.WriteString("$")
	if !seen["Content"] {
		return nil, fmt.Errorf("log format %q has no <Content> field; it names the message to mine", format)
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("log format %q: the text between fields is not a valid regular expression: %w", format, err)
	}
	// A field inside a character class ("[<A>]") compiles as literal
	// characters, not a group: refuse the format rather than lose it.
	for _, name := range fields {
		if re.SubexpIndex(name) < 0 {
			return nil, fmt.Errorf("log format %q: field <%s> is not a group of the pattern (is it inside [...]?)", format, name)
		}
	}
	return &LogFormat{re: re, fields: fields, content: re.SubexpIndex("Content")}, nil
}

// Fields returns the format's field names in order.
func (f *LogFormat) Fields() []string { return f.fields }

// Content returns the <Content> of line, a sub-slice of it, and false when
// the line does not match the format (the Loghub loader skips such lines).
// A trailing CR, like any surrounding white space, is ignored.
func (f *LogFormat) Content(line []byte) ([]byte, bool) {
	line = bytes.TrimSpace(line)
	m := f.re.FindSubmatchIndex(line)
	// A format whose text between fields holds an alternation ("|") can
	// match without the Content group taking part: no content, no match.
	if m == nil || m[2*f.content] < 0 {
		return nil, false
	}
	return line[m[2*f.content]:m[2*f.content+1]], true
}

// Split returns every field of line, in the order of Fields, and false when
// the line does not match.
func (f *LogFormat) Split(line []byte) ([][]byte, bool) {
	line = bytes.TrimSpace(line)
	m := f.re.FindSubmatchIndex(line)
	if m == nil {
		return nil, false
	}
	out := make([][]byte, len(f.fields))
	for i, name := range f.fields {
		// Optional parts of the format, like (\[<PID>\])?, are groups too,
		// so a field's group is found by name.
		if k := f.re.SubexpIndex(name); m[2*k] >= 0 {
			out[i] = line[m[2*k]:m[2*k+1]]
		}
	}
	return out, true
}
