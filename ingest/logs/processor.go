package logs

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/ingest/logtemplate"
)

// Binder binds an event to a CI by its labels. *cmdb.Topology and
// *cmdb.Store implement it; the Processor calls it for every record with the
// labels host, instance, pod, namespace, service and container set, so the
// CMDB's bind_labels order decides which of them wins.
type Binder interface {
	Bind(e *event.Event) (ci string, ok bool)
}

// Alert names of the events a Processor makes (the alertname label).
const (
	AlertLogError       = "LogError"
	AlertLogNewTemplate = "LogNewTemplate"
	AlertLogWatched     = "LogWatched"
	AlertLogRateAnomaly = "LogRateAnomaly"
)

// Event field bounds.
const (
	maxSummaryBytes    = 1 << 10
	maxTemplateLabel   = 1 << 10
	maxAnnotationBytes = 4 << 10
)

// Reason codes of a window, indexes into emitReasons.
const (
	rError uint8 = iota
	rNewTemplate
	rWatched
	rAnomaly
	rUpdate
	rNone uint8 = 255
)

var reasonAlert = [...]string{AlertLogError, AlertLogNewTemplate, AlertLogWatched, AlertLogRateAnomaly}

// noMinute marks a key without an open (or a closed) minute.
const noMinute = math.MinInt64

const nsPerMinute = int64(time.Minute)

// Subject kinds: what a key's subject is, when it is not a bound CI.
const (
	subjCI        byte = 'c'
	subjHost      byte = 'h'
	subjPod       byte = 'p'
	subjService   byte = 's'
	subjNone      byte = 'n'
	subjSeparator byte = 0xff
)

// keyState is what a Processor tracks per (subject, template): the open
// minute's count, the rate baseline, the aggregation window.
type keyState struct {
	hash    uint64
	kind    byte
	subject string // bound CI id, host, namespace/pod or service
	ci      string
	tid     uint64
	tidHex  string
	// Where the key's records come from, from the record that created it
	// (cloned: they must not pin a record's message).
	host, service string
	template      string // latest text; shared with the parser, immutable

	minute     int64 // open minute (unix minutes), noMinute when none
	count      uint64
	level      Level
	lastClosed int64 // last minute closed, noMinute when none
	lastSeen   int64 // latest record time, ns

	baseline    float64
	observed    int64 // minutes folded into the baseline, idle ones included
	lastAnomaly int64 // minute of the last anomaly event, noMinute when none

	win     window
	openPos int32 // index in Processor.open; -1 when the window is closed

	watchFor  string // template text watchMask was computed for
	watchMask uint64
	watchOK   bool

	prev, next int32 // LRU list; -1 ends it
}

// window is an open aggregation window: the event it opened with, and what
// the update will say.
type window struct {
	open        bool
	reason      uint8
	start, last int64 // ns
	count       uint64
	severity    event.Severity
	source      string
	summary     string
	example     string
	labels      map[string]string // private copy of the opening event's labels
	extra       map[string]string
}

// Processor turns log records into events: it mines each record's template,
// binds it to a CI, counts it per (CI, template) and minute, and decides
// whether it makes an event (see the package documentation for the rules,
// the aggregation and the labels).
//
// A Processor is not safe for concurrent use: run one per Kafka partition
// (or per stream), from one goroutine. It reads no clock: Process, Tick and
// Flush take the caller's now, and windows and minutes run on record time
// (see the watermark in DESIGN.md).
type Processor struct {
	cfg    Config
	parser *logtemplate.Parser
	res    logtemplate.Result
	binder Binder
	m      *Metrics

	bindEv event.Event // reused for every Bind call

	keys   map[uint64]int32
	states []keyState
	free   []int32
	head   int32 // most recently seen
	tail   int32
	open   []int32 // keys with an open window, in opening order

	watermark   int64 // ns, record time
	lastArrival int64 // ns, processing time; 0 before the first Tick or record
	nextClose   int64 // watermark at which some open minute is due to close

	rows []CountRow

	alpha                     float64
	minHistory, cooldown      int64 // minutes
	windowNS, graceNS, skewNS int64

	reportedTemplates int
	reportedKeys      int
	reportedEvicted   uint64

	hbuf []byte
}

