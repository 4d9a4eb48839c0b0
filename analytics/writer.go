package analytics

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Table describes how to write rows of type T to one ClickHouse table.
type Table[T any] struct {
	// Name is the table's name, without the database.
	Name string
	// Columns lists, in order, the columns Append fills. The INSERT names
	// them explicitly (18.16 requires it); columns left out take their
	// DEFAULT.
	Columns []string
	// Append adds one row to b, one value per column of Columns. It is called
	// from one goroutine at a time per Writer. It should not fail on a row
	// the daemon produced: a row that can never be converted would be
	// retried forever and stall the table.
	Append func(b driver.Batch, row *T) error
	// Encode and Decode, if both set, let the Writer spill rows to disk
	// when its memory buffer is full (WriterOptions.SpillDir). Encode
	// appends a row's record to dst and returns the extended slice; it is
	// called by Append, concurrently. Decode fills row, which it must
	// reset first, from a record Encode made; the record's bytes are only
	// valid during the call, so strings are copied. Decode need only
	// reproduce what Append reads. Tables without them block in Append
	// when the buffer is full, as if spilling were off.
	Encode func(dst []byte, row *T) []byte
	Decode func(rec []byte, row *T) error
}

// WriterOptions tune a Writer. Zero fields take the defaults of Config.
type WriterOptions struct {
	// MaxRows is the most rows one INSERT carries.
	MaxRows int
	// MaxWait is the longest a batch waits to fill after its first row.
	MaxWait time.Duration
	// BufferRows bounds the rows held waiting to be written, the batch being
	// sent included; Append blocks beyond it.
	BufferRows int
	// InitialBackoff and MaxBackoff pace retries of a failed INSERT.
	InitialBackoff, MaxBackoff time.Duration
	// InsertTimeout bounds one INSERT attempt.
	InsertTimeout time.Duration
	// ShutdownTimeout bounds the final flush when Run's context ends.
	ShutdownTimeout time.Duration
	// SpillDir, if set, turns spilling on for tables with a codec: rows
	// beyond BufferRows go to files in SpillDir/<table> (see spill.go).
	SpillDir string
	// SpillMaxBytes bounds the table's spill files; Append blocks beyond
	// it. Default DefaultSpillMaxBytes when SpillDir is set.
	SpillMaxBytes int64
}

func (o *WriterOptions) setDefaults() {
	c := Config{
		Batch:           BatchConfig{MaxRows: o.MaxRows, MaxWait: o.MaxWait},
		BufferRows:      o.BufferRows,
		Retry:           RetryConfig{InitialBackoff: o.InitialBackoff, MaxBackoff: o.MaxBackoff},
		InsertTimeout:   o.InsertTimeout,
		ShutdownTimeout: o.ShutdownTimeout,
		SpillDir:        o.SpillDir,
		SpillMaxBytes:   o.SpillMaxBytes,
	}
	c.SetDefaults()
	*o = c.WriterOptions()
	o.BufferRows = max(o.BufferRows, o.MaxRows)
	o.MaxBackoff = max(o.MaxBackoff, o.InitialBackoff)
}

// ErrClosed is returned by Append once Run has begun shutting down, and by
// WaitDurable for rows Run ended without writing.
var ErrClosed = errors.New("analytics: writer closed")

// sender performs one INSERT of rows. The Writer retries it on error, with
// the same rows; a sender must not keep rows after it returns.
type sender[T any] interface {
	send(ctx context.Context, rows []T) error
}

// chSender inserts through clickhouse-go's native batch.
type chSender[T any] struct {
	conn   driver.Conn
	query  string
	append func(driver.Batch, *T) error
}

func (s *chSender[T]) send(ctx context.Context, rows []T) error {
	b, err := s.conn.PrepareBatch(ctx, s.query)
	if err != nil {
		return err
	}
	for i := range rows {
		if err := s.append(b, &rows[i]); err != nil {
			_ = b.Abort()
			return fmt.Errorf("converting row: %w", err)
		}
	}
	return b.Send()
}

