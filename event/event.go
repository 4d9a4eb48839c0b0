package event

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
)

// Kind says what produced an event.
type Kind string

// The kinds of event.
const (
	KindAlert  Kind = "alert"
	KindLog    Kind = "log"
	KindChange Kind = "change"
)

// Status is the state an alert reports.
type Status string

// The statuses of an event.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Severity is the importance a source gave an event, most severe first.
type Severity string

// The severities, in decreasing order of importance.
const (
	SeverityCritical Severity = "critical"
	SeverityMajor    Severity = "major"
	SeverityMinor    Severity = "minor"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Rank orders severities: critical is 5, info is 1, an unknown severity 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 5
	case SeverityMajor:
		return 4
	case SeverityMinor:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Valid reports whether s is one of the five canonical severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindAlert || k == KindLog || k == KindChange }

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusFiring || s == StatusResolved }

// ParseSeverity maps the severity words monitoring tools use onto the five
// canonical severities. Prometheus rules in the wild say "page", "error",
// "high", "warn" and so on; mapping them here keeps rules and incident
// priorities meaningful without asking every team to relabel first.
func ParseSeverity(s string) (Severity, bool) {
	switch s {
	case "critical", "crit", "fatal", "emergency", "emerg", "alert", "page", "disaster", "p1":
		return SeverityCritical, true
	case "major", "error", "err", "high", "p2":
		return SeverityMajor, true
	case "minor", "medium", "average", "p3":
		return SeverityMinor, true
	case "warning", "warn", "low", "p4":
		return SeverityWarning, true
	case "info", "informational", "information", "notice", "debug", "none", "ok", "p5":
		return SeverityInfo, true
	}
	// Case-insensitive fallback without allocating on the common path above.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return ParseSeverity(toLowerASCII(s))
		}
	}
	return "", false
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Event is the canonical event. Its JSON names are part of the public
// contract (docs/schema/event.schema.json); do not rename them.
type Event struct {
	// ID identifies this one event. When a producer gives none, Normalize
	// derives it from the content, so an exact re-delivery keeps its id.
	ID string `json:"id"`
	// Time is the event time: when the alert started firing or resolved.
	// Every window downstream runs on it, never on the wall clock.
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Kind   Kind      `json:"kind"`
	Status Status    `json:"status"`
	// Severity defaults to the canonical form of labels["severity"].
	Severity Severity `json:"severity"`
	// CI is the configuration item id, when the producer or CI binding knows it.
	CI          string `json:"ci,omitempty"`
	Labels      Labels `json:"labels"`
	Annotations Labels `json:"annotations,omitempty"`
	Summary     string `json:"summary,omitempty"`
	// Fingerprint identifies the alert across deliveries: a hash of the sorted
	// label set, the same function Alertmanager uses.
	Fingerprint string `json:"fingerprint"`
}

// Defaults are the values Normalize uses for fields a producer left out.
type Defaults struct {
	// Source is used when an event names none.
	Source string
	// Severity is used when neither the event nor labels["severity"] give a
	// recognisable one.
	Severity Severity
}

// DefaultDefaults are the defaults of a daemon with no configuration.
var DefaultDefaults = Defaults{Source: "unknown", Severity: SeverityWarning}

