package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/ingest"
)

type replayOptions struct {
	eventsFile  string
	outFile     string
	cmdbFile    string
	cmdbFormat  string
	rulesFiles  []string
	eventsOut   string
	problemsOut string
	partitions  int
	// stderr receives the summary line; os.Stderr when nil.
	stderr io.Writer
}

// replaySink writes what the pipeline produced as JSON lines. Writing is
// synchronous, so everything appended is durable at once.
type replaySink struct {
	enc *json.Encoder
	pos uint64
	err error
}

// replayRecord is one line of replay's output: the event as the pipeline
// left it (bound, rules applied) and the rules stage's decision.
type replayRecord struct {
	*event.Event
	Rules replayDecision `json:"rules"`
}

type replayDecision struct {
	Class       string `json:"class"`
	Outcome     string `json:"outcome"`
	Correlate   bool   `json:"correlate"`
	Rule        string `json:"rule,omitempty"`
	Maintenance string `json:"maintenance,omitempty"`
	ChangeID    string `json:"change_id,omitempty"`
	InhibitedBy string `json:"inhibited_by,omitempty"`
	Flapping    bool   `json:"flapping,omitempty"`
	DedupCount  uint32 `json:"dedup_count,omitempty"`
}

func (s *replaySink) Append(_ context.Context, rows []analytics.EventRow) (uint64, error) {
	for i := range rows {
		d := &rows[i].Decision
		rec := replayRecord{Event: &rows[i].Event, Rules: replayDecision{Class: d.Class, Outcome: d.Outcome, Correlate: d.Correlate,
			Rule: d.Rule, Maintenance: d.Maintenance, ChangeID: d.ChangeID, InhibitedBy: d.InhibitedBy, Flapping: d.Flapping, DedupCount: d.DedupCount}}
		if err := s.enc.Encode(&rec); err != nil {
			s.err = err
			return s.pos, fmt.Errorf("write output: %w", err)
		}
		s.pos++
	}
	return s.pos, nil
}

func (s *replaySink) Durable() uint64                               { return s.pos }
func (s *replaySink) WaitDurable(_ context.Context, _ uint64) error { return s.err }