// chunk is a run of rows that becomes one INSERT.
type chunk[T any] struct {
	rows    []T
	firstAt time.Time // when its first row was appended
}

// Writer writes rows of one table in batches, at least once and in order.
// Append hands it rows; Run sends them; Durable tells which are stored.
//
// Positions count rows: Append returns the number of rows accepted so far,
// its own included, and Durable the number of rows, counted the same way,
// stored successfully. Since batches are sent one at a time in order,
// every row at or below Durable is stored. A failed INSERT is retried with
// the same rows until it succeeds or Run stops: rows are never dropped or
// reordered, and a row may be stored twice (see the package doc).
//
// With a spill (WriterOptions.SpillDir and the Table's codec), the rows
// accepted but not yet stored are, in position order: the chunks in
// memory, then the spilled rows. Append adds to memory only while nothing
// is left to read in the spill, and to the spill otherwise or when memory
// is full; Run sends memory first and reads the spill when memory is
// empty. So rows still go out in position order, and Durable counts
// spilled rows only once they are stored.
type Writer[T any] struct {
	table  string
	opts   WriterOptions
	sender sender[T]
	encode func([]byte, *T) []byte
	decode func([]byte, *T) error
	logger *zap.Logger
	m      writerMetrics
	sm     spillMetrics

	mu         sync.Mutex
	queue      []*chunk[T] // accepted rows not yet taken by Run; only the last chunk grows
	free       []*chunk[T] // sent chunks kept for reuse
	held       int         // rows in memory: in queue and in flight
	spill      *spill      // nil: no spill; the rows it holds are accepted, not held
	spillErrAt time.Time   // when a spill write error was last logged
	accepted   uint64
	closed     bool          // no more Appends: Run is shutting down
	finished   bool          // Run has returned
	spaceCh    chan struct{} // closed when rows leave the buffer or on close
	durableCh  chan struct{} // closed when durable advances or Run returns
	durable    atomic.Uint64

	wake    chan struct{} // Append to Run: rows arrived
	running atomic.Bool

	// Failure logging, touched by Run's goroutine only.
	failures   int // consecutive failed attempts
	suppressed int // failures not logged since lastLogged
	lastLogged time.Time
	failSince  time.Time
	lastErr    error
}

// logEvery throttles the logging of failed INSERTs.
const logEvery = 10 * time.Second

// NewWriter returns a Writer of table through client. Its metrics are
// registered on reg (none if nil); Writers of different tables can share a
// Registerer. Start Run before or after the first Append.
func NewWriter[T any](client *Client, table Table[T], opts WriterOptions, reg prometheus.Registerer, logger *zap.Logger) *Writer[T] {
	if !validIdentifier(table.Name) || len(table.Columns) == 0 || table.Append == nil {
		panic(fmt.Sprintf("analytics: NewWriter: table %q needs a plain name, columns and an Append function", table.Name))
	}
	q := "INSERT INTO " + client.database + "." + table.Name + " (" + strings.Join(table.Columns, ", ") + ")"
	return newCodecWriter[T](table.Name, &chSender[T]{conn: client.conn, query: q, append: table.Append},
		table.Encode, table.Decode, opts, reg, logger)
}

func newWriter[T any](table string, s sender[T], opts WriterOptions, reg prometheus.Registerer, logger *zap.Logger) *Writer[T] {
	return newCodecWriter(table, s, nil, nil, opts, reg, logger)
}

