package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/correlatord/correlatord/event"
)

// The snapshot is JSON, like the template miner's, which it embeds:
//
//	{"format":"correlatord-logs","version":1,"watermark":1767225600000000000,
//	 "templates":{...logtemplate snapshot...},
//	 "keys":[{"hash":"...","kind":"h","subject":"web-01","template_id":"9f0c4a7e12d3b5a8",
//	   "minute":29453760,"count":12,"level":"error","baseline":1.5,"observed":42,
//	   "window":{"reason":"error","start":...,"count":12,...}}],
//	 "rows":[...count rows not yet handed over...]}
//
// Keys are listed least recently seen first, so a restored processor evicts
// in the same order. Times are Unix nanoseconds, minutes Unix minutes; an
// absent minute is null.
const (
	snapshotFormat  = "correlatord-logs"
	snapshotVersion = 1
)

// ErrSnapshot wraps every error Restore reports about the snapshot itself.
var ErrSnapshot = errors.New("logs: bad snapshot")

type snapshot struct {
	Format    string          `json:"format"`
	Version   int             `json:"version"`
	Watermark *int64          `json:"watermark"`
	Templates json.RawMessage `json:"templates"`
	Keys      []snapKey       `json:"keys"`
	Rows      []snapRow       `json:"rows"`
}

type snapKey struct {
	Hash        string      `json:"hash"`
	Kind        string      `json:"kind"`
	Subject     string      `json:"subject"`
	CI          string      `json:"ci,omitempty"`
	TemplateID  string      `json:"template_id"`
	Template    string      `json:"template"`
	Host        string      `json:"host,omitempty"`
	Service     string      `json:"service,omitempty"`
	Minute      *int64      `json:"minute"`
	Count       uint64      `json:"count"`
	Level       string      `json:"level"`
	LastClosed  *int64      `json:"last_closed"`
	LastSeen    int64       `json:"last_seen"`
	Baseline    float64     `json:"baseline"`
	Observed    int64       `json:"observed"`
	LastAnomaly *int64      `json:"last_anomaly"`
	Window      *snapWindow `json:"window,omitempty"`
}

type snapWindow struct {
	Reason   string            `json:"reason"`
	Start    int64             `json:"start"`
	Last     int64             `json:"last"`
	Count    uint64            `json:"count"`
	Severity string            `json:"severity"`
	Source   string            `json:"source"`
	Summary  string            `json:"summary"`
	Example  string            `json:"example"`
	Labels   map[string]string `json:"labels"`
	Extra    map[string]string `json:"extra,omitempty"`
}

type snapRow struct {
	Minute     int64  `json:"minute"`
	CI         string `json:"ci"`
	Bound      bool   `json:"bound"`
	Host       string `json:"host,omitempty"`
	Service    string `json:"service,omitempty"`
	TemplateID string `json:"template_id"`
	Template   string `json:"template"`
	Level      string `json:"level"`
	Count      uint64 `json:"count"`
}

func optMinute(m int64) *int64 {
	if m == noMinute {
		return nil
	}
	return &m
}

func fromOpt(m *int64) int64 {
	if m == nil {
		return noMinute
	}
	return *m
}

// Snapshot writes the processor's state to w: the template miner's
// templates and ids, every key's open minute, baseline and aggregation
// window, and the count rows not yet handed over. A processor restored from
// it gives every record the template id, fingerprint and window it would
// have had without the restart. Call it from the processor's goroutine,
// together with committing the Kafka offsets it covers. The rows Counts
// has not handed over yet are in the snapshot too: drain Counts before
// Snapshot, or drop the processor after it, or they are written twice.
func (p *Processor) Snapshot(w io.Writer) error {
	var tb bytes.Buffer
	if err := p.parser.Snapshot(&tb); err != nil {
		return err
	}
	s := snapshot{Format: snapshotFormat, Version: snapshotVersion, Templates: tb.Bytes(), Keys: []snapKey{}, Rows: []snapRow{}}
	if p.watermark != math.MinInt64 {
		wm := p.watermark
		s.Watermark = &wm
	}
	for i := p.tail; i >= 0; i = p.states[i].prev {
		st := &p.states[i]
		k := snapKey{
			Hash: strconv.FormatUint(st.hash, 16), Kind: string(st.kind), Subject: st.subject, CI: st.ci,
			TemplateID: st.tidHex, Template: st.template, Host: st.host, Service: st.service,
			Minute: optMinute(st.minute), Count: st.count, Level: st.level.String(),
			LastClosed: optMinute(st.lastClosed), LastSeen: st.lastSeen,
			Baseline: st.baseline, Observed: st.observed, LastAnomaly: optMinute(st.lastAnomaly),
		}
		if st.win.open {
			w := &st.win
			k.Window = &snapWindow{
				Reason: emitReasons[w.reason], Start: w.start, Last: w.last, Count: w.count,
				Severity: string(w.severity), Source: w.source, Summary: w.summary, Example: w.example,
				Labels: w.labels, Extra: w.extra,
			}
		}
		s.Keys = append(s.Keys, k)
	}
	for _, r := range p.rows {
		s.Rows = append(s.Rows, snapRow{
			Minute: r.Minute.Unix() / 60, CI: r.CI, Bound: r.Bound, Host: r.Host, Service: r.Service,
			TemplateID: strconv.FormatUint(r.TemplateID, 16), Template: r.Template, Level: r.Level.String(), Count: r.Count,
		})
	}
	bw := bufio.NewWriter(w)
	if err := json.NewEncoder(bw).Encode(&s); err != nil {
		return fmt.Errorf("write logs snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write logs snapshot: %w", err)
	}
	return nil
}

