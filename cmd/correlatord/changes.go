package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/ingest"
	"github.com/correlatord/correlatord/rules"
)

// changeConsumer feeds approved change records from a Kafka topic into the
// rules stage's change store. The store lives in memory, so every start
// reads the topic from its beginning, one reader per partition, without a
// consumer group: every instance needs every change record.
type changeConsumer struct {
	cfg     ingest.KafkaConfig
	store   *rules.ChangeStore
	logger  *zap.Logger
	records *prometheus.CounterVec
}

func newChangeConsumer(cfg ingest.KafkaConfig, store *rules.ChangeStore, reg prometheus.Registerer, logger *zap.Logger) *changeConsumer {
	c := &changeConsumer{cfg: cfg, store: store, logger: logger.With(zap.String("component", "change-consumer"), zap.String("topic", cfg.ChangeTopic)),
		records: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_change_records_total",
			Help: "Change records read from kafka.change_topic, by result (applied or rejected).",
		}, []string{"result"})}
	c.records.WithLabelValues("applied")
	c.records.WithLabelValues("rejected")
	return c
}

// Run reads until ctx is done. A topic that does not exist yet is retried.
func (c *changeConsumer) Run(ctx context.Context) error {
	dialer, err := ingest.NewDialer(c.cfg)
	if err != nil {
		return err
	}
	var partitions []kafka.Partition
	for {
		partitions, err = c.partitions(ctx, dialer)
		if err == nil && len(partitions) > 0 {
			break
		}
		c.logger.Warn("change topic not readable yet; retrying in 10s", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
		}
	}
	var wg sync.WaitGroup
	for _, p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.cfg.Brokers, Topic: c.cfg.ChangeTopic, Partition: p.ID,
			Dialer: dialer, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			r.Close()
			return fmt.Errorf("change topic partition %d: %w", p.ID, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			c.read(ctx, r)
		}()
	}
	wg.Wait()
	return nil
}

func (c *changeConsumer) partitions(ctx context.Context, dialer *kafka.Dialer) ([]kafka.Partition, error) {
	var errs []error
	for _, b := range c.cfg.Brokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps, err := conn.ReadPartitions(c.cfg.ChangeTopic)
		conn.Close()
		if err == nil {
			return ps, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (c *changeConsumer) read(ctx context.Context, r *kafka.Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.logger.Warn("reading change records failed; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		rec, err := rules.DecodeChange(m.Value)
		if err == nil {
			err = c.store.Apply(rec)
		}
		if err != nil {
			c.records.WithLabelValues("rejected").Inc()
			c.logger.Warn("change record rejected", zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
			continue
		}
		c.records.WithLabelValues("applied").Inc()
	}
}
