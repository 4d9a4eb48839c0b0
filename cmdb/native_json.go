package cmdb

import (
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// The JSON side of the native format is decoded by a scanner written for
// Document alone, not by encoding/json or fastjson: a CMDB of a million CIs
// and three million relations is a file of several hundred megabytes, and
// what matters at that size is what is left in the heap afterwards.
//
//   - The input is streamed through a fixed buffer (it is never held whole).
//   - Strings are copied into large byte slabs rather than allocated one by
//     one: no per-string header or size-class rounding. A slab lives as long
//     as any string in it, so CI strings and relation strings go to separate
//     slabs; relation strings die with the Document once Build has turned
//     relations into integer pairs.
//   - Strings that repeat across CIs (types, support groups, relation types,
//     attribute keys and short attribute values) are interned, and CIs whose
//     attribute sets are equal share one map. Documents are read-only once
//     decoded (see Build), so sharing is safe.
//
// It is exactly as strict as the YAML path: unknown and duplicate fields are
// errors, as are invalid UTF-8, fractional criticalities and trailing data.
// FuzzNativeJSONMatchesStdlib checks that whatever it accepts, encoding/json
// (with DisallowUnknownFields) decodes to the same Document.

// njMaxToken bounds one token: a token must fit the buffer, so a string
// longer than this is refused, which also bounds the memory a hostile input
// can make the scanner take.
const njMaxToken = 64 << 20

// njSlabSize is the size of one string slab.
const njSlabSize = 256 << 10

// njInternMax bounds the interned strings and attribute sets of one decode,
// so that a file of unique values does not build a large intern table for
// nothing.
const njInternMax = 1 << 16

// DecodeNativeJSON decodes the native format from JSON. See DecodeNative.
func DecodeNativeJSON(r io.Reader) (*Document, error) {
	d := njDecoder{s: njScanner{r: r, buf: make([]byte, 64<<10), line: 1}}
	doc, err := d.document()
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// njScanner is a streaming JSON tokenizer over a refilling buffer.
type njScanner struct {
	r    io.Reader
	buf  []byte
	pos  int // next byte to read
	end  int // end of valid bytes
	line int // line of buf[pos], 1-based
	eof  bool
	rerr error
}

// fill reads more input, keeping buf[pos:end] (moved to the start of buf).
// It reports whether at least one byte arrived. Slices into buf taken
// before a fill are invalid after it; offsets relative to pos stay valid.
func (s *njScanner) fill() bool {
	if s.eof || s.rerr != nil {
		return false
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.pos, s.end = 0, n
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= njMaxToken {
			s.rerr = fmt.Errorf("a single value is longer than %d bytes", njMaxToken)
			return false
		}
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			s.rerr = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
	s.rerr = io.ErrNoProgress
	return false
}

// DecodeError says where a document could not be decoded. Line is 1-based
// (0 when unknown); Path is the JSON/YAML path of the value (cis[3].aliases).
type DecodeError struct {
	Line int
	Path string
	Msg  string
}

func (e *DecodeError) Error() string {
	s := ""
	if e.Line > 0 {
		s = "line " + strconv.Itoa(e.Line) + ": "
	}
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Msg
}

// Unwrap makes every DecodeError an ErrInvalid.
func (e *DecodeError) Unwrap() error { return ErrInvalid }

// njPath names a value in the document; it is formatted only for errors,
// so decoding builds no path njPaths.
type njPath struct {
	list  string // "cis", "relations" or "" for the top level
	i     int    // index in list
	field string // field of the element, or ""
	sub   string // key within the field (attributes), or ""
	j     int    // index within the field (aliases), or -1
}

func (p njPath) String() string {
	if p.list == "" {
		return ""
	}
	s := p.list + "[" + strconv.Itoa(p.i) + "]"
	if p.field != "" {
		s += "." + p.field
	}
	if p.sub != "" {
		s += "." + p.sub
	}
	if p.j >= 0 {
		s += "[" + strconv.Itoa(p.j) + "]"
	}
	return s
}

var njTop = njPath{j: -1}

func (s *njScanner) errorf(path njPath, format string, args ...any) error {
	if s.rerr != nil {
		return fmt.Errorf("read: %w", s.rerr)
	}
	return &DecodeError{Line: s.line, Path: path.String(), Msg: fmt.Sprintf(format, args...)}
}

// njEOF is what peek returns at the end of the input.
const njEOF = -1

// peek skips white space and returns the next byte without consuming it, or
// njEOF at the end of the input.
func (s *njScanner) peek() int {
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\r':
				s.pos++
			case '\n':
				s.line++
				s.pos++
			default:
				return int(c)
			}
		}
		if !s.fill() {
			return njEOF
		}
	}
}

