package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Headers the webhook and ServiceNow targets set on every request.
const (
	HeaderSignature      = "X-Correlatord-Signature" // "sha256=" + hex HMAC-SHA256 of the body
	HeaderEvent          = "X-Correlatord-Event"     // the notification's kind
	HeaderIdempotencyKey = "Idempotency-Key"         // Notification.Key
)

// WebhookPayloadVersion is the version field of the webhook body. It changes
// only when a field changes meaning or goes away; new fields may appear at
// any time, so receivers must ignore unknown fields.
const WebhookPayloadVersion = "1"

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// Name identifies the target in metrics and logs.
	Name string
	// URL receives POST requests. Only its scheme and host appear in errors.
	URL string
	// Secret, when set, signs each body: header X-Correlatord-Signature:
	// sha256=<hex of HMAC-SHA256(secret, body)>.
	Secret string
	// Headers are added to each request (e.g. Authorization).
	Headers map[string]string
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// Client sends the requests. Default: a client that does not follow
	// redirects (a POST turned into a GET would look delivered).
	Client *http.Client
	// Now reads the clock for Retry-After dates. Default time.Now.
	Now func() time.Time
}

// Webhook posts each notification as JSON: the Notification's fields plus
// "version". The receiver should check the signature over the exact body and
// deduplicate on the Idempotency-Key header.
type Webhook struct {
	opts WebhookOptions
}

// NewWebhook returns a webhook target.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %s: url %q is not an http:// or https:// URL", opts.Name, redactURL(opts.URL))
	}
	if opts.Name == "" {
		return nil, errors.New("webhook: empty name")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Client == nil {
		opts.Client = newHTTPClient(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Webhook{opts: opts}, nil
}

// Name returns the target's name.
func (w *Webhook) Name() string { return w.opts.Name }

// webhookPayload is the body: the notification with a version.
type webhookPayload struct {
	Version string `json:"version"`
	*Notification
}

// Send posts n. See [Target].
func (w *Webhook) Send(ctx context.Context, n *Notification) error {
	body, err := json.Marshal(webhookPayload{Version: WebhookPayloadVersion, Notification: n})
	if err != nil {
		return Permanent(fmt.Errorf("encode webhook body: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(sanitizeTransportError(err))
	}
	for k, v := range w.opts.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderIdempotencyKey, n.Key)
	req.Header.Set(HeaderEvent, string(n.Kind))
	if w.opts.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(w.opts.Secret), body))
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return sanitizeTransportError(err)
	}
	return checkResponse(resp, w.opts.Now())
}

// Sign returns the signature header value for body: "sha256=" and the hex
// HMAC-SHA256 of body under secret. A receiver recomputes it over the raw
// body and compares with hmac.Equal.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is the signature of body under
// secret, in constant time. Receivers written in Go can use it.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

const userAgent = "correlatord-notify/1"

// newHTTPClient returns a client over transport (nil: a clone of the default
// transport) that returns redirects instead of following them.
func newHTTPClient(transport http.RoundTripper) *http.Client {
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