// Restore replaces the processor's state with a snapshot written by
// Snapshot. The processor keeps its own configuration: keys beyond MaxKeys
// are dropped, least recently seen first. On error the processor is left
// empty, so the caller can go on without the old state.
func (p *Processor) Restore(r io.Reader) error {
	err := p.restore(r)
	if err != nil {
		p.reset()
		return err
	}
	p.report()
	return nil
}

func (p *Processor) reset() {
	_ = p.parser.Restore(bytes.NewReader(nil)) // empties it
	p.keys = make(map[uint64]int32)
	p.states, p.free, p.open, p.rows = nil, nil, nil, nil
	p.head, p.tail = -1, -1
	p.watermark, p.lastArrival, p.nextClose = math.MinInt64, 0, math.MaxInt64
	p.report()
}

func (p *Processor) restore(r io.Reader) error {
	var s snapshot
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("%w: decode: %v", ErrSnapshot, err)
	}
	if s.Format != snapshotFormat {
		return fmt.Errorf("%w: format is %q, want %q", ErrSnapshot, s.Format, snapshotFormat)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("%w: version %d, this build reads version %d", ErrSnapshot, s.Version, snapshotVersion)
	}
	if err := p.parser.Restore(bytes.NewReader(s.Templates)); err != nil {
		return fmt.Errorf("%w: templates: %w", ErrSnapshot, err)
	}
	p.keys = make(map[uint64]int32, len(s.Keys))
	p.states, p.free, p.open, p.rows = nil, nil, nil, nil
	p.head, p.tail = -1, -1
	p.lastArrival, p.nextClose = 0, math.MaxInt64
	p.watermark = math.MinInt64
	if s.Watermark != nil {
		p.watermark = *s.Watermark
	}
	if len(s.Keys) > p.cfg.MaxKeys {
		s.Keys = s.Keys[len(s.Keys)-p.cfg.MaxKeys:]
	}
	for n, k := range s.Keys {
		st, err := p.decodeKey(&k)
		if err != nil {
			return fmt.Errorf("%w: keys[%d]: %v", ErrSnapshot, n, err)
		}
		if _, dup := p.keys[st.hash]; dup {
			return fmt.Errorf("%w: keys[%d]: hash %s is used twice", ErrSnapshot, n, k.Hash)
		}
		i := int32(len(p.states))
		p.states = append(p.states, st)
		p.keys[st.hash] = i
		p.pushFront(i)
		if st.win.open {
			p.states[i].openPos = int32(len(p.open))
			p.open = append(p.open, i)
		}
		if st.minute != noMinute {
			p.nextClose = min(p.nextClose, (st.minute+1)*nsPerMinute+p.graceNS)
		}
	}
	for n, sr := range s.Rows {
		tid, err := strconv.ParseUint(sr.TemplateID, 16, 64)
		if err != nil {
			return fmt.Errorf("%w: rows[%d]: template_id %q is not hex", ErrSnapshot, n, sr.TemplateID)
		}
		l, _ := ParseLevel(sr.Level)
		p.pushRow(CountRow{
			Minute: time.Unix(sr.Minute*60, 0).UTC(), CI: sr.CI, Bound: sr.Bound, Host: sr.Host, Service: sr.Service,
			TemplateID: tid, Template: sr.Template, Level: l, Count: sr.Count,
		})
	}
	return nil
}

func (p *Processor) decodeKey(k *snapKey) (keyState, error) {
	h, err := strconv.ParseUint(k.Hash, 16, 64)
	if err != nil {
		return keyState{}, fmt.Errorf("hash %q is not hex", k.Hash)
	}
	tid, err := strconv.ParseUint(k.TemplateID, 16, 64)
	if err != nil || len(k.TemplateID) != 16 {
		return keyState{}, fmt.Errorf("template_id %q is not 16 hex digits", k.TemplateID)
	}
	if len(k.Kind) != 1 {
		return keyState{}, fmt.Errorf("kind %q is not one of c, h, p, s, n", k.Kind)
	}
	switch kind := k.Kind[0]; kind {
	case subjCI, subjHost, subjPod, subjService, subjNone:
	default:
		return keyState{}, fmt.Errorf("kind %q is not one of c, h, p, s, n", k.Kind)
	}
	level, _ := ParseLevel(k.Level)
	st := keyState{
		hash: h, kind: k.Kind[0], subject: k.Subject, ci: k.CI, tid: tid, tidHex: k.TemplateID,
		host: k.Host, service: k.Service, template: k.Template,
		minute: fromOpt(k.Minute), count: k.Count, level: level,
		lastClosed: fromOpt(k.LastClosed), lastSeen: k.LastSeen,
		baseline: k.Baseline, observed: k.Observed, lastAnomaly: fromOpt(k.LastAnomaly),
		openPos: -1, prev: -1, next: -1,
	}
	// The live template text, if the miner still has it: it may have
	// generalised since.
	if t, ok := p.parser.Template(tid); ok {
		st.template = t
	}
	if w := k.Window; w != nil {
		reason := rNone
		for i, r := range emitReasons[:rAnomaly] {
			if r == w.Reason {
				reason = uint8(i)
			}
		}
		if reason == rNone {
			return keyState{}, fmt.Errorf("window reason %q is not one of error, new_template, watched", w.Reason)
		}
		if w.Labels == nil {
			return keyState{}, errors.New("window without labels")
		}
		st.win = window{
			open: true, reason: reason, start: w.Start, last: w.Last, count: w.Count,
			severity: event.Severity(w.Severity), source: w.Source, summary: w.Summary, example: w.Example,
			labels: w.Labels, extra: w.Extra,
		}
	}
	return st, nil
}
