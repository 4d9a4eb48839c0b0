package ingest

import (
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/correlatord/correlatord/event"
)

// The sources of events decoded from Alertmanager payloads.
const (
	// SourceAlertmanager is the source of every event from an Alertmanager
	// webhook notification.
	SourceAlertmanager = "alertmanager"
	// SourceAlertmanagerAPI is the source of every event from an API v2 alert
	// list, which Prometheus (or anything else) posts in Alertmanager's place.
	SourceAlertmanagerAPI = "alertmanager-api"
)

// webhookVersion is the only version of Alertmanager's webhook protocol there
// has been; a new one would change the payload, so it is refused rather than
// guessed at.
const webhookVersion = "4"

// generatorURLAnnotation is the annotation that carries an alert's
// generatorURL, so the link back to the rule survives in the event.
const generatorURLAnnotation = "generator_url"

// decodeWebhook decodes an Alertmanager webhook notification (webhook.Message:
// template.Data plus version, groupKey and truncatedAlerts). The group-level
// fields (receiver, groupLabels, commonLabels, ...) are ignored: every alert
// carries its full label set already.
func (d *Decoder) decodeWebhook(v *fastjson.Value, now time.Time, dst []event.Event) ([]event.Event, []DecodeError) {
	if v.Type() != fastjson.TypeObject {
		return dst, payloadError(errorf("", "expected an Alertmanager webhook object, got %s", typeName(v)))
	}
	switch ver := lookup(v, "version"); {
	case ver == nil || ver.Type() == fastjson.TypeNull:
		return dst, payloadError(errorf("version", "missing; Alertmanager webhook version %q is required", webhookVersion))
	case ver.Type() != fastjson.TypeString:
		return dst, payloadError(expected("version", "a string", ver))
	default:
		if b, _ := ver.StringBytes(); string(b) != webhookVersion {
			return dst, payloadError(errorf("version", "%s is not supported; only Alertmanager webhook version %q is", quote(b), webhookVersion))
		}
	}
	alerts := lookup(v, "alerts")
	switch {
	case alerts == nil || alerts.Type() == fastjson.TypeNull:
		return dst, payloadError(errorf("alerts", "missing"))
	case alerts.Type() != fastjson.TypeArray:
		return dst, payloadError(expected("alerts", "an array", alerts))
	}
	a, _ := alerts.Array()
	if len(a) > d.limits.MaxEvents {
		return dst, payloadError(errorf("alerts", "%d alerts, more than the limit of %d", len(a), d.limits.MaxEvents))
	}
	return d.decodeAlerts(a, false, now, dst)
}

// decodeAlertList decodes the alert list that Alertmanager's API v2 accepts
// at POST /api/v2/alerts.
func (d *Decoder) decodeAlertList(v *fastjson.Value, now time.Time, dst []event.Event) ([]event.Event, []DecodeError) {
	if v.Type() != fastjson.TypeArray {
		return dst, payloadError(errorf("", "expected an array of Alertmanager API v2 alerts, got %s", typeName(v)))
	}
	a, _ := v.Array()
	if len(a) > d.limits.MaxEvents {
		return dst, payloadError(errorf("", "%d alerts, more than the limit of %d", len(a), d.limits.MaxEvents))
	}
	return d.decodeAlerts(a, true, now, dst)
}

func (d *Decoder) decodeAlerts(alerts []*fastjson.Value, api bool, now time.Time, dst []event.Event) ([]event.Event, []DecodeError) {
	var errs []DecodeError
	dst = d.grow(dst, len(alerts))
	for i, a := range alerts {
		dst = append(dst, event.Event{})
		if err := d.decodeAlert(a, api, now, &dst[len(dst)-1]); err != nil {
			// Clear the slot so the rejected event's maps are not kept alive
			// by dst's spare capacity.
			dst[len(dst)-1] = event.Event{}
			dst = dst[:len(dst)-1]
			errs = append(errs, DecodeError{Index: i, Err: within("alerts["+strconv.Itoa(i)+"]", err)})
		}
	}
	return dst, errs
}

