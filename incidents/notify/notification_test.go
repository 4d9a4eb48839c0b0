package notify

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNotificationRoundTrip(t *testing.T) {
	n := testNotification("inc-1", 3, KindResolved)
	res := t0.Add(time.Hour)
	n.Ticket.ResolvedAt = &res
	n.Ticket.EscalationLevel = 2
	n.Ticket.KnownErrorID, n.Ticket.ProblemID, n.Ticket.ChangeID = "KE1", "PRB1", "CHG1"
	b, err := EncodeNotification(&n)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"incident_id":"inc-1"`, `"root_cause_ci":"db-01"`, `"support_group":"dba"`, `"resolved_at":`, `"escalation_level":2`, `"known_error_id":"KE1"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("encoding lacks %s: %s", field, b)
		}
	}
	// Decode twice into the same value: the second must not keep anything
	// of the first.
	var got Notification
	other := testNotification("inc-2", 1, KindCreated)
	other.Ticket.AssignedTo = "alice"
	ob, _ := EncodeNotification(&other)
	if err := DecodeNotification(ob, &got); err != nil {
		t.Fatal(err)
	}
	if err := DecodeNotification(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, n) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, n)
	}
}

func TestDecodeNotificationRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`not json`, "decode notification"},
		{`{"kind":"created","incident_id":"i"}`, "key: must not be empty"},
		{`{"key":"k","kind":"deleted","incident_id":"i"}`, `kind: "deleted"`},
		{`{"key":"k","kind":"created"}`, "incident_id: must not be empty"},
		{`{"key":"k","kind":"created","incident_id":"i","ticket":{"priority":"P9"}}`, "ticket.priority"},
		{`{"key":"k","kind":"created","incident_id":"i","ticket":{"impact":4}}`, "ticket.impact"},
		{`{"key":"k","kind":"created","incident_id":"i"} {}`, "decode notification"},
	} {
		var n Notification
		err := DecodeNotification([]byte(tc.in), &n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error with %q", tc.in, err, tc.want)
		}
	}
	// Unknown fields are ignored (rolling upgrades).
	var n Notification
	if err := DecodeNotification([]byte(`{"key":"k","kind":"created","incident_id":"i","added_later":1}`), &n); err != nil {
		t.Errorf("unknown field: %v", err)
	}
}

// FuzzDecodeNotification checks that decoding never panics and that what
// decodes encodes to something that decodes to the same encoding.
func FuzzDecodeNotification(f *testing.F) {
	n := testNotification("inc-1", 1, KindCreated)
	b, _ := EncodeNotification(&n)
	f.Add(b)
	f.Add([]byte(`{"key":"k","kind":"closed","incident_id":"i","at":"2026-11-02T10:00:00+01:00","ticket":{"resolved_at":null}}`))
	f.Add([]byte(`{"key":"\u0000","kind":"escalated","incident_id":"\ud800","ticket":{"services":[],"cis":null}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n Notification
		if err := DecodeNotification(data, &n); err != nil {
			return
		}
		b1, err := EncodeNotification(&n)
		if err != nil {
			// Only times outside what JSON can carry may fail.
			if !strings.Contains(err.Error(), "Time.MarshalJSON") {
				t.Fatalf("decoded %q but cannot encode: %v", data, err)
			}
			return
		}
		var n2 Notification
		if err := DecodeNotification(b1, &n2); err != nil {
			t.Fatalf("cannot decode own encoding %s: %v", b1, err)
		}
		b2, err := EncodeNotification(&n2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("encoding not stable:\n%s\n%s (%v)", b1, b2, err)
		}
	})
}

func BenchmarkDecodeNotification(b *testing.B) {
	n := testNotification("inc-1", 1, KindUpdated)
	data, _ := EncodeNotification(&n)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var got Notification
	for b.Loop() {
		if err := DecodeNotification(data, &got); err != nil {
			b.Fatal(err)
		}
	}
}
