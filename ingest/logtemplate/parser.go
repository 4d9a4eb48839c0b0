package logtemplate

import (
	"errors"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Result is what Parse fills in for one line. Parse resets it first, so a
// caller reuses one Result for every line and the hot path allocates
// nothing.
type Result struct {
	// ID is the template's id (see the package documentation for how it is
	// derived and why it is stable).
	ID uint64
	// Template is the template's text after this line, parameters written as
	// <*>. The string is shared and immutable; it changes (is replaced) only
	// when a line generalises the template.
	Template string
	// Params holds the values at the template's <*>, in order. They are
	// sub-slices of the line given to Parse: valid as long as the caller
	// keeps that buffer unchanged, and to be copied to be kept longer.
	Params [][]byte
	// Created reports that this line started a new template.
	Created bool
	// Updated reports that this line generalised an existing template, so
	// Template differs from what earlier lines of this id were given.
	Updated bool
	// Merged lists the ids of templates that became the same as this one
	// because of this line and were merged into it; they now answer to ID
	// (see Parser.Resolve). Valid until the next Parse.
	Merged []uint64
}

// cluster is one template: a fixed number of words, each a constant, a
// word with variable parts, a wildcard, or a wildcard between a literal
// prefix and suffix.
type cluster struct {
	id    uint64
	hash  []uint64 // per word: masked-form hash; wildHash for wildcards
	words []tword
	size  uint64 // lines matched, for the snapshot and the operator

	template string  // rendered
	plan     []piece // how Template's <*> map to words, for Params

	leaf       *node
	prev, next *cluster // LRU list, most recent at the parser's head
	aliases    []uint64 // ids merged into this one, oldest first
}

// Kinds of template words.
const (
	kConst   uint8 = iota // literal, equal to the masked form of its lines
	kPartial              // masked form with variable parts, like rhost=<*>
	kWild                 // any word
	kAffix                // pre<*>suf: any word with that prefix and suffix
)

type tword struct {
	kind     uint8
	form     []part // kConst, kPartial
	pre, suf string // kAffix
}

// part is one piece of a word's masked form, owned by its cluster.
type part struct {
	lit   string // literal text; empty for a variable
	isVar bool
}

// piece is a run of a rendered template: literal text, or one <*> that
// covers the words (and the variable parts inside them) from..to.
type piece struct {
	lit              string
	isVar            bool
	fromW, toW       int32
	fromPart, toPart int16 // index among the word's variable parts; -1: whole word, -2: inside an affix
}

// node is a prefix-tree node: the root's children are keyed by word count,
// deeper ones by the hash of a leading word (wildHash for the wildcard
// child). Only nodes at the last level hold clusters.
type node struct {
	children map[uint64]*node
	clusters []*cluster
	parent   *node
	key      uint64
}

// Parser mines templates from lines, online: each line joins the most
// similar template of its shape or starts a new one, and a template's
// differing words become wildcards as lines join it (Drain, He et al., ICWS
// 2017).
//
// A Parser is not safe for concurrent use: one goroutine parses, or callers
// serialise. Its scratch buffers make Parse free of allocations once a
// template exists for the line.
type Parser struct {
	cfg      Config
	root     node
	byID     map[uint64]*cluster // live templates and, for merged ids, their survivor
	n        int                 // live templates
	head     *cluster            // LRU: most recently matched
	tail     *cluster
	words    []lineWord
	hashes   []uint64
	siblings []*cluster
	scanned  int32 // the word p.parts holds, for extract
	parts    []span
	idBuf    []byte
	evicted  uint64
}

type lineWord struct {
	start, end int32
	nvars      int32
}

// ErrInvalidConfig wraps every configuration error New reports.
var ErrInvalidConfig = errors.New("logtemplate: invalid configuration")

// New returns an empty parser. It applies cfg's defaults and validates it.
func New(cfg Config) (*Parser, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, errors.Join(ErrInvalidConfig, err)
	}
	return &Parser{
		cfg:  cfg,
		root: node{children: map[uint64]*node{}},
		byID: map[uint64]*cluster{},
	}, nil
}