// NewProcessor returns a processor for cfg, which must have passed
// SetDefaults and Validate. binder may be nil (no CMDB: every record stays
// unbound and its host is its subject); m may be nil.
func NewProcessor(cfg Config, binder Binder, m *Metrics) (*Processor, error) {
	parser, err := logtemplate.New(cfg.Templates)
	if err != nil {
		return nil, fmt.Errorf("logs.templates: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil) // unregistered
	}
	p := &Processor{
		cfg:       cfg,
		parser:    parser,
		binder:    binder,
		m:         m,
		bindEv:    event.Event{Kind: event.KindLog, Labels: make(event.Labels, 0, 6)},
		keys:      make(map[uint64]int32),
		head:      -1,
		tail:      -1,
		nextClose: math.MaxInt64,
		watermark: math.MinInt64,
		windowNS:  int64(cfg.AggregateWindow),
		graceNS:   int64(cfg.Grace),
		skewNS:    int64(cfg.MaxFutureSkew),
	}
	span := float64(cfg.Anomaly.BaselineWindow / time.Minute)
	p.alpha = 2 / (span + 1)
	p.minHistory = int64(cfg.Anomaly.MinHistory / time.Minute)
	p.cooldown = int64((cfg.Anomaly.Cooldown + time.Minute - 1) / time.Minute)
	return p, nil
}

// Parser returns the template miner, for inspection from the processor's
// goroutine (it is not safe for concurrent use either).
func (p *Processor) Parser() *logtemplate.Parser { return p.parser }

// Process handles one record: it mines its template, counts it, and appends
// to dst the events it makes (none for most records; see the package
// documentation). now is the processing time: it caps record times at
// now+max_future_skew and feeds the idle detection of Tick. The record is
// not retained.
func (p *Processor) Process(r *Record, now time.Time, dst []event.Event) []event.Event {
	nowNS := now.UnixNano()
	p.lastArrival = nowNS
	t := nowNS
	if !r.Time.IsZero() {
		t = r.Time.UnixNano()
	}
	if max := nowNS + p.skewNS; t > max {
		t = max
	}
	if t > p.watermark {
		p.watermark = t
	}
	level := r.Level
	if level == LevelNone || level > LevelCritical {
		level = LevelInfo
	}
	p.m.processed[level].Inc()

	line := firstLine(r.Message)
	p.parser.Parse(unsafe.Slice(unsafe.StringData(line), len(line)), &p.res)
	res := &p.res

	ci, bound := p.bind(r)
	kind, s1, s2 := subjectOf(r, ci, bound)
	var k int32
	k, dst = p.key(kind, s1, s2, ci, res.ID, r, dst)
	st := &p.states[k]
	st.template = res.Template
	if t > st.lastSeen {
		st.lastSeen = t
	}
	dst = p.count(st, t, level, dst)

	reason, sev, watch := p.qualify(st, r, res, level, ci)
	if reason == rNone {
		return dst
	}
	return p.aggregate(k, r, t, level, reason, sev, watch, ci, dst)
}

// firstLine is a message's first line, the part templates are mined from:
// a stack trace's first line says what happened, its frames do not.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, "\r")
}

// bind asks the binder for the record's CI, with the reused event's labels
// set to the record's.
func (p *Processor) bind(r *Record) (string, bool) {
	if p.binder == nil {
		return "", false
	}
	l := p.bindEv.Labels[:0] // appended in order of name, as Labels are
	if r.Container != "" {
		l = append(l, event.Label{Name: "container", Value: r.Container})
	}
	if r.Host != "" {
		l = append(l, event.Label{Name: "host", Value: r.Host}, event.Label{Name: "instance", Value: r.Host})
	}
	if r.Namespace != "" {
		l = append(l, event.Label{Name: "namespace", Value: r.Namespace})
	}
	if r.Pod != "" {
		l = append(l, event.Label{Name: "pod", Value: r.Pod})
	}
	if r.Service != "" {
		l = append(l, event.Label{Name: "service", Value: r.Service})
	}
	p.bindEv.Labels = l
	p.bindEv.CI = ""
	ci, ok := p.binder.Bind(&p.bindEv)
	clear(l) // hold no record strings between calls
	p.bindEv.Labels = l[:0]
	return ci, ok && ci != ""
}

