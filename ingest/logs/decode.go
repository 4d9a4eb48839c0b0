package logs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// ErrInvalidRecord is wrapped by every DecodeError, for errors.Is.
var ErrInvalidRecord = errors.New("invalid log record")

// Reasons of a rejected payload or record, a closed set for metrics and the
// dead-letter header.
const (
	ReasonMalformed     = "malformed"      // the payload as a whole could not be read
	ReasonInvalidRecord = "invalid_record" // a record lacks a message or has an unreadable field
)

// DecodeError is one rejected record of a payload, or the payload as a
// whole (Index -1).
//
// Record names the record: "record" for a single JSON object or text
// payload, "records[3]" in a JSON array, "line 4" in JSON lines, and
// "resourceLogs[0].scopeLogs[1].logRecords[2]" in an OpenTelemetry export.
// Field is the record field (message, timestamp, level, ...), empty for the
// record or payload as a whole. Error() reads like
//
//	record: timestamp: "abc" is not a time (field @timestamp)
type DecodeError struct {
	Index  int
	Record string
	Field  string
	Msg    string
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Record)
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidRecord) true.
func (e *DecodeError) Unwrap() error { return ErrInvalidRecord }

// Reason classifies a payload's errors for metrics and the dead-letter
// header: malformed when the payload as a whole was rejected, else
// invalid_record.
func Reason(errs []DecodeError) string {
	if len(errs) == 1 && errs[0].Index < 0 {
		return ReasonMalformed
	}
	return ReasonInvalidRecord
}

// maxErrorsDescribed bounds Describe, so a batch of 10,000 bad records does
// not make a 10 MB dead-letter header.
const maxErrorsDescribed = 20