// decodeAlert decodes one alert into e: a webhook alert (template.Alert), or
// with api an API v2 postable alert, whose status follows from endsAt and
// now. Unknown fields are ignored, as Alertmanager ignores them: both formats
// belong to Alertmanager, which may add fields.
func (d *Decoder) decodeAlert(v *fastjson.Value, api bool, now time.Time, e *event.Event) error {
	if v.Type() != fastjson.TypeObject {
		return expected("", "an object", v)
	}
	o, _ := v.Object()
	var (
		labels, annotations  *fastjson.Value
		startsAt, endsAt     time.Time
		status, url, printed []byte
		err                  error
	)
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		switch string(k) {
		case "labels":
			labels = v
		case "annotations":
			annotations = v
		case "startsAt":
			startsAt, err = getTime("startsAt", v)
		case "endsAt":
			endsAt, err = getTime("endsAt", v)
		case "generatorURL":
			url, err = d.getString("generatorURL", v)
		case "status":
			if !api {
				status, err = d.getString("status", v)
			}
		case "fingerprint":
			if !api {
				printed, err = d.getString("fingerprint", v)
			}
		}
	})
	if err != nil {
		return err
	}

	if api {
		// Alertmanager's own check (model.Alert.Validate).
		if !startsAt.IsZero() && !endsAt.IsZero() && endsAt.Before(startsAt) {
			return errorf("endsAt", "%s is before startsAt %s", endsAt.Format(time.RFC3339Nano), startsAt.Format(time.RFC3339Nano))
		}
		// Alertmanager's rule (model.Alert.ResolvedAt): an alert has
		// resolved once its end time is not after now.
		e.Status = event.StatusFiring
		if !endsAt.IsZero() && !endsAt.After(now) {
			e.Status = event.StatusResolved
		}
		e.Source = SourceAlertmanagerAPI
	} else {
		switch string(status) {
		case string(event.StatusFiring):
			e.Status = event.StatusFiring
		case string(event.StatusResolved):
			e.Status = event.StatusResolved
		default:
			if status == nil {
				return errorf("status", "missing; expected firing or resolved")
			}
			return errorf("status", "%s is not one of firing, resolved", quote(status))
		}
		e.Source = SourceAlertmanager
	}
	e.Kind = event.KindAlert

	// The event time is the state change the event reports: the start of a
	// firing alert, the end of a resolved one.
	switch {
	case e.Status == event.StatusResolved && !endsAt.IsZero():
		e.Time = endsAt
	case !startsAt.IsZero():
		e.Time = startsAt
	default:
		e.Time = now
	}

	// API v2 drops empty label values before fingerprinting, as Alertmanager
	// does; a webhook's labels have been through that already.
	t := &d.strs
	t.reset()
	if err := d.collectLabels("labels", labels, api); err != nil {
		return err
	}
	nLabels := len(t.labels)
	if err := d.collectLabels("annotations", annotations, false); err != nil {
		return err
	}
	if n := len(t.labels) - nLabels; len(url) > 0 && n >= d.limits.MaxLabels && !t.hasName(nLabels, generatorURLAnnotation) {
		// The generator URL becomes an annotation of its own, which the
		// event's limit counts too (DecodeKeyed, the canonical decoder).
		return errorf("annotations", "%d annotations and generatorURL, more than the limit of %d", n, d.limits.MaxLabels)
	}
	urlRef := t.add(url)
	var printedRef, idRef strRef
	haveFingerprint := false
	if !api && isFingerprint(printed) {
		printedRef = t.add(printed)
		lowerHex(t.bytes(printedRef))
		haveFingerprint = true
	} else {
		printedRef, haveFingerprint = t.addFingerprint(nLabels)
	}
	if haveFingerprint {
		// The id event.Complete would derive, packed with the rest.
		start := len(t.buf)
		t.buf = event.AppendDerivedID(t.buf, string(e.Source), t.bytes(printedRef), e.Status, e.Time)
		idRef = strRef{start: int32(start), end: int32(len(t.buf))}
	}
	t.pack()

	var urlAnnotation event.Label
	if len(url) > 0 {
		// Last, so that it wins over an annotation of the same name.
		urlAnnotation = event.Label{Name: generatorURLAnnotation, Value: t.get(urlRef)}
	}
	e.Labels, e.Annotations = t.labelSets(nLabels, urlAnnotation)
	e.Fingerprint = t.get(printedRef)
	e.ID = t.get(idRef)
	e.Summary = summary(e.Labels, e.Annotations)
	return d.normalize(e)
}

// summary picks an alert's one-line summary: the summary annotation, else the
// description annotation, else the alert name.
func summary(labels, annotations event.Labels) string {
	if s := annotations.Get("summary"); s != "" {
		return s
	}
	if s := annotations.Get("description"); s != "" {
		return s
	}
	return labels.Get("alertname")
}

// isFingerprint reports whether b looks like an Alertmanager fingerprint: 16
// hex digits.
func isFingerprint(b []byte) bool {
	if len(b) != 16 {
		return false
	}
	for _, c := range b {
		// c|0x20 folds A-F onto a-f and leaves the digits as they are.
		if l := c | 0x20; !('0' <= c && c <= '9' || 'a' <= l && l <= 'f') {
			return false
		}
	}
	return true
}

// lowerHex puts hex digits in lower case, the form model.Fingerprint's
// String uses, so that a fingerprint compares equal however it arrived.
func lowerHex(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
}
