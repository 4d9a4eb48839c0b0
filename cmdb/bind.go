package cmdb

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/correlatord/correlatord/event"
)

// DefaultBindLabels are the labels Bind tries, in order, when an event names
// no CI it can find.
var DefaultBindLabels = []string{"instance", "host", "hostname", "node", "pod", "service", "job"}

// Binding keys are matched case-insensitively without allocating. Every key
// (id, alias, name) is copied once into an arena, as an 8-byte header (node,
// key kind, length) followed by the key's bytes as written. An
// open-addressing table of 8-byte slots holds, for each key, a 24-bit
// fingerprint and the key's arena offset. A lookup hashes the query
// case-folded, word by word (folding on the fly), probes the slots, and
// confirms a fingerprint match by comparing the query with the arena's
// bytes case-folded: the collision check. A hit costs two cache misses
// (slot, arena), a miss usually one, and nothing touches the CIs. The table
// is built once per Topology and only read afterwards, so lookups take no
// lock.
//
// Folding is ASCII case folding plus unicode.ToLower for other runes;
// invalid UTF-8 bytes stand for themselves.
//
// Precedence, when several CIs claim the same key: every id first, then
// aliases, then names, each in document order; the first claim wins and
// Build warns about the others. Ids that differ only in case are all kept
// (exact lookups by id need them) and Bind picks the first.

const (
	bindKeyID     = 0
	bindKeyName   = 1
	bindKeyAlias0 = 2
	// bindMaxAliases is the most aliases of one CI the table can index.
	bindMaxAliases = 1<<16 - bindKeyAlias0
	// bindMaxKey is the longest key the table can index.
	bindMaxKey = 1<<16 - 1

	bindOffBits = 40
	bindOffMask = 1<<bindOffBits - 1
	bindHdr     = 8
)

// bindTable maps case-folded keys to CIs; see above.
type bindTable struct {
	slots []uint64 // fingerprint<<40 | (arena offset + 1); 0 is empty
	mask  uint64
	arena []byte // entries: node int32, kind uint16, len uint16, bytes
	// hostKeys is set when some key has a port, a scheme or brackets
	// (HostOf(key) != key): only then can a label value that has them
	// match as it is.
	hostKeys bool
}

func newBindTable(keys, bytes int) bindTable {
	n := 16
	for n < 2*keys {
		n <<= 1
	}
	return bindTable{slots: make([]uint64, n), mask: uint64(n - 1), arena: make([]byte, 0, bytes+bindHdr*keys)}
}

func (bt *bindTable) insert(h uint64, node int32, kind uint16, key string) {
	off := uint64(len(bt.arena))
	bt.arena = binary.LittleEndian.AppendUint32(bt.arena, uint32(node))
	bt.arena = binary.LittleEndian.AppendUint16(bt.arena, kind)
	bt.arena = binary.LittleEndian.AppendUint16(bt.arena, uint16(len(key)))
	bt.arena = append(bt.arena, key...)
	i := h & bt.mask
	for bt.slots[i] != 0 {
		i = (i + 1) & bt.mask
	}
	bt.slots[i] = (h>>bindOffBits)<<bindOffBits | (off + 1)
	if !bt.hostKeys && HostOf(key) != key {
		bt.hostKeys = true
	}
}

// entry returns the node, kind and key of the arena entry at off.
func (bt *bindTable) entry(off uint64) (int32, uint16, string) {
	e := bt.arena[off:]
	n := int(binary.LittleEndian.Uint16(e[6:8]))
	// The arena is never written once built: the string stays immutable.
	key := unsafe.String(unsafe.SliceData(e[bindHdr:bindHdr+n]), n)
	if n == 0 {
		key = ""
	}
	return int32(binary.LittleEndian.Uint32(e[0:4])), binary.LittleEndian.Uint16(e[4:6]), key
}

// lookupFold finds the CI that key names (id, alias or name, any case).
func (t *Topology) lookupFold(key string) int32 {
	if key == "" {
		return -1
	}
	return t.lookupFoldHash(bindHash(key), key)
}

