package ingest

import (
	"bytes"
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/correlatord/correlatord/event"
)

// decodeEvents decodes canonical events: one object, or an array of them.
// Errors for a single object have Index 0 and unprefixed fields; errors for an
// array element have its 0-based Index and fields prefixed events[i].
func (d *Decoder) decodeEvents(v *fastjson.Value, dst []event.Event) ([]event.Event, []DecodeError) {
	switch v.Type() {
	case fastjson.TypeObject:
		dst = append(dst, event.Event{})
		if err := d.decodeEvent(v, &dst[len(dst)-1]); err != nil {
			dst[len(dst)-1] = event.Event{}
			return dst[:len(dst)-1], []DecodeError{{Index: 0, Err: within("", err)}}
		}
		return dst, nil
	case fastjson.TypeArray:
	default:
		return dst, payloadError(errorf("", "expected an event object, an array of events or JSON lines, got %s", typeName(v)))
	}
	a, _ := v.Array()
	if len(a) > d.limits.MaxEvents {
		return dst, payloadError(errorf("", "%d events, more than the limit of %d", len(a), d.limits.MaxEvents))
	}
	var errs []DecodeError
	dst = d.grow(dst, len(a))
	for i, v := range a {
		dst = append(dst, event.Event{})
		if err := d.decodeEvent(v, &dst[len(dst)-1]); err != nil {
			dst[len(dst)-1] = event.Event{}
			dst = dst[:len(dst)-1]
			errs = append(errs, DecodeError{Index: i, Err: within("events["+strconv.Itoa(i)+"]", err)})
		}
	}
	return dst, errs
}

// decodeLines decodes canonical events as JSON lines: every non-blank line
// holds one event object. Blank lines, a final newline and CRLF line ends are
// fine. Errors have the 1-based line number as Index and fields prefixed
// "line N: ".
func (d *Decoder) decodeLines(data []byte, dst []event.Event) ([]event.Event, []DecodeError) {
	// Count first, so that an oversized payload is refused whole, before any
	// work is done for it.
	n := 0
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	if n > d.limits.MaxEvents {
		return dst, payloadError(errorf("", "%d lines, more than the limit of %d events", n, d.limits.MaxEvents))
	}

	var errs []DecodeError
	dst = d.grow(dst, n)
	for lineNo, rest := 1, data; len(rest) > 0; lineNo++ {
		var line []byte
		line, rest = nextLine(rest)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		v, err := d.p.ParseBytes(line)
		if err != nil {
			errs = append(errs, DecodeError{Index: lineNo, Err: within(linePrefix(lineNo), syntaxError(line, err, true))})
			continue
		}
		dst = append(dst, event.Event{})
		if err := d.decodeEvent(v, &dst[len(dst)-1]); err != nil {
			dst[len(dst)-1] = event.Event{}
			dst = dst[:len(dst)-1]
			errs = append(errs, DecodeError{Index: lineNo, Err: within(linePrefix(lineNo), err)})
		}
	}
	return dst, errs
}

func linePrefix(lineNo int) string { return "line " + strconv.Itoa(lineNo) }

// nextLine splits off the first line of data, without its '\n'.
func nextLine(data []byte) (line, rest []byte) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i], data[i+1:]
	}
	return data, nil
}

// decodeEvent decodes one canonical event object into e. Its fields are
// exactly the JSON names of event.Event: anything else is an error, so that a
// typo such as "sevrity" is reported instead of silently dropping the field.
func (d *Decoder) decodeEvent(v *fastjson.Value, e *event.Event) error {
	if v.Type() != fastjson.TypeObject {
		return expected("", "an object", v)
	}
	o, _ := v.Object()
	t := &d.strs
	t.reset()
	var (
		labels, annotations *fastjson.Value
		r                   eventRefs
		err                 error
	)
	str := func(field string, v *fastjson.Value) strRef {
		var b []byte
		b, err = d.getString(field, v)
		return t.add(b)
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		switch string(k) {
		case "id":
			r.id = str("id", v)
		case "time":
			e.Time, err = getTime("time", v)
		case "source":
			r.source = str("source", v)
		case "kind":
			r.kind = str("kind", v)
		case "status":
			r.status = str("status", v)
		case "severity":
			r.severity = str("severity", v)
		case "ci":
			r.ci = str("ci", v)
		case "labels":
			labels = v
		case "annotations":
			annotations = v
		case "summary":
			r.summary = str("summary", v)
		case "fingerprint":
			r.fingerprint = str("fingerprint", v)
		default:
			err = errorf(fieldName(k), "unknown field; the fields of an event are id, time, source, kind, status, severity, ci, labels, annotations, summary, fingerprint")
		}
	})
	if err != nil {
		return err
	}
	if err := d.collectLabels("labels", labels, false); err != nil {
		return err
	}
	nLabels := len(t.labels)
	if err := d.collectLabels("annotations", annotations, false); err != nil {
		return err
	}
	t.fillEvent(e, &r, nLabels)
	return d.normalize(e)
}

// fieldName shows an object key as a field name: as it is when it is a plain
// name, quoted otherwise.
func fieldName(k []byte) string {
	if isSimpleName(k) {
		return string(k)
	}
	return quote(k)
}
