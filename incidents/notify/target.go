package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Target is a receiver of notifications: a webhook, ServiceNow, or a test
// fake. Send delivers one notification and returns nil once the receiver has
// accepted it. An error wrapped with Permanent is not retried; any other is,
// after the delay its RetryAfter method asks for (see [RetryAfter]) or the
// dispatcher's backoff. Send must be safe for concurrent use and must honour
// ctx. Errors must not contain credentials.
type Target interface {
	Name() string
	Send(ctx context.Context, n *Notification) error
}

// Route is a target and the filter that picks what it receives.
type Route struct {
	Target Target
	Filter Filter
}

// Filter picks the notifications a target receives. The zero Filter passes
// everything.
type Filter struct {
	// Kinds passes only these kinds; empty passes every kind.
	Kinds []Kind
	// MinPriority, e.g. "P3", passes only P1..P3. A notification whose
	// ticket has no priority (or an unknown one) passes: a filter must not
	// silently swallow what it cannot judge. Empty passes every priority.
	MinPriority string
}

// Match reports whether n passes the filter.
func (f Filter) Match(n *Notification) bool {
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, n.Kind) {
		return false
	}
	if limit := priorityRank(f.MinPriority); limit > 0 {
		if r := priorityRank(n.Ticket.Priority); r > limit {
			return false
		}
	}
	return true
}

// ErrPermanent marks a delivery failure that retrying cannot fix: the
// receiver rejected the request (HTTP 4xx other than 408 and 429), or the
// notification cannot be expressed for this target. Check with errors.Is.
var ErrPermanent = errors.New("permanent delivery failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds and the
// dispatcher does not retry it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// IsPermanent reports whether err is marked permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfter returns the delay a receiver asked for before the next attempt
// (the Retry-After header), found on any error in err's chain that has a
// RetryAfter() time.Duration method, such as *HTTPError.
func RetryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return d, true
		}
	}
	return 0, false
}

// HTTPError is a receiver's answer other than 2xx.
type HTTPError struct {
	StatusCode int
	// Body is the start of the answer's body, made printable, for the log.
	Body string
	// Delay is the receiver's Retry-After, 0 if none.
	Delay time.Duration
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("receiver answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// RetryAfter returns the delay the receiver asked for.
func (e *HTTPError) RetryAfter() time.Duration { return e.Delay }

// maxErrorBody bounds how much of a receiver's error answer goes into the
// error (and so the log).
const maxErrorBody = 256

// checkResponse turns a response into nil (2xx) or an error: 408, 429 and
// 5xx are retryable and carry Retry-After; anything else (other 4xx, a 3xx
// the client did not follow) is permanent. It reads and closes the body.
func checkResponse(resp *http.Response, now time.Time) error {
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &HTTPError{StatusCode: resp.StatusCode, Body: printable(b)}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		e.Delay = parseRetryAfter(resp.Header.Get("Retry-After"), now)
		return e
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return Permanent(fmt.Errorf("%w (redirect to %q; configure the final URL)", e, redactURL(resp.Header.Get("Location"))))
	}
	return Permanent(e)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 for anything else or a time in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		// Cap what a receiver can ask for at a week; the dispatcher gives
		// up at max_age anyway, and this keeps the multiplication in range.
		return time.Duration(min(s, 7*24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// printable keeps the printable part of b, for an error message.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, string(b))
	return strings.TrimSpace(s)
}

// redactURL keeps scheme, host and port of u: webhook URLs often carry their
// credential in the path (Slack, Teams) or the query, and errors end in logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "<url>"
	}
	return p.Scheme + "://" + p.Host + "/..."
}

// sanitizeTransportError replaces the URL net/http puts in its errors with
// its redacted form.
func sanitizeTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return err
}