// Config returns the configuration in force, defaults applied.
func (p *Parser) Config() Config { return p.cfg }

// Len returns the number of templates held.
func (p *Parser) Len() int { return p.n }

// Evicted returns how many templates were evicted because MaxTemplates was
// reached.
func (p *Parser) Evicted() uint64 { return p.evicted }

// Parse assigns line to a template and fills r. The line is split at white
// space, so leading and trailing blanks and a CR before the LF do not
// matter. Parse keeps no reference to line.
func (p *Parser) Parse(line []byte, r *Result) {
	*r = Result{Params: r.Params[:0], Merged: r.Merged[:0]}
	p.split(line)
	var c *cluster
	if leaf := p.route(); leaf != nil {
		c = p.match(leaf, line, r)
	}
	if c == nil {
		c = p.create(line)
		r.Created = true
	} else {
		p.touch(c)
	}
	c.size++
	r.ID = c.id
	r.Template = c.template
	r.Params = p.extract(c, line, r.Params)
}

// split fills p.words and p.hashes with line's words.
func (p *Parser) split(line []byte) {
	p.words = p.words[:0]
	p.hashes = p.hashes[:0]
	i, n := 0, len(line)
	for {
		for i < n && class[line[i]]&cSpace != 0 {
			i++
		}
		if i == n {
			break
		}
		j := i
		if len(p.words) == p.cfg.MaxWords-1 {
			// The rest of the line, trailing blanks aside, is the last word.
			j = n
			for j > i && class[line[j-1]]&cSpace != 0 {
				j--
			}
		} else {
			for j < n && class[line[j]]&cSpace == 0 {
				j++
			}
		}
		h, nv, _ := scanWord(line[i:j], nil)
		p.words = append(p.words, lineWord{int32(i), int32(j), int32(nv)})
		p.hashes = append(p.hashes, h)
		i = j
	}
	p.maskDates(line)
}

// maskDates makes month and weekday names variables when they stand next to
// a number or another such name: they are parts of a time stamp ("Sun Jul
// 10 03:55:15 2005"), and a template must not split by the day a line was
// written. Alone ("May not") they stay words.
func (p *Parser) maskDates(line []byte) {
	for i, w := range p.words {
		if w.nvars > 0 || w.end-w.start > 9 || !isDateName(line[w.start:w.end]) {
			continue
		}
		near := func(k int) bool {
			if k < 0 || k >= len(p.words) {
				return false
			}
			o := p.words[k]
			return p.hashes[k] == wildHash && class[line[o.start]]&cDigit != 0 || o.nvars == 0 && isDateName(line[o.start:o.end])
		}
		if near(i-1) || near(i+1) {
			p.words[i].nvars = 1
			p.hashes[i] = wildHash
		}
	}
}

// route finds the leaf for the current line: word count, then the leading
// words. A word with a variable part takes the wildcard child, as Drain
// routes words with digits; so does a word its node has no child for.
func (p *Parser) route() *node {
	n := len(p.words)
	cur := p.root.children[uint64(n)]
	for d := 0; cur != nil && d < min(p.cfg.PrefixTokens, n); d++ {
		key := p.hashes[d]
		if p.words[d].nvars > 0 {
			key = wildHash
		}
		next := cur.children[key]
		if next == nil {
			next = cur.children[wildHash]
		}
		cur = next
	}
	return cur
}

// child returns cur's child for key, creating it. When cur is full the
// word goes to the wildcard child, so a variable word the masking missed
// cannot grow the tree without bound.
func (p *Parser) child(cur *node, key uint64) *node {
	if c := cur.children[key]; c != nil {
		return c
	}
	if cur != &p.root && key != wildHash {
		room := p.cfg.MaxChildren
		if cur.children[wildHash] == nil {
			room-- // keep a place for the wildcard child
		}
		if len(cur.children) >= room {
			key = wildHash
			if c := cur.children[key]; c != nil {
				return c
			}
		}
	}
	c := &node{children: map[uint64]*node{}, parent: cur, key: key}
	cur.children[key] = c
	return c
}

