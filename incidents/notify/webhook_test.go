package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

type recordedRequest struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// recorder is a receiver that records requests and answers with the status
// codes in answers, in turn (the last one repeats; none means 200).
type recorder struct {
	reqs    chan recordedRequest
	mu      sync.Mutex
	answers []int
	header  http.Header // added to every answer
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := len(rc.reqs)
	rc.reqs <- recordedRequest{r.Method, r.URL.Path, r.Header.Clone(), body}
	status := http.StatusOK
	rc.mu.Lock()
	if len(rc.answers) > 0 {
		status = rc.answers[min(n, len(rc.answers)-1)]
	}
	rc.mu.Unlock()
	for k, v := range rc.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	io.WriteString(w, "answer body")
}

// setAnswers replaces the answers; the count of requests restarts with the
// next drain.
func (rc *recorder) setAnswers(answers ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answers = answers
}

func newRecorder(t *testing.T, answers ...int) (*recorder, *httptest.Server) {
	rc := &recorder{reqs: make(chan recordedRequest, 100), answers: answers, header: http.Header{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func TestWebhookSignsAndSetsHeaders(t *testing.T) {
	rc, srv := newRecorder(t)
	const secret = "s3cr3t"
	w, err := NewWebhook(WebhookOptions{Name: "oncall", URL: srv.URL + "/hook", Secret: secret,
		Headers: map[string]string{"X-Tenant": "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	n := testNotification("inc-7", 2, KindEscalated)
	n.Reason = "escalated to line 2 (response target 15m missed)"
	if err := w.Send(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	req := <-rc.reqs
	if req.method != http.MethodPost || req.path != "/hook" {
		t.Errorf("%s %s", req.method, req.path)
	}
	// A receiver's check, written without this package's helpers.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := req.header.Get("X-Correlatord-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	if !VerifySignature([]byte(secret), req.body, req.header.Get(HeaderSignature)) {
		t.Error("VerifySignature rejects a good signature")
	}
	if VerifySignature([]byte("other"), req.body, req.header.Get(HeaderSignature)) {
		t.Error("VerifySignature accepts a wrong secret")
	}
	for h, v := range map[string]string{"Idempotency-Key": "inc-7:2", "X-Correlatord-Event": "escalated",
		"Content-Type": "application/json", "X-Tenant": "ops"} {
		if got := req.header.Get(h); got != v {
			t.Errorf("%s: %q, want %q", h, got, v)
		}
	}
	var got Notification
	if err := DecodeNotification(req.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Key != n.Key || got.Reason != n.Reason || got.Ticket.RootCauseCI != "db-01" {
		t.Errorf("body decodes to %+v", got)
	}
	golden(t, "testdata/webhook_body.golden.json", req.body)
}

func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	rc, srv := newRecorder(t)
	w, _ := NewWebhook(WebhookOptions{Name: "chat", URL: srv.URL})
	n := testNotification("inc-1", 1, KindCreated)
	if err := w.Send(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	if h := (<-rc.reqs).header.Get(HeaderSignature); h != "" {
		t.Errorf("signature without secret: %q", h)
	}
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (run with -update if intended):\n got %s\nwant %s", path, got, want)
	}
}

func TestWebhookErrorClassification(t *testing.T) {
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status     int
		retryAfter string
		permanent  bool
		delay      time.Duration
		result     string
	}{
		{200, "", false, 0, AttemptSuccess},
		{204, "", false, 0, AttemptSuccess},
		{400, "", true, 0, AttemptClientError},
		{401, "", true, 0, AttemptClientError},
		{404, "", true, 0, AttemptClientError},
		{302, "", true, 0, AttemptClientError},
		{408, "", false, 0, AttemptServerError},
		{429, "7", false, 7 * time.Second, AttemptRateLimited},
		{500, "", false, 0, AttemptServerError},
		{503, now.Add(90 * time.Second).Format(http.TimeFormat), false, 90 * time.Second, AttemptServerError},
		{503, "soon", false, 0, AttemptServerError},
	} {
		rc, srv := newRecorder(t, tc.status)
		if tc.retryAfter != "" {
			rc.header.Set("Retry-After", tc.retryAfter)
		}
		if tc.status == 302 {
			rc.header.Set("Location", "https://elsewhere.example/secret-path")
		}
		w, _ := NewWebhook(WebhookOptions{Name: "w", URL: srv.URL, Now: func() time.Time { return now }})
		n := testNotification("inc-1", 1, KindCreated)
		err := w.Send(t.Context(), &n)
		if (err == nil) != (tc.status < 300) {
			t.Errorf("%d: error %v", tc.status, err)
		}
		if IsPermanent(err) != tc.permanent {
			t.Errorf("%d: permanent = %v, want %v (%v)", tc.status, IsPermanent(err), tc.permanent, err)
		}
		if d, _ := RetryAfter(err); d != tc.delay {
			t.Errorf("%d: retry after %s, want %s", tc.status, d, tc.delay)
		}
		if r := attemptResult(err); r != tc.result {
			t.Errorf("%d: attempt result %s, want %s", tc.status, r, tc.result)
		}
		if err != nil && strings.Contains(err.Error(), "secret-path") {
			t.Errorf("%d: error shows the redirect path: %v", tc.status, err)
		}
	}
}

func TestWebhookErrorsHideCredentials(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T000/B000/hookpathsecret?token=querysecret"
	srv.Close() // connection refused from now on
	w, _ := NewWebhook(WebhookOptions{Name: "w", URL: url, Secret: "signingsecret",
		Headers: map[string]string{"Authorization": "Bearer headersecret"}})
	n := testNotification("inc-1", 1, KindCreated)
	err := w.Send(t.Context(), &n)
	if err == nil || IsPermanent(err) {
		t.Fatalf("connection refused: %v (want retryable)", err)
	}
	for _, s := range []string{"hookpathsecret", "querysecret", "signingsecret", "headersecret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q: %v", s, err)
		}
	}
	if r := attemptResult(err); r != AttemptNetworkError {
		t.Errorf("attempt result %s", r)
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w, _ := NewWebhook(WebhookOptions{Name: "w", URL: srv.URL, Timeout: 50 * time.Millisecond})
	n := testNotification("inc-1", 1, KindCreated)
	err := w.Send(t.Context(), &n)
	if err == nil || IsPermanent(err) || attemptResult(err) != AttemptTimeout {
		t.Errorf("got %v (%s), want a retryable timeout", err, attemptResult(err))
	}
}