// newCodecWriter returns a Writer that spills, if opts.SpillDir is set and
// both encode and decode are given. Its spill directory is emptied of what
// a previous process left.
func newCodecWriter[T any](table string, s sender[T], encode func([]byte, *T) []byte, decode func([]byte, *T) error,
	opts WriterOptions, reg prometheus.Registerer, logger *zap.Logger) *Writer[T] {
	if logger == nil {
		logger = zap.NewNop()
	}
	opts.setDefaults()
	w := &Writer[T]{
		table:     table,
		opts:      opts,
		sender:    s,
		logger:    logger.With(zap.String("table", table)),
		m:         newWriterMetrics(reg, table),
		sm:        newSpillMetrics(reg, table),
		spaceCh:   make(chan struct{}),
		durableCh: make(chan struct{}),
		wake:      make(chan struct{}, 1),
	}
	if opts.SpillDir != "" {
		if encode == nil || decode == nil {
			w.logger.Info("no spill for this table (it has no spill codec): Append blocks when its buffer is full",
				zap.Int("buffer_rows", opts.BufferRows))
		} else {
			w.encode, w.decode = encode, decode
			w.spill = openSpill(filepath.Join(opts.SpillDir, table), opts.SpillMaxBytes, w.logger)
		}
	}
	return w
}

// Append copies rows into the buffer and returns the position after them:
// the number of rows ever accepted, these included. The rows of one call
// are accepted together and stay contiguous. The copy is shallow: what the
// rows point to (an event's labels) must not change afterwards. While
// the buffer holds BufferRows rows (ClickHouse slow or down), Append
// writes the rows to the spill if there is one and it has room, and
// otherwise blocks until enough space frees or ctx is done; a call of more
// than BufferRows rows that does not fit in the spill waits for an empty
// buffer. Spilled rows are no more durable than rows in memory: Durable
// passes them once they are in ClickHouse. On error no row was accepted.
// Safe for concurrent use.
func (w *Writer[T]) Append(ctx context.Context, rows []T) (pos uint64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var enc *[]byte // rows encoded for the spill, once needed
	defer func() {
		if enc != nil {
			putSpillBuf(enc)
		}
	}()
	waited := false
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return 0, ErrClosed
		}
		if len(rows) == 0 {
			pos = w.accepted
			w.mu.Unlock()
			return pos, nil
		}
		// Memory takes rows only while nothing waits in the spill: those
		// rows are older and go out first.
		spilling := w.spill != nil && w.spill.unread > 0
		if !spilling && (w.held == 0 || w.held+len(rows) <= w.opts.BufferRows) {
			break
		}
		if w.spill != nil {
			if enc == nil {
				// Encode without the lock; what was decided may change
				// meanwhile, so decide again.
				w.mu.Unlock()
				enc = w.encodeRows(rows)
				w.mu.Lock()
				continue
			}
			err := w.spill.write(*enc, len(rows), w.accepted)
			if err == nil {
				w.accepted += uint64(len(rows))
				pos = w.accepted
				w.sm.spilled.Add(float64(len(rows)))
				w.sm.bytes.Set(float64(w.spill.bytes))
				w.mu.Unlock()
				w.wakeRun()
				return pos, nil
			}
			if !errors.Is(err, errSpillFull) {
				w.spillFailed(err)
			}
			if !waited {
				w.sm.full.Inc()
			}
		}
		waited = true
		ch := w.spaceCh
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		w.mu.Lock()
	}
	n := len(rows)
	for len(rows) > 0 {
		var c *chunk[T]
		if k := len(w.queue); k > 0 && len(w.queue[k-1].rows) < w.opts.MaxRows {
			c = w.queue[k-1]
		} else {
			c = w.newChunk()
			w.queue = append(w.queue, c)
		}
		take := min(w.opts.MaxRows-len(c.rows), len(rows))
		c.rows = append(c.rows, rows[:take]...)
		rows = rows[take:]
	}
	w.held += n
	w.accepted += uint64(n)
	pos = w.accepted
	w.m.buffered.Set(float64(w.held))
	w.mu.Unlock()
	w.wakeRun()
	return pos, nil
}

// testHookBeforeReadSpill, when set (tests), runs between Run finding the
// queue empty and reading the spill: the window where Appends may come.
var testHookBeforeReadSpill func()

