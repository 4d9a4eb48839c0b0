package ingest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/correlatord/correlatord/event"
)

const benchAlerts = 100

// benchAlert returns the i-th of a realistic run of alerts: six labels
// (alertname, instance, job, severity and two more), two annotations, a
// generator URL and Alertmanager's timestamps; one in four has resolved.
func benchAlert(i int) template.Alert {
	labels := template.KV{
		"alertname": []string{"NodeHighCPU", "NodeFilesystemAlmostFull", "KubePodCrashLooping", "TargetDown"}[i%4],
		"instance":  fmt.Sprintf("node-%03d.prod.example.net:9100", i),
		"job":       "node-exporter",
		"severity":  []string{"critical", "warning"}[i%2],
		"cluster":   "prod-eu-1",
		"team":      "infra",
	}
	a := template.Alert{
		Status: "firing",
		Labels: labels,
		Annotations: template.KV{
			"summary":     "Host " + labels["instance"] + " needs attention",
			"description": "The condition has held for more than 10 minutes on " + labels["instance"] + ".",
		},
		StartsAt:     time.Date(2024, 5, 14, 9, 0, i%60, i*1234567, time.UTC),
		GeneratorURL: "http://prometheus-0.prod.example.net:9090/graph?g0.expr=instance%3Anode_cpu%3Aratio+%3E+0.95&g0.tab=1",
		Fingerprint:  model.LabelSet{"instance": model.LabelValue(labels["instance"])}.Fingerprint().String(),
	}
	if i%4 == 3 {
		a.Status = "resolved"
		a.EndsAt = a.StartsAt.Add(17 * time.Minute)
	}
	return a
}

func benchWebhook(tb testing.TB) []byte {
	data := &template.Data{
		Receiver:          "correlatord",
		Status:            "firing",
		GroupLabels:       template.KV{"cluster": "prod-eu-1"},
		CommonLabels:      template.KV{"cluster": "prod-eu-1", "team": "infra"},
		CommonAnnotations: template.KV{},
		ExternalURL:       "http://alertmanager-0.prod.example.net:9093",
	}
	for i := range benchAlerts {
		data.Alerts = append(data.Alerts, benchAlert(i))
	}
	body, err := json.Marshal(&webhookMessage{Data: data, Version: "4", GroupKey: `{}:{cluster="prod-eu-1"}`})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func benchAlertList(tb testing.TB) []byte {
	type postable struct {
		Labels       template.KV `json:"labels"`
		Annotations  template.KV `json:"annotations"`
		StartsAt     time.Time   `json:"startsAt"`
		EndsAt       time.Time   `json:"endsAt"`
		GeneratorURL string      `json:"generatorURL"`
	}
	var list []postable
	for i := range benchAlerts {
		a := benchAlert(i)
		// Prometheus sends an end time a few evaluation intervals ahead.
		if a.EndsAt.IsZero() {
			a.EndsAt = testNow.Add(4 * time.Minute)
		}
		list = append(list, postable{a.Labels, a.Annotations, a.StartsAt, a.EndsAt, a.GeneratorURL})
	}
	body, err := json.Marshal(list)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func benchEventLines(tb testing.TB) []byte {
	var body []byte
	for i := range benchAlerts {
		a := benchAlert(i)
		e := event.Event{
			Time:        a.StartsAt,
			Source:      "zabbix",
			Status:      event.Status(a.Status),
			CI:          "ci:" + a.Labels["instance"],
			Labels:      event.FromMap(a.Labels),
			Annotations: event.FromMap(a.Annotations),
			Summary:     a.Annotations["summary"],
		}
		line, err := json.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		body = append(append(body, line...), '\n')
	}
	return body
}

// benchDecode decodes data again and again with one Decoder and reports,
// besides the usual, alerts decoded per second of wall time and per second
// of CPU time.
func benchDecode(b *testing.B, format Format, data []byte) {
	d := NewDecoder(Limits{}, event.DefaultDefaults)
	var events []event.Event
	var errs []DecodeError
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	cpu := cpuTime()
	for b.Loop() {
		// Reuse the slice, as the Kafka consumer does.
		events, errs = d.Decode(format, data, testNow, events[:0])
	}
	cpu = cpuTime() - cpu
	if len(events) != benchAlerts || errs != nil {
		b.Fatalf("decoded %d events, errors %v", len(events), errorLines(errs))
	}
	alerts := float64(b.N) * benchAlerts
	b.ReportMetric(alerts/b.Elapsed().Seconds(), "alerts/s")
	if cpu > 0 {
		b.ReportMetric(alerts/cpu.Seconds(), "alerts/cpu-s")
	}
}

// BenchmarkDecodeWebhook decodes a webhook notification of 100 alerts, as
// Alertmanager's webhook notifier marshals it. Run it with -cpu 1: the target
// is 300k alerts/s on one core.
func BenchmarkDecodeWebhook(b *testing.B) { benchDecode(b, FormatAlertmanagerWebhook, benchWebhook(b)) }

func BenchmarkDecodeAlertList(b *testing.B) { benchDecode(b, FormatAlertList, benchAlertList(b)) }

func BenchmarkDecodeEventsJSONLines(b *testing.B) { benchDecode(b, FormatEvents, benchEventLines(b)) }

// BenchmarkDecodeWebhookStdlib is the yardstick for BenchmarkDecodeWebhook:
// the same payload decoded with encoding/json into Alertmanager's own types,
// then mapped to events the same way. It shows what fastjson buys, measured
// on the same machine at the same time.
func BenchmarkDecodeWebhookStdlib(b *testing.B) {
	data := benchWebhook(b)
	events := make([]event.Event, 0, benchAlerts)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var msg webhookMessage
		if err := json.Unmarshal(data, &msg); err != nil {
			b.Fatal(err)
		}
		events = events[:0]
		for _, a := range msg.Alerts {
			e := event.Event{
				Time:        a.StartsAt,
				Source:      SourceAlertmanager,
				Status:      event.Status(a.Status),
				Labels:      event.FromMap(a.Labels),
				Annotations: event.FromMap(a.Annotations),
				Fingerprint: a.Fingerprint,
			}
			if e.Status == event.StatusResolved {
				e.Time = a.EndsAt
			}
			e.Annotations = e.Annotations.Set(generatorURLAnnotation, a.GeneratorURL)
			e.Summary = summary(e.Labels, e.Annotations)
			if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
				b.Fatal(err)
			}
			events = append(events, e)
		}
	}
	b.ReportMetric(float64(b.N)*benchAlerts/b.Elapsed().Seconds(), "alerts/s")
}