// Outcomes of comparing a line's word with a template's.
const (
	wEqual    = iota // same constant or masked form
	wVariable        // a variable meets anything, or an affix matches
	wDiffers         // different words with variable parts: generalise now
	wConflict        // two different constants: generalise on evidence
)

// compareWord compares line word i with template word i.
func (p *Parser) compareWord(c *cluster, i int, line []byte) int {
	if th := c.hash[i]; th != wildHash && th == p.hashes[i] {
		return wEqual
	}
	w := &c.words[i]
	switch w.kind {
	case kWild:
		return wVariable
	case kAffix:
		if affixMatch(w, p.word(line, i)) {
			return wVariable
		}
		return wDiffers
	case kPartial:
		return wDiffers
	}
	if p.words[i].nvars > 0 {
		return wDiffers
	}
	return wConflict
}

func (p *Parser) word(line []byte, i int) []byte {
	return line[p.words[i].start:p.words[i].end]
}

func affixMatch(w *tword, b []byte) bool {
	return len(b) >= len(w.pre)+len(w.suf) && string(b[:len(w.pre)]) == w.pre && string(b[len(b)-len(w.suf):]) == w.suf
}

// similarity is the share of the line's words that agree with the
// template: equal words, and variables of the line where the template has a
// wildcard (or a prefix and suffix they fit). A constant of the line at a
// wildcard does not count, as in Drain, so a template that generalised too
// far does not attract every line of its length; unlike Drain, a variable
// meeting a wildcard does, so "REPORT : <*> <*> <*> <*>" matches its own
// lines whatever the share of parameters. conflicts counts the positions
// where two different constants meet.
func (p *Parser) similarity(c *cluster, line []byte) (sim float64, conflicts int) {
	score := 0
	for i, th := range c.hash {
		if th != wildHash && th == p.hashes[i] {
			score++
			continue
		}
		switch p.compareWord(c, i, line) {
		case wConflict:
			conflicts++
		case wVariable:
			if p.words[i].nvars > 0 || c.words[i].kind == kAffix {
				score++
			}
		}
	}
	if len(c.hash) == 0 {
		return 1, 0
	}
	return float64(score) / float64(len(c.hash)), conflicts
}

// match returns the template of leaf the line joins, generalising it, or
// nil when the line needs a new template.
//
// The most similar template wins (ties go to the one with fewer
// conflicts, then to the older). A word with variable parts that differs
// makes the template's word a wildcard at once. Two different constants are
// treated as a variable only once the position has shown MinVariants
// different constants, and only when they are the line's only conflict: until then the line starts a sibling template. This
// keeps "open through proxy HTTPS" apart from "... SOCKS5", and
// "initialization" from "finalization", which a similarity threshold alone
// cannot do, while a position with many values (user names, host names)
// still becomes <*>. When it does, the siblings that differ only there are
// merged.
func (p *Parser) match(leaf *node, line []byte, r *Result) *cluster {
	var best *cluster
	bestSim, bestConf := -1.0, 0
	for _, c := range leaf.clusters {
		sim, conf := p.similarity(c, line)
		if sim > bestSim || sim == bestSim && conf < bestConf {
			best, bestSim, bestConf = c, sim, conf
		}
	}
	if best == nil || bestSim < p.cfg.SimilarityThreshold {
		return nil
	}
	if bestConf > 0 {
		// The siblings: templates that conflict with the line only where
		// best does.
		sib := p.siblings[:0]
		for _, o := range leaf.clusters {
			if o != best && p.conflictsWithin(o, best, line) {
				sib = append(sib, o)
			}
		}
		p.siblings = sib[:0]
		if bestConf > maxConflicts || len(sib)+2 < p.cfg.MinVariants {
			return nil
		}
		for _, o := range sib {
			p.absorb(best, o, r)
		}
	}
	if p.generalise(best, line) {
		r.Updated = true
		p.render(best)
		p.mergeCovered(best, r)
	}
	return best
}

