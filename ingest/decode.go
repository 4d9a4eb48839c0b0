package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"
	"github.com/valyala/fastjson"

	"github.com/correlatord/correlatord/event"
)

// Format names a payload format.
type Format string

// The payload formats a Decoder understands.
const (
	// FormatAlertmanagerWebhook is an Alertmanager webhook notification,
	// protocol version "4".
	FormatAlertmanagerWebhook Format = "alertmanager-webhook"
	// FormatAlertList is the alert list that the Alertmanager (and Prometheus)
	// API v2 accepts: [{labels, annotations, startsAt, endsAt, generatorURL}].
	FormatAlertList Format = "alertmanager-v2"
	// FormatEvents is canonical event JSON: one object, an array of objects,
	// or JSON lines (one object per line).
	FormatEvents Format = "events"
	// FormatAuto asks the Decoder to detect the format; see DetectFormat.
	FormatAuto Format = "auto"
)

// Limits bound what one payload may contain, so that a single request cannot
// make the daemon allocate without bound. Zero (or negative) fields take the
// DefaultLimits value.
type Limits struct {
	// MaxLabels bounds the labels of one event, and separately its
	// annotations.
	MaxLabels int
	// MaxLabelBytes bounds the length of every label and annotation name and
	// value. It also bounds the other free-text string fields (id, source, ci,
	// summary, fingerprint, generatorURL), which would otherwise be the one
	// unbounded thing in an event.
	MaxLabelBytes int
	// MaxEvents bounds the items of one payload: webhook alerts, list
	// elements or non-blank JSON lines.
	MaxEvents int
}

// DefaultLimits are the limits of a daemon with no configuration.
var DefaultLimits = Limits{MaxLabels: 128, MaxLabelBytes: 8192, MaxEvents: 100000}

func (l Limits) withDefaults() Limits {
	if l.MaxLabels <= 0 {
		l.MaxLabels = DefaultLimits.MaxLabels
	}
	if l.MaxLabelBytes <= 0 {
		l.MaxLabelBytes = DefaultLimits.MaxLabelBytes
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultLimits.MaxEvents
	}
	return l
}

// DecodeError is one rejected item of a payload.
//
// Index is the position of the item: the 0-based index into the webhook's
// alerts array or into a top-level array, 0 for a single canonical object,
// the 1-based line number for JSON lines, and -1 when the whole payload was
// rejected. Err names the field and what is wrong with it, prefixed with the
// item's position, for example
//
//	alerts[3].labels.severity: expected a string, got number
//	events[2].time: missing: every event needs its event time (RFC 3339)
//	line 7: sevrity: unknown field
//
// Err wraps event.ErrInvalid and an *event.FieldError whose Field is the full
// path (alerts[3].labels.severity).
type DecodeError struct {
	Index int
	Err   error
}

