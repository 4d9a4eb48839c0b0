package ingest

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// GroupLagMonitor reports, from the broker, how far each consumer group is
// behind: every partition's end offset minus the group's committed offset.
// The plain consumers (input topics, log topics, the notification outbox)
// read through kafka-go group readers, which do not say which partitions
// they own; the broker knows the group's position whoever owns them. Every
// instance reports the same values: aggregate with max, not sum.
type GroupLagMonitor struct {
	client *kafka.Client
	groups map[string][]string // group -> topics
	lag    *prometheus.GaugeVec
	errs   prometheus.Counter
	logger *zap.Logger
}

// NewGroupLagMonitor returns a monitor of groups (group id -> topics).
func NewGroupLagMonitor(cfg KafkaConfig, groups map[string][]string, reg prometheus.Registerer, logger *zap.Logger) (*GroupLagMonitor, error) {
	d, err := NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	f := promauto.With(reg)
	return &GroupLagMonitor{
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: newTransport(cfg, d)},
		groups: groups,
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "correlator_kafka_group_lag",
			Help: "Messages a consumer group has not committed yet, by group, topic and partition, from the broker (every instance reports the group: aggregate with max).",
		}, []string{"group", "topic", "partition"}),
		errs: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_kafka_group_lag_errors_total",
			Help: "Failed reads of consumer group offsets for correlator_kafka_group_lag.",
		}),
		logger: logger.With(zap.String("component", "kafka-lag")),
	}, nil
}

// Run measures every interval until ctx is done.
func (m *GroupLagMonitor) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.measure(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *GroupLagMonitor) measure(ctx context.Context) {
	for group, topics := range m.groups {
		meta, err := m.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err != nil {
			m.fail(err)
			return
		}
		want := map[string][]int{}
		ends := map[string][]kafka.OffsetRequest{}
		for _, t := range meta.Topics {
			for _, p := range t.Partitions {
				want[t.Name] = append(want[t.Name], p.ID)
				ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(p.ID))
			}
		}
		committed, err := m.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: want})
		if err != nil {
			m.fail(err)
			continue
		}
		last, err := m.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
		if err != nil {
			m.fail(err)
			continue
		}
		for topic, ps := range last.Topics {
			done := map[int]int64{}
			for _, c := range committed.Topics[topic] {
				done[c.Partition] = c.CommittedOffset
			}
			for _, p := range ps {
				c, ok := done[p.Partition]
				if !ok || c < 0 {
					// Nothing committed yet: the group starts from the
					// first offset (kafka.start_offset earliest).
					c = p.FirstOffset
				}
				m.lag.WithLabelValues(group, topic, strconv.Itoa(p.Partition)).Set(float64(max(p.LastOffset-c, 0)))
			}
		}
	}
}

func (m *GroupLagMonitor) fail(err error) {
	m.errs.Inc()
	m.logger.Debug("reading consumer group offsets failed", zap.Error(err))
}