// maxConflicts is how many constant words a line may differ in from a
// template and still generalise it (once MinVariants is reached). Lines
// that differ in two constant words or more are different events:
// "Terminating instance" and "Claim successful" share only their
// parameters.
const maxConflicts = 1

// conflictsWithin reports whether o conflicts with the line somewhere, and
// only at positions where best conflicts too.
func (p *Parser) conflictsWithin(o, best *cluster, line []byte) bool {
	any := false
	for i := range o.hash {
		switch p.compareWord(o, i, line) {
		case wConflict:
			if p.compareWord(best, i, line) != wConflict {
				return false
			}
			any = true
		case wDiffers:
			return false
		}
	}
	return any
}

// generalise turns the template's words that differ from the line into
// wildcards, keeping a common literal prefix and suffix that end and start
// at a delimiter, such as "(" and ")" or "user=". It reports whether the
// template changed.
func (p *Parser) generalise(c *cluster, line []byte) bool {
	changed := false
	for i, th := range c.hash {
		if th != wildHash && th == p.hashes[i] {
			continue
		}
		switch p.compareWord(c, i, line) {
		case wEqual, wVariable:
			continue
		}
		c.words[i] = p.affix(&c.words[i], p.word(line, i))
		c.hash[i] = wildHash
		changed = true
	}
	return changed
}

// affix generalises template word w and line word b into a wildcard that
// keeps their common literal prefix and suffix.
func (p *Parser) affix(w *tword, b []byte) tword {
	p.parts = p.parts[:0]
	scanWord(b, &p.parts)
	var bpre, bsuf string
	if len(p.parts) == 1 && !p.parts[0].isVar {
		bpre, bsuf = string(b), string(b)
	} else if len(p.parts) > 0 {
		if f := p.parts[0]; !f.isVar {
			bpre = string(b[f.start:f.end])
		}
		if l := p.parts[len(p.parts)-1]; !l.isVar {
			bsuf = string(b[l.start:l.end])
		}
	}
	return affixOf(w, bpre, bsuf, len(b))
}

// affixOf generalises w and a word of length n whose literal ends are bpre
// and bsuf.
func affixOf(w *tword, bpre, bsuf string, n int) tword {
	var wpre, wsuf string
	switch w.kind {
	case kAffix:
		wpre, wsuf = w.pre, w.suf
	case kConst, kPartial:
		wpre, wsuf = literalEnds(w.form)
	default:
		return tword{kind: kWild}
	}
	pre := commonPrefix(wpre, bpre)
	suf := commonSuffix(wsuf, bsuf)
	if len(pre)+len(suf) > min(n, minLen(w)) {
		suf = ""
		if len(pre) > min(n, minLen(w)) {
			pre = ""
		}
	}
	if pre == "" && suf == "" {
		return tword{kind: kWild}
	}
	return tword{kind: kAffix, pre: pre, suf: suf}
}

// minLen is the length of the shortest word w matches.
func minLen(w *tword) int {
	if w.kind == kAffix {
		return len(w.pre) + len(w.suf)
	}
	n := 0
	for _, pt := range w.form {
		if pt.isVar {
			n++
		}
		n += len(pt.lit)
	}
	return n
}

// literalEnds returns the literal text before a form's first variable and
// after its last (all of it for a constant form, as both).
func literalEnds(f []part) (pre, suf string) {
	if len(f) == 0 {
		return "", ""
	}
	if len(f) == 1 && !f[0].isVar {
		return f[0].lit, f[0].lit
	}
	if !f[0].isVar {
		pre = f[0].lit
	}
	if l := f[len(f)-1]; !l.isVar {
		suf = l.lit
	}
	return pre, suf
}

// commonPrefix is the longest common prefix of a and b that ends with a
// delimiter.
func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	for n > 0 && class[a[n-1]]&cSegDelim == 0 {
		n--
	}
	return a[:n]
}

