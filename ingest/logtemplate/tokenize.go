package logtemplate

import "bytes"

// The masking rules. They are one fixed set for every log source, chosen to
// agree with the variable conventions of Khan et al. (ICSE 2022) that the
// corrected Loghub templates follow, so that a template is readable and
// comparable without per-source regular expressions:
//
//   - A line is split into words at white space.
//   - A word is split into chunks at the "path delimiters" , ! ; : = | " ' [ ]
//     ( ) { }. A chunk that is a path (/a/b, one or more /component) is one
//     variable, whatever its characters: paths name instances, not events.
//   - Other chunks are split into segments at the path delimiters and at
//     . + @ # $ % &. A segment that contains a digit is a variable: numbers,
//     hex, IPv4 octets, ports, versions, UUIDs (their '-' does not split),
//     block ids like blk_-123, and time stamps all fall out of this one rule.
//   - A word whose variables are separated only by single '.' or ':' is one
//     variable as a whole (an IP with a port, a time of day, a float).
//
// Keeping the delimiters around a variable keeps the template informative:
// rhost=<*>, [<*>], mice.c(<*>).

const (
	cSpace     = 1 << iota // separates words
	cPathDelim             // ends a path chunk and a segment
	cSegDelim              // ends a segment
	cDigit                 // makes a segment variable
)

var class = func() (t [256]uint8) {
	for _, c := range []byte(" \t\r\n\v\f") {
		t[c] |= cSpace | cPathDelim | cSegDelim
	}
	for _, c := range []byte(`,!;:=|"'[](){}`) {
		t[c] |= cPathDelim | cSegDelim
	}
	for _, c := range []byte(`.+@#$%&`) {
		t[c] |= cSegDelim
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit
	}
	return t
}()

// FNV-1a, inlined: the words are short, and a byte-wise hash that needs no
// finalisation is the cheapest here. A variable mixes in 0x100, which no
// byte can, so "a<*>" never collides with a literal.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	varMark   = 0x100
	// wildHash is the hash of a word that is variable as a whole, and of a
	// template position that has become a wildcard. Real hashes are forced
	// away from it.
	wildHash = 0
)

// span is a part of a word's masked form, relative to the word's start:
// either literal bytes or one variable.
type span struct {
	start, end int32
	isVar      bool
}

// scanWord computes the masked form of w: its hash, the count of variable
// parts, and whether it is variable as a whole (then its hash is wildHash).
// When parts is not nil the masked form is appended to it; the hot path
// passes nil and allocates nothing.
func scanWord(w []byte, parts *[]span) (h uint64, nvars int, all bool) {
	h = fnvOffset
	// st follows the pattern var ([.:] var)*: 0 expects a variable (start),
	// 1 follows a variable, 2 follows a separator, 3 means no match.
	st := 0
	emit := func(s, e int, v bool) {
		if parts == nil {
			return
		}
		p := *parts
		if !v && len(p) > 0 && !p[len(p)-1].isVar && p[len(p)-1].end == int32(s) {
			p[len(p)-1].end = int32(e)
		} else {
			p = append(p, span{int32(s), int32(e), v})
		}
		*parts = p
	}
	lit := func(s, e int) {
		for k := s; k < e; k++ {
			h = (h ^ uint64(w[k])) * fnvPrime
		}
		if e-s == 1 && st == 1 && (w[s] == '.' || w[s] == ':') {
			st = 2
		} else {
			st = 3
		}
		emit(s, e, false)
	}
	variable := func(s, e int) {
		h = (h ^ varMark) * fnvPrime
		nvars++
		if st == 0 || st == 2 {
			st = 1
		} else {
			st = 3
		}
		emit(s, e, true)
	}
	n := len(w)
	i := 0
	for i < n {
		j := i
		for j < n && class[w[j]]&cPathDelim == 0 {
			j++
		}
		if isPath(w[i:j]) {
			variable(i, j)
		} else {
			k := i
			for k < j {
				if class[w[k]]&cSegDelim != 0 {
					m := k + 1
					for m < j && class[w[m]]&cSegDelim != 0 {
						m++
					}
					lit(k, m)
					k = m
					continue
				}
				m := k
				for m < j && class[w[m]]&cSegDelim == 0 {
					m++
				}
				if isVariable(w[k:m]) {
					variable(k, m)
				} else {
					lit(k, m)
				}
				k = m
			}
		}
		if j < n {
			lit(j, j+1)
			j++
		}
		i = j
	}
	if st == 1 || nvars > 0 && class[w[n-1]]&cDigit != 0 && isHostPort(w) {
		if parts != nil && st != 1 {
			*parts = append((*parts)[:0], span{0, int32(n), true})
		}
		return wildHash, max(nvars, 1), true
	}
	if h == wildHash {
		h = 1
	}
	return h, nvars, false
}

// isPath reports whether c matches ^(/[^/]+)+$.
func isPath(c []byte) bool {
	if len(c) < 2 || c[0] != '/' || c[len(c)-1] == '/' {
		return false
	}
	for k := 1; k < len(c); k++ {
		if c[k] == '/' && c[k-1] == '/' {
			return false
		}
	}
	return true
}

// isVariable reports whether a segment is a value rather than a word: it
// starts with a digit (numbers, hex ids, dates), has two digits or more
// (block, job and request ids, host names with numbers), or has a digit
// right after a character that is not a letter (node-5, HTTP/1, core_0).
// What is left are words with one digit glued to letters, which name things
// rather than count them: ssh2, eth0, IPv6, SOCKS5, jk2_init.
func isVariable(s []byte) bool {
	digits := 0
	for i, c := range s {
		if class[c]&cDigit == 0 {
			continue
		}
		if i == 0 || !isLetter(s[i-1]) && class[s[i-1]]&cDigit == 0 {
			return true
		}
		digits++
	}
	return digits >= 2
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' || c >= 0x80 }

// isDateName reports whether w is an English month or weekday name, full or
// abbreviated, as time stamps write them (Jul, July, Mon, Monday; any case).
func isDateName(w []byte) bool {
	if len(w) < 3 || len(w) > 9 || !isLetter(w[0]) {
		return false
	}
	var b [9]byte
	for i, c := range w {
		b[i] = c | 0x20
	}
	switch string(b[:len(w)]) {
	case "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
		"january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december",
		"mon", "tue", "wed", "thu", "fri", "sat", "sun",
		"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday":
		return true
	}
	return false
}

// isHostPort reports whether w is a host name with at least three labels
// and a port, such as proxy.example.com:5070: the name is as variable as the
// port, even without digits.
func isHostPort(w []byte) bool {
	c := bytes.LastIndexByte(w, ':')
	if c < 5 || c == len(w)-1 {
		return false
	}
	for _, b := range w[c+1:] {
		if class[b]&cDigit == 0 {
			return false
		}
	}
	dots, prev := 0, byte('.')
	for _, b := range w[:c] {
		switch {
		case b == '.':
			if prev == '.' {
				return false
			}
			dots++
		case isLetter(b) || class[b]&cDigit != 0 || b == '-':
		default:
			return false
		}
		prev = b
	}
	return dots >= 2 && prev != '.'
}