// FieldError says which field of an event is wrong and why. Decoders prefix
// Field with the position of the event in its payload (alerts[3].labels).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrInvalid is wrapped by every validation error, for errors.Is.
var ErrInvalid = errors.New("invalid event")

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrInvalid, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Normalize fills the derived fields of e (kind, status, source, severity,
// fingerprint, id) and checks what must hold for every event, its labels
// included. It does not judge the time against a clock: that is the ingest
// stage's policy, since replay runs on event time.
func Normalize(e *Event, d Defaults) error {
	if err := Complete(e, d); err != nil {
		return err
	}
	return CheckLabels(e.Labels)
}

// CheckLabels checks that every label name is non-empty and that names and
// values are valid UTF-8.
func CheckLabels(labels Labels) error {
	if !labels.Sorted() {
		return invalid("labels", "not sorted by name with each name once (event.SortLabels)")
	}
	for _, l := range labels {
		k, v := l.Name, l.Value
		if k == "" {
			return invalid("labels", "empty label name")
		}
		if !utf8.ValidString(k) {
			return invalid("labels", "label name %q is not valid UTF-8", k)
		}
		if !utf8.ValidString(v) {
			return invalid("labels."+k, "value is not valid UTF-8")
		}
	}
	return nil
}

// Complete is Normalize without CheckLabels, for decoders that check each
// label as they read it: re-scanning every string of every event again was a
// measurable share of decoding an Alertmanager webhook.
func Complete(e *Event, d Defaults) error {
	if e.Time.IsZero() {
		return invalid("time", "missing: every event needs its event time (RFC 3339)")
	}
	if e.Kind == "" {
		e.Kind = KindAlert
	} else if !e.Kind.Valid() {
		return invalid("kind", "%q is not one of alert, log, change", e.Kind)
	}
	if e.Status == "" {
		e.Status = StatusFiring
	} else if !e.Status.Valid() {
		return invalid("status", "%q is not one of firing, resolved", e.Status)
	}
	if e.Source == "" {
		e.Source = d.Source
	}
	if e.Severity == "" {
		sev, ok := ParseSeverity(e.Labels.Get("severity"))
		if !ok {
			sev = d.Severity
		}
		e.Severity = sev
	} else if sev, ok := ParseSeverity(string(e.Severity)); ok {
		e.Severity = sev
	} else {
		return invalid("severity", "%q is not one of critical, major, minor, warning, info", e.Severity)
	}
	if e.Kind == KindAlert && len(e.Labels) == 0 {
		return invalid("labels", "an alert needs at least one label to identify it")
	}
	if e.Fingerprint == "" {
		e.Fingerprint = Fingerprint(e.Labels)
	}
	if e.ID == "" {
		e.ID = DeriveID(e)
	}
	return nil
}

// Fingerprint returns Alertmanager's fingerprint of a label set: FNV-1a over
// the sorted names and values, as 16 hex digits. Using the same function means
// an alert keeps its identity whether it arrives from Alertmanager (which sends
// its own fingerprint) or straight from a Prometheus rule.
//
// It is model.LabelsToSignature's hash (FNV-1a, 64 bits, a separator byte
// after each name and value) computed over the already sorted labels, without
// the map model wants; model.Fingerprint's String also formatted with fmt,
// which was 29% of the fingerprint's cost when decoding Alertmanager API v2
// lists. The hex digits are the same (TestFingerprintMatchesAlertmanager).
func Fingerprint(labels Labels) string {
	h := fnvOffset64
	for _, l := range labels { // sorted by name, as the hash wants them
		h = fnvLabel(h, l.Name, l.Value)
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h)
	return hex.EncodeToString(sum[:])
}

// DeriveID returns a deterministic id for an event that has none: a hash of
// what makes one delivery of an alert distinct (source, fingerprint, status,
// event time). Two deliveries of the same state change get the same id, so
// downstream stages can drop the duplicate.
func DeriveID(e *Event) string {
	var buf [16]byte
	return string(appendID(buf[:0], e.Source, e.Fingerprint, e.Status, e.Time))
}

// AppendDerivedID appends to dst the id DeriveID gives an event with these
// fields, for a decoder that packs an event's strings into one allocation.
func AppendDerivedID(dst []byte, source string, fingerprint []byte, status Status, t time.Time) []byte {
	return appendID(dst, source, fingerprint, status, t)
}

func appendID[S string | []byte](dst []byte, source string, fingerprint S, status Status, t time.Time) []byte {
	var buf [128]byte
	b := append(buf[:0], source...)
	b = append(b, 0xff)
	b = append(b, fingerprint...)
	b = append(b, 0xff)
	b = append(b, status...)
	b = append(b, 0xff)
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], xxhash.Sum64(b))
	return hex.AppendEncode(dst, sum[:])
}

// AppendFingerprint appends to dst the fingerprint (16 hex digits) of the
// label set whose names and values, in order of name, name(i) and value(i)
// return for i in [0, n). The names must be distinct. It is Fingerprint
// for a decoder that holds the labels in a buffer of its own rather than in
// a map: the same FNV-1a as model.LabelsToSignature, over the same bytes.
func AppendFingerprint(dst []byte, n int, name, value func(i int) []byte) []byte {
	h := fnvOffset64
	for i := range n {
		h = fnvLabel(h, name(i), value(i))
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h)
	return hex.AppendEncode(dst, sum[:])
}

// FNV-1a, 64 bits, as prometheus/common/model hashes label sets.
const (
	fnvOffset64 uint64 = 14695981039346656037
	fnvPrime64  uint64 = 1099511628211
)

// fnvLabel adds one label to h as model.LabelsToSignature does: its name and
// value, each followed by the separator byte.
func fnvLabel[S string | []byte](h uint64, name, value S) uint64 {
	h = (fnvAdd(h, name) ^ uint64(model.SeparatorByte)) * fnvPrime64
	return (fnvAdd(h, value) ^ uint64(model.SeparatorByte)) * fnvPrime64
}

func fnvAdd[S string | []byte](h uint64, b S) uint64 {
	for i := 0; i < len(b); i++ {
		h = (h ^ uint64(b[i])) * fnvPrime64
	}
	return h
}