// runReplay is `correlatord replay`: the file's events go through the same
// pipeline as live traffic (binding, rules, correlation), in file order,
// with event time as the clock, so the same input always gives the same
// output. At end of input every window is closed and one JSON object per
// incident, open or resolved, is written to --out. It needs neither Kafka
// nor ClickHouse, whatever the configuration says.
func runReplay(ctx context.Context, flags commonFlags, opts replayOptions) error {
	cfg, err := loadConfig(flags.configFile)
	if err != nil {
		return err
	}
	in, err := os.Open(opts.eventsFile)
	if err != nil {
		return fmt.Errorf("--events: %w", err)
	}
	defer in.Close()
	out, closeOut, err := createOutput(opts.outFile, "--out")
	if err != nil {
		return err
	}
	defer closeOut()

	// Per-event records (the event as the pipeline left it, and the rules
	// decision) go to --events-out, when given.
	var sink eventSink = &discardSink{}
	var eventsBuf *bufio.Writer
	if opts.eventsOut != "" {
		f, closeEvents, err := createOutput(opts.eventsOut, "--events-out")
		if err != nil {
			return err
		}
		defer closeEvents()
		eventsBuf = bufio.NewWriterSize(f, 1<<16)
		sink = &replaySink{enc: json.NewEncoder(eventsBuf)}
	}

	// The CMDB: --cmdb, else the configuration's file. Replay reads it once.
	var topo *cmdb.Topology
	if file, format := opts.cmdbFile, opts.cmdbFormat; file != "" || cfg.CMDB.File != "" {
		if file == "" {
			file, format = cfg.CMDB.File, cfg.CMDB.Format
		}
		if topo, err = loadTopology(ctx, file, format, cfg.CMDB.BindLabels); err != nil {
			return err
		}
	}
	if len(opts.rulesFiles) > 0 {
		cfg.Rules.Files = opts.rulesFiles
	}
	var (
		binder   ciBinder
		ruleTopo func() *cmdb.Topology
	)
	if topo != nil {
		binder = topo
		ruleTopo = func() *cmdb.Topology { return topo }
	}
	stage, err := newRulesStage(cfg.Rules, ruleTopo, nil, zap.NewNop())
	if err != nil {
		return err
	}
	// One partition worker per partition, each with its own rules,
	// correlation and incident stages and event-time clock, fed by the same
	// keys as the daemon's keyed topic: with --partitions set to its
	// partition count, replay computes what the daemon's instances compute
	// together.
	if opts.partitions == 0 {
		opts.partitions = 1
	}
	if opts.partitions < 1 {
		return fmt.Errorf("--partitions: must be at least 1, got %d", opts.partitions)
	}
	kedb, err := incidents.NewKEDB(cfg.Incidents.KnownErrorsFile)
	if err != nil {
		return err
	}
	state := newStateStage(cfg, sink, stage, ruleTopo, nil, kedb, nil, zap.NewNop())
	state.binder = binder
	state.keepClosed = -1
	// Records leave the managers some time after closing; replay reports
	// the latest version of each.
	var (
		records  = map[string]*incidents.Incident{}
		problems = map[string]*incidents.Problem{}
	)
	state.onChanges = func(_ int, chs []incidents.Change) {
		for _, c := range chs {
			if c.Incident != nil {
				records[c.Incident.ID] = c.Incident
			}
			if c.Problem != nil {
				problems[c.Problem.ID] = c.Problem
			}
		}
	}
	workers := make([]*partitionWorker, opts.partitions)
	for i := range workers {
		w, _, err := state.open(ctx, i, 0)
		if err != nil {
			return err
		}
		workers[i] = w.(*partitionWorker)
	}
	keys := newPartitionKeyer(ruleTopo, &cfg.Correlate)
	stats, err := replayEvents(ctx, in, workers, keys, binder, cfg)
	if err != nil {
		return err
	}
	// End of input: the last timers, then every window closes.
	var incs []*correlate.Incident
	for _, w := range workers {
		if err := w.pipe.advanceTo(ctx, w.pipe.clock); err != nil {
			return err
		}
		w.onUpdates(w.engine.Flush())
		w.flushIncidents()
		incs = append(incs, w.closed...)
	}
	sortIncidents(incs)
	if opts.problemsOut != "" {
		list := make([]*incidents.Problem, 0, len(problems))
		for _, p := range problems {
			list = append(list, p)
		}
		slices.SortFunc(list, func(a, b *incidents.Problem) int {
			if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		if err := writeJSONLines(opts.problemsOut, "--problems-out", list); err != nil {
			return err
		}
	}

	bw := bufio.NewWriterSize(out, 1<<16)
	enc := json.NewEncoder(bw)
	for _, inc := range incs {
		if err := enc.Encode(newReplayIncident(inc, topo, records[inc.ID])); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if eventsBuf != nil {
		if err := eventsBuf.Flush(); err != nil {
			return fmt.Errorf("--events-out: %w", err)
		}
	}
	stderr := opts.stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	ratio := 0.0
	if len(incs) > 0 {
		ratio = float64(stats.accepted) / float64(len(incs))
	}
	fmt.Fprintf(stderr, "replay: %d lines, %d events in, %d rejected, %d incidents out, noise reduction %.1fx\n",
		stats.lines, stats.accepted, stats.rejected, len(incs), ratio)
	return nil
}

// createOutput opens path for writing; - is standard output. kingpin hands
// `--out -` (with a space) over as an empty string, so that means standard
// output too.
func createOutput(path, flag string) (io.Writer, func(), error) {
	if path == "-" || path == "" {
		return os.Stdout, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, func() { f.Close() }, nil
}

// discardSink accepts rows and keeps none: replay without --events-out.
type discardSink struct{ pos uint64 }

func (s *discardSink) Append(_ context.Context, rows []analytics.EventRow) (uint64, error) {
	s.pos += uint64(len(rows))
	return s.pos, nil
}
func (s *discardSink) Durable() uint64                               { return s.pos }
func (s *discardSink) WaitDurable(_ context.Context, _ uint64) error { return nil }

type replayStats struct {
	lines, accepted, rejected int
}

// replayEvents feeds in line by line, each event to the pipeline of its
// partition. A bad line is reported on stderr with its line number and
// skipped; it never stops the replay.
func replayEvents(ctx context.Context, in io.Reader, workers []*partitionWorker, keys *partitionKeyer, binder ciBinder, cfg *Config) (replayStats, error) {
	var st replayStats
	dec := ingest.NewDecoder(cfg.limits(), cfg.eventDefaults())
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
	var (
		events []event.Event
		clock  time.Time // the latest event time: "now" for events without one
		one    [1]event.Event
		key    []byte // the partition key of one[0]
	)
	for sc.Scan() {
		st.lines++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var errs []ingest.DecodeError
		events, errs = dec.Decode(ingest.FormatEvents, line, clock, events[:0])
		for _, e := range errs {
			st.rejected++
			fmt.Fprintf(os.Stderr, "replay: line %d: %v\n", st.lines, e.Err)
		}
		for i := range events {
			ev := &events[i]
			if ev.Time.After(clock) {
				clock = ev.Time
			}
			w := workers[0]
			if len(workers) > 1 {
				// Bound as the first stage binds, to find the partition.
				one[0] = *ev
				if binder != nil {
					if ci, ok := binder.Bind(&one[0]); ok {
						one[0].CI = ci
					}
				}
				key = keys.appendKey(key[:0], &one[0])
				w = workers[partitionOf(key, len(workers))]
			}
			if _, err := w.handle(ctx, events[i:i+1]); err != nil {
				return st, err
			}
		}
		st.accepted += len(events)
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("--events line %d: %w", st.lines+1, err)
	}
	return st, nil
}

// writeJSONLines writes one JSON object per value to path.
func writeJSONLines[T any](path, flag string, vs []T) error {
	out, closeOut, err := createOutput(path, flag)
	if err != nil {
		return err
	}
	defer closeOut()
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}

// sortIncidents orders incidents by opening time, then id.
func sortIncidents(incs []*correlate.Incident) {
	sort.SliceStable(incs, func(i, j int) bool {
		if !incs[i].OpenedAt.Equal(incs[j].OpenedAt) {
			return incs[i].OpenedAt.Before(incs[j].OpenedAt)
		}
		return incs[i].ID < incs[j].ID
	})
}