// subjectOf says what a record's counts and events are keyed by: its CI,
// else its host, else namespace/pod, else its service.
func subjectOf(r *Record, ci string, bound bool) (kind byte, s1, s2 string) {
	switch {
	case bound:
		return subjCI, ci, ""
	case r.Host != "":
		return subjHost, r.Host, ""
	case r.Pod != "":
		return subjPod, r.Namespace, r.Pod
	case r.Service != "":
		return subjService, r.Service, ""
	}
	return subjNone, "", ""
}

func subjectString(kind byte, s1, s2 string) string {
	if kind == subjPod {
		if s1 == "" {
			return strings.Clone(s2)
		}
		return s1 + "/" + s2
	}
	return strings.Clone(s1)
}

func (p *Processor) keyHash(kind byte, s1, s2 string, tid uint64) uint64 {
	b := append(p.hbuf[:0], kind)
	b = append(b, s1...)
	b = append(b, subjSeparator)
	b = append(b, s2...)
	b = append(b, subjSeparator)
	b = binary.BigEndian.AppendUint64(b, tid)
	p.hbuf = b
	return xxhash.Sum64(b)
}

// key returns the state of (subject, template), creating it and evicting
// the least recently seen key when MaxKeys are tracked. Keys are identified
// by a 64-bit hash: two keys colliding (about 1e-10 at 100,000 keys) would
// share counts.
func (p *Processor) key(kind byte, s1, s2, ci string, tid uint64, r *Record, dst []event.Event) (int32, []event.Event) {
	h := p.keyHash(kind, s1, s2, tid)
	if i, ok := p.keys[h]; ok {
		p.touch(i)
		return i, dst
	}
	if len(p.keys) >= p.cfg.MaxKeys {
		dst = p.evict(p.tail, dst)
		p.m.keysEvicted.Inc()
	}
	var i int32
	if n := len(p.free); n > 0 {
		i = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		p.states = append(p.states, keyState{})
		i = int32(len(p.states) - 1)
	}
	p.states[i] = keyState{
		hash:        h,
		kind:        kind,
		subject:     subjectString(kind, s1, s2),
		ci:          ci,
		tid:         tid,
		tidHex:      logtemplate.FormatID(tid),
		host:        strings.Clone(r.Host),
		service:     strings.Clone(r.Service),
		minute:      noMinute,
		lastClosed:  noMinute,
		lastAnomaly: noMinute,
		openPos:     -1,
		prev:        -1,
		next:        -1,
	}
	p.keys[h] = i
	p.pushFront(i)
	return i, dst
}

func (p *Processor) pushFront(i int32) {
	st := &p.states[i]
	st.prev, st.next = -1, p.head
	if p.head >= 0 {
		p.states[p.head].prev = i
	}
	p.head = i
	if p.tail < 0 {
		p.tail = i
	}
}

func (p *Processor) unlink(i int32) {
	st := &p.states[i]
	if st.prev >= 0 {
		p.states[st.prev].next = st.next
	} else {
		p.head = st.next
	}
	if st.next >= 0 {
		p.states[st.next].prev = st.prev
	} else {
		p.tail = st.prev
	}
	st.prev, st.next = -1, -1
}

func (p *Processor) touch(i int32) {
	if p.head == i {
		return
	}
	p.unlink(i)
	p.pushFront(i)
}

// evict removes key i, emitting its open window's update and its open
// minute's count first, so eviction loses a baseline but no count.
func (p *Processor) evict(i int32, dst []event.Event) []event.Event {
	st := &p.states[i]
	if st.minute != noMinute {
		dst = p.closeMinute(st, dst)
	}
	if st.win.open {
		dst = p.closeWindow(i, dst)
	}
	p.drop(i)
	return dst
}

// drop forgets key i.
func (p *Processor) drop(i int32) {
	delete(p.keys, p.states[i].hash)
	p.unlink(i)
	p.states[i] = keyState{}
	p.free = append(p.free, i)
}

