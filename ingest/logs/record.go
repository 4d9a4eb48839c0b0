package logs

import (
	"time"

	"github.com/correlatord/correlatord/event"
)

// Level is a record's normalised log level. The zero value is no level;
// the decoder always sets one.
type Level uint8

// The levels, least severe first. Comparisons (>=) follow this order.
const (
	LevelNone Level = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelFatal
	LevelCritical
)

// Levels lists the levels in order, for metrics and documentation.
var Levels = []Level{LevelTrace, LevelDebug, LevelInfo, LevelWarn, LevelError, LevelFatal, LevelCritical}

var levelNames = [...]string{"", "trace", "debug", "info", "warn", "error", "fatal", "critical"}

// String returns the level's normalised name: trace, debug, info, warn,
// error, fatal or critical ("" for LevelNone).
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return ""
}

// Severity maps a level onto the canonical event severities: fatal and
// critical are critical, error is major, warn is warning, the rest info.
func (l Level) Severity() event.Severity {
	switch {
	case l >= LevelFatal:
		return event.SeverityCritical
	case l == LevelError:
		return event.SeverityMajor
	case l == LevelWarn:
		return event.SeverityWarning
	}
	return event.SeverityInfo
}

// ParseLevel reads a level word as loggers write it, in any case: the
// normalised names, their abbreviations and synonyms (err, warning, crit,
// emerg, alert, notice, severe, panic, dpanic, verbose, ...), OpenTelemetry's
// severity texts with their 2-4 suffix (ERROR2), and the one-letter forms of
// klog and Android (E, W, I, D, V, F). It reports false for anything else.
func ParseLevel(s string) (Level, bool) {
	if len(s) == 0 || len(s) > 16 {
		return LevelNone, false
	}
	var buf [16]byte
	b := buf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	// OpenTelemetry severity texts may carry a 2-4 suffix (INFO2, ERROR4).
	if n := len(b); n > 2 && b[n-1] >= '2' && b[n-1] <= '4' && b[n-2] > '9' {
		b = b[:n-1]
	}
	switch string(b) {
	case "trace", "trc", "verbose", "v", "finest", "finer", "all":
		return LevelTrace, true
	case "debug", "dbg", "d", "fine", "config":
		return LevelDebug, true
	case "info", "inf", "i", "information", "informational", "notice", "n", "ok":
		return LevelInfo, true
	case "warn", "warning", "wrn", "w":
		return LevelWarn, true
	case "error", "err", "eror", "e", "severe", "fail", "failure":
		return LevelError, true
	case "fatal", "ftl", "f", "panic", "dpanic":
		return LevelFatal, true
	case "critical", "crit", "crt", "c", "alert", "emerg", "emergency":
		return LevelCritical, true
	}
	return LevelNone, false
}

// Record is one log record as the decoder reads it, before template mining.
//
// The decoder fills every string of a record from one allocation of its own,
// so a record owns its strings (nothing aliases the payload or the parser)
// and keeping any one of them keeps the record's other strings alive.
type Record struct {
	// Time is the record's own time; the receive time when it has none.
	Time time.Time
	// Message is the log line (or the whole multi-line message, such as a
	// stack trace), truncated to Config.MaxMessageBytes.
	Message string
	// Level is normalised; records that give none are guessed from the
	// message, else Config.Text.DefaultLevel.
	Level Level
	// Host, Service, Pod, Namespace and Container identify where the record
	// came from; any may be empty.
	Host      string
	Service   string
	Pod       string
	Namespace string
	Container string
	// Source names the shipper: vector, fluentbit, filebeat (or another
	// beat), otel, json, text, or Config.Source when set.
	Source string
	// Extra holds the Config.Fields.Extra attributes the record has, keyed
	// by their configured path; nil when none.
	Extra map[string]string
}
