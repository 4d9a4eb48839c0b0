package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/ingest"
	"github.com/correlatord/correlatord/ingest/logs"
)

// logStage turns log records from kafka.log_topics into events: decoded by
// the consumer (ingest.ConsumerOptions.Decode), mined into templates,
// bound to CIs and filtered by the processor, then handed to the first
// stage's handler like alerts (keyed, rules, correlation). Every second it
// runs the processor's timers (aggregated repeats, rate anomalies) and
// writes the closed minutes' template counts to ClickHouse; every minute,
// and at the end, it saves the processor's state (the template miner's
// included), so template ids survive restarts.
type logStage struct {
	out          ingest.Handler
	counts       *analytics.Writer[logs.CountRow] // nil: analytics off
	snapshotPath string
	logger       *zap.Logger

	mu      sync.Mutex // the consumer's goroutine and the timers
	dec     *logs.Decoder
	proc    *logs.Processor
	records []logs.Record
}

func newLogStage(cfg *Config, binder logs.Binder, out ingest.Handler, counts *analytics.Writer[logs.CountRow], m *logs.Metrics, logger *zap.Logger) (*logStage, error) {
	proc, err := logs.NewProcessor(cfg.Logs, binder, m)
	if err != nil {
		return nil, err
	}
	s := &logStage{out: out, counts: counts, logger: logger.With(zap.String("component", "logs")),
		dec: logs.NewDecoder(cfg.Logs, m), proc: proc, snapshotPath: filepath.Join(cfg.DataDir, "logs", "processor.snapshot")}
	b, err := os.ReadFile(s.snapshotPath)
	switch {
	case err == nil:
		if err := proc.Restore(bytes.NewReader(b)); err != nil {
			// A snapshot of other masking rules or a damaged file: start
			// afresh rather than not at all; template ids restart.
			s.logger.Error("log processor state not restored; starting with no templates", zap.String("file", s.snapshotPath), zap.Error(err))
			if proc, err = logs.NewProcessor(cfg.Logs, binder, m); err != nil {
				return nil, err
			}
			s.proc = proc
		} else {
			s.logger.Info("log processor state restored", zap.String("file", s.snapshotPath), zap.Int("templates", proc.Parser().Len()))
		}
	case !os.IsNotExist(err):
		return nil, fmt.Errorf("logs: %w", err)
	}
	return s, nil
}

// decode implements ingest.ConsumerOptions.Decode.
func (s *logStage) decode(value []byte, now time.Time, dst []event.Event) ([]event.Event, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, errs := s.dec.Decode(value, now, s.records[:0])
	for i := range recs {
		dst = s.proc.Process(&recs[i], now, dst)
	}
	clear(recs)
	s.records = recs[:0]
	if len(errs) > 0 {
		return dst, logs.Reason(errs), logs.Describe(errs)
	}
	return dst, "", ""
}

// run runs the timers until ctx is done, then saves the state.
func (s *logStage) run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastSave := time.Now()
	for {
		select {
		case <-ctx.Done():
			return s.save()
		case now := <-tick.C:
			s.mu.Lock()
			evs := s.proc.Tick(now, nil)
			rows := s.proc.Counts(nil)
			s.mu.Unlock()
			if len(evs) > 0 {
				if _, err := s.out.Handle(ctx, evs); err != nil && ctx.Err() == nil {
					s.logger.Error("aggregated log events not handed on", zap.Int("events", len(evs)), zap.Error(err))
				}
			}
			if len(rows) > 0 && s.counts != nil {
				if _, err := s.counts.Append(ctx, rows); err != nil && ctx.Err() == nil {
					s.logger.Error("log template counts not queued for analytics", zap.Error(err))
				}
			}
			if now.Sub(lastSave) >= time.Minute {
				lastSave = now
				if err := s.save(); err != nil {
					s.logger.Error("saving the log processor state failed", zap.Error(err))
				}
			}
		}
	}
}

// save writes the processor's state atomically (a temporary file renamed
// over the old one).
func (s *logStage) save() error {
	var b bytes.Buffer
	s.mu.Lock()
	err := s.proc.Snapshot(&b)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.snapshotPath), 0o755); err != nil {
		return err
	}
	tmp := s.snapshotPath + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.snapshotPath)
}