// count adds a record at time t to its key's open minute, closing the
// previous minute first when t is in a later one. A record for a minute
// that is already closed counts in the key's next minute: its total is
// kept, its minute moves forward.
func (p *Processor) count(st *keyState, t int64, level Level, dst []event.Event) []event.Event {
	m := floorDiv(t, nsPerMinute)
	if st.minute != noMinute && m > st.minute {
		dst = p.closeMinute(st, dst)
	}
	if st.minute == noMinute {
		if st.lastClosed != noMinute && m <= st.lastClosed {
			m = st.lastClosed + 1
		}
		st.minute, st.count, st.level = m, 0, LevelNone
		if due := (m+1)*nsPerMinute + p.graceNS; due < p.nextClose {
			p.nextClose = due
		}
	}
	st.count++
	if level > st.level {
		st.level = level
	}
	return dst
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// closeMinute queues the open minute's count row, checks it against the
// baseline of the minutes before (see AnomalyConfig), and then folds it
// into the baseline.
func (p *Processor) closeMinute(st *keyState, dst []event.Event) []event.Event {
	m := st.minute
	p.pushRow(CountRow{
		Minute:     time.Unix(m*60, 0).UTC(),
		CI:         st.subject,
		Bound:      st.kind == subjCI,
		Host:       st.host,
		Service:    st.service,
		TemplateID: st.tid,
		Template:   st.template,
		Level:      st.level,
		Count:      st.count,
	})
	// Idle minutes since the last closed one decay the baseline.
	if st.lastClosed != noMinute && m-st.lastClosed > 1 {
		p.decay(st, m-st.lastClosed-1)
	}
	a := &p.cfg.Anomaly
	if !a.Disabled && st.observed >= p.minHistory && st.count >= uint64(a.MinCount) &&
		float64(st.count) >= a.Factor*st.baseline &&
		(st.lastAnomaly == noMinute || m-st.lastAnomaly >= p.cooldown) {
		st.lastAnomaly = m
		dst = append(dst, p.anomalyEvent(st))
		p.m.anomalies.Inc()
		p.m.emitted[rAnomaly].Inc()
	}
	st.observed++
	st.baseline += p.weight(st.observed) * (float64(st.count) - st.baseline)
	st.lastClosed = m
	st.minute = noMinute
	st.count = 0
	return dst
}

// weight is the EWMA weight of the n-th minute observed: the plain mean
// until the span is reached (so the first minutes do not start from 0),
// then the fixed alpha.
func (p *Processor) weight(n int64) float64 {
	return max(1/float64(n), p.alpha)
}

// decay folds n idle (zero) minutes into the baseline.
func (p *Processor) decay(st *keyState, n int64) {
	// Past ten spans the baseline is 0 to float precision anyway.
	if limit := int64(20 / p.alpha); n > limit {
		st.observed += n
		st.baseline = 0
		return
	}
	for ; n > 0; n-- {
		st.observed++
		st.baseline -= p.weight(st.observed) * st.baseline
	}
}

func (p *Processor) pushRow(r CountRow) {
	if len(p.rows) >= p.cfg.MaxPendingRows {
		n := len(p.rows) / 4
		p.rows = append(p.rows[:0], p.rows[n:]...)
		p.m.rowsDropped.Add(float64(n))
	}
	p.rows = append(p.rows, r)
}

// qualify decides whether a record makes an event: a watch rule first,
// then a never-seen template, then its level.
func (p *Processor) qualify(st *keyState, r *Record, res *logtemplate.Result, level Level, ci string) (uint8, event.Severity, string) {
	if len(p.cfg.watch) > 0 {
		if !st.watchOK || st.watchFor != res.Template {
			st.watchMask = 0
			for i := range p.cfg.watch {
				if p.matchAll(p.cfg.watch[i].static, st, r, res, level, ci) {
					st.watchMask |= 1 << i
				}
			}
			st.watchFor, st.watchOK = res.Template, true
		}
		for i := range p.cfg.watch {
			w := &p.cfg.watch[i]
			if st.watchMask&(1<<i) != 0 && p.matchAll(w.dynamic, st, r, res, level, ci) {
				sev := w.severity
				if sev == "" {
					sev = level.Severity()
				}
				return rWatched, sev, w.name
			}
		}
	}
	if res.Created && p.cfg.newTemplateLevel != LevelNone && level >= p.cfg.newTemplateLevel {
		return rNewTemplate, level.Severity(), ""
	}
	if p.cfg.minLevel != LevelNone && level >= p.cfg.minLevel {
		return rError, level.Severity(), ""
	}
	return rNone, "", ""
}

func (p *Processor) matchAll(ms []watchMatcher, st *keyState, r *Record, res *logtemplate.Result, level Level, ci string) bool {
	for i := range ms {
		var v string
		switch ms[i].src {
		case wsTemplateID:
			v = st.tidHex
		case wsTemplate:
			v = res.Template
		case wsLevel:
			v = level.String()
		case wsHost:
			v = r.Host
		case wsService:
			v = r.Service
		case wsPod:
			v = r.Pod
		case wsNamespace:
			v = r.Namespace
		case wsContainer:
			v = r.Container
		case wsSource:
			v = r.Source
		case wsCI:
			v = ci
		case wsParam:
			if n := ms[i].param; n < len(res.Params) {
				b := res.Params[n]
				v = unsafe.String(unsafe.SliceData(b), len(b))
			}
		}
		if !ms[i].m.Matches(v) {
			return false
		}
	}
	return true
}

// aggregate emits the first qualifying record of a key at once and folds
// the repeats within AggregateWindow into its window.
func (p *Processor) aggregate(k int32, r *Record, t int64, level Level, reason uint8, sev event.Severity, watch, ci string, dst []event.Event) []event.Event {
	st := &p.states[k]
	if st.win.open {
		if t < st.win.start+p.windowNS {
			st.win.count++
			if t > st.win.last {
				st.win.last = t
			}
			p.m.aggregated.Inc()
			return dst
		}
		dst = p.closeWindow(k, dst)
	}
	labels := map[string]string{"alertname": reasonAlert[reason]}
	setLabels(labels, r.Host, r.Pod, r.Namespace, r.Service, r.Container, r.Source)
	labels["level"] = level.String()
	labels["template_id"] = st.tidHex
	labels["template"] = clean(st.template, maxTemplateLabel)
	if watch != "" {
		labels["watch"] = watch
	}
	source := r.Source
	if source == "" {
		source = "logs"
	}
	st.win = window{
		open:     true,
		reason:   reason,
		start:    t,
		last:     t,
		count:    1,
		severity: sev,
		source:   clean(source, 64),
		summary:  clean(firstLine(r.Message), maxSummaryBytes),
		example:  clean(r.Message, maxAnnotationBytes),
		labels:   labels,
	}
	if len(r.Extra) > 0 {
		st.win.extra = make(map[string]string, len(r.Extra))
		for k, v := range r.Extra {
			st.win.extra[k] = clean(v, maxAnnotationBytes)
		}
	}
	st.openPos = int32(len(p.open))
	p.open = append(p.open, k)
	p.m.emitted[reason].Inc()
	return append(dst, p.windowEvent(st, false))
}

// setLabels sets the record identity labels that are not empty, cloned.
func setLabels(l map[string]string, host, pod, namespace, service, container, source string) {
	set := func(k, v string) {
		if v != "" {
			l[k] = clean(v, maxTemplateLabel)
		}
	}
	set("host", host)
	set("instance", host)
	set("pod", pod)
	set("namespace", namespace)
	set("service", service)
	set("container", container)
	set("source", source)
}

// clean makes a label or annotation value: valid UTF-8, at most n bytes,
// and a copy, so events never pin a record's memory.
func clean(s string, n int) string {
	if len(s) > n {
		i := n
		for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Clone(s)
}

// closeWindow closes key k's window: when lines were folded into it, it
// emits the update event, with the opening event's fingerprint and labels
// and the window's count.
func (p *Processor) closeWindow(k int32, dst []event.Event) []event.Event {
	st := &p.states[k]
	if st.win.count > 1 {
		dst = append(dst, p.windowEvent(st, true))
		p.m.emitted[rUpdate].Inc()
	}
	if pos := st.openPos; pos >= 0 {
		last := p.open[len(p.open)-1]
		p.open[pos] = last
		p.states[last].openPos = pos
		p.open = p.open[:len(p.open)-1]
	}
	st.openPos = -1
	st.win = window{}
	return dst
}

// windowEvent makes the opening event of st's window (update false) or its
// update.
func (p *Processor) windowEvent(st *keyState, update bool) event.Event {
	w := &st.win
	phase := "open"
	t := w.start
	if update {
		phase = "update"
		t = w.last
	}
	ann := map[string]string{
		"template":   clean(st.template, maxAnnotationBytes),
		"count":      strconv.FormatUint(w.count, 10),
		"first_seen": time.Unix(0, w.start).UTC().Format(time.RFC3339Nano),
		"last_seen":  time.Unix(0, w.last).UTC().Format(time.RFC3339Nano),
		"example":    w.example,
	}
	for k, v := range w.extra {
		if _, taken := ann[k]; !taken {
			ann[k] = v
		}
	}
	return event.Event{
		ID:          p.eventID(st, w.start, phase),
		Time:        time.Unix(0, t).UTC(),
		Source:      w.source,
		Kind:        event.KindLog,
		Status:      event.StatusFiring,
		Severity:    w.severity,
		CI:          st.ci,
		Labels:      event.FromMap(w.labels),
		Annotations: event.FromMap(ann),
		Summary:     w.summary,
		Fingerprint: p.fingerprint(st, "log"),
	}
}

// anomalyEvent makes the LogRateAnomaly event of st's closing minute.
func (p *Processor) anomalyEvent(st *keyState) event.Event {
	rate := strconv.FormatUint(st.count, 10)
	baseline := strconv.FormatFloat(st.baseline, 'f', 2, 64)
	labels := map[string]string{
		"alertname":   AlertLogRateAnomaly,
		"template_id": st.tidHex,
		"template":    clean(st.template, maxTemplateLabel),
		"level":       st.level.String(),
		"rate":        rate,
		"baseline":    baseline,
	}
	setLabels(labels, st.host, "", "", st.service, "", "")
	start := st.minute * nsPerMinute
	last := min(st.lastSeen, start+nsPerMinute-1)
	subject := st.subject
	if subject == "" {
		subject = "unknown source"
	}
	return event.Event{
		ID:       p.eventID(st, start, "anomaly"),
		Time:     time.Unix(0, last).UTC(),
		Source:   "logs",
		Kind:     event.KindLog,
		Status:   event.StatusFiring,
		Severity: event.SeverityWarning,
		CI:       st.ci,
		Labels:   event.FromMap(labels),
		Annotations: event.FromMap(map[string]string{
			"template":   clean(st.template, maxAnnotationBytes),
			"count":      rate,
			"rate":       rate,
			"baseline":   baseline,
			"first_seen": time.Unix(0, start).UTC().Format(time.RFC3339Nano),
			"last_seen":  time.Unix(0, last).UTC().Format(time.RFC3339Nano),
		}),
		Summary: clean(fmt.Sprintf("%s lines/min of template %s on %s, baseline %s/min: %s",
			rate, st.tidHex, subject, baseline, st.template), maxSummaryBytes),
		Fingerprint: p.fingerprint(st, "anomaly"),
	}
}

// fingerprint identifies a (subject, template) key's events of one family
// (log or anomaly) across windows and restarts.
func (p *Processor) fingerprint(st *keyState, family string) string {
	b := append(p.hbuf[:0], family...)
	b = append(b, subjSeparator, st.kind)
	b = append(b, st.subject...)
	b = append(b, subjSeparator)
	b = binary.BigEndian.AppendUint64(b, st.tid)
	p.hbuf = b
	return hex16(xxhash.Sum64(b))
}

// eventID is deterministic: the same records give the same ids, so a
// redelivery after a crash is deduplicated downstream.
func (p *Processor) eventID(st *keyState, start int64, phase string) string {
	b := append(p.hbuf[:0], phase...)
	b = append(b, subjSeparator, st.kind)
	b = append(b, st.subject...)
	b = append(b, subjSeparator)
	b = binary.BigEndian.AppendUint64(b, st.tid)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	p.hbuf = b
	return hex16(xxhash.Sum64(b))
}

func hex16(v uint64) string {
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], v)
	return hex.EncodeToString(sum[:])
}