// describe names the token starting with c, for error messages.
func njDescribe(c int) string {
	switch {
	case c == njEOF:
		return "end of input"
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return fmt.Sprintf("%q", rune(c))
}

// expect consumes byte c after white space.
func (s *njScanner) expect(c byte, path njPath) error {
	if got := s.peek(); got != int(c) {
		return s.errorf(path, "expected %q, found %s", c, njDescribe(got))
	}
	s.pos++
	return nil
}

// literal consumes the literal word (null, true, false) whose first byte is
// next.
func (s *njScanner) literal(word string, path njPath) error {
	for s.end-s.pos < len(word) {
		if !s.fill() {
			break
		}
	}
	if s.end-s.pos < len(word) || string(s.buf[s.pos:s.pos+len(word)]) != word {
		return s.errorf(path, "invalid literal (expected %s)", word)
	}
	s.pos += len(word)
	return nil
}

// null consumes null if it is next and reports whether it was.
func (s *njScanner) null(path njPath) (bool, error) {
	if s.peek() != 'n' {
		return false, nil
	}
	return true, s.literal("null", path)
}

// str consumes a string value and returns its unescaped bytes, valid until
// the next call on s. scratch holds unescaped strings.
func (s *njScanner) str(path njPath, scratch *[]byte) ([]byte, error) {
	if c := s.peek(); c != '"' {
		return nil, s.errorf(path, "expected a string, found %s", njDescribe(c))
	}
	s.pos++
	i := s.pos
	var hi byte
	for {
		for i < s.end {
			c := s.buf[i]
			if c == '"' {
				b := s.buf[s.pos:i]
				s.pos = i + 1
				if hi >= utf8.RuneSelf && !utf8.Valid(b) {
					return nil, s.errorf(path, "string is not valid UTF-8")
				}
				return b, nil
			}
			if c == '\\' || c < 0x20 {
				off := i - s.pos
				return s.strSlow(path, off, hi, scratch)
			}
			hi |= c
			i++
		}
		off := i - s.pos
		if !s.fill() {
			return nil, s.errorf(path, "unterminated string")
		}
		i = s.pos + off
	}
}

// strSlow finishes a string holding escapes; buf[pos:pos+off] has none.
func (s *njScanner) strSlow(path njPath, off int, hi byte, scratch *[]byte) ([]byte, error) {
	out := append((*scratch)[:0], s.buf[s.pos:s.pos+off]...)
	s.pos += off
	for {
		if s.pos >= s.end && !s.fill() {
			return nil, s.errorf(path, "unterminated string")
		}
		c := s.buf[s.pos]
		switch {
		case c == '"':
			s.pos++
			*scratch = out
			if hi >= utf8.RuneSelf && !utf8.Valid(out) {
				return nil, s.errorf(path, "string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, s.errorf(path, "control character %#02x in string (escape it)", c)
		case c != '\\':
			hi |= c
			out = append(out, c)
			s.pos++
			continue
		}
		// An escape: make sure it is buffered whole (\uXXXX\uXXXX at most).
		for s.end-s.pos < 12 && s.fill() {
		}
		if s.end-s.pos < 2 {
			return nil, s.errorf(path, "unterminated string")
		}
		e := s.buf[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.errorf(path, `invalid \u escape`)
			}
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone surrogate becomes U+FFFD,
				// as encoding/json does.
				r2 := rune(-1)
				if s.end-s.pos >= 6 && s.buf[s.pos] == '\\' && s.buf[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					if v, ok := s.hex4(); ok {
						r2 = v
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						s.pos = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, s.errorf(path, "invalid escape \\%c in string", e)
		}
	}
}

func (s *njScanner) hex4() (rune, bool) {
	if s.end-s.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.buf[s.pos : s.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.pos += 4
	return r, true
}

// integer consumes a JSON number that must be an integer of at most 18
// digits.
func (s *njScanner) integer(path njPath) (int, error) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, s.errorf(path, "expected an integer, found %s", njDescribe(c))
	}
	for s.end-s.pos < 24 && s.fill() {
	}
	i := s.pos
	neg := false
	if s.buf[i] == '-' {
		neg = true
		i++
	}
	start := i
	v := 0
	for i < s.end && s.buf[i] >= '0' && s.buf[i] <= '9' {
		v = v*10 + int(s.buf[i]-'0')
		i++
	}
	n := i - start
	switch {
	case n == 0:
		return 0, s.errorf(path, "invalid number")
	case n > 1 && s.buf[start] == '0':
		return 0, s.errorf(path, "invalid number: leading zero")
	case n > 18:
		return 0, s.errorf(path, "number out of range")
	}
	if i < s.end {
		switch s.buf[i] {
		case '.', 'e', 'E':
			return 0, s.errorf(path, "must be an integer")
		}
	}
	s.pos = i
	if neg {
		v = -v
	}
	return v, nil
}

// njDecoder turns the token stream into a Document.
type njDecoder struct {
	s       njScanner
	scratch []byte
	keyBuf  []byte

	ciSlab  []byte   // strings kept by the topology
	relSlab []byte   // relation strings, dropped after Build
	strSlab []string // backing arrays of alias slices

	interned map[string]string
	attrSets map[uint64]map[string]string
	attrs    []njAttrSpan // attributes of the CI being decoded
	attrBuf  []byte       // their keys and values
}

// slabString copies b into *slab and returns a string over the copy.
func njSlabString(slab *[]byte, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > njSlabSize/8 {
		return string(b)
	}
	if cap(*slab)-len(*slab) < len(b) {
		*slab = make([]byte, 0, njSlabSize)
	}
	off := len(*slab)
	*slab = append(*slab, b...)
	// The slab's bytes from off on are never written again: the string is
	// immutable, as Go requires.
	return unsafe.String(&(*slab)[off], len(b))
}

// intern returns a shared copy of b, for strings that repeat.
func (d *njDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.interned[string(b)]; ok {
		return s
	}
	s := njSlabString(&d.ciSlab, b)
	if len(d.interned) < njInternMax {
		if d.interned == nil {
			d.interned = make(map[string]string)
		}
		d.interned[s] = s
	}
	return s
}

func (d *njDecoder) document() (*Document, error) {
	s := &d.s
	doc := &Document{}
	if c := s.peek(); c == njEOF {
		return nil, errEmptyDocument
	}
	if err := s.expect('{', njTop); err != nil {
		return nil, err
	}
	var seen [2]bool
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			key, err := s.str(njTop, &d.scratch)
			if err != nil {
				return nil, err
			}
			var f int
			switch string(key) {
			case "cis":
				f = 0
			case "relations":
				f = 1
			default:
				return nil, s.errorf(njTop, "unknown field %q (a CMDB document has cis and relations)", key)
			}
			if seen[f] {
				return nil, s.errorf(njTop, "duplicate field %q", key)
			}
			seen[f] = true
			if err := s.expect(':', njTop); err != nil {
				return nil, err
			}
			// An empty list decodes to an empty slice and null to nil, as
			// encoding/json does.
			isNull := s.peek() == 'n'
			if f == 0 {
				err = d.cis(doc)
				if doc.CIs == nil && !isNull {
					doc.CIs = []CI{}
				}
			} else {
				err = d.relations(doc)
				if doc.Relations == nil && !isNull {
					doc.Relations = []Relation{}
				}
			}
			if err != nil {
				return nil, err
			}
			if s.peek() == ',' {
				s.pos++
				continue
			}
			if err := s.expect('}', njTop); err != nil {
				return nil, err
			}
			break
		}
	}
	if c := s.peek(); c != njEOF {
		return nil, s.errorf(njTop, "unexpected data after the document: %s", njDescribe(c))
	}
	if s.rerr != nil {
		return nil, fmt.Errorf("read: %w", s.rerr)
	}
	return doc, nil
}

// array runs elem for each element of an array (or nothing for null).
func (d *njDecoder) array(path njPath, elem func(i int) error) error {
	s := &d.s
	if isNull, err := s.null(path); isNull || err != nil {
		return err
	}
	if err := s.expect('[', path); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		switch c := s.peek(); c {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf(path, "expected ',' or ']' after element %d, found %s", i, njDescribe(c))
		}
	}
}

