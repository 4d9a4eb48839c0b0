package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/ingest"
)

// flakyWriter fails its first failures writes, then records what it is given.
type flakyWriter struct {
	mu       sync.Mutex
	failures int
	release  chan struct{} // nil: writes do not wait
	got      []kafka.Message
}

func (w *flakyWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if w.release != nil {
		select {
		case <-w.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures > 0 {
		w.failures--
		return errors.New("leader not available")
	}
	w.got = append(w.got, msgs...)
	return nil
}

func keyerTestEvents(t *testing.T, n int) []event.Event {
	t.Helper()
	base := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			Time:   base.Add(time.Duration(i) * time.Millisecond),
			Source: "prometheus",
			Labels: event.FromMap(map[string]string{"alertname": "HighLatency", "instance": fmt.Sprintf("host-%d", i%7),
				"severity": "critical", "note": "quotes \" <b>&amp;</b> \\ tab\t ünïcødé ✓"}),
			Annotations: event.FromMap(map[string]string{"summary": fmt.Sprintf("p99 above 2s\non host-%d", i%7)}),
			Summary:     "line\u2028separator",
		}
		if i%2 == 1 {
			evs[i].Status = event.StatusResolved
		}
		if err := event.Normalize(&evs[i], event.DefaultDefaults); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

// TestKeyerProducesInOrder: the first stage returns before the broker has
// acknowledged, reports durable only what was produced, retries a failed
// produce without reordering, and what it produces decodes, in the second
// stage, to the very events it was given.
func TestKeyerProducesInOrder(t *testing.T) {
	cfg := correlate.DefaultConfig()
	cfg.GroupBy = []string{"instance"}
	w := &flakyWriter{failures: 2, release: make(chan struct{})}
	// Messages of at most 1,500 bytes hold a few events each: a
	// partition's events of one write span several.
	const partitions, messageBytes = 4, 1500
	k := newKeyer(w, nil, newPartitionKeyer(nil, &cfg), partitions, messageBytes, nil, nil)
	ctx := context.Background()
	evs := keyerTestEvents(t, 50)

	p1, err := k.Handle(ctx, evs[:20])
	if err != nil {
		t.Fatal(err)
	}
	p2, err := k.Handle(ctx, evs[20:])
	if err != nil {
		t.Fatal(err)
	}
	if p1 != 20 || p2 != 50 {
		t.Fatalf("positions %d, %d; want 20, 50", p1, p2)
	}
	if d := k.Durable(); d != 0 {
		t.Fatalf("durable %d before the broker acknowledged anything", d)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if err := k.WaitDurable(short, p2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDurable with the broker away = %v, want a deadline", err)
	}
	cancel()
	close(w.release)
	if err := k.WaitDurable(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if d := k.Durable(); d != 50 {
		t.Fatalf("durable %d, want 50", d)
	}

	// Each message holds events of its partition only, the partition
	// holds them in the order given, and every event is there once.
	dec := ingest.NewDecoder(ingest.DefaultLimits, event.DefaultDefaults)
	byPartition := make([][]event.Event, partitions)
	for i, m := range w.got {
		out, errs := dec.DecodeKeyed(m.Value, time.Time{}, nil)
		if len(errs) > 0 || len(out) == 0 {
			t.Fatalf("message %d does not decode: %v (%x)", i, errs, m.Value)
		}
		if len(m.Value) > messageBytes && len(out) > 1 {
			t.Fatalf("message %d: %d bytes for %d events, over the bound of %d", i, len(m.Value), len(out), messageBytes)
		}
		for _, ev := range out {
			if p := partitionOf(k.keys.appendKey(nil, &ev), partitions); p != m.Partition {
				t.Fatalf("message %d to partition %d holds an event of partition %d: %+v", i, m.Partition, p, ev)
			}
		}
		byPartition[m.Partition] = append(byPartition[m.Partition], out...)
	}
	if len(w.got) <= partitions {
		t.Fatalf("%d messages for %d events of %d partitions: the bound of %d bytes split none", len(w.got), len(evs), partitions, messageBytes)
	}
	want := make([][]event.Event, partitions)
	for i := range evs {
		p := partitionOf(k.keys.appendKey(nil, &evs[i]), partitions)
		want[p] = append(want[p], evs[i])
	}
	for p := range partitions {
		if !reflect.DeepEqual(byPartition[p], want[p]) {
			t.Fatalf("partition %d got %d events\n%+v\nwant %d\n%+v", p, len(byPartition[p]), byPartition[p], len(want[p]), want[p])
		}
	}
	k.Close(ctx)
	if _, err := k.Handle(ctx, evs[:1]); err == nil {
		t.Fatal("Handle after Close succeeded")
	}
}

// TestKeyerCloseStopsRetrying: at shutdown, a broker that never comes back
// does not hold the daemon beyond the shutdown context, and what was not
// produced is not durable, so its offsets are not committed.
func TestKeyerCloseStopsRetrying(t *testing.T) {
	cfg := correlate.DefaultConfig()
	w := &flakyWriter{failures: 1 << 30}
	k := newKeyer(w, nil, newPartitionKeyer(nil, &cfg), 8, keyedMessageBytes, nil, nil)
	if _, err := k.Handle(context.Background(), keyerTestEvents(t, 3)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	k.Close(ctx)
	if d := k.Durable(); d != 0 {
		t.Fatalf("durable %d after the broker refused everything", d)
	}
	if err := k.WaitDurable(context.Background(), 3); err == nil {
		t.Fatal("WaitDurable after a stop without producing succeeded")
	}
}

// TestKeyerBackpressureHonoursContexts: with the broker stuck and the
// queue full, a caller waiting its turn gives up when its context ends
// (an HTTP request answers 503) instead of waiting for the one ahead.
func TestKeyerBackpressureHonoursContexts(t *testing.T) {
	cfg := correlate.DefaultConfig()
	w := &flakyWriter{release: make(chan struct{})}
	k := newKeyer(w, nil, newPartitionKeyer(nil, &cfg), 8, keyedMessageBytes, nil, nil)
	defer k.Close(context.Background())
	evs := keyerTestEvents(t, 1)
	// Fill the producer and the queue until a call is refused.
	for n := 0; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := k.Handle(ctx, evs)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		} else if err != nil || n > 100 {
			t.Fatalf("call %d: %v", n, err)
		}
	}
	// One caller waits on the full queue, holding its turn...
	blocked := make(chan error, 1)
	go func() {
		_, err := k.Handle(context.Background(), evs)
		blocked <- err
	}()
	time.Sleep(20 * time.Millisecond)
	// ...and the next gives up on time.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := k.Handle(ctx, evs); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handle behind a blocked one = %v, want its deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	close(w.release)
	if err := <-blocked; err != nil {
		t.Fatalf("the blocked caller, once the broker is back: %v", err)
	}
}

// instanceBinder binds the events whose instance label it knows.
type instanceBinder map[string]string

func (b instanceBinder) Bind(e *event.Event) (string, bool) {
	ci, ok := b[e.Labels.Get("instance")]
	return ci, ok
}

// TestKeyerHandOffEqualsDecoding: what the first stage hands to the
// stateful stage of its process for a message is exactly what decoding
// the message gives, for events as each decoder makes them (Alertmanager
// webhook and API v2 lists, canonical events, times in other zones, a CI
// set by binding); the log stage's events and partitions owned elsewhere
// are not handed over.
func TestKeyerHandOffEqualsDecoding(t *testing.T) {
	cfg := correlate.DefaultConfig()
	cfg.GroupBy = []string{"instance"}
	const partitions = 4
	w := &flakyWriter{}
	k := newKeyer(w, instanceBinder{"host-1": "ci-bound", "host-2": "ci-bound", "host-3": "ci-bound", "host-4": "ci-bound"}, newPartitionKeyer(nil, &cfg), partitions, 1500, nil, nil)
	k.handoff = ingest.NewLocalHandoff(100000, time.Minute, nil, prometheus.NewRegistry())
	for p := range partitions - 1 { // the last partition is another instance's
		k.handoff.Own(p, true)
	}
	ctx := context.Background()
	dec := ingest.NewDecoder(ingest.DefaultLimits, event.DefaultDefaults)
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	var all []event.Event
	for _, in := range []struct {
		file   string
		format ingest.Format
	}{
		{"webhook.json", ingest.FormatAlertmanagerWebhook},
		{"alertlist.json", ingest.FormatAlertList},
		{"events.jsonl", ingest.FormatEvents},
		{"events.json", ingest.FormatEvents},
		{"event.json", ingest.FormatEvents},
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", "ingest", "testdata", "decode", in.file))
		if err != nil {
			t.Fatal(err)
		}
		evs, errs := dec.Decode(in.format, data, now, nil)
		if len(errs) > 0 || len(evs) == 0 {
			t.Fatalf("%s: %d events, %v", in.file, len(evs), errs)
		}
		all = append(all, evs...)
	}
	zoned := keyerTestEvents(t, 40)
	for i := range zoned {
		zoned[i].Time = zoned[i].Time.In(time.FixedZone("CET", 3600))
		if i%3 == 0 {
			zoned[i].CI = "ci-" + zoned[i].Labels.Get("instance")
		}
	}
	all = append(all, zoned...)
	if _, err := (handingOff{k}).Handle(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := k.WaitDurable(ctx, uint64(len(all))); err != nil {
		t.Fatal(err)
	}
	taken, bound := 0, 0
	for i := range w.got {
		m := &w.got[i]
		decoded, errs := dec.DecodeKeyed(m.Value, now, nil)
		if len(errs) > 0 {
			t.Fatalf("message %d does not decode: %v", i, errs)
		}
		held, ok := k.handoff.Take(m)
		if m.Partition == partitions-1 {
			if ok || len(m.Headers) > 0 {
				t.Fatalf("message %d to a partition not owned was handed over", i)
			}
			continue
		}
		if !ok {
			t.Fatalf("message %d to owned partition %d was not handed over", i, m.Partition)
		}
		if !reflect.DeepEqual(held, decoded) {
			t.Fatalf("message %d: handed over\n%+v\ndecoded\n%+v", i, held, decoded)
		}
		taken += len(held)
		for _, ev := range held {
			if ev.CI == "ci-bound" {
				bound++
			}
		}
	}
	if bound == 0 {
		t.Fatal("no event handed over was bound to a CI by the first stage")
	}
	if taken == 0 || taken == len(all) {
		t.Fatalf("%d of %d events handed over: the test covers no owned or no foreign partition", taken, len(all))
	}

	// The log stage's events stay its own: plain Handle hands nothing over.
	w.got = nil
	if _, err := k.Handle(ctx, zoned); err != nil {
		t.Fatal(err)
	}
	if err := k.WaitDurable(ctx, uint64(len(all)+len(zoned))); err != nil {
		t.Fatal(err)
	}
	for i := range w.got {
		if len(w.got[i].Headers) > 0 {
			t.Fatalf("message %d of plain Handle carries %v", i, w.got[i].Headers)
		}
	}
	if n := k.handoff.Held(); n != 0 {
		t.Fatalf("%d events held after every message was taken", n)
	}
	// A write the first stage refuses is never produced: nothing of it
	// stays held.
	k.Close(ctx)
	if _, err := (handingOff{k}).Handle(ctx, zoned); err == nil {
		t.Fatal("Handle after Close succeeded")
	}
	if n := k.handoff.Held(); n != 0 {
		t.Fatalf("%d events held for a write that was refused", n)
	}
}