func (t *Topology) lookupFoldHash(h uint64, key string) int32 {
	bt := &t.bind
	if len(bt.slots) == 0 {
		return -1
	}
	fp := h >> bindOffBits
	for i := h & bt.mask; ; i = (i + 1) & bt.mask {
		s := bt.slots[i]
		if s == 0 {
			return -1
		}
		if s>>bindOffBits == fp {
			n, _, k := bt.entry(s&bindOffMask - 1)
			if bindEqualFold(k, key) {
				return n
			}
		}
	}
}

// lookupID finds the CI whose id is exactly id.
func (t *Topology) lookupID(id string) int32 {
	if id == "" {
		return -1
	}
	return t.lookupIDHash(bindHash(id), id)
}

func (t *Topology) lookupIDHash(h uint64, id string) int32 {
	bt := &t.bind
	if len(bt.slots) == 0 {
		return -1
	}
	fp := h >> bindOffBits
	for i := h & bt.mask; ; i = (i + 1) & bt.mask {
		s := bt.slots[i]
		if s == 0 {
			return -1
		}
		if s>>bindOffBits == fp {
			n, kind, k := bt.entry(s&bindOffMask - 1)
			if kind == bindKeyID && k == id {
				return n
			}
		}
	}
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
	hashMul  = 0x9e3779b97f4a7c15
)

// lower8 folds the ASCII capitals of a word whose bytes are all ASCII.
func lower8(w uint64) uint64 {
	ge := w + (0x80-'A')*swarOnes   // high bit set where byte >= 'A'
	gt := w + (0x80-'Z'-1)*swarOnes // high bit set where byte > 'Z'
	return w | ((ge&^gt)&swarHigh)>>2
}

// load8 reads 8 bytes of s from i, little-endian (one load once compiled).
func load8(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// foldHasher hashes a stream of case-folded bytes, 8 at a time.
type foldHasher struct {
	h, w uint64
	nw   uint // bytes in w
	n    uint64
}

func (f *foldHasher) word(w uint64) {
	f.h = bits.RotateLeft64((f.h^w)*hashMul, 29)
	f.n += 8
}

func (f *foldHasher) byte(b byte) {
	f.w |= uint64(b) << (8 * f.nw)
	f.nw++
	if f.nw == 8 {
		f.word(f.w)
		f.w, f.nw = 0, 0
	}
}

func (f *foldHasher) sum() uint64 {
	h := f.h
	if f.nw > 0 {
		h = bits.RotateLeft64((h^f.w)*hashMul, 29)
	}
	h ^= f.n + uint64(f.nw)
	// splitmix64's finalizer: the low bits pick the slot, the high 24 bits
	// are the fingerprint.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// bindHash hashes s case-folded: ASCII words fold eight bytes at a time;
// a string with other bytes folds rune by rune into the same stream.
func bindHash(s string) uint64 {
	var f foldHasher
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		if w&swarHigh != 0 {
			return bindHashSlow(&f, s[i:])
		}
		f.word(lower8(w))
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return bindHashSlow(&f, s[i:])
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		f.byte(c)
	}
	return f.sum()
}

func bindHashSlow(f *foldHasher, s string) uint64 {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			f.byte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			f.byte(c)
			i++
			continue
		}
		var buf [utf8.UTFMax]byte
		for _, b := range utf8.AppendRune(buf[:0], unicode.ToLower(r)) {
			f.byte(b)
		}
		i += n
	}
	return f.sum()
}

