package ingest

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/correlatord/correlatord/event"
)

// Regression inputs found by fuzzing live in testdata/decode/fuzz/<FuzzName>/
// in the "go test fuzz v1" file format, and are added to the seed corpus of
// their fuzz test. (They are kept there rather than in testdata/fuzz so that
// all of the decoder's test data sits under testdata/decode.)

func addFuzzSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		f.Add(readFixture(f, name))
	}
	dir := filepath.Join("testdata", "decode", "fuzz", f.Name())
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		f.Fatal(err)
	}
	for _, entry := range entries {
		b, err := os.ReadFile(filepath.Join(dir, entry.Name()))
		if err != nil {
			f.Fatal(err)
		}
		data, err := parseFuzzFile(b)
		if err != nil {
			f.Fatalf("%s: %v", entry.Name(), err)
		}
		f.Add(data)
	}
}

// parseFuzzFile reads a corpus file of one []byte value, as go test -fuzz
// writes them.
func parseFuzzFile(b []byte) ([]byte, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, strconv.ErrSyntax
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	if !ok {
		return nil, strconv.ErrSyntax
	}
	lit, ok = strings.CutSuffix(lit, ")")
	if !ok {
		return nil, strconv.ErrSyntax
	}
	s, err := strconv.Unquote(lit)
	return []byte(s), err
}

// otherPayload is decoded between two decodings of a fuzz input.
var otherPayload = sync.OnceValue(func() []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "decode", "events.json"))
	if err != nil {
		panic(err)
	}
	return b
})

func cloneEvents(events []event.Event) []event.Event {
	if events == nil {
		return nil
	}
	out := make([]event.Event, len(events))
	for i, e := range events {
		e.Labels = slices.Clone(e.Labels)
		e.Annotations = slices.Clone(e.Annotations)
		out[i] = e
	}
	return out
}

// checkDecode is the property every fuzz test checks: decoding does not
// panic, is deterministic, does not let a later call change an earlier
// result, and returns only normalized, valid events.
func checkDecode(t *testing.T, format Format, data []byte) {
	limits := Limits{MaxLabels: 16, MaxLabelBytes: 256, MaxEvents: 64}
	d := NewDecoder(limits, testDefaults)
	input := append([]byte(nil), data...)
	events, errs := decodeAs(d, format, input)
	kept := cloneEvents(events)
	keptErrs := errorLines(errs)

	// Scribble over the input, and decode other data, then this data again:
	// the first results must not change, and the second must equal them.
	for i := range input {
		input[i] = '"'
	}
	d.Decode(FormatAuto, otherPayload(), testNow, nil)
	again, againErrs := decodeAs(d, format, data)
	if !reflect.DeepEqual(events, kept) {
		t.Fatalf("later calls changed earlier results:\n got %+v\nwant %+v", events, kept)
	}
	if !reflect.DeepEqual(again, kept) || !reflect.DeepEqual(errorLines(againErrs), keptErrs) {
		t.Fatalf("not deterministic:\n%+v %q\n%+v %q", kept, keptErrs, again, errorLines(againErrs))
	}

	for i := range errs {
		e := &errs[i]
		if e.Index < 0 && (len(errs) != 1 || len(events) != 0) {
			t.Fatalf("payload error %v comes with %d events and %d errors", e, len(events), len(errs))
		}
		if e.Err == nil || e.Error() == "" || !utf8.ValidString(e.Error()) {
			t.Fatalf("bad error %q", e.Error())
		}
	}
	if len(events)+len(errs) > limits.MaxEvents && !(len(errs) == 1 && errs[0].Index < 0) {
		t.Fatalf("%d events and %d errors, over the limit of %d items", len(events), len(errs), limits.MaxEvents)
	}
	for _, e := range events {
		if e.ID == "" || e.Fingerprint == "" {
			t.Fatalf("event without ID or fingerprint: %+v", e)
		}
		// Alertmanager's formats carry no id: the decoder derives it.
		am := format == FormatAlertmanagerWebhook || format == FormatAlertList
		if am && e.ID != event.DeriveID(&e) {
			t.Fatalf("id %s, want %s derived from %+v", e.ID, event.DeriveID(&e), e)
		}
		// An API v2 list carries no fingerprint: the decoder's, computed
		// from its buffer, must be the one of the labels.
		if format == FormatAlertList && e.Fingerprint != event.Fingerprint(e.Labels) {
			t.Fatalf("fingerprint %s, want %s of %v", e.Fingerprint, event.Fingerprint(e.Labels), e.Labels)
		}
		if e.Time.IsZero() || e.Time.Location() != time.UTC {
			t.Fatalf("event time %v not set, or not UTC", e.Time)
		}
		again := cloneEvents([]event.Event{e})[0]
		if err := event.Normalize(&again, d.defaults); err != nil {
			t.Fatalf("event does not normalize again: %v\n%+v", err, e)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("normalizing again changed the event:\n got %+v\nwant %+v", again, e)
		}
		if format == FormatAlertmanagerWebhook || format == FormatAlertList {
			want := e.Annotations.Get("summary")
			if want == "" {
				want = e.Annotations.Get("description")
			}
			if want == "" {
				want = e.Labels.Get("alertname")
			}
			if e.Summary != want {
				t.Fatalf("summary %q, want %q from %+v", e.Summary, want, e)
			}
		}
		if len(e.Labels) > limits.MaxLabels || len(e.Annotations) > limits.MaxLabels+1 {
			t.Fatalf("%d labels, %d annotations: over the limit", len(e.Labels), len(e.Annotations))
		}
		for _, s := range []string{e.ID, e.Source, string(e.Kind), string(e.Status), string(e.Severity), e.CI, e.Summary, e.Fingerprint} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q in %+v", s, e)
			}
		}
		for _, ls := range []event.Labels{e.Labels, e.Annotations} {
			if !ls.Sorted() {
				t.Fatalf("labels %v not sorted by name, each once", ls)
			}
			for _, l := range ls {
				k, v := l.Name, l.Value
				if !utf8.ValidString(k) || !utf8.ValidString(v) || k == "" || len(k) > limits.MaxLabelBytes || len(v) > limits.MaxLabelBytes {
					t.Fatalf("bad label %q=%q", k, v)
				}
			}
		}
	}
	// What the Kafka stages re-encode decodes to the very same events.
	var buf []byte
	roundTrip := NewDecoder(DefaultLimits, testDefaults)
	for i := range events {
		var err error
		if buf, err = AppendEventJSON(buf[:0], &events[i]); err != nil {
			t.Fatalf("encode %+v: %v", events[i], err)
		}
		back, errs := roundTrip.Decode(FormatEvents, buf, testNow, nil)
		if len(errs) > 0 || len(back) != 1 || !reflect.DeepEqual(back[0], events[i]) {
			t.Fatalf("re-encoded event does not decode to itself: %v\n got %+v\nwant %+v\n%s", errorLines(errs), back, events[i], buf)
		}
		buf = AppendKeyedEvent(buf[:0], &events[i])
		back, errs = roundTrip.DecodeKeyed(buf, testNow, nil)
		if len(errs) > 0 || len(back) != 1 || !reflect.DeepEqual(back[0], events[i]) {
			t.Fatalf("event in the keyed encoding does not decode to itself: %v\n got %+v\nwant %+v\n%x", errorLines(errs), back, events[i], buf)
		}
	}
}

