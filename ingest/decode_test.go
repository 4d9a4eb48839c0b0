package ingest

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/correlatord/correlatord/event"
)

// testNow is the clock of every test: after the fixtures' firing alerts
// started and after one of the API v2 fixture alerts ended.
var testNow = time.Date(2024, 5, 14, 10, 0, 0, 0, time.UTC)

var testDefaults = event.Defaults{Source: "test-default", Severity: "warn"}

func newTestDecoder() *Decoder { return NewDecoder(Limits{}, testDefaults) }

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "decode", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// derived fills the fields Normalize derives, the way it derives them, so
// that expectations can be written with the interesting fields only.
func derived(e event.Event) event.Event {
	if e.Fingerprint == "" {
		e.Fingerprint = event.Fingerprint(e.Labels)
	}
	if e.ID == "" {
		e.ID = event.DeriveID(&e)
	}
	return e
}

// errorLines renders errors as "index message" for comparison.
func errorLines(errs []DecodeError) []string {
	var out []string
	for i := range errs {
		out = append(out, strconv.Itoa(errs[i].Index)+" "+errs[i].Error())
	}
	return out
}

func checkEvents(t *testing.T, got, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

const nodeCPUURL = "http://prometheus-0.prod.example.net:9090/graph?g0.expr=instance%3Anode_cpu%3Aratio+%3E+0.95&g0.tab=1"

func nodeCPULabels(instance string) event.Labels {
	return event.FromMap(map[string]string{
		"alertname": "NodeHighCPU",
		"cluster":   "prod-eu-1",
		"instance":  instance,
		"job":       "node",
		"severity":  "critical",
		"team":      "infra",
	})
}

var wantWebhookEvents = []event.Event{
	derived(event.Event{
		Time:     mustTime("2024-05-14T09:12:41.123456789Z"),
		Source:   "alertmanager",
		Kind:     event.KindAlert,
		Status:   event.StatusFiring,
		Severity: event.SeverityCritical,
		Labels:   nodeCPULabels("node-07.prod.example.net:9100"),
		Annotations: event.FromMap(map[string]string{
			"description":   "CPU usage on node-07.prod.example.net:9100 has been above 95% for 10 minutes.",
			"runbook_url":   "https://runbooks.example.net/node/high-cpu",
			"summary":       "CPU above 95% on node-07",
			"generator_url": nodeCPUURL,
		}),
		Summary:     "CPU above 95% on node-07",
		Fingerprint: "971097bb2150a43f",
	}),
	derived(event.Event{
		Time:     mustTime("2024-05-14T09:14:11.5Z"),
		Source:   "alertmanager",
		Kind:     event.KindAlert,
		Status:   event.StatusFiring,
		Severity: event.SeverityCritical,
		Labels:   nodeCPULabels("node-12.prod.example.net:9100"),
		Annotations: event.FromMap(map[string]string{
			"description":   "CPU usage on node-12.prod.example.net:9100 has been above 95% for 10 minutes.",
			"runbook_url":   "https://runbooks.example.net/node/high-cpu",
			"generator_url": nodeCPUURL,
		}),
		Summary:     "CPU usage on node-12.prod.example.net:9100 has been above 95% for 10 minutes.",
		Fingerprint: "3ac9e33aba2bca7d",
	}),
	derived(event.Event{
		// Resolved: the event time is when it ended.
		Time:     mustTime("2024-05-14T09:31:26.5Z"),
		Source:   "alertmanager",
		Kind:     event.KindAlert,
		Status:   event.StatusResolved,
		Severity: event.SeverityCritical,
		Labels:   nodeCPULabels("node-03.prod.example.net:9100"),
		Annotations: event.FromMap(map[string]string{
			"runbook_url":   "https://runbooks.example.net/node/high-cpu",
			"generator_url": nodeCPUURL,
		}),
		Summary:     "NodeHighCPU",
		Fingerprint: "68d6b222f7f62e6b",
	}),
}

func TestDecodeWebhookFixture(t *testing.T) {
	data := readFixture(t, "webhook.json")
	for _, format := range []Format{FormatAlertmanagerWebhook, FormatAuto} {
		t.Run(string(format), func(t *testing.T) {
			got, errs := newTestDecoder().Decode(format, data, testNow, nil)
			if errs != nil {
				t.Fatalf("errors: %v", errorLines(errs))
			}
			checkEvents(t, got, wantWebhookEvents)
			for _, e := range got {
				// The fixture's fingerprints are Alertmanager's; ours agree.
				if fp := event.Fingerprint(e.Labels); fp != e.Fingerprint {
					t.Errorf("fingerprint %s, computed %s", e.Fingerprint, fp)
				}
			}
		})
	}
}

func TestDecodeAlertListFixture(t *testing.T) {
	const (
		crashURL  = "http://prometheus-k8s-0:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason%7Breason%3D%22CrashLoopBackOff%22%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1"
		targetURL = "http://prometheus-k8s-0:9090/graph?g0.expr=100+%2A+%28count+by%28job%2C+namespace%2C+service%29+%28up+%3D%3D+0%29%29&g0.tab=1"
	)
	want := []event.Event{
		derived(event.Event{
			// endsAt is after now: still firing, as Alertmanager sees it.
			Time:     mustTime("2024-05-14T09:40:11.287Z"),
			Source:   "alertmanager-api",
			Kind:     event.KindAlert,
			Status:   event.StatusFiring,
			Severity: event.SeverityWarning,
			Labels: event.FromMap(map[string]string{
				"alertname":  "KubePodCrashLooping",
				"container":  "api",
				"namespace":  "payments",
				"pod":        "payments-api-7d9f8b6c5-x2k4q",
				"prometheus": "monitoring/k8s",
				"severity":   "warning",
			}),
			Annotations: event.FromMap(map[string]string{
				"description":   `Pod payments/payments-api-7d9f8b6c5-x2k4q (api) is in waiting state (reason: "CrashLoopBackOff").`,
				"runbook_url":   "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
				"summary":       "Pod is crash looping.",
				"generator_url": crashURL,
			}),
			Summary: "Pod is crash looping.",
		}),
		derived(event.Event{
			// endsAt is before now: resolved at endsAt.
			Time:     mustTime("2024-05-14T09:55:11.287Z"),
			Source:   "alertmanager-api",
			Kind:     event.KindAlert,
			Status:   event.StatusResolved,
			Severity: event.SeverityWarning,
			// The empty label is dropped, as Alertmanager drops it.
			Labels: event.FromMap(map[string]string{
				"alertname":  "TargetDown",
				"job":        "kubelet",
				"namespace":  "kube-system",
				"prometheus": "monitoring/k8s",
				"service":    "kubelet",
				"severity":   "warning",
			}),
			Annotations: event.FromMap(map[string]string{
				"description":   "10% of the kubelet/kubelet targets in kube-system namespace are down.",
				"generator_url": targetURL,
			}),
			Summary: "10% of the kubelet/kubelet targets in kube-system namespace are down.",
		}),
		derived(event.Event{
			// No startsAt: it starts now.
			Time:     testNow,
			Source:   "alertmanager-api",
			Kind:     event.KindAlert,
			Status:   event.StatusFiring,
			Severity: event.SeverityInfo,
			Labels: event.FromMap(map[string]string{
				"alertname":  "Watchdog",
				"prometheus": "monitoring/k8s",
				"severity":   "none",
			}),
			Annotations: event.FromMap(map[string]string{
				"summary": "An alert that should always be firing to certify that Alertmanager is working properly.",
			}),
			Summary: "An alert that should always be firing to certify that Alertmanager is working properly.",
		}),
	}
	data := readFixture(t, "alertlist.json")
	for _, format := range []Format{FormatAlertList, FormatAuto} {
		t.Run(string(format), func(t *testing.T) {
			got, errs := newTestDecoder().Decode(format, data, testNow, nil)
			if errs != nil {
				t.Fatalf("errors: %v", errorLines(errs))
			}
			checkEvents(t, got, want)
		})
	}
}

func TestDecodeEventsFixtures(t *testing.T) {
	first := derived(event.Event{
		ID:          "evt-0001",
		Time:        mustTime("2024-05-14T09:30:00Z"),
		Source:      "zabbix",
		Kind:        event.KindAlert,
		Status:      event.StatusFiring,
		Severity:    event.SeverityMajor, // "high"
		CI:          "ci:db-17",
		Labels:      event.FromMap(map[string]string{"host": "db-17.example.net", "trigger": "Disk space is low", "severity": "high"}),
		Annotations: event.FromMap(map[string]string{"runbook": "https://runbooks.example.net/disk"}),
		Summary:     "Free disk space is below 10% on /var",
		Fingerprint: "zbx-trigger-23104",
	})
	all := []event.Event{
		first,
		derived(event.Event{
			Time:     mustTime("2024-05-14T09:31:02.25Z"), // given as 11:31:02.25+02:00
			Source:   "argocd",
			Kind:     event.KindChange,
			Status:   event.StatusFiring,
			Severity: event.SeverityWarning, // the decoder's default
			Labels:   event.FromMap(map[string]string{"app": "payments-api", "revision": "4f1c2e9"}),
			Summary:  "Synced payments-api to 4f1c2e9",
		}),
		derived(event.Event{
			Time:     mustTime("2024-05-14T09:33:00.000000001Z"),
			Source:   "test-default",
			Kind:     event.KindAlert,
			Status:   event.StatusResolved,
			Severity: event.SeverityMajor, // labels.severity "P2"
			Labels:   event.FromMap(map[string]string{"alertname": "DiskFull", "host": "db-17.example.net", "severity": "P2"}),
		}),
	}
	tests := []struct {
		file string
		want []event.Event
	}{
		{"event.json", all[:1]},
		{"events.json", all},
		{"events.jsonl", all}, // CRLF line ends, a blank line, a final newline
	}
	for _, tt := range tests {
		for _, format := range []Format{FormatEvents, FormatAuto} {
			t.Run(tt.file+"/"+string(format), func(t *testing.T) {
				got, errs := newTestDecoder().Decode(format, readFixture(t, tt.file), testNow, nil)
				if errs != nil {
					t.Fatalf("errors: %v", errorLines(errs))
				}
				checkEvents(t, got, tt.want)
				for _, e := range got {
					if e.Time.Location() != time.UTC {
						t.Errorf("time %v is not in UTC", e.Time)
					}
				}
			})
		}
	}
}

// Payload builders for the error table.

const goodLabels = `{"alertname":"A","instance":"i:9100","job":"j","severity":"critical"}`

func amAlert(fields string) string {
	return `{"status":"firing","labels":` + goodLabels + `,"annotations":{"summary":"s"},` +
		`"startsAt":"2024-05-14T09:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://p/g"` + fields + `}`
}

func webhook(alerts ...string) string {
	return `{"receiver":"r","status":"firing","alerts":[` + strings.Join(alerts, ",") +
		`],"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","version":"4","groupKey":"{}:{}","truncatedAlerts":0}`
}

// labelsJSON returns an object of n labels l0..l(n-1).
func labelsJSON(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"l` + strconv.Itoa(i) + `":"v"`)
	}
	b.WriteByte('}')
	return b.String()
}

func TestDecodeErrors(t *testing.T) {
	long := strings.Repeat("x", 8193)
	deepArrays := strings.Repeat("[", 100000)
	deepBalanced := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObjects := `{"time":"2024-05-14T09:00:00Z","labels":` + strings.Repeat(`{"a":`, 100000) + `"x"` + strings.Repeat("}", 100000) + "}"
	const ev = `"time":"2024-05-14T09:00:00Z","labels":{"a":"b"}`

	tests := []struct {
		name    string
		format  Format
		limits  Limits
		payload string
		events  int
		errs    []string
	}{
		// The payload as a whole.
		{name: "unknown format", format: "xml", payload: `{}`,
			errs: []string{`-1 unknown payload format "xml"`}},
		{name: "empty", format: FormatAuto, payload: " \r\n",
			errs: []string{`-1 empty payload`}},
		{name: "malformed JSON", format: FormatAlertmanagerWebhook, payload: "{\"version\":\"4\",\n\"alerts\":[}",
			errs: []string{`-1 malformed JSON at line 2, column 11: invalid character '}' looking for beginning of value`}},
		{name: "truncated JSON", format: FormatEvents, payload: `{"time":"2024-05-14T09:00:00Z"`,
			errs: []string{`-1 malformed JSON at line 1, column 31: unexpected end of JSON input`}},
		{name: "trailing garbage", format: FormatAlertList, payload: `[] x`,
			errs: []string{`-1 malformed JSON at line 1, column 4: invalid character 'x' after top-level value`}},
		{name: "deep arrays", format: FormatAuto, payload: deepArrays,
			errs: []string{`-1 malformed JSON: nested more than 300 levels deep`}},
		{name: "deep balanced arrays", format: FormatAlertList, payload: deepBalanced,
			errs: []string{`-1 malformed JSON: nested more than 300 levels deep`}},
		{name: "deep objects", format: FormatEvents, payload: deepObjects,
			errs: []string{`-1 malformed JSON: nested more than 300 levels deep`}},
		{name: "webhook not an object", format: FormatAlertmanagerWebhook, payload: `[]`,
			errs: []string{`-1 expected an Alertmanager webhook object, got array`}},
		{name: "alert list not an array", format: FormatAlertList, payload: `{"alerts":[]}`,
			errs: []string{`-1 expected an array of Alertmanager API v2 alerts, got object`}},
		{name: "events not an object", format: FormatEvents, payload: `"event"`,
			errs: []string{`-1 expected an event object, an array of events or JSON lines, got string`}},
		{name: "events null", format: FormatAuto, payload: `null`,
			errs: []string{`-1 expected an event object, an array of events or JSON lines, got null`}},
		{name: "wrong version", format: FormatAlertmanagerWebhook, payload: strings.Replace(webhook(amAlert("")), `"version":"4"`, `"version":"5"`, 1),
			errs: []string{`-1 version: "5" is not supported; only Alertmanager webhook version "4" is`}},
		{name: "version as number", format: FormatAlertmanagerWebhook, payload: `{"version":4,"alerts":[]}`,
			errs: []string{`-1 version: expected a string, got number`}},
		{name: "missing version", format: FormatAlertmanagerWebhook, payload: `{"alerts":[]}`,
			errs: []string{`-1 version: missing; Alertmanager webhook version "4" is required`}},
		{name: "missing alerts", format: FormatAlertmanagerWebhook, payload: `{"version":"4"}`,
			errs: []string{`-1 alerts: missing`}},
		{name: "alerts as object", format: FormatAlertmanagerWebhook, payload: `{"version":"4","alerts":{}}`,
			errs: []string{`-1 alerts: expected an array, got object`}},
		{name: "too many alerts", format: FormatAlertmanagerWebhook, limits: Limits{MaxEvents: 2},
			payload: webhook(amAlert(""), amAlert(""), amAlert("")),
			errs:    []string{`-1 alerts: 3 alerts, more than the limit of 2`}},
		{name: "too many list alerts", format: FormatAlertList, limits: Limits{MaxEvents: 1},
			payload: `[{"labels":{"a":"b"}},{"labels":{"a":"c"}}]`,
			errs:    []string{`-1 2 alerts, more than the limit of 1`}},
		{name: "too many events", format: FormatEvents, limits: Limits{MaxEvents: 1},
			payload: `[{` + ev + `},{` + ev + `}]`,
			errs:    []string{`-1 2 events, more than the limit of 1`}},
		{name: "too many lines", format: FormatEvents, limits: Limits{MaxEvents: 2},
			payload: "{" + ev + "}\n\n{" + ev + "}\n{" + ev + "}\n",
			errs:    []string{`-1 3 lines, more than the limit of 2 events`}},

		// Webhook alerts.
		{name: "labels as array", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), goodLabels, `["alertname","A"]`, 1)),
			errs:    []string{`0 alerts[0].labels: expected an object, got array`}},
		{name: "label value as number", format: FormatAlertmanagerWebhook,
			payload: webhook(amAlert(""), amAlert(""), amAlert(""), strings.Replace(amAlert(""), `"severity":"critical"`, `"severity":3`, 1)),
			events:  3,
			errs:    []string{`3 alerts[3].labels.severity: expected a string, got number`}},
		{name: "label value as boolean", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"job":"j"`, `"job":true`, 1)),
			errs:    []string{`0 alerts[0].labels.job: expected a string, got boolean`}},
		{name: "startsAt as number", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"2024-05-14T09:00:00Z"`, `1715677200`, 1)),
			errs:    []string{`0 alerts[0].startsAt: expected an RFC 3339 time string, got number`}},
		{name: "startsAt not RFC 3339", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"2024-05-14T09:00:00Z"`, `"2024-05-14 09:00:00"`, 1)),
			errs:    []string{`0 alerts[0].startsAt: "2024-05-14 09:00:00" is not an RFC 3339 time`}},
		{name: "startsAt out of range", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"2024-05-14T09:00:00Z"`, `"2024-13-14T09:00:00Z"`, 1)),
			errs:    []string{`0 alerts[0].startsAt: "2024-13-14T09:00:00Z" is not an RFC 3339 time: month out of range`}},
		{name: "invalid UTF-8 in label value", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"i:9100"`, "\"i:\xff9100\"", 1)),
			errs:    []string{`0 alerts[0].labels.instance: value is not valid UTF-8`}},
		{name: "invalid UTF-8 in label name", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"instance"`, "\"inst\xc3ance\"", 1)),
			errs:    []string{`0 alerts[0].labels: name "inst\xc3ance" is not valid UTF-8`}},
		{name: "invalid UTF-8 in annotation", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"summary":"s"`, "\"summary\":\"\xed\xa0\x80\"", 1)),
			errs:    []string{`0 alerts[0].annotations.summary: value is not valid UTF-8`}},
		{name: "invalid UTF-8 in generatorURL", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"http://p/g"`, "\"http://p/\x80\"", 1)),
			errs:    []string{`0 alerts[0].generatorURL: value is not valid UTF-8`}},
		{name: "too many labels", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), goodLabels, labelsJSON(5000), 1)),
			errs:    []string{`0 alerts[0].labels: 5000 labels, more than the limit of 128`}},
		{name: "too many annotations", format: FormatAlertmanagerWebhook, limits: Limits{MaxLabels: 4},
			payload: webhook(strings.Replace(amAlert(""), `{"summary":"s"}`, labelsJSON(5), 1)),
			errs:    []string{`0 alerts[0].annotations: 5 annotations, more than the limit of 4`}},
		{name: "annotations at the limit and a generatorURL", format: FormatAlertmanagerWebhook, limits: Limits{MaxLabels: 4},
			payload: webhook(strings.Replace(amAlert(""), `{"summary":"s"}`, labelsJSON(4), 1)),
			errs:    []string{`0 alerts[0].annotations: 4 annotations and generatorURL, more than the limit of 4`}},
		{name: "annotations at the limit and a generatorURL, API v2", format: FormatAlertList, limits: Limits{MaxLabels: 4},
			payload: `[` + strings.Replace(amAlert(""), `{"summary":"s"}`, labelsJSON(4), 1) + `]`,
			errs:    []string{`0 alerts[0].annotations: 4 annotations and generatorURL, more than the limit of 4`}},
		{name: "too long label value", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"i:9100"`, `"`+long+`"`, 1)),
			errs:    []string{`0 alerts[0].labels.instance: value is 8193 bytes, more than the limit of 8192`}},
		{name: "too long label name", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"instance"`, `"`+long+`"`, 1)),
			errs:    []string{`0 alerts[0].labels: name "` + long[:64] + `"... is 8193 bytes, more than the limit of 8192`}},
		{name: "too long annotation", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"summary":"s"`, `"runbook url":"`+long+`"`, 1)),
			errs:    []string{`0 alerts[0].annotations["runbook url"]: value is 8193 bytes, more than the limit of 8192`}},
		{name: "empty label name", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"job"`, `""`, 1)),
			errs:    []string{`0 alerts[0].labels: empty name`}},
		{name: "invalid status", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"firing"`, `"pending"`, 1)),
			errs:    []string{`0 alerts[0].status: "pending" is not one of firing, resolved`}},
		{name: "missing status", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"status":"firing",`, ``, 1)),
			errs:    []string{`0 alerts[0].status: missing; expected firing or resolved`}},
		{name: "missing labels", format: FormatAlertmanagerWebhook,
			payload: webhook(strings.Replace(amAlert(""), `"labels":`+goodLabels+`,`, ``, 1)),
			errs:    []string{`0 alerts[0].labels: an alert needs at least one label to identify it`}},
		{name: "alert not an object", format: FormatAlertmanagerWebhook,
			payload: webhook(amAlert(""), `"alert"`),
			events:  1,
			errs:    []string{`1 alerts[1]: expected an object, got string`}},
		{name: "one bad alert among good ones", format: FormatAlertmanagerWebhook,
			payload: webhook(amAlert(""), amAlert(`,"labels":{"alertname":"B","severity":"nope"},"fingerprint":7`), amAlert(""), strings.Replace(amAlert(""), `"labels":`+goodLabels, `"labels":{"alertname":"C"}`, 1)),
			events:  3,
			errs:    []string{`1 alerts[1].fingerprint: expected a string, got number`}},

		// API v2 alert lists.
		{name: "list: missing labels", format: FormatAlertList,
			payload: `[{"labels":{"a":"b"}},{"annotations":{"summary":"s"}},{"labels":{}},{"labels":{"a":""}}]`,
			events:  1,
			errs: []string{
				`1 alerts[1].labels: an alert needs at least one label to identify it`,
				`2 alerts[2].labels: an alert needs at least one label to identify it`,
				`3 alerts[3].labels: an alert needs at least one label to identify it`,
			}},
		{name: "list: labels as array", format: FormatAlertList, payload: `[{"labels":["a","b"]}]`,
			errs: []string{`0 alerts[0].labels: expected an object, got array`}},
		{name: "list: element not an object", format: FormatAlertList, payload: `[{"labels":{"a":"b"}},1]`,
			events: 1,
			errs:   []string{`1 alerts[1]: expected an object, got number`}},
		{name: "list: endsAt before startsAt", format: FormatAlertList,
			payload: `[{"labels":{"a":"b"},"startsAt":"2024-05-14T09:00:00Z","endsAt":"2024-05-14T08:00:00Z"}]`,
			errs:    []string{`0 alerts[0].endsAt: 2024-05-14T08:00:00Z is before startsAt 2024-05-14T09:00:00Z`}},
		{name: "list: endsAt as object", format: FormatAlertList,
			payload: `[{"labels":{"a":"b"},"endsAt":{}}]`,
			errs:    []string{`0 alerts[0].endsAt: expected an RFC 3339 time string, got object`}},

		// Canonical events.
		{name: "unknown field", format: FormatEvents, payload: `{` + ev + `,"sevrity":"critical"}`,
			errs: []string{`0 sevrity: unknown field; the fields of an event are id, time, source, kind, status, severity, ci, labels, annotations, summary, fingerprint`}},
		{name: "unknown field, odd name", format: FormatEvents, payload: `{` + ev + `,"Sev rity":"critical"}`,
			errs: []string{`0 "Sev rity": unknown field; the fields of an event are id, time, source, kind, status, severity, ci, labels, annotations, summary, fingerprint`}},
		{name: "field names are case sensitive", format: FormatEvents, payload: `{` + ev + `,"Summary":"x"}`,
			errs: []string{`0 Summary: unknown field; the fields of an event are id, time, source, kind, status, severity, ci, labels, annotations, summary, fingerprint`}},
		{name: "missing time", format: FormatEvents, payload: `{"labels":{"a":"b"}}`,
			errs: []string{`0 time: missing: every event needs its event time (RFC 3339)`}},
		{name: "null time", format: FormatEvents, payload: `{"time":null,"labels":{"a":"b"}}`,
			errs: []string{`0 time: missing: every event needs its event time (RFC 3339)`}},
		{name: "zero time", format: FormatEvents, payload: `{"time":"0001-01-01T00:00:00Z","labels":{"a":"b"}}`,
			errs: []string{`0 time: missing: every event needs its event time (RFC 3339)`}},
		{name: "time as number", format: FormatEvents, payload: `{"time":1715677200,"labels":{"a":"b"}}`,
			errs: []string{`0 time: expected an RFC 3339 time string, got number`}},
		{name: "time without zone", format: FormatEvents, payload: `{"time":"2024-05-14T09:00:00","labels":{"a":"b"}}`,
			errs: []string{`0 time: "2024-05-14T09:00:00" is not an RFC 3339 time`}},
		{name: "year -1 in UTC", format: FormatEvents, payload: `{"time":"0000-01-01T00:00:00+01:00","labels":{"a":"b"}}`,
			errs: []string{`0 time: "0000-01-01T00:00:00+01:00" is outside the years 0000 to 9999 in UTC`}},
		{name: "year 10000 in UTC", format: FormatEvents, payload: `{"time":"9999-12-31T23:00:00-01:30","labels":{"a":"b"}}`,
			errs: []string{`0 time: "9999-12-31T23:00:00-01:30" is outside the years 0000 to 9999 in UTC`}},
		{name: "missing labels", format: FormatEvents, payload: `{"time":"2024-05-14T09:00:00Z"}`,
			errs: []string{`0 labels: an alert needs at least one label to identify it`}},
		{name: "labels as array", format: FormatEvents, payload: `{"time":"2024-05-14T09:00:00Z","labels":[]}`,
			errs: []string{`0 labels: expected an object, got array`}},
		{name: "null label value", format: FormatEvents, payload: `{"time":"2024-05-14T09:00:00Z","labels":{"a":null}}`,
			errs: []string{`0 labels.a: expected a string, got null`}},
		{name: "invalid status", format: FormatEvents, payload: `{` + ev + `,"status":"open"}`,
			errs: []string{`0 status: "open" is not one of firing, resolved`}},
		{name: "invalid kind", format: FormatEvents, payload: `{` + ev + `,"kind":"metric"}`,
			errs: []string{`0 kind: "metric" is not one of alert, log, change`}},
		{name: "invalid severity", format: FormatEvents, payload: `{` + ev + `,"severity":"urgent"}`,
			errs: []string{`0 severity: "urgent" is not one of critical, major, minor, warning, info`}},
		{name: "severity as number", format: FormatEvents, payload: `{` + ev + `,"severity":1}`,
			errs: []string{`0 severity: expected a string, got number`}},
		{name: "invalid UTF-8 in summary", format: FormatEvents, payload: `{` + ev + ",\"summary\":\"\xff\"}",
			errs: []string{`0 summary: value is not valid UTF-8`}},
		{name: "too long summary", format: FormatEvents, payload: `{` + ev + `,"summary":"` + long + `"}`,
			errs: []string{`0 summary: value is 8193 bytes, more than the limit of 8192`}},
		{name: "too many labels", format: FormatEvents, payload: `{"time":"2024-05-14T09:00:00Z","labels":` + labelsJSON(5000) + `}`,
			errs: []string{`0 labels: 5000 labels, more than the limit of 128`}},
		{name: "array: one bad event among good ones", format: FormatEvents,
			payload: `[{` + ev + `},{` + ev + `,"kind":"metric"},{` + ev + `},42]`,
			events:  2,
			errs:    []string{`1 events[1].kind: "metric" is not one of alert, log, change`, `3 events[3]: expected an object, got number`}},
		{name: "JSON lines: bad lines among good ones", format: FormatEvents,
			payload: "{" + ev + "}\r\n\r\n{" + ev + ",\"sevrity\":\"x\"}\r\n{" + ev + "}\r\n{\"time\":\r\n[1]\n{" + ev + "}",
			events:  3,
			errs: []string{
				`3 line 3: sevrity: unknown field; the fields of an event are id, time, source, kind, status, severity, ci, labels, annotations, summary, fingerprint`,
				`5 line 5: malformed JSON at column 9: unexpected end of JSON input`,
				`6 line 6: expected an object, got array`,
			}},
		{name: "pretty-printed object with a syntax error", format: FormatEvents,
			payload: "{\n  \"time\": \"2024-05-14T09:00:00Z\",\n  \"labels\": {\"a\": \"b\"},\n}\n",
			errs:    []string{`-1 malformed JSON at line 4, column 1: invalid character '}' looking for beginning of object key string`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.limits, testDefaults)
			got, errs := d.Decode(tt.format, []byte(tt.payload), testNow, nil)
			if len(got) != tt.events {
				t.Errorf("got %d events, want %d", len(got), tt.events)
			}
			if gotErrs := errorLines(errs); !reflect.DeepEqual(gotErrs, tt.errs) {
				t.Errorf("errors:\n got %q\nwant %q", gotErrs, tt.errs)
			}
			for i := range errs {
				err := &errs[i]
				if !errors.Is(err, event.ErrInvalid) {
					t.Errorf("%v does not wrap event.ErrInvalid", err)
				}
				var fe *event.FieldError
				if !errors.As(err, &fe) {
					t.Errorf("%v does not wrap an *event.FieldError", err)
				} else if want := strings.SplitN(tt.errs[i], " ", 2)[1]; fe.Field != "" && !strings.HasPrefix(want, fe.Field+": ") {
					t.Errorf("FieldError.Field = %q, not the start of %q", fe.Field, want)
				}
			}
		})
	}
}

func TestDecodeFieldErrorPath(t *testing.T) {
	payload := webhook(amAlert(""), strings.Replace(amAlert(""), `"severity":"critical"`, `"severity":3`, 1))
	_, errs := newTestDecoder().Decode(FormatAlertmanagerWebhook, []byte(payload), testNow, nil)
	if len(errs) != 1 {
		t.Fatalf("errors: %v", errorLines(errs))
	}
	var fe *event.FieldError
	if !errors.As(&errs[0], &fe) {
		t.Fatal("no FieldError")
	}
	if fe.Field != "alerts[1].labels.severity" || fe.Msg != "expected a string, got number" {
		t.Errorf("FieldError = %+v", fe)
	}
}

func TestDecodeWebhookTimes(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		wantTime time.Time
	}{
		{"firing at startsAt", ``, mustTime("2024-05-14T09:00:00Z")},
		{"firing without startsAt starts now", `,"startsAt":"0001-01-01T00:00:00Z"`, testNow},
		{"firing with null startsAt starts now", `,"startsAt":null`, testNow},
		{"resolved at endsAt", `,"status":"resolved","endsAt":"2024-05-14T09:20:00.5+01:00"`, mustTime("2024-05-14T08:20:00.5Z")},
		{"resolved without endsAt at startsAt", `,"status":"resolved"`, mustTime("2024-05-14T09:00:00Z")},
		{"resolved without either now", `,"status":"resolved","startsAt":null,"endsAt":null`, testNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Later duplicates of a key win, as with encoding/json.
			got, errs := newTestDecoder().Decode(FormatAlertmanagerWebhook, []byte(webhook(amAlert(tt.fields))), testNow, nil)
			if errs != nil {
				t.Fatalf("errors: %v", errorLines(errs))
			}
			if !got[0].Time.Equal(tt.wantTime) || got[0].Time.Location() != time.UTC {
				t.Errorf("time = %v, want %v in UTC", got[0].Time, tt.wantTime)
			}
		})
	}
}

func TestDecodeWebhookFingerprint(t *testing.T) {
	computed := event.Fingerprint(event.FromMap(map[string]string{"alertname": "A", "instance": "i:9100", "job": "j", "severity": "critical"}))
	tests := []struct {
		given, want string
	}{
		{`,"fingerprint":"0123456789abcdef"`, "0123456789abcdef"},
		{`,"fingerprint":"0123456789ABCDEF"`, "0123456789abcdef"},
		{`,"fingerprint":""`, computed},
		{`,"fingerprint":"0123456789abcdeg"`, computed},
		{`,"fingerprint":"0123456789abcde"`, computed},
		{``, computed},
	}
	for _, tt := range tests {
		got, errs := newTestDecoder().Decode(FormatAlertmanagerWebhook, []byte(webhook(amAlert(tt.given))), testNow, nil)
		if errs != nil {
			t.Fatalf("%s: errors: %v", tt.given, errorLines(errs))
		}
		if got[0].Fingerprint != tt.want {
			t.Errorf("%s: fingerprint %q, want %q", tt.given, got[0].Fingerprint, tt.want)
		}
	}
}

func TestDecodeAlertListStatus(t *testing.T) {
	tests := []struct {
		fields     string
		wantStatus event.Status
		wantTime   time.Time
	}{
		{``, event.StatusFiring, testNow},
		{`,"startsAt":"2024-05-14T09:00:00Z"`, event.StatusFiring, mustTime("2024-05-14T09:00:00Z")},
		{`,"startsAt":"2024-05-14T09:00:00Z","endsAt":"2024-05-14T10:00:00.000000001Z"`, event.StatusFiring, mustTime("2024-05-14T09:00:00Z")},
		// An end time equal to now has passed: Alertmanager's rule is !endsAt.After(now).
		{`,"startsAt":"2024-05-14T09:00:00Z","endsAt":"2024-05-14T10:00:00Z"`, event.StatusResolved, testNow},
		{`,"endsAt":"2024-05-14T09:30:00Z"`, event.StatusResolved, mustTime("2024-05-14T09:30:00Z")},
		{`,"endsAt":"0001-01-01T00:00:00Z"`, event.StatusFiring, testNow},
		// A status field is not part of a postable alert: ignored.
		{`,"status":"resolved"`, event.StatusFiring, testNow},
	}
	for _, tt := range tests {
		payload := `[{"labels":{"alertname":"A"}` + tt.fields + `}]`
		got, errs := newTestDecoder().Decode(FormatAlertList, []byte(payload), testNow, nil)
		if errs != nil {
			t.Fatalf("%s: errors: %v", payload, errorLines(errs))
		}
		if got[0].Status != tt.wantStatus || !got[0].Time.Equal(tt.wantTime) {
			t.Errorf("%s: status %s at %v, want %s at %v", payload, got[0].Status, got[0].Time, tt.wantStatus, tt.wantTime)
		}
	}
}

func TestDecodeCanonicalNulls(t *testing.T) {
	payload := `{"id":null,"time":"2024-05-14T09:00:00.5-07:00","source":null,"kind":null,"status":null,"severity":null,"ci":null,"labels":{"a":"b"},"annotations":null,"summary":null,"fingerprint":null}`
	got, errs := newTestDecoder().Decode(FormatEvents, []byte(payload), testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v", errorLines(errs))
	}
	want := derived(event.Event{
		Time:     mustTime("2024-05-14T16:00:00.5Z"),
		Source:   "test-default",
		Kind:     event.KindAlert,
		Status:   event.StatusFiring,
		Severity: event.SeverityWarning,
		Labels:   event.FromMap(map[string]string{"a": "b"}),
	})
	checkEvents(t, got, []event.Event{want})
}

func TestDecodeAppendsToDst(t *testing.T) {
	d := newTestDecoder()
	dst := make([]event.Event, 1, 8)
	dst[0].ID = "earlier"
	got, errs := d.Decode(FormatAlertmanagerWebhook, readFixture(t, "webhook.json"), testNow, dst)
	if errs != nil {
		t.Fatalf("errors: %v", errorLines(errs))
	}
	if len(got) != 4 || got[0].ID != "earlier" {
		t.Fatalf("got %d events starting with %q; want the earlier one and 3 more", len(got), got[0].ID)
	}
	// A rejected payload leaves dst as it was.
	got, errs = d.Decode(FormatAlertmanagerWebhook, []byte(`{`), testNow, got)
	if len(got) != 4 || len(errs) != 1 {
		t.Fatalf("got %d events and %d errors, want 4 and 1", len(got), len(errs))
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		payload string
		want    Format
	}{
		{string(readFixture(t, "webhook.json")), FormatAlertmanagerWebhook},
		{string(readFixture(t, "alertlist.json")), FormatAlertList},
		{string(readFixture(t, "event.json")), FormatEvents},
		{string(readFixture(t, "events.json")), FormatEvents},
		{string(readFixture(t, "events.jsonl")), FormatEvents},
		{`{"alerts":[],"version":"4"}`, FormatAlertmanagerWebhook},
		{`{"alerts":[]}`, FormatEvents},               // no version: not a webhook
		{`{"alerts":{},"version":"4"}`, FormatEvents}, // alerts not an array
		{`[{"labels":{},"generatorURL":"x"}]`, FormatAlertList},
		{`[{"labels":{},"endsAt":"x"}]`, FormatAlertList},
		{`[{"labels":{},"startsAt":"x","time":"x"}]`, FormatEvents}, // has a time: canonical
		{`[{"labels":{}}]`, FormatEvents},
		{`[]`, FormatEvents},
		{`[1]`, FormatEvents},
		{`"x"`, FormatEvents},
		{`{`, FormatEvents},
	}
	d := newTestDecoder()
	for _, tt := range tests {
		if got := d.DetectFormat([]byte(tt.payload)); got != tt.want {
			t.Errorf("DetectFormat(%.40q) = %s, want %s", tt.payload, got, tt.want)
		}
	}
}

// TestDecodeReuse decodes with one Decoder again and again: results must not
// depend on what it decoded before, and must not change when it decodes
// more. fastjson parses into a buffer the Parser reuses, so a string that
// aliased it would be overwritten by the next payload.
func TestDecodeReuse(t *testing.T) {
	fixtures := []struct {
		format Format
		file   string
	}{
		{FormatAlertmanagerWebhook, "webhook.json"},
		{FormatAlertList, "alertlist.json"},
		{FormatEvents, "events.json"},
		{FormatEvents, "events.jsonl"},
	}
	// The expected results come from fresh decoders, one per payload.
	var want [][]event.Event
	for _, f := range fixtures {
		got, errs := newTestDecoder().Decode(f.format, readFixture(t, f.file), testNow, nil)
		if errs != nil {
			t.Fatalf("%s: %v", f.file, errorLines(errs))
		}
		want = append(want, got)
	}

	d := newTestDecoder()
	var kept [][]event.Event
	for round := range 3 {
		for i, f := range fixtures {
			data := readFixture(t, f.file)
			got, errs := d.Decode(f.format, data, testNow, nil)
			if errs != nil {
				t.Fatalf("%s: %v", f.file, errorLines(errs))
			}
			// Scribble over the input: the events must not alias it either.
			for j := range data {
				data[j] = '#'
			}
			if round == 0 {
				kept = append(kept, got)
			}
			checkEvents(t, got, want[i])
		}
		// Payloads of the same size as the fixtures but other contents, to
		// overwrite the parser's buffer in place.
		for _, f := range fixtures {
			data := readFixture(t, f.file)
			for j, c := range data {
				if 'a' <= c && c <= 'z' {
					data[j] = 'a' + (c-'a'+1)%26
				}
			}
			d.Decode(f.format, data, testNow, nil)
		}
	}
	for i := range fixtures {
		checkEvents(t, kept[i], want[i])
	}
}

func TestNewDecoderDefaults(t *testing.T) {
	tests := []struct {
		given event.Defaults
		want  event.Defaults
	}{
		{event.Defaults{}, event.DefaultDefaults},
		{event.Defaults{Source: "s", Severity: "page"}, event.Defaults{Source: "s", Severity: event.SeverityCritical}},
		{event.Defaults{Source: "s", Severity: "bogus"}, event.Defaults{Source: "s", Severity: event.DefaultDefaults.Severity}},
	}
	for _, tt := range tests {
		if got := NewDecoder(Limits{}, tt.given).defaults; got != tt.want {
			t.Errorf("NewDecoder(%+v) defaults = %+v, want %+v", tt.given, got, tt.want)
		}
	}
	if got := NewDecoder(Limits{MaxLabels: -1}, event.Defaults{}).limits; got != DefaultLimits {
		t.Errorf("limits = %+v, want %+v", got, DefaultLimits)
	}
}

func TestDecodeEscapes(t *testing.T) {
	payload := `{"time":"2024-05-14T09:00:00Z","labels":{"h\u00f4te":"caf\u00e9\n\"q\"","emoji":"\ud83d\ude00","lone":"\ud800x","raw":"ünï ✓"},` +
		`"summ\u0061ry":"tab\there"}`
	got, errs := newTestDecoder().Decode(FormatEvents, []byte(payload), testNow, nil)
	if errs != nil {
		t.Fatalf("errors: %v", errorLines(errs))
	}
	// fastjson keeps the lone surrogate as written (see Decoder).
	want := event.FromMap(map[string]string{"hôte": "café\n\"q\"", "emoji": "😀", "lone": `\ud800x`, "raw": "ünï ✓"})
	if !reflect.DeepEqual(got[0].Labels, want) {
		t.Errorf("labels = %q, want %q", got[0].Labels, want)
	}
	if got[0].Summary != "tab\there" {
		t.Errorf("summary = %q", got[0].Summary)
	}
}

// TestDecodeAlertListFingerprint checks the fingerprint and id the decoder
// computes from its buffer against event.Fingerprint and event.DeriveID,
// including the cases it leaves to them: a name that repeats (the last
// value wins), a value longer than packMax, and more than maxSortedLabels
// labels.
func TestDecodeAlertListFingerprint(t *testing.T) {
	many := make([]string, maxSortedLabels+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"l%03d":"v%d"`, len(many)-i, i)
	}
	tests := map[string]struct {
		labels string
		want   map[string]string
	}{
		"sorted on the stack": {`{"zone":"eu","alertname":"A","a":"","instance":"h:9100"}`,
			map[string]string{"zone": "eu", "alertname": "A", "instance": "h:9100"}},
		"name repeats":   {`{"b":"1","a":"2","b":"3"}`, map[string]string{"a": "2", "b": "3"}},
		"long value":     {`{"a":"` + strings.Repeat("x", packMax+1) + `"}`, map[string]string{"a": strings.Repeat("x", packMax+1)}},
		"many labels":    {`{` + strings.Join(many, ",") + `}`, nil},
		"unicode, bytes": {`{"\u00e9":"\ud83d\ude00","b\u00ff":"\u0000"}`, map[string]string{"é": "😀", "bÿ": "\x00"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			body := []byte(`[{"labels":` + tt.labels + `,"startsAt":"2024-05-14T10:00:00Z"}]`)
			got, errs := NewDecoder(DefaultLimits, testDefaults).Decode(FormatAlertList, body, testNow, nil)
			if len(errs) > 0 || len(got) != 1 {
				t.Fatalf("got %d events, errors %v", len(got), errorLines(errs))
			}
			e := got[0]
			if tt.want != nil {
				if !maps.Equal(e.Labels.Map(), tt.want) {
					t.Fatalf("labels %v, want %v", e.Labels, tt.want)
				}
			}
			if want := event.Fingerprint(e.Labels); e.Fingerprint != want {
				t.Errorf("fingerprint %s, want %s", e.Fingerprint, want)
			}
			ls := make(model.LabelSet, len(e.Labels))
			for _, l := range e.Labels {
				ls[model.LabelName(l.Name)] = model.LabelValue(l.Value)
			}
			if want := ls.Fingerprint().String(); e.Fingerprint != want {
				t.Errorf("fingerprint %s, Alertmanager's %s", e.Fingerprint, want)
			}
			if want := event.DeriveID(&e); e.ID != want {
				t.Errorf("id %s, want %s", e.ID, want)
			}
		})
	}
}

// TestGeneratorURLWithinAnnotationLimit: the generator URL is an
// annotation of the event, counted by its limit: at the limit, an alert
// whose annotations already name it is accepted (the URL replaces it), and
// the event then decodes from the keyed topic too.
func TestGeneratorURLWithinAnnotationLimit(t *testing.T) {
	limits := Limits{MaxLabels: 4}
	d := NewDecoder(limits, event.DefaultDefaults)
	annotations := `{"generator_url":"old","a":"1","b":"2","c":"3"}`
	evs, errs := d.Decode(FormatAlertmanagerWebhook, []byte(webhook(strings.Replace(amAlert(""), `{"summary":"s"}`, annotations, 1))), time.Now(), nil)
	if len(errs) > 0 || len(evs) != 1 {
		t.Fatalf("decode: %d events, %v", len(evs), errs)
	}
	if got := evs[0].Annotations.Get(generatorURLAnnotation); got != "http://p/g" || len(evs[0].Annotations) != 4 {
		t.Fatalf("annotations %v: want 4 with generator_url the alert's URL", evs[0].Annotations)
	}
	if _, errs := d.DecodeKeyed(AppendKeyedBatchEvent(AppendKeyedBatchHeader(nil), &evs[0]), time.Now(), nil); len(errs) > 0 {
		t.Fatalf("the event does not decode from the keyed topic: %v", errs)
	}
}
