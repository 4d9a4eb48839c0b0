package ingest

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/correlatord/correlatord/event"
)

func keyedSample() event.Event {
	return event.Event{
		ID:          "e1",
		Time:        time.Date(2024, 5, 14, 9, 0, 0, 123456789, time.UTC),
		Source:      "prometheus",
		Kind:        event.KindAlert,
		Status:      event.StatusFiring,
		Severity:    event.SeverityCritical,
		CI:          "db-1",
		Labels:      event.FromMap(map[string]string{"alertname": "Down", "instance": "db-1:9100", "empty": "", "ü": "ß"}),
		Annotations: event.FromMap(map[string]string{"summary": "db-1 is down"}),
		Summary:     "db-1 is down",
		Fingerprint: "0123456789abcdef",
	}
}

func TestKeyedEventRoundTrip(t *testing.T) {
	want := keyedSample()
	buf := AppendKeyedEvent([]byte("earlier"), &want)
	if string(buf[:7]) != "earlier" || !bytes.HasPrefix(buf[7:], keyedMagic) {
		t.Fatalf("buffer %x: the event must follow what buf held, magic first", buf)
	}
	checkDecodesKeyed(t, "round trip", buf[7:], want)

	// Without annotations, nanoseconds or CI: absent stays absent.
	want = keyedSample()
	want.Annotations, want.CI, want.Time = nil, "", want.Time.Truncate(time.Second)
	checkDecodesKeyed(t, "round trip without annotations", AppendKeyedEvent(nil, &want), want)
}

// checkDecodesKeyed checks that DecodeKeyed gives exactly want from data.
func checkDecodesKeyed(t *testing.T, what string, data []byte, want event.Event) {
	t.Helper()
	got, errs := newTestDecoder().DecodeKeyed(data, testNow, nil)
	if len(errs) > 0 || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("%s: %v\n got %+v\nwant %+v", what, errorLines(errs), got, want)
	}
}

// A batch decodes to its events in order, and a batch of one to its event.
func TestKeyedBatchRoundTrip(t *testing.T) {
	var want []event.Event
	for i := range 300 {
		ev := keyedSample()
		ev.ID = fmt.Sprint("e", i)
		// Events of about 100 bytes to 24 KB: length prefixes of one to
		// three bytes.
		ev.Summary = strings.Repeat("s", i)
		ev.Labels = event.FromMap(map[string]string{"instance": fmt.Sprint("host-", i)})
		switch i % 10 {
		case 0:
			ev.Annotations = nil
		case 9:
			long := strings.Repeat("a", 8000)
			ev.Annotations = event.FromMap(map[string]string{"a": long, "b": long, "c": long})
		}
		want = append(want, ev)
	}
	buf := AppendKeyedBatchHeader([]byte("earlier"))
	for i := range want {
		buf = AppendKeyedBatchEvent(buf, &want[i])
	}
	if string(buf[:7]) != "earlier" || !bytes.HasPrefix(buf[7:], keyedBatchMagic) {
		t.Fatalf("buffer starts %x: the batch must follow what buf held, magic first", buf[:9])
	}
	got, errs := newTestDecoder().DecodeKeyed(buf[7:], testNow, []event.Event{{ID: "before"}})
	if len(errs) > 0 || len(got) != len(want)+1 || got[0].ID != "before" || !reflect.DeepEqual(got[1:], want) {
		t.Fatalf("%v: %d events, want %d after the one dst held", errorLines(errs), len(got), len(want))
	}
	one := AppendKeyedBatchEvent(AppendKeyedBatchHeader(nil), &want[1])
	checkDecodesKeyed(t, "batch of one", one, want[1])
	if got, errs := newTestDecoder().DecodeKeyed(AppendKeyedBatchHeader(nil), testNow, nil); len(got) != 0 || len(errs) != 0 {
		t.Fatalf("empty batch: %d events, errors %v", len(got), errorLines(errs))
	}
}

// A bad event of a batch is reported with its index and the others are
// kept; framing that cannot be read ends the batch at the first event lost.
func TestDecodeKeyedBatchErrors(t *testing.T) {
	good := keyedSample()
	bad := keyedSample()
	bad.Severity = "loud"
	batch := AppendKeyedBatchHeader(nil)
	for _, ev := range []*event.Event{&good, &bad, &good} {
		batch = AppendKeyedBatchEvent(batch, ev)
	}
	got, errs := newTestDecoder().DecodeKeyed(batch, testNow, nil)
	if len(got) != 2 || len(errs) != 1 || errs[0].Index != 1 || !strings.Contains(errs[0].Error(), `events[1].severity: "loud" is not one of`) {
		t.Fatalf("bad event in a batch: %d events, errors %q", len(got), errorLines(errs))
	}

	for _, tc := range []struct {
		name  string
		tail  []byte
		index int
		want  string
	}{
		{"truncated", AppendKeyedBatchEvent(nil, &good)[:40], 1, "events[1]: not a keyed event (protobuf): unexpected EOF"},
		{"bad tag", []byte{0xff}, 1, "events[1]: not a keyed event (protobuf): unexpected EOF"},
		{"wrong wire type", protowire.AppendVarint(protowire.AppendTag(nil, fieldBatchEvents, protowire.VarintType), 1), 1, "events[1]: wire type 0, want 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := append(AppendKeyedBatchEvent(AppendKeyedBatchHeader(nil), &good), tc.tail...)
			got, errs := newTestDecoder().DecodeKeyed(data, testNow, nil)
			if len(got) != 1 || len(errs) != 1 || errs[0].Index != tc.index || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("got %d events, errors %q; want the first event and one error at %d with %q", len(got), errorLines(errs), tc.index, tc.want)
			}
		})
	}

	// A field of a newer build is skipped; more events than Limits.MaxEvents
	// are not decoded.
	data := AppendKeyedBatchHeader(nil)
	data = protowire.AppendString(protowire.AppendTag(data, 2, protowire.BytesType), "from the future")
	for range 3 {
		data = AppendKeyedBatchEvent(data, &good)
	}
	d := NewDecoder(Limits{MaxEvents: 2}, testDefaults)
	got, errs = d.DecodeKeyed(data, testNow, nil)
	if len(got) != 2 || len(errs) != 1 || errs[0].Index != 2 || !strings.Contains(errs[0].Error(), "events: more than the limit of 2") {
		t.Fatalf("over MaxEvents: %d events, errors %q", len(got), errorLines(errs))
	}
}

