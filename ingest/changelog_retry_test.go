package ingest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestTemporaryKafkaError: a changelog partition without a leader yet is
// waited for; a refusal that a retry cannot cure fails at once.
func TestTemporaryKafkaError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("offsets: %w", errors.Join(kafka.NotLeaderForPartition)), true},
		{errors.Join(errors.New("dial"), kafka.LeaderNotAvailable), true},
		{kafka.UnknownTopicOrPartition, true},
		{fmt.Errorf("offsets: %w", kafka.TopicAuthorizationFailed), false},
		{errors.New("connection refused"), false},
	} {
		if got := temporaryKafkaError(c.err); got != c.want {
			t.Errorf("temporaryKafkaError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
