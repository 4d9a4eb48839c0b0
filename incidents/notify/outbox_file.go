package notify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// FileOutboxName is the file the file outbox keeps in its data directory.
const FileOutboxName = "notify-outbox.db"

var bucketPending = []byte("pending")

// FileOutboxOptions configure a FileOutbox.
type FileOutboxOptions struct {
	// MaxPending bounds the stored notifications; beyond it the oldest is
	// dropped and counted. Default 100000.
	MaxPending int
	// Clock dates enqueued notifications. Default SystemClock.
	Clock   Clock
	Metrics *Metrics
	Logger  *zap.Logger
}

// FileOutbox is a durable FIFO of notifications in a bbolt file, for
// single-host setups without Kafka. Enqueue returns once the transaction is
// fsynced; Run delivers in enqueue order and deletes a record only after
// the Deliverer is done with it, so a crash at any point redelivers rather
// than loses. The file is locked: a second process opening the same data
// directory fails after a second instead of corrupting it.
//
// Records are keyed by a big-endian sequence number (bucket "pending"); the
// value is the enqueue time (8 bytes, big-endian Unix nanoseconds) followed
// by the EncodeNotification JSON.
type FileOutbox struct {
	db      *bolt.DB
	opts    FileOutboxOptions
	metrics *Metrics
	logger  *zap.Logger
	signal  chan struct{} // capacity 1: something was enqueued

	// mu serialises write transactions with the count and in-flight key
	// they read, so the count cannot go stale between a commit and its
	// update.
	mu       sync.Mutex
	count    int
	inflight []byte // key being delivered by Run; not dropped on overflow
}

// OpenFileOutbox opens (creating it if needed) the outbox in dir.
func OpenFileOutbox(dir string, opts FileOutboxOptions) (*FileOutbox, error) {
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify.outbox.data_dir: %w", err)
	}
	path := filepath.Join(dir, FileOutboxName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open notification outbox %s: locked by another process (is a second correlatord using notify.outbox.data_dir?)", path)
		}
		return nil, fmt.Errorf("open notification outbox %s: %w", path, err)
	}
	o := &FileOutbox{db: db, opts: opts, metrics: opts.Metrics,
		logger: opts.Logger.With(zap.String("component", "notify-file-outbox")),
		signal: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPending)
		if err != nil {
			return err
		}
		o.count = b.Stats().KeyN
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open notification outbox %s: %w", path, err)
	}
	o.metrics.pending.Set(float64(o.count))
	return o, nil
}

// Close closes the file. Call it after Run has returned.
func (o *FileOutbox) Close() error { return o.db.Close() }

// Pending returns how many notifications are stored.
func (o *FileOutbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count
}

// Enqueue stores ns in one fsynced transaction. See [Outbox].
func (o *FileOutbox) Enqueue(ctx context.Context, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	at := o.opts.Clock.Now()
	values := make([][]byte, len(ns))
	for i := range ns {
		v, err := EncodeNotification(&ns[i])
		if err != nil {
			return fmt.Errorf("notification %d: %w", i, err)
		}
		values[i] = binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(v)), uint64(at.UnixNano()))
		values[i] = append(values[i], v...)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var added, dropped int
	err := o.db.Update(func(tx *bolt.Tx) error {
		added, dropped = 0, 0
		b := tx.Bucket(bucketPending)
		for _, v := range values {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
				return err
			}
			added++
		}
		// Over the bound: drop the oldest, except the one being delivered.
		c := b.Cursor()
		for k, _ := c.First(); k != nil && o.count+added-dropped > o.opts.MaxPending; {
			if bytes.Equal(k, o.inflight) {
				k, _ = c.Next()
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
			dropped++
			// After Delete the cursor may skip an item; start over.
			k, _ = c.First()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %d notifications in the outbox: %w", len(ns), err)
	}
	o.count += added - dropped
	o.metrics.pending.Set(float64(o.count))
	o.metrics.enqueued.Add(float64(added))
	if dropped > 0 {
		o.metrics.outboxDropped.Add(float64(dropped))
		o.logger.Error("notification outbox full (notify.outbox.max_pending): dropped the oldest notifications",
			zap.Int("dropped", dropped), zap.Int("max_pending", o.opts.MaxPending))
	}
	select {
	case o.signal <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers stored notifications in order until ctx is done (then it
// returns nil; the notification in hand stays stored). Start one Run per
// outbox.
func (o *FileOutbox) Run(ctx context.Context, d Deliverer) error {
	var n Notification
	for {
		key, value, err := o.first()
		if err != nil {
			return err
		}
		if key == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-o.signal:
			}
			continue
		}
		switch {
		case len(value) < 8:
			err = errors.New("record shorter than its timestamp")
		default:
			err = DecodeNotification(value[8:], &n)
		}
		if err != nil {
			o.metrics.undecodable.Inc()
			o.logger.Error("skipping an outbox record that is not a notification", zap.Error(err),
				zap.Uint64("seq", binary.BigEndian.Uint64(pad8(key))))
		} else {
			enqueued := time.Unix(0, int64(binary.BigEndian.Uint64(value[:8])))
			if err := d.Deliver(ctx, &n, enqueued); err != nil {
				return nil // ctx done: the record stays for the next run
			}
		}
		if err := o.remove(key); err != nil {
			return err
		}
	}
}

// first returns a copy of the oldest record and marks it in flight.
func (o *FileOutbox) first() (key, value []byte, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	err = o.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketPending).Cursor().First()
		if k != nil {
			// bbolt's slices are valid only inside the transaction.
			key, value = bytes.Clone(k), bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read notification outbox: %w", err)
	}
	o.inflight = key
	return key, value, nil
}

// remove deletes a finished record (fsynced).
func (o *FileOutbox) remove(key []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	removed := false
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPending)
		removed = b.Get(key) != nil
		if !removed {
			return nil
		}
		return b.Delete(key)
	})
	if err != nil {
		// Not done on disk: stop, and the next start delivers it again
		// under the same idempotency key.
		return fmt.Errorf("mark notification done in the outbox: %w", err)
	}
	o.inflight = nil
	if removed {
		o.count--
		o.metrics.pending.Set(float64(o.count))
	}
	return nil
}

func pad8(k []byte) []byte {
	if len(k) >= 8 {
		return k[:8]
	}
	return append(make([]byte, 8-len(k)), k...)
}
