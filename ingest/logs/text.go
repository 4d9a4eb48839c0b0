package logs

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// decodeText decodes a text payload: the whole payload, without its final
// line end, is one record's message, so a multi-line message such as a
// stack trace stays one record.
func (d *Decoder) decodeText(data []byte, received time.Time, dst []Record) ([]Record, []DecodeError) {
	msg := bytes.TrimRight(data, "\r\n")
	if len(bytes.TrimSpace(msg)) == 0 {
		return dst, []DecodeError{{Index: 0, Record: "record", Field: "message", Msg: "empty"}}
	}
	d.buf = d.buf[:0]
	d.spans = [8]span{}
	d.put(sMessage, truncate(msg, d.cfg.MaxMessageBytes))
	d.put(sHost, []byte(d.cfg.Text.Host))
	d.put(sService, []byte(d.cfg.Text.Service))
	source := d.cfg.Source
	if source == "" {
		source = "text"
	}
	d.put(sSource, []byte(source))
	dst = append(dst, Record{})
	r := &dst[len(dst)-1]
	d.finish(r)
	r.Time = received
	if t, ok := leadingTime(r.Message, received); ok {
		r.Time = t
	}
	if l, ok := guessLevel(r.Message); ok {
		r.Level = l
	} else {
		r.Level = d.cfg.Text.defaultLevel
	}
	return dst, nil
}

// guessWords bounds how many leading words guessLevel looks at: levels sit
// near the start of a line, and a word such as ERROR deep inside a message
// ("retrying after ERROR from upstream") is not the line's level.
const guessWords = 8

// guessLevel finds a level word near the start of a line, as most text
// formats write one: a capitalised word (ERROR, WARN, INFO, as log4j,
// Python and HDFS do), a bracketed or colon-terminated word in any case
// ([error], <warn>, error:), a level= / lvl= / severity= pair (logfmt), a
// zerolog console abbreviation (ERR, WRN), or a klog header (E0612
// 12:34:56.789 ...). ok is false when none is found.
func guessLevel(line string) (Level, bool) {
	// klog: Lmmdd hh:mm:ss.uuuuuu
	if len(line) >= 6 && isDigits(line[1:5]) && line[5] == ' ' {
		switch line[0] {
		case 'I':
			return LevelInfo, true
		case 'W':
			return LevelWarn, true
		case 'E':
			return LevelError, true
		case 'F':
			return LevelFatal, true
		}
	}
	words := 0
	for i := 0; i < len(line) && i < 256 && words < guessWords; {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i < len(line) && (line[i] == '\n' || line[i] == '\r') {
			break // first line only
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\n' && line[j] != '\r' {
			j++
		}
		if j > i {
			words++
			if l, ok := wordLevel(line[i:j]); ok {
				return l, true
			}
		}
		i = j
	}
	return LevelNone, false
}

// wordLevel reads one word of a text line as a level, if it clearly is one.
func wordLevel(w string) (Level, bool) {
	if len(w) < 3 || len(w) > 32 {
		return LevelNone, false
	}
	// logfmt: level=error, lvl="warn", severity=ERROR.
	if k, v, ok := cut(w, '='); ok {
		var buf [32]byte
		switch string(lowerInto(buf[:0], k)) {
		case "level", "lvl", "severity", "loglevel", "log.level":
			v = trimQuotes(v)
			return ParseLevel(v)
		}
		return LevelNone, false
	}
	marked := false // bracketed or colon-terminated
	for len(w) > 0 && (w[0] == '[' || w[0] == '(' || w[0] == '<' || w[0] == '{') {
		w, marked = w[1:], true
	}
	for len(w) > 0 {
		c := w[len(w)-1]
		if c == ']' || c == ')' || c == '>' || c == '}' || c == ':' {
			w, marked = w[:len(w)-1], true
			continue
		}
		if c == ',' || c == ';' || c == '|' || c == '-' {
			w = w[:len(w)-1]
			continue
		}
		break
	}
	// Python's default format: ERROR:root:message.
	if k, _, ok := cut(w, ':'); ok && isUpper(k) {
		w, marked = k, true
	}
	if len(w) < 3 {
		return LevelNone, false
	}
	var buf [32]byte
	l, ok := textLevels[string(lowerInto(buf[:0], w))]
	if !ok || !(marked || isUpper(w)) {
		return LevelNone, false
	}
	return l, true
}

// textLevels are the words guessLevel accepts: full level names and the
// common three-letter abbreviations, but no single letters or words that
// often occur in messages in lower case (ok, fail, all, config).
var textLevels = map[string]Level{
	"trace": LevelTrace, "trc": LevelTrace, "verbose": LevelTrace,
	"debug": LevelDebug, "dbg": LevelDebug,
	"info": LevelInfo, "inf": LevelInfo, "notice": LevelInfo, "information": LevelInfo,
	"warn": LevelWarn, "warning": LevelWarn, "wrn": LevelWarn,
	"error": LevelError, "err": LevelError, "severe": LevelError,
	"fatal": LevelFatal, "ftl": LevelFatal, "panic": LevelFatal, "pnc": LevelFatal,
	"critical": LevelCritical, "crit": LevelCritical, "emerg": LevelCritical, "alert": LevelCritical,
}

