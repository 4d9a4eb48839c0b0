package logtemplate

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// The snapshot is JSON, so an operator can read it and a later version can
// still decode it:
//
//	{"format":"correlatord-logtemplate","version":1,"masking":1,"evicted":0,
//	 "templates":[{"id":"9f0c4a7e12d3b5a8","size":42,"aliases":[],"words":[
//	   {"kind":"const","text":"session"},{"kind":"partial","parts":["uid=",null]},
//	   {"kind":"affix","pre":"(","suf":")"},{"kind":"wild"}]}]}
//
// Templates are listed least recently matched first, so a restored parser
// evicts in the same order. A partial word lists its literal parts, null
// standing for a variable. Ids are 16 hex digits.
const (
	snapshotFormat  = "correlatord-logtemplate"
	snapshotVersion = 1
	// maskingVersion changes whenever the masking rules change the masked
	// form of some word. Templates saved under other rules would no longer
	// match the lines they were made from, and new ids would silently
	// replace the old ones, so Restore refuses them.
	maskingVersion = 1
)

// ErrSnapshot wraps every error Restore reports about the snapshot itself.
var ErrSnapshot = errors.New("logtemplate: bad snapshot")

type snapshot struct {
	Format    string         `json:"format"`
	Version   int            `json:"version"`
	Masking   int            `json:"masking"`
	Evicted   uint64         `json:"evicted"`
	Templates []snapTemplate `json:"templates"`
}

type snapTemplate struct {
	ID      string     `json:"id"`
	Size    uint64     `json:"size"`
	Aliases []string   `json:"aliases"`
	Words   []snapWord `json:"words"`
}

type snapWord struct {
	Kind string `json:"kind"`
	// Enc is "base64" when the word's strings are not valid UTF-8 and so
	// are written in base64: JSON would replace the bad bytes, and the
	// template would no longer match its lines.
	Enc   string    `json:"enc,omitempty"`
	Text  string    `json:"text,omitempty"`
	Parts []*string `json:"parts,omitempty"`
	Pre   string    `json:"pre,omitempty"`
	Suf   string    `json:"suf,omitempty"`
}

func formatID(id uint64) string { return fmt.Sprintf("%016x", id) }

// FormatID writes a template id as the snapshot and the logparse command
// do: 16 lower-case hex digits.
func FormatID(id uint64) string { return formatID(id) }

// Snapshot writes the parser's templates, ids and aliases to w. Restoring it
// into a parser gives every line the id it would have had without the
// restart.
func (p *Parser) Snapshot(w io.Writer) error {
	s := snapshot{Format: snapshotFormat, Version: snapshotVersion, Masking: maskingVersion, Evicted: p.evicted}
	for c := p.tail; c != nil; c = c.prev {
		t := snapTemplate{ID: formatID(c.id), Size: c.size, Aliases: []string{}}
		for _, a := range c.aliases {
			t.Aliases = append(t.Aliases, formatID(a))
		}
		for i := range c.words {
			t.Words = append(t.Words, encodeWord(&c.words[i]))
		}
		if t.Words == nil {
			t.Words = []snapWord{}
		}
		s.Templates = append(s.Templates, t)
	}
	if s.Templates == nil {
		s.Templates = []snapTemplate{}
	}
	bw := bufio.NewWriter(w)
	if err := json.NewEncoder(bw).Encode(&s); err != nil {
		return fmt.Errorf("write template snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write template snapshot: %w", err)
	}
	return nil
}

func encodeWord(w *tword) snapWord {
	var sw snapWord
	switch w.kind {
	case kWild:
		return snapWord{Kind: "wild"}
	case kAffix:
		sw = snapWord{Kind: "affix", Pre: w.pre, Suf: w.suf}
	case kConst:
		sw = snapWord{Kind: "const", Text: w.form[0].lit}
	default:
		sw = snapWord{Kind: "partial"}
		for _, pt := range w.form {
			if pt.isVar {
				sw.Parts = append(sw.Parts, nil)
			} else {
				s := pt.lit
				sw.Parts = append(sw.Parts, &s)
			}
		}
	}
	valid := utf8.ValidString(sw.Text) && utf8.ValidString(sw.Pre) && utf8.ValidString(sw.Suf)
	for _, pt := range sw.Parts {
		valid = valid && (pt == nil || utf8.ValidString(*pt))
	}
	if !valid {
		sw.Enc = "base64"
		sw.mapStrings(func(s string) (string, error) { return base64.StdEncoding.EncodeToString([]byte(s)), nil })
	}
	return sw
}

// mapStrings replaces every string of the word by fn's result.
func (sw *snapWord) mapStrings(fn func(string) (string, error)) error {
	var err error
	for _, s := range []*string{&sw.Text, &sw.Pre, &sw.Suf} {
		if *s != "" {
			if *s, err = fn(*s); err != nil {
				return err
			}
		}
	}
	for i, pt := range sw.Parts {
		if pt != nil {
			v, err := fn(*pt)
			if err != nil {
				return err
			}
			sw.Parts[i] = &v
		}
	}
	return nil
}

