package ingest

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
)

// writerMetadataTTL is how long a writer reuses a topic's metadata. kafka-go's
// own transport keeps metadata for 6 s, so this adds at most a second to how
// late a writer learns of a topic's new partitions.
const writerMetadataTTL = time.Second

// metadataCache is a kafka.RoundTripper for writers. kafka-go's Writer asks
// the transport for its topic's metadata once per message, to count the
// partitions. The transport answers from its cache, but copies the
// response each time: 2% of the daemon's CPU and 3.5% of its allocations in
// an HTTP storm with Kafka on (docs/PERFORMANCE.md). metadataCache hands out
// one response per topic for writerMetadataTTL instead. Writers only read
// it. Other requests, failed lookups and lookups of several topics go
// through unchanged.
type metadataCache struct {
	kafka.RoundTripper
	now func() time.Time

	mu     sync.Mutex
	topics map[string]cachedMetadata
}

type cachedMetadata struct {
	response *metadata.Response
	at       time.Time
}

func newMetadataCache(next kafka.RoundTripper, now func() time.Time) *metadataCache {
	return &metadataCache{RoundTripper: next, now: now, topics: make(map[string]cachedMetadata)}
}

// RoundTrip implements kafka.RoundTripper.
func (c *metadataCache) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	m, ok := req.(*metadata.Request)
	if !ok || len(m.TopicNames) != 1 {
		return c.RoundTripper.RoundTrip(ctx, addr, req)
	}
	topic, now := m.TopicNames[0], c.now()
	c.mu.Lock()
	hit, ok := c.topics[topic]
	c.mu.Unlock()
	if ok && now.Sub(hit.at) < writerMetadataTTL && now.Sub(hit.at) >= 0 {
		return hit.response, nil
	}
	r, err := c.RoundTripper.RoundTrip(ctx, addr, req)
	if err != nil {
		return r, err
	}
	if resp, ok := r.(*metadata.Response); ok && usableMetadata(resp, topic) {
		c.mu.Lock()
		c.topics[topic] = cachedMetadata{response: resp, at: now}
		c.mu.Unlock()
	}
	return r, nil
}

// usableMetadata reports whether resp names topic without an error and with
// partitions: anything else is asked again, so a topic being created or
// failing over is not held to its last answer.
func usableMetadata(resp *metadata.Response, topic string) bool {
	for _, t := range resp.Topics {
		if t.Name == topic {
			return t.ErrorCode == 0 && len(t.Partitions) > 0
		}
	}
	return false
}
