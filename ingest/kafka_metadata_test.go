package ingest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
)

// countingTransport answers metadata requests with the partitions of its
// topics map (absent: UnknownTopicOrPartition) and counts every request.
type countingTransport struct {
	partitions map[string]int
	err        error
	calls      int
}

func (t *countingTransport) RoundTrip(_ context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	t.calls++
	if t.err != nil {
		return nil, t.err
	}
	m, ok := req.(*metadata.Request)
	if !ok {
		return &produce.Response{}, nil
	}
	resp := &metadata.Response{}
	for _, name := range m.TopicNames {
		topic := metadata.ResponseTopic{Name: name}
		if n, ok := t.partitions[name]; ok {
			topic.Partitions = make([]metadata.ResponsePartition, n)
		} else {
			topic.ErrorCode = int16(kafka.UnknownTopicOrPartition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}

func partitionCount(t *testing.T, c *metadataCache, topics ...string) int {
	t.Helper()
	r, err := c.RoundTrip(context.Background(), kafka.TCP("b:9092"), &metadata.Request{TopicNames: topics})
	if err != nil {
		t.Fatalf("metadata of %v: %v", topics, err)
	}
	return len(r.(*metadata.Response).Topics[0].Partitions)
}

func TestMetadataCacheReusesATopicsAnswerForItsTTL(t *testing.T) {
	next := &countingTransport{partitions: map[string]int{"keyed": 8, "other": 3}}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	c := newMetadataCache(next, func() time.Time { return now })

	for range 1000 { // a write of 1,000 messages asks once per message
		if n := partitionCount(t, c, "keyed"); n != 8 {
			t.Fatalf("keyed has %d partitions, want 8", n)
		}
	}
	if next.calls != 1 {
		t.Fatalf("1,000 lookups within the TTL reached the transport %d times, want 1", next.calls)
	}
	if n := partitionCount(t, c, "other"); n != 3 || next.calls != 2 {
		t.Fatalf("another topic: %d partitions after %d calls, want 3 after 2", n, next.calls)
	}

	// The topic grows: the writer sees it once the TTL has passed.
	next.partitions["keyed"] = 16
	now = now.Add(writerMetadataTTL - time.Millisecond)
	if n := partitionCount(t, c, "keyed"); n != 8 {
		t.Fatalf("within the TTL: %d partitions, want the cached 8", n)
	}
	now = now.Add(time.Millisecond)
	if n := partitionCount(t, c, "keyed"); n != 16 || next.calls != 3 {
		t.Fatalf("after the TTL: %d partitions after %d calls, want 16 after 3", n, next.calls)
	}
	// A clock that went back does not keep an answer for ever.
	now = now.Add(-time.Hour)
	partitionCount(t, c, "keyed")
	if next.calls != 4 {
		t.Fatalf("clock moved back: %d calls, want 4", next.calls)
	}
}

func TestMetadataCacheDoesNotKeepFailuresOrOtherRequests(t *testing.T) {
	next := &countingTransport{partitions: map[string]int{"a": 1, "b": 2}}
	c := newMetadataCache(next, time.Now)
	ctx, addr := context.Background(), kafka.TCP("b:9092")

	// Unknown topic (being created): asked again every time.
	for range 3 {
		r, err := c.RoundTrip(ctx, addr, &metadata.Request{TopicNames: []string{"new"}})
		if err != nil || r.(*metadata.Response).Topics[0].ErrorCode == 0 {
			t.Fatalf("unknown topic: %v, %+v", err, r)
		}
	}
	if next.calls != 3 {
		t.Fatalf("an unknown topic's answer was kept: %d calls for 3 lookups", next.calls)
	}
	// Several topics, and requests other than metadata, pass through.
	for range 2 {
		if _, err := c.RoundTrip(ctx, addr, &metadata.Request{TopicNames: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.RoundTrip(ctx, addr, &produce.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if next.calls != 7 {
		t.Fatalf("pass-through requests: %d calls, want 7", next.calls)
	}
	// A transport error is returned and not kept.
	next.err = errors.New("connection refused")
	for range 2 {
		if _, err := c.RoundTrip(ctx, addr, &metadata.Request{TopicNames: []string{"a"}}); err == nil {
			t.Fatal("transport error not returned")
		}
	}
	next.err = nil
	if partitionCount(t, c, "a") != 1 || next.calls != 10 {
		t.Fatalf("after errors: %d calls, want 10", next.calls)
	}
}