// object runs field for each member of an object (or nothing for null).
// The key passed to field is valid until the next call on the scanner.
func (d *njDecoder) object(path njPath, field func(key []byte) error) error {
	s := &d.s
	if isNull, err := s.null(path); isNull || err != nil {
		return err
	}
	if err := s.expect('{', path); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		k, err := s.str(path, &d.scratch)
		if err != nil {
			return err
		}
		// Keep the key: reading on may refill (move) the buffer.
		key := append(d.keyBuf[:0], k...)
		d.keyBuf = key
		if err := s.expect(':', path); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch c := s.peek(); c {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf(path, "expected ',' or '}', found %s", njDescribe(c))
		}
	}
}

// njGrow extends s by one zero element, doubling its capacity when full:
// append grows large slices by a quarter, which for a million CIs copies
// the array about five times over.
func njGrow[T any](s []T) []T {
	if len(s) == cap(s) {
		ns := make([]T, len(s), max(256, 2*cap(s)))
		copy(ns, s)
		s = ns
	}
	return s[:len(s)+1]
}

func (d *njDecoder) cis(doc *Document) error {
	err := d.array(njPath{list: "cis", j: -1}, func(i int) error {
		doc.CIs = njGrow(doc.CIs)
		return d.ci(&doc.CIs[len(doc.CIs)-1], i)
	})
	// The CIs outlive the decode (Build keeps them): drop a large slack.
	if n := len(doc.CIs); cap(doc.CIs)-n > n/8+256 {
		doc.CIs = append(make([]CI, 0, n), doc.CIs...)
	}
	return err
}