func cut(s string, sep byte) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func trimQuotes(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return len(s) > 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// lowerInto appends s lower-cased (ASCII) to b, for map lookups that do
// not allocate.
func lowerInto(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// leadingTime parses a time stamp at the start of a text line: RFC 3339
// (2026-01-02T15:04:05.123Z), its space-separated form with an optional
// comma or dot fraction and zone (2026-01-02 15:04:05,123), optionally in
// brackets, or a syslog stamp (Jan  2 15:04:05, in UTC, the year taken from
// received and set back one when that puts the stamp more than a day ahead).
// A stamp without a zone is read as UTC.
func leadingTime(line string, received time.Time) (time.Time, bool) {
	if len(line) > 0 && line[0] == '[' {
		line = line[1:]
	}
	if len(line) >= 19 && isDigits(line[:4]) && line[4] == '-' && line[7] == '-' {
		end := 19
		for end < len(line) && end < 40 {
			c := line[end]
			if c >= '0' && c <= '9' || c == '.' || c == ',' || c == ':' || c == '+' || c == '-' || c == 'Z' {
				end++
				continue
			}
			break
		}
		s := line[:end]
		for _, layout := range leadingLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), true
			}
		}
		return time.Time{}, false
	}
	if len(line) >= 15 && line[3] == ' ' && line[6] == ' ' && line[9] == ':' {
		if _, ok := months[line[:3]]; !ok {
			return time.Time{}, false
		}
		t, err := time.Parse(time.Stamp, line[:15])
		if err != nil {
			return time.Time{}, false
		}
		y := received.UTC().Year()
		t = t.AddDate(y, 0, 0)
		if t.After(received.Add(24 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
		return t, true
	}
	return time.Time{}, false
}

// When parsing, time.Parse accepts a fraction (dot or comma) after the
// seconds even where the layout has none.
var leadingLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05Z0700",
}

var months = map[string]struct{}{
	"Jan": {}, "Feb": {}, "Mar": {}, "Apr": {}, "May": {}, "Jun": {},
	"Jul": {}, "Aug": {}, "Sep": {}, "Oct": {}, "Nov": {}, "Dec": {},
}

// Bounds of a record time: anything outside is a unit or format mistake.
var (
	minRecordTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	maxRecordTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTimeValue reads a JSON time field: an RFC 3339 (or space-separated)
// string, or epoch time as a number or a string of digits, its unit told by
// its size (seconds, milliseconds, microseconds or nanoseconds, as
// OpenTelemetry's timeUnixNano, Fluent Bit's float seconds and journald's
// microseconds are). zero reports the OpenTelemetry "unknown" time, 0,
// which the next path may replace.
func (d *Decoder) parseTimeValue(v *fastjson.Value, received time.Time) (t time.Time, zero bool, err error) {
	if typ := v.Type(); typ != fastjson.TypeString && typ != fastjson.TypeNumber {
		return time.Time{}, false, fmt.Errorf("expected a string or a number, got %s", typ)
	}
	b, _ := d.scalar(v)
	// Nothing below keeps s: the layouts have numeric zones only (no zone
	// name to keep) and times are returned in UTC.
	s := unsafe.String(unsafe.SliceData(b), len(b))
	if t, zero, ok := parseEpoch(s); ok {
		if zero {
			return time.Time{}, true, nil
		}
		if t.Before(minRecordTime) || !t.Before(maxRecordTime) {
			return time.Time{}, false, fmt.Errorf("%s is out of range as epoch time (%s)", s, t.Format(time.RFC3339))
		}
		return t, false, nil
	}
	if v.Type() == fastjson.TypeString {
		for _, layout := range leadingLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				if t.Before(minRecordTime) || !t.Before(maxRecordTime) {
					return time.Time{}, false, fmt.Errorf("%q is out of range", s)
				}
				return t.UTC(), false, nil
			}
		}
		if len(s) == 15 {
			if t, ok := leadingTime(s, received); ok {
				return t, false, nil
			}
		}
	}
	return time.Time{}, false, fmt.Errorf("%s is not a time", quoteValue(v, b))
}

// parseEpoch reads digits with an optional fraction (or a float with an
// exponent) as epoch time, its unit told by the integer part's size.
func parseEpoch(s string) (t time.Time, zero, ok bool) {
	if s == "" || s[0] == '-' {
		return time.Time{}, false, false
	}
	intPart, frac, _ := cut(s, '.')
	if !isDigits(intPart) || frac != "" && !isDigits(frac) {
		// 1.7e9 and the like; checked first, as a failing ParseFloat
		// allocates its error.
		if !isFloat(s) {
			return time.Time{}, false, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1e19 {
			return time.Time{}, false, false
		}
		if f == 0 {
			return time.Time{}, true, true
		}
		return fromEpochFloat(f), false, true
	}
	if len(intPart) > 19 {
		return time.Time{}, false, false
	}
	n, err := strconv.ParseUint(intPart, 10, 64)
	if err != nil {
		return time.Time{}, false, false
	}
	if n == 0 && strings0(frac) {
		return time.Time{}, true, true
	}
	// The unit: seconds up to 1e11 (year 5138), then ms, us, ns.
	var unit int64
	switch {
	case n >= 1e17:
		unit = 1
	case n >= 1e14:
		unit = 1e3
	case n >= 1e11:
		unit = 1e6
	default:
		unit = 1e9
	}
	if n > uint64(1<<63-1)/uint64(unit) {
		return time.Time{}, false, false
	}
	ns := int64(n) * unit
	// The fraction, exactly, to the nanosecond.
	var f int64
	scale := unit
	for i := 0; i < len(frac) && scale > 1; i++ {
		scale /= 10
		f += int64(frac[i]-'0') * scale
	}
	return time.Unix(0, ns+f).UTC(), false, true
}

func isFloat(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return false
		}
	}
	return len(s) > 0
}

func strings0(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

func fromEpochFloat(f float64) time.Time {
	switch {
	case f >= 1e17:
		return time.Unix(0, int64(f)).UTC()
	case f >= 1e14:
		return time.Unix(0, int64(f*1e3)).UTC()
	case f >= 1e11:
		return time.Unix(0, int64(f*1e6)).UTC()
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
}