// commonSuffix is the longest common suffix of a and b that starts with a
// delimiter.
func commonSuffix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	for n > 0 && class[a[len(a)-n]]&cSegDelim == 0 {
		n--
	}
	return a[len(a)-n:]
}

// create starts a template from the current line, evicting the least
// recently matched template when MaxTemplates is reached.
func (p *Parser) create(line []byte) *cluster {
	if p.n >= p.cfg.MaxTemplates {
		p.evict(p.tail)
	}
	n := len(p.words)
	c := &cluster{hash: make([]uint64, n), words: make([]tword, n)}
	copy(c.hash, p.hashes)
	for i, w := range p.words {
		switch {
		case c.hash[i] == wildHash:
			c.words[i] = tword{kind: kWild}
		case w.nvars > 0:
			c.words[i] = tword{kind: kPartial, form: p.form(line[w.start:w.end])}
		default:
			c.words[i] = tword{kind: kConst, form: []part{{lit: string(line[w.start:w.end])}}}
		}
	}
	c.id = p.newID(c)
	p.insert(c)
	return c
}

// insert links c into the tree, the id index and the LRU list, and renders
// it.
func (p *Parser) insert(c *cluster) {
	p.render(c)
	cur := p.child(&p.root, uint64(len(c.words)))
	for d := 0; d < min(p.cfg.PrefixTokens, len(c.words)); d++ {
		key := c.hash[d]
		if c.words[d].kind != kConst {
			key = wildHash
		}
		cur = p.child(cur, key)
	}
	c.leaf = cur
	cur.clusters = append(cur.clusters, c)
	p.byID[c.id] = c
	p.n++
	p.pushFront(c)
}

// form returns the masked form of word w, for a new template.
func (p *Parser) form(w []byte) []part {
	p.parts = p.parts[:0]
	scanWord(w, &p.parts)
	f := make([]part, len(p.parts))
	for i, s := range p.parts {
		if s.isVar {
			f[i] = part{isVar: true}
		} else {
			f[i] = part{lit: string(w[s.start:s.end])}
		}
	}
	return f
}

// newID derives a template's id from the text of its first template (its
// masked words joined by spaces), so that the same first line gets the same
// id in every process and after an eviction. An id already in use (a live
// template or an alias) is rehashed with a counter, which keeps ids unique
// and still deterministic for the same sequence of lines.
func (p *Parser) newID(c *cluster) uint64 {
	b := p.idBuf[:0]
	for i := range c.words {
		if i > 0 {
			b = append(b, ' ')
		}
		b = c.words[i].appendText(b)
	}
	base := len(b)
	id := xxhash.Sum64(b)
	for k := 1; id == 0 || p.byID[id] != nil; k++ {
		b = strconv.AppendInt(append(b[:base], 0), int64(k), 10)
		id = xxhash.Sum64(b)
	}
	p.idBuf = b[:0]
	return id
}

// appendText appends the word as a template shows it.
func (w *tword) appendText(b []byte) []byte {
	switch w.kind {
	case kWild:
		return append(b, "<*>"...)
	case kAffix:
		b = append(b, w.pre...)
		b = append(b, "<*>"...)
		return append(b, w.suf...)
	}
	for _, pt := range w.form {
		if pt.isVar {
			b = append(b, "<*>"...)
		} else {
			b = append(b, pt.lit...)
		}
	}
	return b
}

// mergeCovered folds into c the templates of its leaf that c now covers:
// same word count, and every word of c a wildcard or equal. Their ids
// become aliases of c's, so ids handed out before stay meaningful.
func (p *Parser) mergeCovered(c *cluster, r *Result) {
	for k := 0; k < len(c.leaf.clusters); k++ {
		if o := c.leaf.clusters[k]; o != c && covers(c, o) {
			p.absorb(c, o, r)
			k = -1 // the leaf changed: start over
		}
	}
}

