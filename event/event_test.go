package event

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestFingerprintMatchesAlertmanager(t *testing.T) {
	for _, labels := range []map[string]string{
		{"alertname": "DatabaseDown", "instance": "db-01:9104"},
		{"alertname": "HostDown", "instance": "h1", "job": "node", "severity": "critical"},
		{},
		{"a": "b\xffc"},
	} {
		ls := model.LabelSet{}
		for k, v := range labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if got, want := Fingerprint(FromMap(labels)), ls.Fingerprint().String(); got != want {
			t.Errorf("Fingerprint(%v) = %s, Alertmanager gives %s", labels, got, want)
		}
	}
	// A sixteenth of fingerprints start with a zero digit, which must stay.
	leadingZero := 0
	for i := range 1000 {
		labels := map[string]string{"alertname": "A", "instance": fmt.Sprintf("h%d", i)}
		want := model.Fingerprint(model.LabelsToSignature(labels)).String()
		if got := Fingerprint(FromMap(labels)); got != want {
			t.Fatalf("Fingerprint(%v) = %s, Alertmanager gives %s", labels, got, want)
		}
		if want[0] == '0' {
			leadingZero++
		}
	}
	if leadingZero == 0 {
		t.Error("no fingerprint with a leading zero digit was checked")
	}
}

func TestNormalize(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	base := func() Event {
		return Event{Time: t0, Labels: FromMap(map[string]string{"alertname": "DatabaseDown", "instance": "db-01:9104"})}
	}
	t.Run("defaults", func(t *testing.T) {
		e := base()
		if err := Normalize(&e, DefaultDefaults); err != nil {
			t.Fatal(err)
		}
		if e.Kind != KindAlert || e.Status != StatusFiring || e.Source != "unknown" || e.Severity != SeverityWarning {
			t.Errorf("defaults not applied: %+v", e)
		}
		if e.Fingerprint != Fingerprint(e.Labels) || len(e.Fingerprint) != 16 {
			t.Errorf("fingerprint = %q", e.Fingerprint)
		}
		if len(e.ID) != 16 {
			t.Errorf("derived id %q is not 16 hex digits", e.ID)
		}
	})
	t.Run("severity from labels, with aliases and case", func(t *testing.T) {
		for label, want := range map[string]Severity{"critical": SeverityCritical, "page": SeverityCritical, "Error": SeverityMajor, "WARN": SeverityWarning, "info": SeverityInfo, "bogus": SeverityWarning} {
			e := base()
			e.Labels = e.Labels.Set("severity", label)
			if err := Normalize(&e, DefaultDefaults); err != nil {
				t.Fatal(err)
			}
			if e.Severity != want {
				t.Errorf("labels.severity=%q: got %q, want %q", label, e.Severity, want)
			}
		}
	})
	t.Run("explicit severity wins over the label", func(t *testing.T) {
		e := base()
		e.Severity = "major"
		e.Labels = e.Labels.Set("severity", "info")
		if err := Normalize(&e, DefaultDefaults); err != nil || e.Severity != SeverityMajor {
			t.Fatalf("got %q, %v", e.Severity, err)
		}
	})
	t.Run("id is deterministic and content-derived", func(t *testing.T) {
		a, b := base(), base()
		_ = Normalize(&a, DefaultDefaults)
		_ = Normalize(&b, DefaultDefaults)
		if a.ID != b.ID {
			t.Errorf("same content, different ids %s %s", a.ID, b.ID)
		}
		c := base()
		c.Status = StatusResolved
		_ = Normalize(&c, DefaultDefaults)
		if c.ID == a.ID {
			t.Error("resolution shares the firing event's id")
		}
		if c.Fingerprint != a.Fingerprint {
			t.Error("resolution has another fingerprint than the firing event")
		}
	})
	t.Run("given id and fingerprint are kept", func(t *testing.T) {
		e := base()
		e.ID, e.Fingerprint = "e1", "abc"
		_ = Normalize(&e, DefaultDefaults)
		if e.ID != "e1" || e.Fingerprint != "abc" {
			t.Errorf("overwrote producer values: %+v", e)
		}
	})

	bad := []struct {
		name  string
		edit  func(*Event)
		field string
	}{
		{"missing time", func(e *Event) { e.Time = time.Time{} }, "time"},
		{"bad kind", func(e *Event) { e.Kind = "metric" }, "kind"},
		{"bad status", func(e *Event) { e.Status = "pending" }, "status"},
		{"bad severity", func(e *Event) { e.Severity = "urgent" }, "severity"},
		{"no labels", func(e *Event) { e.Labels = nil }, "labels"},
		{"empty label name", func(e *Event) { e.Labels = e.Labels.Set("", "x") }, "labels"},
		{"invalid utf-8 value", func(e *Event) { e.Labels = e.Labels.Set("job", "a\xffb") }, "labels.job"},
		{"invalid utf-8 name", func(e *Event) { e.Labels = e.Labels.Set("j\xffob", "a") }, "labels"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e := base()
			tc.edit(&e)
			err := Normalize(&e, DefaultDefaults)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %q does not name field %q", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
}

func TestLogEventsNeedNoLabels(t *testing.T) {
	e := Event{Time: time.Unix(1, 0), Kind: KindLog, Summary: "disk full"}
	if err := Normalize(&e, DefaultDefaults); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkNormalize(b *testing.B) {
	labels := map[string]string{"alertname": "HostDown", "instance": "host-1:9100", "job": "node", "severity": "critical", "site": "dc1"}
	b.ReportAllocs()
	for b.Loop() {
		e := Event{Time: time.Unix(1700000000, 0), Source: "prometheus", Labels: FromMap(labels)}
		if err := Normalize(&e, DefaultDefaults); err != nil {
			b.Fatal(err)
		}
	}
}
