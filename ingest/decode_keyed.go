package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/correlatord/correlatord/event"
)

// The keyed topic carries each event between the two Kafka stages of one
// deployment, so its encoding is ours to choose: a protobuf message, not
// JSON. Re-encoding and decoding JSON were a fifth of the CPU of a storm
// drained through Kafka; the binary form is copied in and out with no
// parsing, escaping or time formatting. It is written with protowire, so any
// protobuf library reads it with this schema (field numbers are fixed
// forever; new fields get new numbers and old readers skip them):
//
//	message Event {
//	  string id = 1;
//	  int64 time_unix_seconds = 2;  // absent: no event time
//	  int32 time_nanos = 3;         // 0 to 999,999,999
//	  string source = 4;
//	  string kind = 5;
//	  string status = 6;
//	  string severity = 7;
//	  string ci = 8;
//	  map<string, string> labels = 9;
//	  map<string, string> annotations = 10;
//	  string summary = 11;
//	  string fingerprint = 12;
//	}
//
// A message value is keyedBatchMagic followed by an EventBatch, the events
// of one partition that one write of the first stage carried:
//
//	message EventBatch {
//	  repeated Event events = 1;
//	}
//
// The producer, the broker and the consumer each do some work per message
// whatever its size (kafka-go's writer looks up the topic's metadata, its
// reader allocates the key and value, the broker validates each record):
// one message per partition and write pays it once for a hundred events or
// more, not once per event. keyedMagic followed by a single Event is the
// encoding of earlier builds, still read. No JSON document starts with a
// zero byte, so the second stage also reads canonical JSON (earlier builds,
// or anyone producing to the keyed topic by hand) from the same topic.

// keyedMagic starts a single protobuf event on the keyed topic:
// a zero byte, then the version of the encoding.
var keyedMagic = []byte{0, 1}

// keyedBatchMagic starts an EventBatch.
var keyedBatchMagic = []byte{0, 2}

// fieldBatchEvents is EventBatch.events.
const fieldBatchEvents protowire.Number = 1

const (
	fieldID protowire.Number = iota + 1
	fieldTimeSeconds
	fieldTimeNanos
	fieldSource
	fieldKind
	fieldStatus
	fieldSeverity
	fieldCI
	fieldLabels
	fieldAnnotations
	fieldSummary
	fieldFingerprint
)

// Fields of a map entry.
const (
	fieldKey   protowire.Number = 1
	fieldValue protowire.Number = 2
)

// AppendKeyedBatchHeader starts a message value of the keyed topic at the
// end of buf: add its events with AppendKeyedBatchEvent.
func AppendKeyedBatchHeader(buf []byte) []byte { return append(buf, keyedBatchMagic...) }

// AppendKeyedBatchEvent appends ev to the batch message at the end of buf
// (AppendKeyedBatchHeader).
func AppendKeyedBatchEvent(buf []byte, ev *event.Event) []byte {
	start := len(buf)
	buf = appendKeyedEventFields(buf, ev)
	// The length goes before the event, known only once it is written:
	// moving a few hundred bytes costs less than encoding twice to size it.
	var prefix [1 + binary.MaxVarintLen64]byte
	p := protowire.AppendTag(prefix[:0], fieldBatchEvents, protowire.BytesType)
	p = protowire.AppendVarint(p, uint64(len(buf)-start))
	return slices.Insert(buf, start, p...)
}

// AppendKeyedEvent appends ev alone in the keyed topic's single-event
// encoding, that of earlier builds, to buf.
func AppendKeyedEvent(buf []byte, ev *event.Event) []byte {
	return appendKeyedEventFields(append(buf, keyedMagic...), ev)
}

// appendKeyedEventFields appends the Event message of ev to buf.
func appendKeyedEventFields(buf []byte, ev *event.Event) []byte {
	buf = appendString(buf, fieldID, ev.ID)
	if !ev.Time.IsZero() {
		buf = protowire.AppendTag(buf, fieldTimeSeconds, protowire.VarintType)
		buf = protowire.AppendVarint(buf, uint64(ev.Time.Unix()))
		if ns := ev.Time.Nanosecond(); ns != 0 {
			buf = protowire.AppendTag(buf, fieldTimeNanos, protowire.VarintType)
			buf = protowire.AppendVarint(buf, uint64(ns))
		}
	}
	buf = appendString(buf, fieldSource, ev.Source)
	buf = appendString(buf, fieldKind, string(ev.Kind))
	buf = appendString(buf, fieldStatus, string(ev.Status))
	buf = appendString(buf, fieldSeverity, string(ev.Severity))
	buf = appendString(buf, fieldCI, ev.CI)
	buf = appendLabels(buf, fieldLabels, ev.Labels)
	buf = appendLabels(buf, fieldAnnotations, ev.Annotations)
	buf = appendString(buf, fieldSummary, ev.Summary)
	return appendString(buf, fieldFingerprint, ev.Fingerprint)
}

// appendString appends a string field, leaving it out when empty (the
// protobuf default).
func appendString(buf []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return buf
	}
	buf = protowire.AppendTag(buf, n, protowire.BytesType)
	return protowire.AppendString(buf, s)
}