// njCIFields are the fields of a CI, in the order of their seen bits.
var njCIFields = [...]string{"id", "type", "name", "criticality", "support_group", "aliases", "attributes"}

func (d *njDecoder) ci(ci *CI, i int) error {
	s := &d.s
	path := njPath{list: "cis", i: i, j: -1}
	if c := s.peek(); c != '{' {
		return s.errorf(path, "expected a CI object, found %s", njDescribe(c))
	}
	var seen uint
	return d.object(path, func(key []byte) error {
		f := -1
		for k, name := range njCIFields {
			if string(key) == name {
				f = k
				break
			}
		}
		if f < 0 {
			return s.errorf(path, "unknown field %q (a CI has id, type, name, criticality, support_group, aliases, attributes)", key)
		}
		if seen&(1<<f) != 0 {
			return s.errorf(path, "duplicate field %q", key)
		}
		seen |= 1 << f
		fpath := path
		fpath.field = njCIFields[f]
		if isNull, err := s.null(fpath); isNull || err != nil {
			return err
		}
		switch f {
		case 3:
			v, err := s.integer(fpath)
			ci.Criticality = v
			return err
		case 5:
			return d.aliases(ci, fpath)
		case 6:
			return d.attributes(ci, fpath)
		}
		b, err := s.str(fpath, &d.scratch)
		if err != nil {
			return err
		}
		switch f {
		case 0:
			ci.ID = njSlabString(&d.ciSlab, b)
		case 1:
			ci.Type = d.intern(b)
		case 2:
			ci.Name = njSlabString(&d.ciSlab, b)
		case 4:
			ci.SupportGroup = d.intern(b)
		}
		return nil
	})
}

func (d *njDecoder) aliases(ci *CI, path njPath) error {
	start := len(d.strSlab)
	err := d.array(path, func(j int) error {
		epath := path
		epath.j = j
		b, err := d.s.str(epath, &d.scratch)
		if err != nil {
			return err
		}
		if len(d.strSlab) == cap(d.strSlab) {
			// Start a new backing array, moving this CI's aliases so far;
			// earlier CIs keep theirs in the old one.
			ns := make([]string, 0, max(4096, 2*(len(d.strSlab)-start)))
			ns = append(ns, d.strSlab[start:]...)
			d.strSlab, start = ns, 0
		}
		d.strSlab = append(d.strSlab, njSlabString(&d.ciSlab, b))
		return nil
	})
	if err != nil {
		return err
	}
	if len(d.strSlab) > start {
		ci.Aliases = d.strSlab[start:len(d.strSlab):len(d.strSlab)]
	} else {
		ci.Aliases = []string{}
	}
	return nil
}

// njAttrSpan locates one attribute's key and value in njDecoder.attrBuf.
type njAttrSpan struct{ k0, k1, v1 int }

