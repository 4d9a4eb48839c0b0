package ingest

import (
	"bytes"
	"math"
	"slices"

	"github.com/valyala/fastjson"

	"github.com/correlatord/correlatord/event"
)

// Copying strings out of the parser's buffer is most of a decoder's
// allocations: a webhook alert has a dozen. eventStrings cuts that to one per
// event by copying the strings of an event into one buffer, turning that into
// a single string, and handing out substrings of it. The substrings share
// memory, so a string kept after its event keeps the event's other short
// strings alive too; strings longer than packMax are therefore allocated on
// their own, which bounds what a kept string can pin to a few kilobytes in
// practice.

// packMax is the longest string packed with its event's other strings.
const packMax = 512

// strRef refers to a string of the event being decoded: the bytes
// [start, end) of its packed strings, or, when start < 0, the string
// own[-start-1]. It holds no pointer, so that filling a slice of them costs
// no GC write barriers.
type strRef struct {
	start, end int32
}

// labelRef is one label or annotation of the event being decoded.
type labelRef struct {
	name, value strRef
}

// eventStrings collects the strings of one event. Use: reset, add (and
// collectLabels) as often as needed, pack once, then get and labelSets.
type eventStrings struct {
	buf    []byte
	own    []string
	packed string
	labels []labelRef
}

func (t *eventStrings) reset() {
	t.buf = t.buf[:0]
	clear(t.own)
	t.own = t.own[:0]
	t.labels = t.labels[:0]
}

// add copies b, which may alias the parser's buffer, into the event's
// strings.
func (t *eventStrings) add(b []byte) strRef {
	if len(b) == 0 {
		return strRef{}
	}
	if len(b) > packMax || len(t.buf)+len(b) > math.MaxInt32 {
		t.own = append(t.own, string(b))
		return strRef{start: int32(-len(t.own))}
	}
	start := len(t.buf)
	t.buf = append(t.buf, b...)
	return strRef{start: int32(start), end: int32(len(t.buf))}
}

// bytes returns the packed bytes of r, for the rare edit before pack.
func (t *eventStrings) bytes(r strRef) []byte {
	if r.start < 0 {
		return nil
	}
	return t.buf[r.start:r.end]
}

// pack makes the one allocation of the event's packed strings. Call it once,
// after the last add and before the first get.
func (t *eventStrings) pack() {
	t.packed = string(t.buf)
}

func (t *eventStrings) get(r strRef) string {
	if r.start < 0 {
		return t.own[-r.start-1]
	}
	return t.packed[r.start:r.end]
}

// eventRefs are the string fields of the canonical event being decoded.
type eventRefs struct {
	id, source, kind, status, severity, ci, summary, fingerprint strRef
}

// fillEvent packs t and sets e's strings from r, its labels from
// t.labels[:nLabels] (a map even when empty, as the event schema has it)
// and its annotations from the rest (nil when none).
func (t *eventStrings) fillEvent(e *event.Event, r *eventRefs, nLabels int) {
	t.pack()
	e.ID = t.get(r.id)
	e.Source = t.get(r.source)
	e.Kind = event.Kind(t.get(r.kind))
	e.Status = event.Status(t.get(r.status))
	e.Severity = event.Severity(t.get(r.severity))
	e.CI = t.get(r.ci)
	e.Summary = t.get(r.summary)
	e.Fingerprint = t.get(r.fingerprint)
	e.Labels, e.Annotations = t.labelSets(nLabels, event.Label{})
}

// maxSortedLabels bounds the labels addFingerprint sorts on the stack.
const maxSortedLabels = 64

// addFingerprint adds the Alertmanager fingerprint of the labels
// t.labels[:n] to t's strings (before pack) and returns its ref: what
// event.Fingerprint computes from the labels labelSets builds, without
// allocating the hex digits. ok is false, and nothing is added, when a name
// repeats (labelSets keeps the last value), a label is held apart (longer
// than packMax) or there are more than maxSortedLabels: event.Complete then
// computes it from the labels.
func (t *eventStrings) addFingerprint(n int) (ref strRef, ok bool) {
	if n > maxSortedLabels {
		return strRef{}, false
	}
	var order [maxSortedLabels]int32
	for i := range n {
		if t.labels[i].name.start < 0 || t.labels[i].value.start < 0 {
			return strRef{}, false
		}
		order[i] = int32(i)
	}
	name := func(i int32) []byte { return t.bytes(t.labels[i].name) }
	sorted := order[:n]
	slices.SortFunc(sorted, func(a, b int32) int { return bytes.Compare(name(a), name(b)) })
	for k := 1; k < n; k++ {
		if bytes.Equal(name(sorted[k-1]), name(sorted[k])) {
			return strRef{}, false
		}
	}
	start := len(t.buf)
	t.buf = event.AppendFingerprint(t.buf, n,
		func(k int) []byte { return name(sorted[k]) },
		func(k int) []byte { return t.bytes(t.labels[sorted[k]].value) })
	return strRef{start: int32(start), end: int32(len(t.buf))}, true
}

