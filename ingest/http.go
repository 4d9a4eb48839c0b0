package ingest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

// maxErrorsInResponse bounds the rejected items listed in one answer.
const maxErrorsInResponse = 100

// Forwarder takes the events an HTTP request carried. It returns only once
// they are safe: acknowledged by the Kafka broker, or durable in the
// in-process pipeline.
type Forwarder interface {
	Forward(ctx context.Context, events []event.Event) error
}

// ErrUnavailable marks forwarding failures the client should retry later
// (broker down, pipeline full): the request gets 503, which Alertmanager
// retries.
var ErrUnavailable = errors.New("temporarily unavailable")

// KafkaForwarder produces events to the ingest topic as canonical JSON, one
// message per event keyed by fingerprint, so every state change of one alert
// lands on one partition in order.
type KafkaForwarder struct {
	Writer  MessageWriter
	Metrics *Metrics
}

// Forward implements Forwarder.
func (f *KafkaForwarder) Forward(ctx context.Context, events []event.Event) error {
	msgs := make([]kafka.Message, len(events))
	var buf []byte
	for i := range events {
		var err error
		if msgs[i], buf, err = jsonEventMessage(buf, &events[i], events[i].Fingerprint); err != nil {
			return err
		}
	}
	if err := f.Writer.WriteMessages(ctx, msgs...); err != nil {
		f.Metrics.produceErrors.Inc()
		return fmt.Errorf("%w: produce %d events to Kafka: %w", ErrUnavailable, len(msgs), ShortWriteError(err))
	}
	f.Metrics.produced.Add(float64(len(msgs)))
	return nil
}

// jsonEventMessage encodes ev (AppendEventJSON) at the end of buf into a
// message keyed by key, and returns it with buf extended. The messages of a
// batch share one buffer: a value sliced off it stays valid when a later
// append moves the buffer, as the old array is not reused.
func jsonEventMessage(buf []byte, ev *event.Event, key string) (kafka.Message, []byte, error) {
	start := len(buf)
	buf, err := AppendEventJSON(buf, ev)
	if err != nil {
		return kafka.Message{}, buf[:start], fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return kafka.Message{Key: []byte(key), Value: buf[start:len(buf):len(buf)]}, buf, nil
}

// PipelineForwarder hands events straight to the pipeline when Kafka is off,
// and waits until they are durable.
type PipelineForwarder struct {
	Handler Handler
}

// Forward implements Forwarder.
func (f *PipelineForwarder) Forward(ctx context.Context, events []event.Event) error {
	pos, err := f.Handler.Handle(ctx, events)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := f.Handler.WaitDurable(ctx, pos); err != nil {
		return fmt.Errorf("%w: waiting for durability: %w", ErrUnavailable, err)
	}
	return nil
}

// HTTPOptions configure the HTTP ingest endpoints.
type HTTPOptions struct {
	MaxBodyBytes int64
	Timeout      time.Duration
	Policy       Policy
	Limits       Limits
	Defaults     event.Defaults
	// Now is the receiving clock. Defaults to time.Now.
	Now func() time.Time
	// Authorize, when set, decides who may use the endpoints (the daemon's
	// role-based tokens, http.tokens) and the token given to NewHTTPHandler
	// or SetToken is not used.
	Authorize Authorizer
}

// Authorizer decides whether a request may use the ingest endpoints. It
// returns 0 when it may, else the status to answer (401 or 403) and a
// message for the client, which must never contain a secret. It is called
// concurrently.
type Authorizer func(r *http.Request) (status int, reason string)

// HTTPHandler serves the ingest endpoints:
//
//	POST /api/v1/alerts  Alertmanager webhook (point webhook_configs here); an
//	                     API v2 alert list is accepted too
//	POST /api/v2/alerts  Alertmanager API v2 alert list (Prometheus can send
//	                     its alerts here directly)
//	POST /api/v1/events  canonical events: an object, an array or JSON lines
type HTTPHandler struct {
	opts    HTTPOptions
	fwd     Forwarder
	metrics *Metrics
	logger  *zap.Logger
	token   atomic.Pointer[string]
	pool    sync.Pool // *Decoder, which is not safe for concurrent use
	bufs    sync.Pool // *bytes.Buffer
}

// NewHTTPHandler returns the ingest endpoints. token, when not empty, is the
// bearer token every request must present, unless opts.Authorize is set.
func NewHTTPHandler(opts HTTPOptions, fwd Forwarder, token string, m *Metrics, logger *zap.Logger) *HTTPHandler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &HTTPHandler{opts: opts, fwd: fwd, metrics: m, logger: logger.With(zap.String("component", "http-ingest"))}
	h.SetToken(token)
	h.pool.New = func() any { return NewDecoder(opts.Limits, opts.Defaults) }
	h.bufs.New = func() any { return new(bytes.Buffer) }
	return h
}