func (w *Writer[T]) wakeRun() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// encodeRows returns rows as spill records, in a pooled buffer.
func (w *Writer[T]) encodeRows(rows []T) *[]byte {
	bp := getSpillBuf()
	b := (*bp)[:0]
	var rec []byte
	for i := range rows {
		rec = w.encode(rec[:0], &rows[i])
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	*bp = b
	return bp
}

var spillBufs sync.Pool

func getSpillBuf() *[]byte {
	if bp, ok := spillBufs.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

func putSpillBuf(bp *[]byte) {
	if cap(*bp) <= 4<<20 { // a storm's batch; drop the rare giant
		spillBufs.Put(bp)
	}
}

// spillFailed logs, at most every logEvery, a failed spill write; the
// Append waits for memory as if the spill were full. Called with mu held.
func (w *Writer[T]) spillFailed(err error) {
	if now := time.Now(); now.Sub(w.spillErrAt) >= logEvery {
		w.spillErrAt = now
		w.logger.Error("cannot write to the spill; ingest waits for the memory buffer instead",
			zap.String("dir", w.spill.dir), zap.Error(err))
	}
}

// newChunk returns an empty chunk, reusing a sent one if there is one.
// Called with mu held.
func (w *Writer[T]) newChunk() *chunk[T] {
	var c *chunk[T]
	if k := len(w.free); k > 0 {
		c = w.free[k-1]
		w.free = w.free[:k-1]
	} else {
		c = &chunk[T]{rows: make([]T, 0, min(w.opts.MaxRows, 1024))}
	}
	c.firstAt = time.Now()
	return c
}

// Durable returns the position up to which every row has been written
// successfully. The Kafka consumer commits an offset only once the rows it
// produced are at or below Durable().
func (w *Writer[T]) Durable() uint64 { return w.durable.Load() }

// WaitDurable blocks until Durable() >= pos, ctx is done, or Run has
// returned without writing the rows up to pos (ErrClosed).
func (w *Writer[T]) WaitDurable(ctx context.Context, pos uint64) error {
	for {
		if w.durable.Load() >= pos {
			return nil
		}
		w.mu.Lock()
		ch, finished := w.durableCh, w.finished
		w.mu.Unlock()
		if w.durable.Load() >= pos {
			return nil
		}
		if finished {
			return fmt.Errorf("%w: rows of %s up to position %d were not written (durable %d)", ErrClosed, w.table, pos, w.durable.Load())
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run sends the buffered rows until ctx is cancelled. A batch is sent when
// it holds MaxRows rows, or MaxWait after its first row; spilled rows are
// read back, up to MaxRows at a time, as soon as memory is empty. A failed
// INSERT is retried with exponential backoff and jitter, forever, with the
// same rows in the same order. When ctx is cancelled, Append starts failing
// with ErrClosed and Run makes a final attempt, bounded by ShutdownTimeout,
// to write what is buffered or spilled; it returns an error saying how many
// rows could not be written, if any, and deletes the spill files. If the
// spill cannot be read back, Run stops at once with an error: the rows from
// there on are never reported durable (Kafka redelivers them after a
// restart). Run must be called once.
func (w *Writer[T]) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("analytics: Writer.Run called twice")
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c, wait, err := w.next()
		if err != nil {
			return w.shutdown(ctx, nil, err)
		}
		if c == nil {
			var tick <-chan time.Time
			if wait > 0 {
				timer.Reset(wait)
				tick = timer.C
			}
			select {
			case <-w.wake:
			case <-tick:
			case <-ctx.Done():
				timer.Stop()
				return w.shutdown(ctx, nil, nil)
			}
			timer.Stop()
			continue
		}
		if err := w.deliver(ctx, c.rows); err != nil {
			return w.shutdown(ctx, c, nil)
		}
		w.done(c)
	}
}

// next takes the head chunk off the queue if it is due: full, followed by
// other rows (in memory or spilled), or MaxWait old. With the queue empty,
// it reads a chunk from the spill, if it holds unread rows. Otherwise it
// returns how long until the head is due, or 0 if there is none.
func (w *Writer[T]) next() (*chunk[T], time.Duration, error) {
	w.mu.Lock()
	if len(w.queue) == 0 {
		w.mu.Unlock()
		if testHookBeforeReadSpill != nil {
			testHookBeforeReadSpill()
		}
		c, err := w.readSpill()
		return c, 0, err
	}
	defer w.mu.Unlock()
	head := w.queue[0]
	spilled := w.spill != nil && w.spill.unread > 0
	if len(w.queue) == 1 && len(head.rows) < w.opts.MaxRows && !spilled {
		if wait := w.opts.MaxWait - time.Since(head.firstAt); wait > 0 {
			return nil, wait, nil
		}
	}
	w.queue[0] = nil
	w.queue = w.queue[1:]
	return head, 0, nil
}

// readSpill returns a chunk of the oldest unread spilled rows, up to
// MaxRows of them from one segment, or nil if there are none, or if rows
// wait in memory: those are older. The rows count as held (in memory) from
// then on. Called by Run's goroutine with mu not held, after it found the
// queue empty. Appends may have put rows in memory since, and then, with
// memory full, spilled newer ones; once the queue is found empty here,
// under the lock, Appends go to the spill while it has unread rows, so the
// queue stays empty until these are read.
func (w *Writer[T]) readSpill() (*chunk[T], error) {
	w.mu.Lock()
	if len(w.queue) > 0 || w.spill == nil || w.spill.unread == 0 {
		w.mu.Unlock()
		return nil, nil
	}
	g, off, size := w.spill.next()
	c := w.newChunk()
	w.mu.Unlock()

	var zero T
	consumed, n, err := w.spill.read(g, off, size, w.opts.MaxRows, func(rec []byte) error {
		c.rows = append(c.rows, zero)
		return w.decode(rec, &c.rows[len(c.rows)-1])
	})
	if err != nil {
		clear(c.rows)
		return nil, fmt.Errorf("analytics: reading back the spilled rows of %s: %w", w.table, err)
	}
	w.mu.Lock()
	w.spill.advance(g, consumed, n)
	w.held += n
	w.m.buffered.Set(float64(w.held))
	w.mu.Unlock()
	return c, nil
}

// done records c as written, and deletes the spill segments that only
// held rows now durable.
func (w *Writer[T]) done(c *chunk[T]) {
	n := len(c.rows)
	w.m.written.Add(float64(n))
	w.m.batchRows.Observe(float64(n))
	w.mu.Lock()
	w.held -= n
	durable := w.durable.Add(uint64(n))
	clear(c.rows)
	c.rows = c.rows[:0]
	if len(w.free) < 2 {
		w.free = append(w.free, c)
	}
	if w.spill != nil && w.spill.trim(durable) {
		w.sm.bytes.Set(float64(w.spill.bytes))
	}
	close(w.spaceCh)
	w.spaceCh = make(chan struct{})
	close(w.durableCh)
	w.durableCh = make(chan struct{})
	w.m.buffered.Set(float64(w.held))
	w.mu.Unlock()
}

// deliver sends rows until an attempt succeeds or ctx is done.
func (w *Writer[T]) deliver(ctx context.Context, rows []T) error {
	backoff := w.opts.InitialBackoff
	for {
		actx, cancel := context.WithTimeout(ctx, w.opts.InsertTimeout)
		start := time.Now()
		err := w.sender.send(actx, rows)
		cancel()
		w.m.duration.Observe(time.Since(start).Seconds())
		if err == nil {
			w.recovered()
			return nil
		}
		if ctx.Err() != nil {
			// Cut short by the caller, not a ClickHouse failure.
			w.lastErr = err
			return ctx.Err()
		}
		// Jitter: sleep between half and all of the backoff, so instances
		// that failed together do not retry together.
		sleep := backoff/2 + rand.N(backoff/2+1)
		w.failed(err, len(rows), sleep)
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

// failed counts and, throttled, logs a failed attempt.
func (w *Writer[T]) failed(err error, rows int, backoff time.Duration) {
	reason := classifyError(err)
	w.m.errors[reason].Inc()
	w.lastErr = err
	now := time.Now()
	if w.failures == 0 {
		w.failSince = now
	}
	w.failures++
	if w.failures > 1 && now.Sub(w.lastLogged) < logEvery {
		w.suppressed++
		return
	}
	w.logger.Warn("ClickHouse insert failed; retrying the same rows",
		zap.Error(err),
		zap.String("reason", reason),
		zap.Int("batch_rows", rows),
		zap.Int("buffered_rows", w.buffered()),
		zap.Int("consecutive_failures", w.failures),
		zap.Int("failures_not_logged", w.suppressed),
		zap.Duration("backoff", backoff))
	w.lastLogged = now
	w.suppressed = 0
}

func (w *Writer[T]) recovered() {
	if w.failures == 0 {
		return
	}
	w.logger.Info("ClickHouse insert succeeded after failures",
		zap.Int("failures", w.failures),
		zap.Duration("failing_for", time.Since(w.failSince)))
	w.failures, w.suppressed = 0, 0
	w.lastLogged = time.Time{}
	w.lastErr = nil
}

func (w *Writer[T]) buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held
}

// shutdown stops Appends and tries, within ShutdownTimeout, to write the
// chunk that was in flight (if any), everything buffered and then what is
// spilled; then it deletes the spill. After a spill read error (cause) it
// writes nothing: the rows in memory come after the unreadable ones.
func (w *Writer[T]) shutdown(ctx context.Context, inflight *chunk[T], cause error) error {
	w.mu.Lock()
	w.closed = true
	close(w.spaceCh) // wakes blocked Appends, which now see closed
	w.spaceCh = make(chan struct{})
	pending := w.queue
	w.queue = nil
	w.mu.Unlock()
	if inflight != nil {
		pending = append([]*chunk[T]{inflight}, pending...)
	}

	if cause == nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.ShutdownTimeout)
		defer cancel()
		ok := true
		for _, c := range pending {
			if w.deliver(sctx, c.rows) != nil {
				ok = false
				break
			}
			w.done(c)
		}
		for ok {
			c, err := w.readSpill()
			if err != nil {
				cause = err
				break
			}
			if c == nil {
				break
			}
			if w.deliver(sctx, c.rows) != nil {
				break
			}
			w.done(c)
		}
	}

	w.mu.Lock()
	left := w.held
	if w.spill != nil {
		left += w.spill.unread
		w.spill.removeAll()
		w.sm.bytes.Set(0)
	}
	w.finished = true
	close(w.durableCh)
	w.durableCh = make(chan struct{})
	w.mu.Unlock()
	if cause != nil {
		w.logger.Error("stopped writing: the spilled rows cannot be read back; rows not written are never reported durable (Kafka redelivers them after a restart)",
			zap.Int("rows", left), zap.Error(cause))
		return fmt.Errorf("%w (%d rows of %s not written)", cause, left, w.table)
	}
	if left == 0 {
		return nil
	}
	w.logger.Error("rows not written to ClickHouse at shutdown",
		zap.Int("rows", left), zap.Duration("shutdown_timeout", w.opts.ShutdownTimeout), zap.Error(w.lastErr))
	msg := fmt.Sprintf("analytics: %d rows of %s could not be written to ClickHouse within the shutdown timeout (%s)",
		left, w.table, w.opts.ShutdownTimeout)
	if w.lastErr != nil {
		return fmt.Errorf("%s: last error: %w", msg, w.lastErr)
	}
	return errors.New(msg)
}