// hasName reports whether a label from t.labels[from:] is named name (a
// name held apart, over packMax, is not compared: it is longer than any
// name this is asked about).
func (t *eventStrings) hasName(from int, name string) bool {
	for _, l := range t.labels[from:] {
		if string(t.bytes(l.name)) == name {
			return true
		}
	}
	return false
}

// labelSets returns the labels t.labels[:nLabels] (not nil even when empty,
// as the event schema has them) and the annotations t.labels[nLabels:] and
// extra, if it has a name (nil when none), each sorted with repeated names
// left out but the last, as assigning them to a map would. Both share one
// array: one allocation per event instead of two maps' four. The labels'
// capacity ends at their length, so that appending to them cannot write
// over the annotations.
func (t *eventStrings) labelSets(nLabels int, extra event.Label) (labels, annotations event.Labels) {
	n := len(t.labels)
	if extra.Name != "" {
		n++
	}
	all := make(event.Labels, 0, n)
	for _, l := range t.labels[:nLabels] {
		all = append(all, event.Label{Name: t.get(l.name), Value: t.get(l.value)})
	}
	labels = event.SortLabels(all)
	labels = labels[:len(labels):len(labels)]
	if n == nLabels {
		return labels, nil
	}
	rest := all[len(labels):len(labels)]
	for _, l := range t.labels[nLabels:] {
		rest = append(rest, event.Label{Name: t.get(l.name), Value: t.get(l.value)})
	}
	if extra.Name != "" {
		rest = append(rest, extra)
	}
	return labels, event.SortLabels(rest)
}

// collectLabels checks a JSON object of string values (labels or
// annotations) and appends its entries to d.strs.labels. Null or absent (nil)
// means none. With dropEmpty, labels with an empty value are left out, as
// Alertmanager's API does: Prometheus treats an empty label as an absent one.
func (d *Decoder) collectLabels(field string, v *fastjson.Value, dropEmpty bool) error {
	if v == nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeObject:
	case fastjson.TypeNull:
		return nil
	default:
		return expected(field, "an object", v)
	}
	o, _ := v.Object()
	if n := o.Len(); n > d.limits.MaxLabels {
		return errorf(field, "%d %s, more than the limit of %d", n, field, d.limits.MaxLabels)
	}
	var err error
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		if v.Type() != fastjson.TypeString {
			if err = d.checkLabelName(field, k); err == nil {
				err = expected(labelPath(field, k), "a string", v)
			}
			return
		}
		b, _ := v.StringBytes()
		err = d.addLabel(field, k, b, dropEmpty)
	})
	return err
}

// addLabel checks one label or annotation and appends it to d.strs.labels.
// With dropEmpty, an empty value is left out.
func (d *Decoder) addLabel(field string, k, v []byte, dropEmpty bool) error {
	if err := d.checkLabelName(field, k); err != nil {
		return err
	}
	switch {
	case len(v) > d.limits.MaxLabelBytes:
		return errorf(labelPath(field, k), "value is %d bytes, more than the limit of %d", len(v), d.limits.MaxLabelBytes)
	case !d.utf8(v):
		return errorf(labelPath(field, k), "value is not valid UTF-8")
	case dropEmpty && len(v) == 0:
		return nil
	}
	t := &d.strs
	t.labels = append(t.labels, labelRef{name: t.add(k), value: t.add(v)})
	return nil
}

func (d *Decoder) checkLabelName(field string, k []byte) error {
	switch {
	case len(k) == 0:
		return errorf(field, "empty name")
	case len(k) > d.limits.MaxLabelBytes:
		return errorf(field, "name %s is %d bytes, more than the limit of %d", quote(k), len(k), d.limits.MaxLabelBytes)
	case !d.utf8(k):
		return errorf(field, "name %s is not valid UTF-8", quote(k))
	}
	return nil
}