func appendLabels(buf []byte, n protowire.Number, ls event.Labels) []byte {
	for _, l := range ls {
		k, v := l.Name, l.Value
		size := protowire.SizeTag(fieldKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(fieldValue) + protowire.SizeBytes(len(v))
		buf = protowire.AppendTag(buf, n, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(size))
		buf = protowire.AppendTag(buf, fieldKey, protowire.BytesType)
		buf = protowire.AppendString(buf, k)
		buf = protowire.AppendTag(buf, fieldValue, protowire.BytesType)
		buf = protowire.AppendString(buf, v)
	}
	return buf
}

// DecodeKeyed decodes one message of the keyed topic: a protobuf batch
// (AppendKeyedBatchEvent) or single event (AppendKeyedEvent), or canonical
// event JSON as Decode with FormatEvents reads it. An event is checked as
// strictly as a JSON one: the same limits, valid UTF-8, and Normalize. A
// bad event of a batch is reported with its index, and the others are
// decoded.
func (d *Decoder) DecodeKeyed(data []byte, now time.Time, dst []event.Event) ([]event.Event, []DecodeError) {
	switch {
	case bytes.HasPrefix(data, keyedBatchMagic):
		return d.decodeKeyedBatch(data[len(keyedBatchMagic):], dst)
	case !bytes.HasPrefix(data, keyedMagic):
		return d.Decode(FormatEvents, data, now, dst)
	}
	// Unlike JSON, the whole message being UTF-8 says nothing of its
	// strings: a length byte can complete a string's last character.
	d.validUTF8 = false
	dst = append(dst, event.Event{})
	if err := d.decodeKeyedEvent(data[len(keyedMagic):], &dst[len(dst)-1]); err != nil {
		dst[len(dst)-1] = event.Event{}
		return dst[:len(dst)-1], []DecodeError{{Index: 0, Err: err}}
	}
	return dst, nil
}

// decodeKeyedBatch decodes the EventBatch data, appending its good events
// to dst. Framing it cannot read ends the batch, with an error at the index
// of the first event lost.
func (d *Decoder) decodeKeyedBatch(data []byte, dst []event.Event) ([]event.Event, []DecodeError) {
	d.validUTF8 = false
	var errs []DecodeError
	i := 0
	for rest := data; len(rest) > 0; {
		n, typ, tagLen := protowire.ConsumeTag(rest)
		if tagLen < 0 {
			return dst, append(errs, DecodeError{Index: i, Err: keyedError(batchPath(i), protowire.ParseError(tagLen))})
		}
		rest = rest[tagLen:]
		if n != fieldBatchEvents {
			size := protowire.ConsumeFieldValue(n, typ, rest) // a field of a newer build
			if size < 0 {
				return dst, append(errs, DecodeError{Index: i, Err: keyedError(batchPath(i), protowire.ParseError(size))})
			}
			rest = rest[size:]
			continue
		}
		if typ != protowire.BytesType {
			return dst, append(errs, DecodeError{Index: i, Err: errorf(batchPath(i), "wire type %d, want %d", typ, protowire.BytesType)})
		}
		b, size := protowire.ConsumeBytes(rest)
		if size < 0 {
			return dst, append(errs, DecodeError{Index: i, Err: keyedError(batchPath(i), protowire.ParseError(size))})
		}
		rest = rest[size:]
		if i == d.limits.MaxEvents {
			return dst, append(errs, DecodeError{Index: i, Err: errorf("events", "more than the limit of %d", d.limits.MaxEvents)})
		}
		dst = append(dst, event.Event{})
		if err := d.decodeKeyedEvent(b, &dst[len(dst)-1]); err != nil {
			dst[len(dst)-1] = event.Event{}
			dst = dst[:len(dst)-1]
			errs = append(errs, DecodeError{Index: i, Err: within(batchPath(i), err)})
		}
		i++
	}
	return dst, errs
}

func batchPath(i int) string { return "events[" + strconv.Itoa(i) + "]" }

func (d *Decoder) decodeKeyedEvent(data []byte, e *event.Event) error {
	t := &d.strs
	t.reset()
	var (
		r       eventRefs
		seconds int64
		nanos   uint64
		hasTime bool
	)
	// Labels and annotations may interleave on the wire, and each must be
	// one run of d.strs.labels: annotations wait in d.annotations (they
	// alias data) until the labels are in.
	d.annotations = d.annotations[:0]
	for rest := data; len(rest) > 0; {
		n, typ, tagLen := protowire.ConsumeTag(rest)
		if tagLen < 0 {
			return keyedError("", protowire.ParseError(tagLen))
		}
		rest = rest[tagLen:]
		field, want := keyedField(n)
		if want >= 0 && typ != want {
			return errorf(field, "wire type %d, want %d", typ, want)
		}
		var (
			b       []byte
			v       uint64
			valSize int
		)
		switch {
		case want == protowire.BytesType:
			b, valSize = protowire.ConsumeBytes(rest)
		case want == protowire.VarintType:
			v, valSize = protowire.ConsumeVarint(rest)
		default: // a field of a newer build: skip it
			valSize = protowire.ConsumeFieldValue(n, typ, rest)
		}
		if valSize < 0 {
			return keyedError(field, protowire.ParseError(valSize))
		}
		rest = rest[valSize:]
		var err error
		switch n {
		case fieldID:
			r.id, err = d.addKeyedString(field, b)
		case fieldTimeSeconds:
			seconds, hasTime = int64(v), true
		case fieldTimeNanos:
			nanos = v
		case fieldSource:
			r.source, err = d.addKeyedString(field, b)
		case fieldKind:
			r.kind, err = d.addKeyedString(field, b)
		case fieldStatus:
			r.status, err = d.addKeyedString(field, b)
		case fieldSeverity:
			r.severity, err = d.addKeyedString(field, b)
		case fieldCI:
			r.ci, err = d.addKeyedString(field, b)
		case fieldLabels:
			err = d.addKeyedEntry(field, b)
		case fieldAnnotations:
			d.annotations = append(d.annotations, b)
		case fieldSummary:
			r.summary, err = d.addKeyedString(field, b)
		case fieldFingerprint:
			r.fingerprint, err = d.addKeyedString(field, b)
		}
		if err != nil {
			return err
		}
	}
	nLabels := len(t.labels)
	for _, b := range d.annotations {
		if err := d.addKeyedEntry("annotations", b); err != nil {
			return err
		}
	}
	clear(d.annotations) // they alias the message
	if nLabels > d.limits.MaxLabels {
		return errorf("labels", "%d labels, more than the limit of %d", nLabels, d.limits.MaxLabels)
	}
	if n := len(t.labels) - nLabels; n > d.limits.MaxLabels {
		return errorf("annotations", "%d annotations, more than the limit of %d", n, d.limits.MaxLabels)
	}
	if nanos >= uint64(time.Second) {
		return errorf("time", "%d nanoseconds, more than a second", nanos)
	}
	if hasTime {
		if seconds < minEventSeconds || seconds >= maxEventSeconds {
			return errorf("time", "%d seconds since 1970 is outside the years 0000 to 9999", seconds)
		}
		e.Time = time.Unix(seconds, int64(nanos)).UTC()
	}
	t.fillEvent(e, &r, nLabels)
	return d.normalize(e)
}

// The years 0000 to 9999 in UTC, as seconds since 1970 (the end
// excluded): the times the JSON decoder takes (getTime), the binary one
// takes too (FuzzDecode* holds them to it), and nothing beyond, which JSON
// could not write again.
const (
	minEventSeconds = -62167219200 // 0000-01-01T00:00:00Z
	maxEventSeconds = 253402300800 // 10000-01-01T00:00:00Z
)

// keyedField returns the name of a field number and the wire type it must
// have, or -1 for a field this build does not know.
func keyedField(n protowire.Number) (string, protowire.Type) {
	switch n {
	case fieldID:
		return "id", protowire.BytesType
	case fieldTimeSeconds:
		return "time", protowire.VarintType
	case fieldTimeNanos:
		return "time", protowire.VarintType
	case fieldSource:
		return "source", protowire.BytesType
	case fieldKind:
		return "kind", protowire.BytesType
	case fieldStatus:
		return "status", protowire.BytesType
	case fieldSeverity:
		return "severity", protowire.BytesType
	case fieldCI:
		return "ci", protowire.BytesType
	case fieldLabels:
		return "labels", protowire.BytesType
	case fieldAnnotations:
		return "annotations", protowire.BytesType
	case fieldSummary:
		return "summary", protowire.BytesType
	case fieldFingerprint:
		return "fingerprint", protowire.BytesType
	}
	return fmt.Sprintf("field %d", n), -1
}

func keyedError(field string, err error) error {
	return errorf(field, "not a keyed event (protobuf): %v", err)
}

func (d *Decoder) addKeyedString(field string, b []byte) (strRef, error) {
	if len(b) > d.limits.MaxLabelBytes {
		return strRef{}, errorf(field, "value is %d bytes, more than the limit of %d", len(b), d.limits.MaxLabelBytes)
	}
	if !d.utf8(b) {
		return strRef{}, errorf(field, "value is not valid UTF-8")
	}
	return d.strs.add(b), nil
}

// addKeyedEntry appends one map entry (a label or an annotation) to
// d.strs.labels.
func (d *Decoder) addKeyedEntry(field string, entry []byte) error {
	var k, v []byte
	for len(entry) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(entry)
		if tagLen < 0 {
			return keyedError(field, protowire.ParseError(tagLen))
		}
		entry = entry[tagLen:]
		if (n == fieldKey || n == fieldValue) && typ != protowire.BytesType {
			return errorf(field, "map entry field %d has wire type %d, want %d", n, typ, protowire.BytesType)
		}
		size := protowire.ConsumeFieldValue(n, typ, entry)
		if size < 0 {
			return keyedError(field, protowire.ParseError(size))
		}
		switch n {
		case fieldKey:
			k, _ = protowire.ConsumeBytes(entry)
		case fieldValue:
			v, _ = protowire.ConsumeBytes(entry)
		}
		entry = entry[size:]
	}
	return d.addLabel(field, k, v, false)
}
