package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

type recordingForwarder struct {
	events []event.Event
	err    error
}

func (f *recordingForwarder) Forward(_ context.Context, events []event.Event) error {
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, events...)
	return nil
}

var httpNow = time.Date(2026, 11, 2, 10, 5, 0, 0, time.UTC)

func newTestHTTP(fwd Forwarder, token string) (*HTTPHandler, *http.ServeMux, *Metrics) {
	m := NewMetrics(prometheus.NewRegistry())
	h := NewHTTPHandler(HTTPOptions{
		MaxBodyBytes: 4096,
		Timeout:      time.Second,
		Policy:       Policy{MaxEventAge: 24 * time.Hour, MaxFutureSkew: time.Hour},
		Defaults:     event.DefaultDefaults,
		Now:          func() time.Time { return httpNow },
	}, fwd, token, m, zap.NewNop())
	mux := http.NewServeMux()
	h.Register(mux)
	return h, mux, m
}

func post(mux http.Handler, path, body string, hdr map[string]string) (*httptest.ResponseRecorder, response) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var resp response
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec, resp
}

const webhookBody = `{"version":"4","groupKey":"{}:{instance=\"db-01\"}","truncatedAlerts":0,"status":"firing","receiver":"correlatord",
"groupLabels":{"instance":"db-01"},"commonLabels":{"instance":"db-01"},"commonAnnotations":{},"externalURL":"http://am:9093",
"alerts":[{"status":"firing","labels":{"alertname":"DatabaseDown","instance":"db-01","severity":"critical"},"annotations":{"summary":"db down"},
"startsAt":"2026-11-02T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"0123456789abcdef"},
{"status":"resolved","labels":{"alertname":"DiskFull","instance":"db-01"},"annotations":{},"startsAt":"2026-11-02T09:00:00Z","endsAt":"2026-11-02T10:01:00Z"}]}`

func TestHTTPAcceptsAlertmanagerWebhook(t *testing.T) {
	fwd := &recordingForwarder{}
	_, mux, m := newTestHTTP(fwd, "")
	rec, resp := post(mux, "/api/v1/alerts", webhookBody, nil)
	if rec.Code != http.StatusOK || resp.Accepted != 2 {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	if len(fwd.events) != 2 || fwd.events[0].Severity != event.SeverityCritical || fwd.events[1].Status != event.StatusResolved {
		t.Errorf("forwarded %+v", fwd.events)
	}
	if got := testutil.ToFloat64(m.eventsReceived.WithLabelValues(TransportHTTP, "alertmanager", "alert")); got != 2 {
		t.Errorf("received counter = %v", got)
	}
}

func TestHTTPErrors(t *testing.T) {
	cases := []struct {
		name, path, body string
		hdr              map[string]string
		method           string
		code             int
		want             string
		accepted         int
	}{
		{name: "malformed json", path: "/api/v1/events", body: `{"time":`, code: 400, want: "JSON"},
		{name: "wrong webhook version", path: "/api/v1/alerts", body: `{"version":"3","alerts":[]}`, code: 400, want: "version"},
		{name: "too large", path: "/api/v1/events", body: strings.Repeat(" ", 5000), code: 413, want: "max_body_bytes"},
		{name: "wrong method", path: "/api/v1/events", method: http.MethodGet, code: 405, want: "POST"},
		{name: "time far in the past", path: "/api/v1/events", body: `{"time":"2001-01-01T00:00:00Z","labels":{"a":"b"}}`, code: 400, want: "before the receiving clock"},
		{name: "time far in the future", path: "/api/v1/events", body: `{"time":"2031-01-01T00:00:00Z","labels":{"a":"b"}}`, code: 400, want: "after the receiving clock"},
		{name: "one bad among good", path: "/api/v1/events",
			body: `[{"time":"2026-11-02T10:00:00Z","labels":{"a":"b"}},{"time":"2026-11-02T10:00:00Z","labels":{"a":1}}]`,
			code: 400, want: "1 of 2 items rejected; the other 1 were accepted", accepted: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fwd := &recordingForwarder{}
			_, mux, _ := newTestHTTP(fwd, "")
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tc.path, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("body %s does not contain %q", rec.Body, tc.want)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("error body is not JSON")
			}
			if len(fwd.events) != tc.accepted {
				t.Errorf("forwarded %d events, want %d", len(fwd.events), tc.accepted)
			}
		})
	}
}

func TestHTTPBearerToken(t *testing.T) {
	fwd := &recordingForwarder{}
	h, mux, _ := newTestHTTP(fwd, "s3cret")
	body := `{"time":"2026-11-02T10:00:00Z","labels":{"a":"b"}}`
	for hdr, want := range map[string]int{"": 401, "Bearer wrong": 401, "Basic s3cret": 401, "Bearer s3cret": 200} {
		rec, _ := post(mux, "/api/v1/events", body, map[string]string{"Authorization": hdr})
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", hdr, rec.Code, want)
		}
		if strings.Contains(rec.Body.String(), "s3cret") {
			t.Error("the token is echoed in a response")
		}
	}
	h.SetToken("rotated")
	if rec, _ := post(mux, "/api/v1/events", body, map[string]string{"Authorization": "Bearer s3cret"}); rec.Code != 401 {
		t.Errorf("old token still accepted after rotation: %d", rec.Code)
	}
	if len(fwd.events) != 1 {
		t.Errorf("forwarded %d events, want 1 (only the authorised request)", len(fwd.events))
	}
}

func TestHTTPUnavailableForwarderGives503(t *testing.T) {
	_, mux, _ := newTestHTTP(&recordingForwarder{err: ErrUnavailable}, "")
	rec, _ := post(mux, "/api/v1/events", `{"time":"2026-11-02T10:00:00Z","labels":{"a":"b"}}`, nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code %d, want 503 so that Alertmanager retries", rec.Code)
	}
}

type fakeWriter struct {
	msgs []kafka.Message
	err  error
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	if w.err != nil {
		return w.err
	}
	w.msgs = append(w.msgs, msgs...)
	return nil
}

func TestKafkaForwarderKeysByFingerprint(t *testing.T) {
	w := &fakeWriter{}
	f := &KafkaForwarder{Writer: w, Metrics: NewMetrics(prometheus.NewRegistry())}
	ev := event.Event{Time: httpNow, Labels: event.FromMap(map[string]string{"alertname": "A"})}
	if err := event.Normalize(&ev, event.DefaultDefaults); err != nil {
		t.Fatal(err)
	}
	if err := f.Forward(context.Background(), []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if len(w.msgs) != 1 || string(w.msgs[0].Key) != ev.Fingerprint {
		t.Fatalf("produced %+v", w.msgs)
	}
	// What was produced decodes back to the same event.
	got, errs := NewDecoder(Limits{}, event.DefaultDefaults).Decode(FormatEvents, w.msgs[0].Value, httpNow, nil)
	if len(errs) != 0 || len(got) != 1 || got[0].ID != ev.ID || got[0].Fingerprint != ev.Fingerprint {
		t.Fatalf("round trip: %+v %v", got, errs)
	}
	w.err = errors.New("no leader")
	if err := f.Forward(context.Background(), []event.Event{ev}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("produce failure is %v, want ErrUnavailable", err)
	}
}
