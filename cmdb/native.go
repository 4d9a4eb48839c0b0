package cmdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// FormatNative names the native format (this package's Document in YAML or
// JSON) wherever a format is chosen by name.
const FormatNative = "native"

// ErrInvalid is wrapped by every error about the content of a CMDB
// document (*DecodeError, *ValidationError), as opposed to failures to
// read it; check with errors.Is.
var ErrInvalid = errors.New("invalid cmdb document")

// Decoder decodes one document of some format into a Document. It reads r
// to the end or fails; it returns a new Document that the caller owns. The
// native decoder is DecodeNative; the importers (servicenow, backstage,
// netbox) are the values of Importers.
type Decoder func(r io.Reader) (*Document, error)

// Formats maps format names to decoders, for sources loading a format other
// than the native one. LookupFormat resolves a name in it first, then
// FormatNative, then Importers; a nil Formats is fine.
type Formats map[string]Decoder

// LookupFormat returns the decoder of the named format: from formats when
// there, else the native decoder for "native" or "", else the importer of
// that name.
func LookupFormat(name string, formats Formats) (Decoder, error) {
	if d, ok := formats[name]; ok && d != nil {
		return d, nil
	}
	if name == "" || name == FormatNative {
		return DecodeNative, nil
	}
	if d, ok := Importers[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("unknown CMDB format %q (known: %s)", name, strings.Join(FormatNames(formats), ", "))
}

// FormatNames lists the format names LookupFormat knows, sorted.
func FormatNames(formats Formats) []string {
	names := []string{FormatNative}
	for n := range Importers {
		names = append(names, n)
	}
	for n := range formats {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// DecodeNative decodes the native format, JSON or YAML, told apart by the
// first byte that is not white space (after an optional UTF-8 byte order
// mark): '{' is JSON, anything else YAML. A YAML document written in flow
// style with '{' at the top is therefore read as JSON and must be JSON.
//
// Both decoders are strict: unknown fields, duplicate fields, several YAML
// documents and trailing data are errors (*DecodeError, naming the line and
// the path such as cis[3].aliases). They only decode: Build validates the
// content (ids, relations, criticality).
func DecodeNative(r io.Reader) (*Document, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	json, err := nativeSniffJSON(br)
	if err != nil {
		return nil, err
	}
	if json {
		return DecodeNativeJSON(br)
	}
	return DecodeNativeYAML(br)
}

// nativeSniffJSON reports whether the first significant byte of br is '{',
// consuming only a byte order mark.
func nativeSniffJSON(br *bufio.Reader) (bool, error) {
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if err == io.EOF || err == bufio.ErrBufferFull {
				return false, nil
			}
			return false, fmt.Errorf("read: %w", err)
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true, nil
		}
		return false, nil
	}
}

// The fields of each level of the native format, for the YAML key check.
var (
	nativeDocFields = []string{"cis", "relations"}
	nativeCIFields  = njCIFields[:]
	nativeRelFields = njRelFields[:]
)

// DecodeNativeYAML decodes the native format from YAML (one document). It
// is meant for files people write; big generated topologies should be JSON
// (DecodeNativeJSON is more than ten times faster and smaller).
func DecodeNativeYAML(r io.Reader) (*Document, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if err == io.EOF {
			return nil, errEmptyDocument
		}
		return nil, nativeYAMLError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, nativeYAMLError(err)
		}
		return nil, &DecodeError{Line: extra.Line, Msg: "more than one YAML document (a CMDB file holds one)"}
	}
	if len(root.Content) == 0 {
		return nil, errEmptyDocument
	}
	top := root.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil, errEmptyDocument
	}
	// yaml.v3 applies KnownFields only when decoding a stream straight
	// into a struct; checking the keys on the node tree first gives the
	// same strictness with errors that name the CI (cis[3]) and not only a
	// line.
	if err := nativeCheckKeys(top, "", nativeDocFields, "a CMDB document has cis and relations"); err != nil {
		return nil, err
	}
	for _, list := range []struct {
		key, what string
		fields    []string
	}{
		{"cis", "a CI has id, type, name, criticality, support_group, aliases, attributes", nativeCIFields},
		{"relations", "a relation has source, target, type", nativeRelFields},
	} {
		seq := nativeValue(top, list.key)
		if seq == nil {
			continue
		}
		if seq.Kind != yaml.SequenceNode {
			if seq.Kind == yaml.ScalarNode && seq.Tag == "!!null" {
				continue
			}
			return nil, &DecodeError{Line: seq.Line, Path: list.key, Msg: "expected a list"}
		}
		for i, item := range seq.Content {
			path := fmt.Sprintf("%s[%d]", list.key, i)
			if err := nativeCheckKeys(item, path, list.fields, list.what); err != nil {
				return nil, err
			}
			if list.key == "cis" {
				if a := nativeValue(item, "attributes"); a != nil {
					if err := nativeCheckKeys(a, path+".attributes", nil, ""); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	doc := &Document{}
	if err := top.Decode(doc); err != nil {
		return nil, nativeYAMLError(err)
	}
	return doc, nil
}

// nativeValue returns the value of key in mapping n, or nil.
func nativeValue(n *yaml.Node, key string) *yaml.Node {
	n = nativeDeref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return nativeDeref(n.Content[i+1])
		}
	}
	return nil
}

func nativeDeref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// nativeCheckKeys checks that n is a mapping (or null) whose keys are among
// fields (any key when fields is nil) and appear once; merge keys (<<) are
// followed.
func nativeCheckKeys(n *yaml.Node, path string, fields []string, what string) error {
	seen := map[string]bool{}
	var check func(n *yaml.Node) error
	check = func(n *yaml.Node) error {
		n = nativeDeref(n)
		switch {
		case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
			return nil
		case n.Kind != yaml.MappingNode:
			want := "a mapping"
			if path != "" {
				want = "a mapping (" + what + ")"
			}
			if fields == nil {
				want = "a mapping of strings"
			}
			return &DecodeError{Line: n.Line, Path: path, Msg: "expected " + want}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" {
				v := nativeDeref(n.Content[i+1])
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						if err := check(m); err != nil {
							return err
						}
					}
				} else if err := check(v); err != nil {
					return err
				}
				continue
			}
			if fields != nil && !slices.Contains(fields, k.Value) {
				msg := fmt.Sprintf("unknown field %q", k.Value)
				if what != "" {
					msg += " (" + what + ")"
				}
				return &DecodeError{Line: k.Line, Path: path, Msg: msg}
			}
			if seen[k.Value] {
				return &DecodeError{Line: k.Line, Path: path, Msg: fmt.Sprintf("duplicate field %q", k.Value)}
			}
			seen[k.Value] = true
		}
		return nil
	}
	return check(n)
}

// nativeYAMLError turns a yaml.v3 error into a *DecodeError, keeping its
// text (which names the line).
func nativeYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return &DecodeError{Msg: strings.Join(te.Errors, "; ")}
	}
	return &DecodeError{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}