// Tick closes what the watermark has passed: aggregation windows (emitting
// their updates) and minutes (queuing their count rows, emitting rate
// anomalies), and drops keys idle for longer than KeyTTL. Call it
// periodically (every second or so) and after each batch; it is cheap when
// nothing is due. When no record has arrived for IdleTimeout, the
// watermark advances to now, so that a quiet stream's last minute closes.
// The events it appends are sorted by time, then fingerprint.
func (p *Processor) Tick(now time.Time, dst []event.Event) []event.Event {
	nowNS := now.UnixNano()
	if p.lastArrival == 0 {
		// The idle clock starts at the first Tick, so that a restart with
		// a backlog does not close the restored minutes at once.
		p.lastArrival = nowNS
	}
	if nowNS-p.lastArrival >= int64(p.cfg.IdleTimeout) && nowNS > p.watermark {
		p.watermark = nowNS
	}
	start := len(dst)
	dst = p.advance(false, dst)
	p.report()
	sortEvents(dst[start:])
	return dst
}

// Flush closes every open window and minute whatever the watermark, as at
// the end of a replay. Keys and baselines stay. A daemon that stops should
// Snapshot instead, so that its windows and minutes go on after the
// restart.
func (p *Processor) Flush(now time.Time, dst []event.Event) []event.Event {
	_ = now
	start := len(dst)
	dst = p.advance(true, dst)
	p.report()
	sortEvents(dst[start:])
	return dst
}