// Describe joins errors into one line for the dead-letter header.
func Describe(errs []DecodeError) string {
	var b strings.Builder
	for i := range errs {
		if i == maxErrorsDescribed {
			fmt.Fprintf(&b, "; and %d more", len(errs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(errs[i].Error())
	}
	return b.String()
}

// path is a compiled field path.
type path struct {
	text string
	// ctx says where an OpenTelemetry record resolves it: the log record,
	// or (resource., scope.) the enclosing resource or scope, rest being
	// the path below it.
	ctx  uint8
	rest string
}

const (
	ctxRecord uint8 = iota
	ctxResource
	ctxScope
)

func compilePaths(ps []string) []path {
	out := make([]path, len(ps))
	for i, p := range ps {
		out[i] = path{text: p, rest: p}
		if r, ok := strings.CutPrefix(p, "resource."); ok {
			out[i].ctx, out[i].rest = ctxResource, r
		} else if r, ok := strings.CutPrefix(p, "scope."); ok {
			out[i].ctx, out[i].rest = ctxScope, r
		}
	}
	return out
}

// otelCtx is what an OpenTelemetry log record inherits from its batch.
type otelCtx struct {
	resource, scope *fastjson.Value
}

// Decoder decodes Kafka message payloads into records.
//
// A Decoder reuses its JSON parser and scratch buffers between calls, so it
// is not safe for concurrent use: one per consumer goroutine. Records it
// returns own their strings (see Record).
type Decoder struct {
	cfg     Config
	p       fastjson.Parser
	lp      fastjson.Parser // for JSON lines: p holds the failed whole-payload parse
	message []path
	time    []path
	level   []path
	host    []path
	service []path
	pod     []path
	ns      []path
	cont    []path
	extra   []path
	// messageFields names the message paths in errors.
	messageFields string
	metrics       *Metrics

	// Per-record scratch: the record's strings are gathered here and then
	// copied into one allocation.
	buf    []byte
	spans  [8]span
	num    []byte
	extras []extraSpan
	packed string // the last record's strings, for Extra
}

type extraSpan struct {
	path int // index into extra
	at   span
}

type span struct{ off, n int }

// Record string slots in Decoder.spans.
const (
	sMessage = iota
	sHost
	sService
	sPod
	sNamespace
	sContainer
	sSource
	nSlots
)

// NewDecoder returns a decoder for cfg, which must have passed SetDefaults
// and Validate. m may be nil; it counts rejected records.
func NewDecoder(cfg Config, m *Metrics) *Decoder {
	d := &Decoder{
		cfg:     cfg,
		message: compilePaths(cfg.Fields.Message),
		time:    compilePaths(cfg.Fields.Timestamp),
		level:   compilePaths(cfg.Fields.Level),
		host:    compilePaths(cfg.Fields.Host),
		service: compilePaths(cfg.Fields.Service),
		pod:     compilePaths(cfg.Fields.Pod),
		ns:      compilePaths(cfg.Fields.Namespace),
		cont:    compilePaths(cfg.Fields.Container),
		extra:   compilePaths(cfg.Fields.Extra),
		metrics: m,
	}
	names := cfg.Fields.Message
	if len(names) > 6 {
		names = append(names[:6:6], "...")
	}
	d.messageFields = strings.Join(names, ", ")
	return d
}

// Decode appends the records of one payload to dst and returns it, with one
// DecodeError per rejected record. received is when the payload arrived
// (the Kafka message time): the time of records that carry none, and the
// year of syslog time stamps.
//
// A payload that cannot be read at all (empty, malformed JSON, too many
// records) yields a single DecodeError with Index -1 and no records.
// Otherwise good records are never dropped because of bad siblings, in an
// OpenTelemetry batch as in an array or JSON lines.
func (d *Decoder) Decode(data []byte, received time.Time, dst []Record) ([]Record, []DecodeError) {
	start := len(dst)
	dst, errs := d.decode(data, received, dst)
	if d.metrics != nil {
		if len(errs) > 0 {
			d.metrics.decodeErrors[reasonIndex(Reason(errs))].Add(float64(len(errs)))
		}
		d.metrics.decoded.Add(float64(len(dst) - start))
	}
	return dst, errs
}

func (d *Decoder) decode(data []byte, received time.Time, dst []Record) ([]Record, []DecodeError) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return dst, []DecodeError{{Index: -1, Record: "payload", Msg: "empty"}}
	}
	format := d.cfg.Format
	if format == FormatAuto {
		format = FormatText
		if trimmed[0] == '{' || trimmed[0] == '[' {
			format = FormatJSON
		}
	}
	if format == FormatText {
		return d.decodeText(data, received, dst)
	}
	v, err := d.p.ParseBytes(trimmed)
	if err != nil {
		// Text lines often start with a bracket ([2026-11-02 ...],
		// [error]): in auto mode, what is not JSON after all is text.
		if d.cfg.Format == FormatAuto && trimmed[0] == '[' {
			return d.decodeText(data, received, dst)
		}
		if lines := countLines(trimmed); lines > 1 {
			return d.decodeLines(trimmed, lines, received, dst)
		}
		return dst, []DecodeError{{Index: -1, Record: "payload", Msg: "malformed JSON: " + err.Error()}}
	}
	var errs []DecodeError
	switch v.Type() {
	case fastjson.TypeObject:
		if rl := v.Get("resourceLogs"); rl != nil {
			return d.decodeOTel(v, "", received, dst, nil)
		}
		dst = append(dst, Record{})
		if e := d.decodeRecord(v, nil, received, &dst[len(dst)-1]); e != nil {
			dst = dst[:len(dst)-1]
			e.Index, e.Record = 0, "record"
			errs = append(errs, *e)
		}
	case fastjson.TypeArray:
		a, _ := v.Array()
		if len(a) > d.cfg.MaxRecords {
			return dst, []DecodeError{{Index: -1, Record: "payload", Msg: fmt.Sprintf("%d records, more than the limit of %d (logs.max_records)", len(a), d.cfg.MaxRecords)}}
		}
		for i, rv := range a {
			dst = append(dst, Record{})
			if e := d.decodeRecord(rv, nil, received, &dst[len(dst)-1]); e != nil {
				dst = dst[:len(dst)-1]
				e.Index, e.Record = i, "records["+strconv.Itoa(i)+"]"
				errs = append(errs, *e)
			}
		}
	default:
		return dst, []DecodeError{{Index: -1, Record: "payload", Msg: "expected a log record object, an array of them, JSON lines or an OpenTelemetry logs export, got " + v.Type().String()}}
	}
	return dst, errs
}

func countLines(data []byte) int {
	n := 0
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// decodeLines decodes JSON lines: every non-blank line is one record object
// or one OpenTelemetry export.
func (d *Decoder) decodeLines(data []byte, lines int, received time.Time, dst []Record) ([]Record, []DecodeError) {
	if lines > d.cfg.MaxRecords {
		return dst, []DecodeError{{Index: -1, Record: "payload", Msg: fmt.Sprintf("%d lines, more than the limit of %d records (logs.max_records)", lines, d.cfg.MaxRecords)}}
	}
	var errs []DecodeError
	n := 0
	for lineNo, rest := 1, data; len(rest) > 0; lineNo++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		name := "line " + strconv.Itoa(lineNo)
		v, err := d.lp.ParseBytes(line)
		if err != nil {
			errs = append(errs, DecodeError{Index: n, Record: name, Msg: "malformed JSON: " + err.Error()})
			n++
			continue
		}
		if v.Type() == fastjson.TypeObject && v.Get("resourceLogs") != nil {
			before := len(errs)
			dst, errs = d.decodeOTel(v, name+": ", received, dst, errs)
			for i := before; i < len(errs); i++ {
				errs[i].Index += n
			}
			n++
			continue
		}
		dst = append(dst, Record{})
		if e := d.decodeRecord(v, nil, received, &dst[len(dst)-1]); e != nil {
			dst = dst[:len(dst)-1]
			e.Index, e.Record = n, name
			errs = append(errs, *e)
		}
		n++
	}
	return dst, errs
}

// decodeOTel decodes an OpenTelemetry logs export (OTLP/JSON, as the
// collector's kafka exporter writes with encoding otlp_json and its file
// exporter writes per line): resourceLogs[].scopeLogs[].logRecords[]. Each
// log record is decoded with its resource and scope, so that paths such as
// resource.attributes.service.name reach them. Error indexes count log
// records across the batch.
func (d *Decoder) decodeOTel(v *fastjson.Value, prefix string, received time.Time, dst []Record, errs []DecodeError) ([]Record, []DecodeError) {
	rls := v.Get("resourceLogs")
	if rls.Type() != fastjson.TypeArray {
		return dst, append(errs, DecodeError{Index: -1, Record: prefix + "resourceLogs", Msg: "expected an array, got " + rls.Type().String()})
	}
	// Count first, so that an oversized batch is refused whole.
	total := 0
	for _, rl := range rls.GetArray() {
		for _, sl := range scopeLogs(rl) {
			total += len(sl.GetArray("logRecords"))
		}
	}
	if total > d.cfg.MaxRecords {
		return dst, append(errs, DecodeError{Index: -1, Record: prefix + "resourceLogs", Msg: fmt.Sprintf("%d log records, more than the limit of %d (logs.max_records)", total, d.cfg.MaxRecords)})
	}
	n := 0
	for i, rl := range rls.GetArray() {
		ctx := otelCtx{resource: rl.Get("resource")}
		for j, sl := range scopeLogs(rl) {
			ctx.scope = sl.Get("scope")
			if ctx.scope == nil {
				ctx.scope = sl.Get("instrumentationLibrary")
			}
			for k, lr := range sl.GetArray("logRecords") {
				dst = append(dst, Record{})
				if e := d.decodeRecord(lr, &ctx, received, &dst[len(dst)-1]); e != nil {
					dst = dst[:len(dst)-1]
					e.Index = n
					e.Record = fmt.Sprintf("%sresourceLogs[%d].scopeLogs[%d].logRecords[%d]", prefix, i, j, k)
					errs = append(errs, *e)
				}
				n++
			}
		}
	}
	return dst, errs
}

// scopeLogs returns a resourceLogs element's scope logs, under their current
// name or the name before OTLP 0.15 (instrumentationLibraryLogs).
func scopeLogs(rl *fastjson.Value) []*fastjson.Value {
	if a := rl.GetArray("scopeLogs"); a != nil {
		return a
	}
	return rl.GetArray("instrumentationLibraryLogs")
}

// lookup resolves a dotted path below v. At each level it tries the longest
// literal key first ("log.level" as one key), then shorter prefixes as
// nested objects, so both {"log.level": "x"} and {"log": {"level": "x"}}
// are found. An array is read as an OpenTelemetry attribute list
// ([{key, value}]), and a kvlistValue is looked into.
func lookup(v *fastjson.Value, s string) *fastjson.Value {
	for depth := 0; v != nil && depth < 12; depth++ {
		switch v.Type() {
		case fastjson.TypeObject:
			o, _ := v.Object()
			for end := len(s); end > 0; end = strings.LastIndexByte(s[:end], '.') {
				c := o.Get(s[:end])
				if c == nil {
					continue
				}
				if end == len(s) {
					return c
				}
				if r := lookup(c, s[end+1:]); r != nil {
					return r
				}
			}
			// An OpenTelemetry AnyValue holding a key/value list.
			if kv := o.Get("kvlistValue"); kv != nil {
				v = kv.Get("values")
				continue
			}
			return nil
		case fastjson.TypeArray:
			a, _ := v.Array()
			for end := len(s); end > 0; end = strings.LastIndexByte(s[:end], '.') {
				key := s[:end]
				for _, e := range a {
					if k := e.Get("key"); k == nil || k.Type() != fastjson.TypeString || string(k.GetStringBytes()) != key {
						continue
					}
					val := e.Get("value")
					if end == len(s) {
						return val
					}
					if r := lookup(val, s[end+1:]); r != nil {
						return r
					}
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// resolve finds the first of paths that a record has (not null).
func resolve(v *fastjson.Value, ctx *otelCtx, paths []path) (*fastjson.Value, *path) {
	for i := range paths {
		p := &paths[i]
		root := v
		if ctx != nil {
			switch p.ctx {
			case ctxResource:
				root = ctx.resource
			case ctxScope:
				root = ctx.scope
			}
		}
		var r *fastjson.Value
		if root == v {
			r = lookup(v, p.text)
		} else {
			r = lookup(root, p.rest)
		}
		r = unwrapAny(r)
		if r != nil && r.Type() != fastjson.TypeNull {
			return r, p
		}
	}
	return nil, nil
}

// unwrapAny unwraps an OpenTelemetry AnyValue ({"stringValue": "x"}).
func unwrapAny(v *fastjson.Value) *fastjson.Value {
	if v == nil || v.Type() != fastjson.TypeObject {
		return v
	}
	o, _ := v.Object()
	if o.Len() != 1 {
		return v
	}
	for _, k := range [...]string{"stringValue", "intValue", "doubleValue", "boolValue"} {
		if c := o.Get(k); c != nil {
			return c
		}
	}
	return v
}

// scalar returns the text of a string, number or boolean; ok is false for
// objects, arrays and null, which string fields skip.
func (d *Decoder) scalar(v *fastjson.Value) ([]byte, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return b, true
	case fastjson.TypeNumber:
		d.num = v.MarshalTo(d.num[:0])
		return d.num, true
	case fastjson.TypeTrue:
		return []byte("true"), true
	case fastjson.TypeFalse:
		return []byte("false"), true
	}
	return nil, false
}

// str puts the first scalar of paths into slot.
func (d *Decoder) str(v *fastjson.Value, ctx *otelCtx, paths []path, slot int) {
	for i := range paths {
		r, _ := resolve(v, ctx, paths[i:i+1])
		if r == nil {
			continue
		}
		if b, ok := d.scalar(r); ok && len(b) > 0 {
			d.put(slot, b)
			return
		}
	}
}

func (d *Decoder) put(slot int, b []byte) {
	d.spans[slot] = span{len(d.buf), len(b)}
	d.buf = append(d.buf, b...)
}

// decodeRecord decodes one JSON record object into r.
func (d *Decoder) decodeRecord(v *fastjson.Value, ctx *otelCtx, received time.Time, r *Record) *DecodeError {
	if v.Type() != fastjson.TypeObject {
		return &DecodeError{Msg: "expected a log record object, got " + v.Type().String()}
	}
	d.buf = d.buf[:0]
	d.spans = [8]span{}

	// Message.
	found := false
	for i := range d.message {
		m, _ := resolve(v, ctx, d.message[i:i+1])
		if m == nil {
			continue
		}
		if b, ok := d.scalar(m); ok {
			d.put(sMessage, truncate(b, d.cfg.MaxMessageBytes))
			found = true
			break
		}
	}
	if !found {
		return &DecodeError{Field: "message", Msg: "missing: none of " + d.messageFields + " is a string (logs.fields.message)"}
	}
	if d.spans[sMessage].n == 0 {
		return &DecodeError{Field: "message", Msg: "empty"}
	}

	// Time.
	r.Time = received
	for i := range d.time {
		tv, p := resolve(v, ctx, d.time[i:i+1])
		if tv == nil {
			continue
		}
		t, zero, err := d.parseTimeValue(tv, received)
		if err != nil {
			return &DecodeError{Field: "timestamp", Msg: err.Error() + " (field " + p.text + ")"}
		}
		if !zero {
			r.Time = t
			break
		}
	}

	// Level.
	r.Level = LevelNone
	for i := range d.level {
		lv, p := resolve(v, ctx, d.level[i:i+1])
		if lv == nil {
			continue
		}
		l, ok := d.levelValue(lv, p)
		if !ok {
			if d.cfg.UnknownLevel == UnknownLevelReject {
				b, _ := d.scalar(lv)
				return &DecodeError{Field: "level", Msg: fmt.Sprintf("%s is not a level (field %s; logs.unknown_level: reject)", quoteValue(lv, b), p.text)}
			}
			continue
		}
		r.Level = l
		break
	}

	d.str(v, ctx, d.host, sHost)
	d.str(v, ctx, d.service, sService)
	d.str(v, ctx, d.pod, sPod)
	d.str(v, ctx, d.ns, sNamespace)
	d.str(v, ctx, d.cont, sContainer)
	source := d.cfg.Source
	if source == "" {
		source = detectSource(v, ctx)
	}
	d.put(sSource, []byte(source))

	// Extra attributes.
	d.extras = d.extras[:0]
	for i := range d.extra {
		ev, _ := resolve(v, ctx, d.extra[i:i+1])
		if ev == nil {
			continue
		}
		b, ok := d.scalar(ev)
		if !ok {
			// Keep structured attributes as JSON text.
			d.num = ev.MarshalTo(d.num[:0])
			b = d.num
		}
		b = truncate(b, 1024)
		off := len(d.buf)
		d.buf = append(d.buf, b...)
		d.extras = append(d.extras, extraSpan{i, span{off, len(b)}})
	}

	d.finish(r)
	if r.Level == LevelNone {
		if l, ok := guessLevel(r.Message); ok {
			r.Level = l
		} else {
			r.Level = d.cfg.Text.defaultLevel
		}
	}
	if len(d.extras) > 0 {
		r.Extra = make(map[string]string, len(d.extras))
		for _, e := range d.extras {
			r.Extra[d.extra[e.path].text] = d.strAt(e.at)
		}
	}
	return nil
}

// levelValue reads a level field: a word (ParseLevel), or a number: an
// OpenTelemetry severity number (1-24) at a field named severityNumber, a
// syslog severity (0-7) such as journald's PRIORITY, or a pino/bunyan level
// (10-60).
func (d *Decoder) levelValue(v *fastjson.Value, p *path) (Level, bool) {
	b, ok := d.scalar(v)
	if !ok {
		return LevelNone, false
	}
	if !isDigits(unsafe.String(unsafe.SliceData(b), len(b))) || len(b) > 3 {
		return ParseLevel(unsafe.String(unsafe.SliceData(b), len(b)))
	}
	n, _ := strconv.Atoi(string(b))
	if strings.HasSuffix(p.text, "severityNumber") {
		switch {
		case n >= 1 && n <= 4:
			return LevelTrace, true
		case n >= 5 && n <= 8:
			return LevelDebug, true
		case n >= 9 && n <= 12:
			return LevelInfo, true
		case n >= 13 && n <= 16:
			return LevelWarn, true
		case n >= 17 && n <= 20:
			return LevelError, true
		case n >= 21 && n <= 24:
			return LevelFatal, true
		}
		return LevelNone, false
	}
	switch {
	case n >= 0 && n <= 7:
		return [...]Level{LevelCritical, LevelCritical, LevelCritical, LevelError, LevelWarn, LevelInfo, LevelInfo, LevelDebug}[n], true
	case n >= 10 && n <= 60:
		return [...]Level{LevelTrace, LevelDebug, LevelInfo, LevelWarn, LevelError, LevelFatal}[n/10-1], true
	}
	return LevelNone, false
}

// finish copies the gathered strings into one allocation and points the
// record's strings into it.
func (d *Decoder) finish(r *Record) {
	var s string
	if len(d.buf) > 0 {
		s = string(d.buf)
	}
	at := func(sp span) string { return s[sp.off : sp.off+sp.n] }
	r.Message = at(d.spans[sMessage])
	r.Host = at(d.spans[sHost])
	r.Service = at(d.spans[sService])
	r.Pod = at(d.spans[sPod])
	r.Namespace = at(d.spans[sNamespace])
	r.Container = at(d.spans[sContainer])
	r.Source = at(d.spans[sSource])
	d.packed = s
}

func (d *Decoder) strAt(sp span) string { return d.packed[sp.off : sp.off+sp.n] }

// detectSource names the shipper of a JSON record from the fields it
// always writes.
func detectSource(v *fastjson.Value, ctx *otelCtx) string {
	if ctx != nil {
		return "otel"
	}
	if st := v.Get("source_type"); st != nil && st.Type() == fastjson.TypeString {
		return "vector"
	}
	for _, p := range [...][2]string{{"agent", "type"}, {"@metadata", "beat"}} {
		if a := v.Get(p[0], p[1]); a != nil && a.Type() == fastjson.TypeString {
			if t := a.GetStringBytes(); len(t) > 0 && len(t) <= 32 && validSource(string(t)) {
				return beatName(t)
			}
		}
	}
	if k := v.Get("kubernetes"); k != nil && k.Get("pod_name") != nil && k.Get("namespace_name") != nil {
		return "fluentbit"
	}
	if dt := v.Get("date"); dt != nil && dt.Type() == fastjson.TypeNumber {
		return "fluentbit"
	}
	return "json"
}

// beatName returns the name of an Elastic beat, without allocating for
// the common ones.
func beatName(t []byte) string {
	for _, n := range [...]string{"filebeat", "winlogbeat", "journalbeat", "elastic-agent"} {
		if string(t) == n {
			return n
		}
	}
	return string(t)
}

// truncate cuts b to at most n bytes, at a UTF-8 boundary.
func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(b[i]) {
		i--
	}
	return b[:i]
}

func quoteValue(v *fastjson.Value, b []byte) string {
	if v.Type() == fastjson.TypeString {
		return strconv.Quote(string(truncate(b, 64)))
	}
	return string(truncate(b, 64))
}