// The second stage reads the canonical JSON that earlier builds wrote to
// the keyed topic.
func TestDecodeKeyedReadsJSON(t *testing.T) {
	want := keyedSample()
	b, err := AppendEventJSON(nil, &want)
	if err != nil {
		t.Fatal(err)
	}
	checkDecodesKeyed(t, "JSON on the keyed topic", b, want)
}

// A field of a newer build is skipped, as protobuf readers do, so a rolling
// upgrade does not dead-letter events.
func TestDecodeKeyedSkipsUnknownFields(t *testing.T) {
	want := keyedSample()
	b := AppendKeyedEvent(nil, &want)
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendString(b, "from the future")
	b = protowire.AppendTag(b, 100, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	checkDecodesKeyed(t, "unknown fields", b, want)
}

func TestDecodeKeyedErrors(t *testing.T) {
	good := keyedSample()
	enc := AppendKeyedEvent(nil, &good)
	beforeYear0 := int64(minEventSeconds - 1)
	timeless := keyedSample()
	timeless.Time = time.Time{}
	field := func(n protowire.Number, typ protowire.Type, value func([]byte) []byte) []byte {
		b := append([]byte(nil), keyedMagic...)
		b = protowire.AppendTag(b, fieldTimeSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(testNow.Unix()))
		b = appendLabels(b, fieldLabels, event.Labels{{Name: "a", Value: "b"}})
		b = protowire.AppendTag(b, n, typ)
		return value(b)
	}
	str := func(s string) func([]byte) []byte {
		return func(b []byte) []byte { return protowire.AppendString(b, s) }
	}
	varint := func(v uint64) func([]byte) []byte {
		return func(b []byte) []byte { return protowire.AppendVarint(b, v) }
	}
	entry := func(k, v []byte) func([]byte) []byte {
		return func(b []byte) []byte {
			var e []byte
			e = protowire.AppendTag(e, fieldKey, protowire.BytesType)
			e = protowire.AppendBytes(e, k)
			e = protowire.AppendTag(e, fieldValue, protowire.BytesType)
			e = protowire.AppendBytes(e, v)
			return protowire.AppendBytes(b, e)
		}
	}
	manyLabels := append([]byte(nil), keyedMagic...)
	manyLabels = protowire.AppendTag(manyLabels, fieldTimeSeconds, protowire.VarintType)
	manyLabels = protowire.AppendVarint(manyLabels, uint64(testNow.Unix()))
	labels := map[string]string{}
	for i := range DefaultLimits.MaxLabels + 1 {
		labels["l"+strings.Repeat("x", i)] = "v"
	}
	manyLabels = appendLabels(manyLabels, fieldLabels, event.FromMap(labels))

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", enc[:len(enc)-3], "fingerprint: not a keyed event (protobuf): unexpected EOF"},
		{"bad tag", append(append([]byte(nil), keyedMagic...), 0xff), "not a keyed event (protobuf): unexpected EOF"},
		{"wrong wire type", field(fieldLabels, protowire.VarintType, varint(1)), "labels: wire type 0, want 2"},
		{"string as varint", field(fieldID, protowire.VarintType, varint(1)), "id: wire type 0, want 2"},
		{"invalid UTF-8", field(fieldSource, protowire.BytesType, str("a\xffb")), "source: value is not valid UTF-8"},
		{"invalid UTF-8 label", field(fieldLabels, protowire.BytesType, entry([]byte("k"), []byte("\xc3"))), `labels.k: value is not valid UTF-8`},
		{"empty label name", field(fieldLabels, protowire.BytesType, entry(nil, []byte("v"))), "labels: empty name"},
		{"long value", field(fieldSummary, protowire.BytesType, str(strings.Repeat("s", DefaultLimits.MaxLabelBytes+1))), "summary: value is"},
		{"label flood", manyLabels, "more than the limit of"},
		{"nanoseconds", field(fieldTimeNanos, protowire.VarintType, varint(uint64(time.Second))), "time: 1000000000 nanoseconds"},
		{"year 10000", field(fieldTimeSeconds, protowire.VarintType, varint(maxEventSeconds)), "time: 253402300800 seconds since 1970 is outside"},
		{"before year 0", field(fieldTimeSeconds, protowire.VarintType, varint(uint64(beforeYear0))), "time: -62167219201 seconds since 1970 is outside"},
		{"bad severity", field(fieldSeverity, protowire.BytesType, str("loud")), `severity: "loud" is not one of`},
		{"no time", AppendKeyedEvent(nil, &timeless), "time: missing"},
		{"not JSON either", []byte("{"), "unexpected end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := newTestDecoder().DecodeKeyed(tc.data, testNow, nil)
			if len(got) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("got %d events, errors %q; want one error with %q", len(got), errorLines(errs), tc.want)
			}
		})
	}
}
