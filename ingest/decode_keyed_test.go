package ingest

import (
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
		Labels:      map[string]string{"alertname": "Down", "instance": "db-1:9100", "empty": "", "ü": "ß"},
		Annotations: map[string]string{"summary": "db-1 is down"},
		Summary:     "db-1 is down",
		Fingerprint: "0123456789abcdef",
	}
}

func TestKeyedEventRoundTrip(t *testing.T) {
	want := keyedSample()
	msg, buf := KeyedEventMessage([]byte("earlier"), &want, "partition-key")
	if string(buf[:7]) != "earlier" || string(msg.Key) != "partition-key" {
		t.Fatalf("key %q, buffer %q: the message must follow what buf held", msg.Key, buf)
	}
	if !IsKeyedEvent(msg.Value) {
		t.Fatalf("value %x does not start with the keyed magic", msg.Value)
	}
	checkDecodesKeyed(t, "round trip", msg.Value, want)

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
		b = appendMap(b, fieldLabels, map[string]string{"a": "b"})
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
	manyLabels = appendMap(manyLabels, fieldLabels, labels)

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