// bindEqualFold reports whether a and b are equal under the folding of
// bindHash.
func bindEqualFold(a, b string) bool {
	if len(a) != len(b) {
		// Folding keeps ASCII lengths; only non-ASCII can differ.
		return (!isASCII(a) || !isASCII(b)) && bindEqualFoldSlow(a, b)
	}
	i := 0
	for ; i+8 <= len(a); i += 8 {
		wa, wb := load8(a, i), load8(b, i)
		if wa == wb {
			continue
		}
		if (wa|wb)&swarHigh != 0 {
			return bindEqualFoldSlow(a[i:], b[i:])
		}
		if lower8(wa) != lower8(wb) {
			return false
		}
	}
	for ; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca >= utf8.RuneSelf || cb >= utf8.RuneSelf {
			return bindEqualFoldSlow(a[i:], b[i:])
		}
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

func bindEqualFoldSlow(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		invA, invB := ra == utf8.RuneError && na == 1, rb == utf8.RuneError && nb == 1
		switch {
		case invA || invB:
			if !invA || !invB || a[0] != b[0] {
				return false
			}
		case ra < utf8.RuneSelf && rb < utf8.RuneSelf:
			if 'A' <= ra && ra <= 'Z' {
				ra += 'a' - 'A'
			}
			if 'A' <= rb && rb <= 'Z' {
				rb += 'a' - 'A'
			}
			if ra != rb {
				return false
			}
		case unicode.ToLower(ra) != unicode.ToLower(rb):
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b == ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// keyOf returns a key of CI n.
func (t *Topology) keyOf(n int32, key uint16) string {
	ci := &t.cis[n]
	switch key {
	case bindKeyID:
		return ci.ID
	case bindKeyName:
		return ci.Name
	}
	return ci.Aliases[key-bindKeyAlias0]
}

// Lookup returns the CI that key names: an id, an alias or a name, compared
// case-insensitively, with the precedence described at Bind.
func (t *Topology) Lookup(key string) (Node, bool) {
	n := t.lookupFold(key)
	return Node(n), n >= 0
}

// Bind returns the id of the CI an event is about, and whether it found one.
//
// The explicit e.CI wins when the topology has it (as an id, alias or name,
// in any case). Otherwise, or when e.CI is unknown, the labels are tried in
// the topology's bind order (DefaultBindLabels unless BuildOptions set
// another): each value as it is, then reduced to its host: "host:port",
// "[2001:db8::1]:9100" and "https://host:8443/path" give host and
// 2001:db8::1; a bare IPv6 address stays whole. Each value is matched
// against ids, aliases and names, case-insensitively. Where two CIs claim a
// key, ids win over aliases and aliases over names, then the first in the
// document.
//
// An event that binds to nothing is still a valid event: the correlator
// treats it without topology. Bind neither allocates nor locks; it is safe
// for concurrent use. It counts nothing: Store.Bind does, or count in
// batches with Store.CountBindings.
func (t *Topology) Bind(e *event.Event) (ci string, ok bool) {
	n, ok := t.BindNode(e)
	if !ok {
		return "", false
	}
	return t.cis[n].ID, true
}

// BindNode is Bind returning the node.
func (t *Topology) BindNode(e *event.Event) (Node, bool) {
	if e.CI != "" {
		if n := t.lookupFold(e.CI); n >= 0 {
			return Node(n), true
		}
	}
	if len(e.Labels) == 0 {
		return NoNode, false
	}
	for _, l := range t.bindLabels {
		v, ok := e.Labels.Lookup(l)
		if !ok || v == "" {
			continue
		}
		h := HostOf(v)
		if h == v || t.bind.hostKeys {
			if n := t.lookupFold(v); n >= 0 {
				return Node(n), true
			}
		}
		if h != v {
			if n := t.lookupFold(h); n >= 0 {
				return Node(n), true
			}
		}
	}
	return NoNode, false
}

// HostOf reduces an instance-like value to its host: it drops a URL scheme
// and anything from the first '/', user info, and a port; it unwraps
// "[ipv6]" and "[ipv6]:port". A bare IPv6 address (several colons, no
// brackets) and values without any of these come back unchanged. It does
// not allocate.
func HostOf(v string) string {
	if i := strings.Index(v, "://"); i >= 0 {
		v = v[i+3:]
		if j := strings.IndexAny(v, "/?#"); j >= 0 {
			v = v[:j]
		}
		if j := strings.LastIndexByte(v, '@'); j >= 0 {
			v = v[j+1:]
		}
	}
	if len(v) > 0 && v[0] == '[' {
		if j := strings.IndexByte(v, ']'); j > 0 {
			rest := v[j+1:]
			if rest == "" || rest[0] == ':' && isPort(rest[1:]) {
				return v[1:j]
			}
		}
		return v
	}
	i := strings.LastIndexByte(v, ':')
	if i < 0 || strings.IndexByte(v[:i], ':') >= 0 {
		return v // no port, or a bare IPv6 address
	}
	if isPort(v[i+1:]) {
		return v[:i]
	}
	return v
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