// formatKeyed stands for DecodeKeyed in checkDecode.
const formatKeyed Format = "keyed"

func decodeAs(d *Decoder, format Format, data []byte) ([]event.Event, []DecodeError) {
	if format == formatKeyed {
		return d.DecodeKeyed(data, testNow, nil)
	}
	return d.Decode(format, data, testNow, nil)
}

func FuzzDecodeWebhook(f *testing.F) {
	addFuzzSeeds(f, "webhook.json")
	f.Add([]byte(webhook(amAlert(""), amAlert(`,"status":"resolved","endsAt":"2024-05-14T09:30:00+02:00"`))))
	f.Add([]byte(webhook(amAlert(`,"labels":{"a":"\ud800\u00e9\\x"},"fingerprint":"ABCDEF0123456789"`))))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, FormatAlertmanagerWebhook, data)
	})
}

func FuzzDecodeAlertList(f *testing.F) {
	addFuzzSeeds(f, "alertlist.json")
	f.Add([]byte(`[{"labels":{"a":"b","c":""},"endsAt":"2024-05-14T10:00:00Z"},{"labels":{}},1]`))
	// A name that repeats: the fingerprint is left to event.Complete.
	f.Add([]byte(`[{"labels":{"b":"1","a":"2","b":"3"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, FormatAlertList, data)
	})
}

// FuzzDecodeKeyed decodes messages of the keyed topic: protobuf batches
// and single events (seeded with encodings of the sample events) and the
// JSON of earlier builds.
func FuzzDecodeKeyed(f *testing.F) {
	d := NewDecoder(DefaultLimits, testDefaults)
	for _, name := range []string{"event.json", "events.json", "webhook.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "decode", name))
		if err != nil {
			f.Fatal(err)
		}
		events, _ := d.Decode(FormatAuto, b, testNow, nil)
		batch := AppendKeyedBatchHeader(nil)
		for i := range events {
			f.Add(AppendKeyedEvent(nil, &events[i]))
			batch = AppendKeyedBatchEvent(batch, &events[i])
		}
		f.Add(batch)
	}
	f.Add([]byte(`{"time":"2024-05-14T09:00:00Z","labels":{"a":"b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, formatKeyed, data)
	})
}

func FuzzDecodeEvents(f *testing.F) {
	addFuzzSeeds(f, "event.json", "events.json", "events.jsonl")
	f.Add([]byte("{\"time\":\"2024-05-14T09:00:00Z\",\"labels\":{\"a\":\"b\"}}\r\n\r\n{\"kind\":\"log\",\"time\":\"2024-05-14T09:00:00.1-01:00\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, FormatEvents, data)
		checkDecode(t, FormatAuto, data)
	})
}
