package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/analytics/analyticstest"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/ingest"
	"github.com/correlatord/correlatord/rules"
)

// batchSink appends every row to an in-memory ClickHouse batch with the real
// column encoders: the daemon's path up to the network, without the server.
type batchSink struct {
	table analytics.Table[analytics.EventRow]
	batch *analyticstest.BlockBatch
	pos   uint64
}

func (s *batchSink) Append(_ context.Context, rows []analytics.EventRow) (uint64, error) {
	if s.batch.Rows() >= 20000 { // what a flush would send
		s.batch.Block.Reset()
	}
	for i := range rows {
		if err := s.table.Append(s.batch, &rows[i]); err != nil {
			return s.pos, err
		}
	}
	s.pos += uint64(len(rows))
	return s.pos, nil
}
func (s *batchSink) Durable() uint64                               { return s.pos }
func (s *batchSink) WaitDurable(_ context.Context, _ uint64) error { return nil }

func canonicalMessage(i int) []byte {
	return fmt.Appendf(nil, `{"time":"2026-11-02T10:00:%02d.123Z","source":"prometheus","labels":{"alertname":"HostDown","instance":"host-%d:9100","job":"node","severity":"critical","site":"dc1","env":"prod"},"annotations":{"summary":"host-%d is down","description":"node exporter unreachable"}}`, i%60, i, i)
}

func webhookMessage(alerts int) []byte {
	var b strings.Builder
	b.WriteString(`{"version":"4","groupKey":"{}:{}","truncatedAlerts":0,"status":"firing","receiver":"c","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","alerts":[`)
	for i := range alerts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"HostDown","instance":"host-%d:9100","job":"node","severity":"critical","site":"dc1","env":"prod"},"annotations":{"summary":"host-%d is down","description":"node exporter unreachable"},"startsAt":"2026-11-02T10:00:00.123Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":""}`, i, i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// BenchmarkPipelineToBatch measures one core's share of the daemon's hot
// path: a Kafka message's bytes decoded, normalized, passed through the
// pipeline and appended to a ClickHouse batch.
func BenchmarkPipelineToBatch(b *testing.B) {
	for _, tc := range []struct {
		name     string
		format   ingest.Format
		msgs     [][]byte
		perMsg   int
		msgBatch int // messages per Handle call, as the consumer gathers them
	}{
		{name: "canonical-1-per-message", format: ingest.FormatAuto, perMsg: 1, msgBatch: 500},
		{name: "webhook-100-per-message", format: ingest.FormatAuto, perMsg: 100, msgBatch: 5},
	} {
		for i := range 1000 {
			if tc.perMsg == 1 {
				tc.msgs = append(tc.msgs, canonicalMessage(i))
			} else if i < 10 {
				tc.msgs = append(tc.msgs, webhookMessage(tc.perMsg))
			}
		}
		b.Run(tc.name, func(b *testing.B) {
			sink := &batchSink{table: analytics.EventsTable()}
			sink.batch = analyticstest.NewBlockBatch(b, sink.table.Columns, analyticstest.EventColumnTypes)
			pipe := newPipeline(sink, nil, mustEngine(b), time.Now)
			dec := ingest.NewDecoder(ingest.Limits{}, event.DefaultDefaults)
			now := time.Date(2026, 11, 2, 10, 1, 0, 0, time.UTC)
			var events []event.Event
			var bytes int64
			for _, m := range tc.msgs {
				bytes += int64(len(m))
			}
			b.SetBytes(bytes / int64(len(tc.msgs)) * int64(tc.msgBatch))
			b.ReportAllocs()
			n, handled := 0, 0
			for b.Loop() {
				events = events[:0]
				for range tc.msgBatch {
					var errs []ingest.DecodeError
					events, errs = dec.Decode(tc.format, tc.msgs[n%len(tc.msgs)], now, events)
					if len(errs) > 0 {
						b.Fatal(errs[0].Err)
					}
					n++
				}
				if _, err := pipe.Handle(context.Background(), events); err != nil {
					b.Fatal(err)
				}
				handled += len(events)
			}
			b.ReportMetric(float64(handled)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(handled), "ns/event")
		})
	}
}

// mustEngine returns a rules engine on the defaults (no rule files): the
// stage every event passes through.
func mustEngine(tb testing.TB) *rules.Engine {
	tb.Helper()
	stage, err := newRulesStage(rules.Config{}, nil, nil, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	return stage.engine
}

// BenchmarkStatefulStage runs one partition of the stateful stage (rules,
// correlation, incident records; no analytics, no changelog) through the
// alert storm of scripts/am-compare.sh as one of its 8 partitions sees it:
// 625 hosts, 100 distinct alerts each, 8 ms of event time apart (1 ms over
// all 8 partitions), grouped by
// instance, in batches of 160 events (the mean batch over HTTP with Kafka
// on), 25 ms of wall clock apart. "hold" holds member updates for
// incidentSyncInterval, "every-batch" syncs the records after each batch.
//
//	go test -run '^$' -bench StatefulStage -benchtime 5x -cpu 1 -count 5 ./cmd/correlatord
func BenchmarkStatefulStage(b *testing.B) {
	const hosts, perHost, batch = 625, 100, 160
	cfg, err := parseConfig([]byte("correlate:\n  group_by: [instance]\n"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	storm := make([]event.Event, 0, hosts*perHost)
	for i := range hosts * perHost {
		host := i % hosts
		ev := event.Event{ID: fmt.Sprintf("e%d", i), Time: start.Add(time.Duration(i) * 8 * time.Millisecond), Source: "bench",
			Kind: event.KindAlert, Status: event.StatusFiring, Severity: event.SeverityCritical,
			Labels: event.FromMap(map[string]string{"alertname": fmt.Sprintf("Alert%d", i/hosts), "instance": fmt.Sprintf("host-%d:9100", host),
				"job": "node", "severity": "critical"})}
		if err := event.Normalize(&ev, event.DefaultDefaults); err != nil {
			b.Fatal(err)
		}
		storm = append(storm, ev)
	}
	for _, mode := range []struct {
		name string
		hold time.Duration
	}{{"hold", incidentSyncInterval}, {"every-batch", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			events := make([]event.Event, len(storm))
			for b.Loop() {
				b.StopTimer()
				rs, err := newRulesStage(cfg.Rules, nil, nil, zap.NewNop())
				if err != nil {
					b.Fatal(err)
				}
				state := newStateStage(cfg, nil, rs, nil, nil, nil, prometheus.NewRegistry(), zap.NewNop())
				state.syncInterval = mode.hold
				wall := start.Add(time.Hour)
				state.wall = func() time.Time { return wall }
				pw, _, err := state.open(context.Background(), 0, 0)
				if err != nil {
					b.Fatal(err)
				}
				w := pw.(*partitionWorker)
				copy(events, storm)
				b.StartTimer()
				for i := 0; i < len(events); i += batch {
					wall = wall.Add(25 * time.Millisecond)
					if err := w.Handle(context.Background(), events[i:min(i+batch, len(events))], int64(i+batch)); err != nil {
						b.Fatal(err)
					}
				}
				w.Checkpoint()
				b.StopTimer()
				if got := len(w.inc.Incidents()); got != hosts {
					b.Fatalf("%d incidents, want %d", got, hosts)
				}
				w.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(storm)), "ns/event")
		})
	}
}