var njSep = []byte{0}

func (d *njDecoder) attributes(ci *CI, path njPath) error {
	s := &d.s
	if c := s.peek(); c != '{' {
		return s.errorf(path, "expected an object of strings, found %s", njDescribe(c))
	}
	d.attrBuf = d.attrBuf[:0]
	d.attrs = d.attrs[:0]
	err := d.object(path, func(key []byte) error {
		k0 := len(d.attrBuf)
		d.attrBuf = append(d.attrBuf, key...)
		k1 := len(d.attrBuf)
		for _, o := range d.attrs {
			if string(d.attrBuf[o.k0:o.k1]) == string(d.attrBuf[k0:k1]) {
				return s.errorf(path, "duplicate key %q", key)
			}
		}
		vpath := path
		vpath.sub = string(key)
		v, err := s.str(vpath, &d.scratch)
		if err != nil {
			return err
		}
		d.attrBuf = append(d.attrBuf, v...)
		d.attrs = append(d.attrs, njAttrSpan{k0, k1, len(d.attrBuf)})
		return nil
	})
	if err != nil {
		return err
	}
	// Equal attribute sets share one map. The set is hashed in order: CIs
	// from one exporter list their keys in the same order, and a different
	// order only loses the sharing.
	small := len(d.attrs) <= 8
	var h uint64
	if small {
		var dg xxhash.Digest
		dg.Reset()
		for _, o := range d.attrs {
			_, _ = dg.Write(d.attrBuf[o.k0:o.v1])
			_, _ = dg.Write(njSep)
			h = uint64(o.k1 - o.k0)
			_, _ = dg.Write([]byte{byte(h), byte(h >> 8), byte(h >> 16)})
		}
		h = dg.Sum64()
		if m, ok := d.attrSets[h]; ok && len(m) == len(d.attrs) {
			same := true
			for _, o := range d.attrs {
				if v, ok := m[string(d.attrBuf[o.k0:o.k1])]; !ok || v != string(d.attrBuf[o.k1:o.v1]) {
					same = false
					break
				}
			}
			if same {
				ci.Attributes = m
				return nil
			}
		}
	}
	m := make(map[string]string, len(d.attrs))
	for _, o := range d.attrs {
		v := d.attrBuf[o.k1:o.v1]
		var vs string
		if len(v) <= 32 {
			vs = d.intern(v)
		} else {
			vs = njSlabString(&d.ciSlab, v)
		}
		m[d.intern(d.attrBuf[o.k0:o.k1])] = vs
	}
	ci.Attributes = m
	if small && len(d.attrSets) < njInternMax {
		if d.attrSets == nil {
			d.attrSets = make(map[uint64]map[string]string)
		}
		if _, taken := d.attrSets[h]; !taken {
			d.attrSets[h] = m
		}
	}
	return nil
}

// njRelFields are the fields of a relation.
var njRelFields = [...]string{"source", "target", "type"}

func (d *njDecoder) relations(doc *Document) error {
	s := &d.s
	return d.array(njPath{list: "relations", j: -1}, func(i int) error {
		path := njPath{list: "relations", i: i, j: -1}
		if c := s.peek(); c != '{' {
			return s.errorf(path, "expected a relation object, found %s", njDescribe(c))
		}
		doc.Relations = njGrow(doc.Relations)
		r := &doc.Relations[len(doc.Relations)-1]
		var seen uint
		return d.object(path, func(key []byte) error {
			f := -1
			for k, name := range njRelFields {
				if string(key) == name {
					f = k
					break
				}
			}
			if f < 0 {
				return s.errorf(path, "unknown field %q (a relation has source, target, type)", key)
			}
			if seen&(1<<f) != 0 {
				return s.errorf(path, "duplicate field %q", key)
			}
			seen |= 1 << f
			fpath := path
			fpath.field = njRelFields[f]
			if isNull, err := s.null(fpath); isNull || err != nil {
				return err
			}
			b, err := s.str(fpath, &d.scratch)
			if err != nil {
				return err
			}
			switch f {
			case 0:
				r.Source = njSlabString(&d.relSlab, b)
			case 1:
				r.Target = njSlabString(&d.relSlab, b)
			case 2:
				r.Type = d.intern(b)
			}
			return nil
		})
	})
}

var errEmptyDocument = &DecodeError{Msg: "empty document: expected a mapping with cis and relations"}