func (e *DecodeError) Error() string {
	if e.Err == nil {
		return "ingest: invalid item " + strconv.Itoa(e.Index)
	}
	return e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// fieldError is an event.FieldError that also matches event.ErrInvalid, so
// callers can use errors.Is and errors.As without parsing text. An empty Field
// means the payload as a whole.
type fieldError struct {
	event.FieldError
}

func (e *fieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func (e *fieldError) Unwrap() []error { return []error{&e.FieldError, event.ErrInvalid} }

func errorf(field, format string, args ...any) error {
	return &fieldError{event.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}}
}

// within prefixes the field of err (a fieldError or an error from
// event.Normalize) with the path prefix. Any other error is wrapped whole.
func within(prefix string, err error) error {
	var fe *event.FieldError
	if !errors.As(err, &fe) {
		return &fieldError{event.FieldError{Field: prefix, Msg: err.Error()}}
	}
	field := fe.Field
	switch {
	case prefix == "":
	case field == "":
		field = prefix
	case strings.HasPrefix(prefix, "line "):
		field = prefix + ": " + field
	default:
		field = prefix + "." + field
	}
	return &fieldError{event.FieldError{Field: field, Msg: fe.Msg}}
}

// Decoder decodes payloads into events.
//
// A Decoder reuses its parser state between calls, so it is not safe for
// concurrent use: make one per goroutine, or keep them in a sync.Pool. The
// parser keeps the memory of the largest payload it has seen for reuse. The
// events a Decoder returns own their strings: nothing in them aliases the
// input or the parser's buffers after Decode returns. (The short strings of
// one event share one allocation; see eventStrings.)
//
// The JSON parser is lenient where leniency cannot change the meaning of a
// valid payload: it keeps an escape it cannot decode (\x, or a lone surrogate
// such as \ud800, which encoding/json would turn into U+FFFD) as written, and
// accepts raw control characters inside strings.
type Decoder struct {
	p        fastjson.Parser
	limits   Limits
	defaults event.Defaults

	// strs holds the strings of the event being decoded; see eventStrings.
	strs eventStrings
	// annotations holds a keyed event's annotation entries until its
	// labels are in (decodeKeyedEvent).
	annotations [][]byte

	// validUTF8 says that the whole payload is valid UTF-8. Unescaping JSON
	// strings cannot make valid UTF-8 invalid (an escape becomes a valid
	// rune, or stays as written when fastjson cannot decode it), so then no
	// string needs checking on its own: one pass over the payload is much
	// cheaper than a call per string.
	validUTF8 bool
}

// NewDecoder returns a Decoder that enforces limits and fills missing event
// fields from defaults. A zero defaults field takes its value from
// event.DefaultDefaults, and so does a Severity that event.ParseSeverity does
// not recognise (configuration should be validated before it gets here); a
// recognised one is stored in canonical form, so that every event leaves
// Decode already normalized.
func NewDecoder(limits Limits, defaults event.Defaults) *Decoder {
	if defaults.Source == "" {
		defaults.Source = event.DefaultDefaults.Source
	}
	if sev, ok := event.ParseSeverity(string(defaults.Severity)); ok {
		defaults.Severity = sev
	} else {
		defaults.Severity = event.DefaultDefaults.Severity
	}
	return &Decoder{
		limits:   limits.withDefaults(),
		defaults: defaults,
	}
}

// Decode appends the valid events of data, in format, to dst and returns it,
// with one DecodeError per rejected item.
//
// A payload that cannot be decoded at all (empty, malformed JSON, wrong
// top-level type, wrong webhook version, more than Limits.MaxEvents items)
// yields a single DecodeError with Index -1 and no events. Otherwise valid
// items are never dropped because of invalid siblings. now fills missing
// times (an Alertmanager alert without startsAt starts now, as Alertmanager
// does) and decides whether an API v2 alert has resolved. Every event
// returned has passed event.Normalize, and its Time is in UTC.
func (d *Decoder) Decode(format Format, data []byte, now time.Time, dst []event.Event) ([]event.Event, []DecodeError) {
	switch format {
	case FormatAlertmanagerWebhook, FormatAlertList, FormatEvents, FormatAuto:
	default:
		return dst, payloadError(errorf("", "unknown payload format %q", format))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return dst, payloadError(errorf("", "empty payload"))
	}
	now = now.UTC()
	d.validUTF8 = utf8.Valid(data)
	v, err := d.p.ParseBytes(data)
	if err != nil {
		if (format == FormatEvents || format == FormatAuto) && looksLikeJSONLines(data) {
			return d.decodeLines(data, dst)
		}
		return dst, payloadError(syntaxError(data, err, false))
	}
	if format == FormatAuto {
		format = detect(v)
	}
	switch format {
	case FormatAlertmanagerWebhook:
		return d.decodeWebhook(v, now, dst)
	case FormatAlertList:
		return d.decodeAlertList(v, now, dst)
	default:
		return d.decodeEvents(v, dst)
	}
}

// DetectFormat returns the format that FormatAuto would decode data as: an
// object with an "alerts" array and a "version" is an Alertmanager webhook;
// an array whose first element has "startsAt", "endsAt" or "generatorURL"
// but no "time" is an API v2 alert list; anything else, including JSON lines
// and unparseable data, is canonical events. It parses data with the
// Decoder's parser; Decode with FormatAuto does not parse twice.
func (d *Decoder) DetectFormat(data []byte) Format {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return FormatEvents
	}
	return detect(v)
}

func detect(v *fastjson.Value) Format {
	switch v.Type() {
	case fastjson.TypeObject:
		if alerts := lookup(v, "alerts"); alerts != nil && alerts.Type() == fastjson.TypeArray && v.Get("version") != nil {
			return FormatAlertmanagerWebhook
		}
	case fastjson.TypeArray:
		a := v.GetArray()
		if len(a) == 0 || a[0].Type() != fastjson.TypeObject || a[0].Get("time") != nil {
			break
		}
		if a[0].Get("startsAt") != nil || a[0].Get("endsAt") != nil || a[0].Get("generatorURL") != nil {
			return FormatAlertList
		}
	}
	return FormatEvents
}

func payloadError(err error) []DecodeError {
	return []DecodeError{{Index: -1, Err: err}}
}

// syntaxError describes why data is not JSON. fastjson's own errors nest one
// clause per level and quote the tail, which is unreadable for deep input, so
// the error path asks encoding/json for a position instead; it is slow, but
// only runs for payloads that are rejected anyway. For one line of JSON
// lines, oneLine leaves the line number out of the position.
func syntaxError(data []byte, perr error, oneLine bool) error {
	if strings.Contains(perr.Error(), "too big depth") {
		return errorf("", "malformed JSON: nested more than %d levels deep", fastjson.MaxDepth)
	}
	var se *json.SyntaxError
	if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &se) {
		line, col := position(data, se)
		if oneLine {
			return errorf("", "malformed JSON at column %d: %s", col, se.Error())
		}
		return errorf("", "malformed JSON at line %d, column %d: %s", line, col, se.Error())
	}
	// encoding/json accepted what fastjson did not; keep fastjson's innermost
	// reason, which is the only informative part of its message.
	msg := perr.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return errorf("", "malformed JSON: %s", msg)
}