func (p *Processor) advance(all bool, dst []event.Event) []event.Event {
	w := p.watermark
	for i := 0; i < len(p.open); {
		k := p.open[i]
		if all || w >= p.states[k].win.start+p.windowNS {
			dst = p.closeWindow(k, dst) // moves the last open key to i
			continue
		}
		i++
	}
	if !all && w < p.nextClose {
		return dst
	}
	next := int64(math.MaxInt64)
	ttl := int64(p.cfg.KeyTTL)
	for i := p.head; i >= 0; {
		st := &p.states[i]
		nextI := st.next
		if st.minute != noMinute {
			due := (st.minute+1)*nsPerMinute + p.graceNS
			if all || w >= due {
				dst = p.closeMinute(st, dst)
			} else if due < next {
				next = due
			}
		}
		if st.minute == noMinute && !st.win.open && w != math.MinInt64 && w-st.lastSeen >= ttl {
			p.drop(i)
		}
		i = nextI
	}
	p.nextClose = next
	return dst
}

func sortEvents(evs []event.Event) {
	slices.SortStableFunc(evs, func(a, b event.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
}

// report brings the shared gauges up to date with this processor's share.
func (p *Processor) report() {
	if n := p.parser.Len(); n != p.reportedTemplates {
		p.m.templates.Add(float64(n - p.reportedTemplates))
		p.reportedTemplates = n
	}
	if n := len(p.keys); n != p.reportedKeys {
		p.m.keys.Add(float64(n - p.reportedKeys))
		p.reportedKeys = n
	}
	if n := p.parser.Evicted(); n > p.reportedEvicted {
		p.m.templatesGone.Add(float64(n - p.reportedEvicted))
		p.reportedEvicted = n
	}
}

// Close removes this processor's share from the shared gauges; call it when
// the processor is dropped (a partition revoked).
func (p *Processor) Close() {
	p.m.templates.Sub(float64(p.reportedTemplates))
	p.m.keys.Sub(float64(p.reportedKeys))
	p.reportedTemplates, p.reportedKeys = 0, 0
}

// Counts appends the count rows of the minutes closed since the last call
// to dst, oldest first, and forgets them. Rows are per (minute, subject,
// template): see CountRow.
func (p *Processor) Counts(dst []CountRow) []CountRow {
	dst = append(dst, p.rows...)
	clear(p.rows)
	p.rows = p.rows[:0]
	return dst
}

// Watermark returns the processor's event-time watermark: the latest record
// time seen (capped by max_future_skew), or the Tick time of an idle stream.
func (p *Processor) Watermark() time.Time {
	if p.watermark == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, p.watermark).UTC()
}
