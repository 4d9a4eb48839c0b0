package ingest

import (
	"encoding/json"
	"maps"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/correlatord/correlatord/event"
)

// webhookMessage has the shape of Alertmanager's notify/webhook.Message,
// which this module cannot import without pulling in all of Alertmanager's
// notifiers: template.Data, embedded, plus the protocol fields.
type webhookMessage struct {
	*template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// amAlerts are alerts as Alertmanager holds them. The first fires (its
// EndsAt is in the future, so Alertmanager shows no end), the second has
// resolved, the third fires with no annotations and no generator URL.
func amAlerts() []*alert.Alert {
	started := time.Date(2024, 5, 14, 9, 12, 41, 123456789, time.UTC)
	return []*alert.Alert{
		{Alert: model.Alert{
			Labels: model.LabelSet{
				"alertname": "NodeHighCPU", "instance": "node-07:9100", "job": "node",
				"severity": "critical", "cluster": "prod-eu-1", "team": "infra",
			},
			Annotations: model.LabelSet{
				"summary":     "CPU above 95% on node-07",
				"description": "CPU usage has been above 95% for 10 minutes.",
			},
			StartsAt:     started,
			EndsAt:       time.Now().Add(time.Hour),
			GeneratorURL: "http://prometheus:9090/graph?g0.expr=up",
		}},
		{Alert: model.Alert{
			Labels: model.LabelSet{
				"alertname": "NodeHighCPU", "instance": "node-03:9100", "job": "node",
				"severity": "critical", "cluster": "prod-eu-1", "team": "infra",
			},
			Annotations: model.LabelSet{
				"description": "CPU usage has been above 95% for 10 minutes.",
			},
			StartsAt:     started.Add(-time.Hour),
			EndsAt:       started.Add(20 * time.Minute),
			GeneratorURL: "http://prometheus:9090/graph?g0.expr=up",
		}},
		{Alert: model.Alert{
			Labels:   model.LabelSet{"alertname": "Watchdog", "severity": "none", "ünïcode": "välue ✓"},
			StartsAt: started.Add(time.Minute),
			EndsAt:   time.Now().Add(time.Hour),
		}},
	}
}

// amWebhookBody builds a webhook body the way Alertmanager's webhook notifier
// does: template.Data from Template.Data, wrapped in the message, marshalled
// with encoding/json.
func amWebhookBody(t *testing.T, alerts []*alert.Alert, edit func(*template.Data)) []byte {
	t.Helper()
	tmpl, err := template.New()
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExternalURL, _ = url.Parse("http://alertmanager:9093")
	data := tmpl.Data("team-infra", model.LabelSet{"alertname": "NodeHighCPU"}, model.LabelSet{"team": "infra"}, "alert_group_updated", alerts...)
	if edit != nil {
		edit(data)
	}
	body, err := json.Marshal(&webhookMessage{
		Data:            data,
		Version:         "4",
		GroupKey:        `{}/{team="infra"}:{alertname="NodeHighCPU"}`,
		TruncatedAlerts: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func labelsOf(ls model.LabelSet) map[string]string {
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

func TestDecodeWebhookCompat(t *testing.T) {
	alerts := amAlerts()
	body := amWebhookBody(t, alerts, nil)
	got, errs := newTestDecoder().Decode(FormatAuto, body, testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v\n%s", errorLines(errs), body)
	}
	if len(got) != len(alerts) {
		t.Fatalf("got %d events, want %d", len(got), len(alerts))
	}
	want := []struct {
		status   event.Status
		time     time.Time
		severity event.Severity
		summary  string
	}{
		{event.StatusFiring, alerts[0].StartsAt, event.SeverityCritical, "CPU above 95% on node-07"},
		{event.StatusResolved, alerts[1].EndsAt, event.SeverityCritical, "CPU usage has been above 95% for 10 minutes."},
		{event.StatusFiring, alerts[2].StartsAt, event.SeverityInfo, "Watchdog"},
	}
	for i, a := range alerts {
		e := got[i]
		annotations := labelsOf(a.Annotations)
		if a.GeneratorURL != "" {
			annotations["generator_url"] = a.GeneratorURL
		}
		if len(annotations) == 0 {
			annotations = nil // Alertmanager sends {}: no annotations
		}
		w := want[i]
		checks := []struct {
			field     string
			got, want any
		}{
			{"source", e.Source, "alertmanager"},
			{"kind", e.Kind, event.KindAlert},
			{"status", e.Status, w.status},
			{"time", e.Time, w.time},
			{"severity", e.Severity, w.severity},
			{"labels", e.Labels, event.FromMap(labelsOf(a.Labels))},
			{"annotations", e.Annotations, event.FromMap(annotations)},
			{"summary", e.Summary, w.summary},
			{"fingerprint", e.Fingerprint, a.Fingerprint().String()},
			{"id", e.ID, event.DeriveID(&e)},
			{"ci", e.CI, ""},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("alert %d: %s = %#v, want %#v", i, c.field, c.got, c.want)
			}
		}
	}
}

// TestDecodeWebhookFingerprintCompat checks that the fingerprint computed
// for an alert that arrives without one is Alertmanager's.
func TestDecodeWebhookFingerprintCompat(t *testing.T) {
	alerts := amAlerts()
	body := amWebhookBody(t, alerts, func(d *template.Data) {
		for i := range d.Alerts {
			d.Alerts[i].Fingerprint = ""
		}
	})
	got, errs := newTestDecoder().Decode(FormatAlertmanagerWebhook, body, testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v", errorLines(errs))
	}
	for i, a := range alerts {
		if want := a.Labels.Fingerprint().String(); got[i].Fingerprint != want {
			t.Errorf("alert %d: fingerprint %s, Alertmanager's %s", i, got[i].Fingerprint, want)
		}
	}
}

// TestDecodeWebhookIgnoresCommonLabels checks that an alert's labels are its
// own: the group's common labels are not merged in.
func TestDecodeWebhookIgnoresCommonLabels(t *testing.T) {
	alerts := amAlerts()[:1]
	body := amWebhookBody(t, alerts, func(d *template.Data) {
		d.CommonLabels["extra"] = "common"
		d.CommonAnnotations["extra"] = "common"
		d.GroupLabels["extra"] = "group"
	})
	got, errs := newTestDecoder().Decode(FormatAlertmanagerWebhook, body, testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v", errorLines(errs))
	}
	if _, ok := got[0].Labels.Lookup("extra"); ok {
		t.Errorf("labels %v include a common label", got[0].Labels)
	}
	if _, ok := got[0].Annotations.Lookup("extra"); ok {
		t.Errorf("annotations %v include a common annotation", got[0].Annotations)
	}
}

// TestDecodeAlertListCompat posts alerts in the shape of model.Alert, the
// type Alertmanager's clients marshal, and checks the status rule and the
// fingerprint against Alertmanager's.
func TestDecodeAlertListCompat(t *testing.T) {
	alerts := []model.Alert{
		{Labels: model.LabelSet{"alertname": "A", "severity": "page"}, StartsAt: testNow.Add(-time.Hour), EndsAt: testNow.Add(time.Minute), GeneratorURL: "http://p/a"},
		{Labels: model.LabelSet{"alertname": "B"}, Annotations: model.LabelSet{"description": "d"}, StartsAt: testNow.Add(-time.Hour), EndsAt: testNow.Add(-time.Minute)},
		{Labels: model.LabelSet{"alertname": "C", "zone": "eu"}},
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	got, errs := newTestDecoder().Decode(FormatAuto, body, testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v\n%s", errorLines(errs), body)
	}
	if len(got) != len(alerts) {
		t.Fatalf("got %d events, want %d", len(got), len(alerts))
	}
	for i, a := range alerts {
		e := got[i]
		wantStatus := event.Status(a.StatusAt(testNow))
		wantTime := a.StartsAt
		switch {
		case wantStatus == event.StatusResolved:
			wantTime = a.EndsAt
		case wantTime.IsZero():
			wantTime = testNow
		}
		if e.Status != wantStatus || !e.Time.Equal(wantTime) {
			t.Errorf("alert %d: %s at %v, want %s at %v", i, e.Status, e.Time, wantStatus, wantTime)
		}
		if want := a.Fingerprint().String(); e.Fingerprint != want {
			t.Errorf("alert %d: fingerprint %s, Alertmanager's %s", i, e.Fingerprint, want)
		}
		if !maps.Equal(e.Labels.Map(), labelsOf(a.Labels)) {
			t.Errorf("alert %d: labels %v, want %v", i, e.Labels, a.Labels)
		}
		if e.Source != "alertmanager-api" {
			t.Errorf("alert %d: source %q", i, e.Source)
		}
	}
}

// TestDecodeEventsCompat checks that a canonical event marshalled with
// encoding/json decodes to itself: the decoder reads the JSON names of
// event.Event and nothing else.
func TestDecodeEventsCompat(t *testing.T) {
	in := event.Event{
		ID:          "id-1",
		Time:        time.Date(2024, 5, 14, 9, 0, 0, 1, time.UTC),
		Source:      "nagios",
		Kind:        event.KindAlert,
		Status:      event.StatusResolved,
		Severity:    event.SeverityMinor,
		CI:          "ci-9",
		Labels:      event.FromMap(map[string]string{"host": "h", "service": "disk"}),
		Annotations: event.FromMap(map[string]string{"note": "n"}),
		Summary:     "s",
		Fingerprint: "f",
	}
	body, err := json.Marshal([]event.Event{in, {Time: in.Time, Labels: in.Labels}})
	if err != nil {
		t.Fatal(err)
	}
	got, errs := newTestDecoder().Decode(FormatEvents, body, testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v\n%s", errorLines(errs), body)
	}
	// encoding/json writes the zero values of the fields without omitempty
	// ("id":"", "source":"", ...), which must mean "derive it".
	second := event.Event{Time: in.Time, Labels: in.Labels}
	if err := event.Normalize(&second, NewDecoder(Limits{}, testDefaults).defaults); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, got, []event.Event{in, second})
}