// absorb merges o into c: o's lines count for c and o's ids answer to c.
func (p *Parser) absorb(c, o *cluster, r *Result) {
	for i := range c.words {
		if c.hash[i] == o.hash[i] && c.hash[i] != wildHash || c.words[i].kind == kWild {
			continue
		}
		ow := &o.words[i]
		switch ow.kind {
		case kWild:
			c.words[i] = tword{kind: kWild}
		case kAffix:
			c.words[i] = affixOf(&c.words[i], ow.pre, ow.suf, minLen(ow))
		default:
			pre, suf := literalEnds(ow.form)
			c.words[i] = affixOf(&c.words[i], pre, suf, minLen(ow))
		}
		c.hash[i] = wildHash
	}
	c.size += o.size
	r.Merged = append(r.Merged, o.id)
	p.remove(o)
	c.aliases = append(c.aliases, o.id)
	c.aliases = append(c.aliases, o.aliases...)
	p.byID[o.id] = c
	for _, a := range o.aliases {
		p.byID[a] = c
	}
	if extra := len(c.aliases) - max(p.cfg.MaxAliases, 0); extra > 0 {
		for _, a := range c.aliases[:extra] {
			delete(p.byID, a)
		}
		c.aliases = append(c.aliases[:0], c.aliases[extra:]...)
	}
	r.Updated = true
	p.render(c)
}

func covers(c, o *cluster) bool {
	for i, th := range c.hash {
		if th == o.hash[i] && th != wildHash {
			continue
		}
		w := &c.words[i]
		switch w.kind {
		case kWild:
			continue
		case kAffix:
			ow := &o.words[i]
			if ow.kind == kAffix && ow.pre == w.pre && ow.suf == w.suf {
				continue
			}
			if ow.kind == kConst || ow.kind == kPartial {
				if affixMatch(w, ow.appendText(nil)) {
					continue
				}
			}
		}
		return false
	}
	return true
}

// remove unlinks a live template from its leaf and the LRU list, pruning
// the tree nodes left empty. It leaves byID to the caller.
func (p *Parser) remove(c *cluster) {
	leaf := c.leaf
	for k, o := range leaf.clusters {
		if o == c {
			leaf.clusters = append(leaf.clusters[:k], leaf.clusters[k+1:]...)
			break
		}
	}
	for nd := leaf; nd.parent != nil && len(nd.clusters) == 0 && len(nd.children) == 0; nd = nd.parent {
		delete(nd.parent.children, nd.key)
	}
	p.unlink(c)
	p.n--
}

// evict drops a template and the aliases that point to it.
func (p *Parser) evict(c *cluster) {
	p.remove(c)
	delete(p.byID, c.id)
	for _, a := range c.aliases {
		delete(p.byID, a)
	}
	p.evicted++
}

func (p *Parser) pushFront(c *cluster) {
	c.prev, c.next = nil, p.head
	if p.head != nil {
		p.head.prev = c
	}
	p.head = c
	if p.tail == nil {
		p.tail = c
	}
}

func (p *Parser) unlink(c *cluster) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		p.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		p.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (p *Parser) touch(c *cluster) {
	if p.head != c {
		p.unlink(c)
		p.pushFront(c)
	}
}

// Resolve returns the id that id now answers to: id itself for a live
// template, the surviving template's id for a merged one. ok is false for an
// id that is unknown or was evicted.
func (p *Parser) Resolve(id uint64) (uint64, bool) {
	c := p.byID[id]
	if c == nil {
		return 0, false
	}
	return c.id, true
}

// Template returns the current text of the template id answers to.
func (p *Parser) Template(id uint64) (string, bool) {
	c := p.byID[id]
	if c == nil {
		return "", false
	}
	return c.template, true
}

// Templates calls fn for every live template, most recently matched first.
func (p *Parser) Templates(fn func(id uint64, template string, size uint64) bool) {
	for c := p.head; c != nil; c = c.next {
		if !fn(c.id, c.template, c.size) {
			return
		}
	}
}