// position converts the offset of a json.SyntaxError into a 1-based line and
// column: that of the offending byte, or just past the end for a truncated
// input.
func position(data []byte, se *json.SyntaxError) (line, col int) {
	i := int(min(max(se.Offset, 0), int64(len(data))))
	if i > 0 && se.Error() != "unexpected end of JSON input" {
		i-- // Offset counts the offending byte.
	}
	line = 1 + bytes.Count(data[:i], []byte{'\n'})
	col = 1 + i - (bytes.LastIndexByte(data[:i], '\n') + 1)
	return line, col
}

// looksLikeJSONLines reports whether data, which is not one JSON value,
// should be read as JSON lines: its first non-blank line must hold a whole
// object. That keeps a pretty-printed object with a syntax error a syntax
// error, rather than a list of complaints about each of its lines.
func looksLikeJSONLines(data []byte) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		return line[0] == '{' && line[len(line)-1] == '}' && len(data) > 0
	}
	return false
}

// typeName names the JSON type of v for error messages.
func typeName(v *fastjson.Value) string {
	switch t := v.Type(); t {
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "boolean"
	default:
		return t.String()
	}
}

func expected(field, want string, v *fastjson.Value) error {
	return errorf(field, "expected %s, got %s", want, typeName(v))
}

// getString returns the contents of a JSON string value, checked against the
// limits and for valid UTF-8. The bytes alias the parser's buffer: copy
// before keeping them. A null value is returned as nil.
func (d *Decoder) getString(field string, v *fastjson.Value) ([]byte, error) {
	switch v.Type() {
	case fastjson.TypeString:
	case fastjson.TypeNull:
		return nil, nil
	default:
		return nil, expected(field, "a string", v)
	}
	b, _ := v.StringBytes()
	if len(b) > d.limits.MaxLabelBytes {
		return nil, errorf(field, "value is %d bytes, more than the limit of %d", len(b), d.limits.MaxLabelBytes)
	}
	if !d.utf8(b) {
		return nil, errorf(field, "value is not valid UTF-8")
	}
	return b, nil
}

// utf8 reports whether b, a string of the payload, is valid UTF-8.
func (d *Decoder) utf8(b []byte) bool {
	return d.validUTF8 || utf8.Valid(b)
}

// zeroTime is how Go, and so Alertmanager, writes the zero time.
const zeroTime = "0001-01-01T00:00:00Z"

// getTime parses an RFC 3339 time, with or without fractional seconds and
// with any offset, and returns it in UTC. Null, and Alertmanager's zero time
// 0001-01-01T00:00:00Z, mean absent and return the zero time.
func getTime(field string, v *fastjson.Value) (time.Time, error) {
	switch v.Type() {
	case fastjson.TypeString:
	case fastjson.TypeNull:
		return time.Time{}, nil
	default:
		return time.Time{}, expected(field, "an RFC 3339 time string", v)
	}
	b, _ := v.StringBytes()
	if string(b) == zeroTime {
		// Every firing alert in a webhook has this endsAt: skip the parse.
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		var detail string
		if pe, ok := errors.AsType[*time.ParseError](err); ok {
			detail = pe.Message
		}
		return time.Time{}, errorf(field, "%s is not an RFC 3339 time%s", quote(b), detail)
	}
	// With its offset, year 0000 or 9999 can be year -1 or 10000 in UTC,
	// which no RFC 3339 time names: JSON could not write it again.
	if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, errorf(field, "%s is outside the years 0000 to 9999 in UTC", quote(b))
	}
	return t, nil
}

// quote quotes b for an error message, cut short so that a hostile payload
// cannot make its error longer than itself.
func quote(b []byte) string {
	const max = 64
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "..."
}

// isSimpleName reports whether a label name can be shown as .name in a field
// path; other names are shown quoted, as ["name"].
func isSimpleName(name []byte) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i, c := range name {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func labelPath(field string, name []byte) string {
	if isSimpleName(name) {
		return field + "." + string(name)
	}
	return field + "[" + quote(name) + "]"
}

// normalize completes an event with the Decoder's defaults. Its labels
// were checked (names non-empty, valid UTF-8) as they were read, so
// event.Complete skips checking them again.
func (d *Decoder) normalize(e *event.Event) error {
	return event.Complete(e, d.defaults)
}

// grow makes room for n more events in dst at once. n has been checked
// against Limits.MaxEvents.
func (d *Decoder) grow(dst []event.Event, n int) []event.Event {
	return slices.Grow(dst, min(n, d.limits.MaxEvents))
}

// lookup returns the value of key in the object v, or nil. When a key
// repeats, the last one wins, as with encoding/json.
func lookup(v *fastjson.Value, key string) *fastjson.Value {
	o, err := v.Object()
	if err != nil {
		return nil
	}
	var found *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		if string(k) == key {
			found = v
		}
	})
	return found
}

// AppendEventJSON appends ev as canonical JSON (FormatEvents) to buf.
//
// It uses segmentio's encoder without sorting map keys: four times as fast
// as encoding/json with no allocation, and Decode takes keys in any order.
// Re-encoding was a sixth of the CPU of a storm drained through Kafka.
func AppendEventJSON(buf []byte, ev *event.Event) ([]byte, error) {
	return segjson.Append(buf, ev, 0)
}