// Restore replaces the parser's templates with those of a snapshot written
// by Snapshot. The parser keeps its own configuration: a snapshot with more
// templates than MaxTemplates keeps the most recently matched ones. On error
// the parser is left empty, so a caller can go on without the old state.
func (p *Parser) Restore(r io.Reader) error {
	fresh, _ := New(p.cfg)
	*p = *fresh
	var s snapshot
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("%w: decode: %v", ErrSnapshot, err)
	}
	if s.Format != snapshotFormat {
		return fmt.Errorf("%w: format is %q, want %q", ErrSnapshot, s.Format, snapshotFormat)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("%w: version %d, this build reads version %d", ErrSnapshot, s.Version, snapshotVersion)
	}
	if s.Masking != maskingVersion {
		return fmt.Errorf("%w: made with masking rules version %d, this build has version %d; its templates would not match their lines, start without it", ErrSnapshot, s.Masking, maskingVersion)
	}
	for k, t := range s.Templates {
		c, err := decodeTemplate(&t)
		if err != nil {
			*p = *fresh
			return fmt.Errorf("%w: template %d: %v", ErrSnapshot, k, err)
		}
		if p.byID[c.id] != nil {
			*p = *fresh
			return fmt.Errorf("%w: template %d: id %s is used twice", ErrSnapshot, k, t.ID)
		}
		for _, a := range c.aliases {
			if p.byID[a] != nil || a == c.id {
				*p = *fresh
				return fmt.Errorf("%w: template %d: alias %s is used twice", ErrSnapshot, k, formatID(a))
			}
		}
		if p.n >= p.cfg.MaxTemplates {
			p.evict(p.tail)
		}
		p.insert(c)
		for _, a := range c.aliases {
			p.byID[a] = c
		}
	}
	p.evicted += s.Evicted
	return nil
}

func parseID(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("id %q is not 16 hex digits", s)
	}
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("id %q is not 16 hex digits (and not 0)", s)
	}
	return id, nil
}

func decodeTemplate(t *snapTemplate) (*cluster, error) {
	id, err := parseID(t.ID)
	if err != nil {
		return nil, err
	}
	c := &cluster{id: id, size: t.Size, hash: make([]uint64, len(t.Words)), words: make([]tword, len(t.Words))}
	for _, a := range t.Aliases {
		aid, err := parseID(a)
		if err != nil {
			return nil, fmt.Errorf("alias: %v", err)
		}
		c.aliases = append(c.aliases, aid)
	}
	for i, sw := range t.Words {
		w, h, err := decodeWord(&sw)
		if err != nil {
			return nil, fmt.Errorf("word %d: %v", i, err)
		}
		c.words[i], c.hash[i] = w, h
	}
	return c, nil
}

// decodeWord rebuilds a template word and recomputes its hash the way
// scanWord computes a line word's, checking that it is what scanWord would
// have made of some word.
func decodeWord(sw *snapWord) (tword, uint64, error) {
	switch sw.Enc {
	case "":
	case "base64":
		err := sw.mapStrings(func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			return string(b), err
		})
		if err != nil {
			return tword{}, 0, fmt.Errorf("enc base64: %v", err)
		}
	default:
		return tword{}, 0, fmt.Errorf("enc %q is not base64", sw.Enc)
	}
	switch sw.Kind {
	case "wild":
		return tword{kind: kWild}, wildHash, nil
	case "affix":
		if sw.Pre == "" && sw.Suf == "" {
			return tword{}, 0, errors.New("affix has neither pre nor suf")
		}
		return tword{kind: kAffix, pre: sw.Pre, suf: sw.Suf}, wildHash, nil
	case "const":
		h, nv, _ := scanWord([]byte(sw.Text), nil)
		if nv > 0 || sw.Text == "" {
			return tword{}, 0, fmt.Errorf("constant %q is not a word without variables", sw.Text)
		}
		return tword{kind: kConst, form: []part{{lit: sw.Text}}}, h, nil
	case "partial":
		if len(sw.Parts) == 0 {
			return tword{}, 0, errors.New("partial word has no parts")
		}
		h := uint64(fnvOffset)
		vars := 0
		f := make([]part, len(sw.Parts))
		for k, pt := range sw.Parts {
			if pt == nil {
				h = (h ^ varMark) * fnvPrime
				f[k] = part{isVar: true}
				vars++
				continue
			}
			for i := 0; i < len(*pt); i++ {
				h = (h ^ uint64((*pt)[i])) * fnvPrime
			}
			f[k] = part{lit: *pt}
		}
		if vars == 0 {
			return tword{}, 0, errors.New("partial word has no variable part")
		}
		if h == wildHash {
			h = 1
		}
		return tword{kind: kPartial, form: f}, h, nil
	}
	return tword{}, 0, fmt.Errorf("kind %q is not const, partial, affix or wild", sw.Kind)
}