// SetToken replaces the bearer token (on reload). Empty turns auth off. It
// has no effect when HTTPOptions.Authorize is set: that authorizer reloads
// its own tokens.
func (h *HTTPHandler) SetToken(token string) { h.token.Store(&token) }

// Register adds the endpoints to mux.
func (h *HTTPHandler) Register(mux *http.ServeMux) {
	mux.Handle("/api/v1/alerts", h.endpoint("alerts_v1", FormatAuto))
	mux.Handle("/api/v2/alerts", h.endpoint("alerts_v2", FormatAlertList))
	mux.Handle("/api/v1/events", h.endpoint("events", FormatEvents))
}

type errorItem struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

type response struct {
	Status   string      `json:"status"`
	Accepted int         `json:"accepted"`
	Error    string      `json:"error,omitempty"`
	Rejected []errorItem `json:"rejected,omitempty"`
	// RejectedCount counts every rejected item, also those not listed.
	RejectedCount int `json:"rejected_count,omitempty"`
}

func (h *HTTPHandler) endpoint(name string, format Format) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := h.serve(w, r, name, format)
		h.metrics.httpRequests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		h.metrics.httpDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

func (h *HTTPHandler) serve(w http.ResponseWriter, r *http.Request, name string, format Format) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeJSON(w, http.StatusMethodNotAllowed, response{Status: "error", Error: "use POST"})
	}
	if h.opts.Authorize != nil {
		if code, reason := h.opts.Authorize(r); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="correlatord"`)
			}
			return writeJSON(w, code, response{Status: "error", Error: reason})
		}
	} else if tok := *h.token.Load(); tok != "" && !validBearer(r.Header.Get("Authorization"), tok) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="correlatord"`)
		return writeJSON(w, http.StatusUnauthorized, response{Status: "error", Error: "missing or wrong bearer token"})
	}
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // keep pooled buffers modest
			h.bufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.metrics.rejected(TransportHTTP, ReasonTooLarge, 1)
			return writeJSON(w, http.StatusRequestEntityTooLarge, response{Status: "error",
				Error: fmt.Sprintf("body is over the limit of %d bytes (http.max_body_bytes)", h.opts.MaxBodyBytes)})
		}
		return writeJSON(w, http.StatusBadRequest, response{Status: "error", Error: "read body: " + err.Error()})
	}
	if format == FormatAuto {
		// This endpoint is for Alertmanager; canonical events have their own.
		format = FormatAlertmanagerWebhook
		if b := bytes.TrimLeft(buf.Bytes(), " \t\r\n"); len(b) > 0 && b[0] == '[' {
			format = FormatAlertList
		}
	}
	now := h.opts.Now()
	dec := h.pool.Get().(*Decoder)
	events, errs := dec.Decode(format, buf.Bytes(), now, nil)
	h.pool.Put(dec)
	if len(errs) == 1 && errs[0].Index < 0 {
		h.metrics.rejected(TransportHTTP, ReasonMalformed, 1)
		return writeJSON(w, http.StatusBadRequest, response{Status: "error", Error: errs[0].Err.Error()})
	}
	h.metrics.rejected(TransportHTTP, ReasonInvalidEvent, len(errs))
	events, timeErrs := h.opts.Policy.filter(events, now)
	h.metrics.rejected(TransportHTTP, ReasonTimeRange, len(timeErrs))
	// Good items are kept even when siblings are bad: losing them would punish
	// every alert in a notification for one broken one.
	if len(events) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		if err := h.fwd.Forward(ctx, events); err != nil {
			h.logger.Warn("forwarding accepted events failed", zap.Error(err), zap.Int("events", len(events)))
			return writeJSON(w, http.StatusServiceUnavailable, response{Status: "error", Error: err.Error()})
		}
		h.metrics.received(TransportHTTP, events)
	}
	errs = append(errs, timeErrs...)
	if len(errs) == 0 {
		return writeJSON(w, http.StatusOK, response{Status: "success", Accepted: len(events)})
	}
	msg := fmt.Sprintf("%d of %d items rejected", len(errs), len(errs)+len(events))
	if len(events) > 0 {
		msg += fmt.Sprintf("; the other %d were accepted", len(events))
	}
	resp := response{Status: "error", Accepted: len(events), RejectedCount: len(errs), Error: msg}
	for i, e := range errs {
		if i == maxErrorsInResponse {
			break
		}
		resp.Rejected = append(resp.Rejected, errorItem{Index: e.Index, Error: e.Err.Error()})
	}
	return writeJSON(w, http.StatusBadRequest, resp)
}

// validBearer compares in constant time, so the token cannot be guessed
// byte by byte from response timings.
func validBearer(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away; nothing to do
	return code
}
