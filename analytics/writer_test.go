package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeSender records successful batches. It fails while failures > 0, and
// blocks each attempt while gate is non-nil until gate is closed (or the
// attempt's context ends).
type fakeSender struct {
	mu       sync.Mutex
	failures int
	failWith error
	gate     chan struct{}
	attempts int
	batches  [][]int
	started  chan struct{} // receives once per attempt, if non-nil
}

func (f *fakeSender) send(ctx context.Context, rows []int) error {
	f.mu.Lock()
	f.attempts++
	gate, started := f.gate, f.started
	f.mu.Unlock()
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		if f.failWith != nil {
			return f.failWith
		}
		return fmt.Errorf("fake: %w", syscall.ECONNREFUSED)
	}
	f.batches = append(f.batches, append([]int(nil), rows...))
	return nil
}

func (f *fakeSender) setGate(g chan struct{}) {
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
}

func (f *fakeSender) written() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []int
	for _, b := range f.batches {
		all = append(all, b...)
	}
	return all
}

func (f *fakeSender) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n []int
	for _, b := range f.batches {
		n = append(n, len(b))
	}
	return n
}

var fastOpts = WriterOptions{
	MaxRows:         10,
	MaxWait:         5 * time.Millisecond,
	BufferRows:      100,
	InitialBackoff:  time.Millisecond,
	MaxBackoff:      4 * time.Millisecond,
	InsertTimeout:   time.Second,
	ShutdownTimeout: time.Second,
}

// startWriter runs w until the test ends, and returns a function that stops
// it and returns Run's error.
func startWriter[T any](t *testing.T, w *Writer[T]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func seq(from, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = from + i
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestWriterRetriesKeepOrderAndLoseNothing(t *testing.T) {
	f := &fakeSender{failures: 5}
	reg := prometheus.NewRegistry()
	w := newWriter[int]("t", f, fastOpts, reg, nil)
	startWriter(t, w)

	var pos uint64
	for i := 0; i < 95; i += 19 {
		p, err := w.Append(ctxT(t), seq(i, 19))
		if err != nil {
			t.Fatal(err)
		}
		if p != uint64(i+19) {
			t.Fatalf("Append returned position %d, want %d", p, i+19)
		}
		pos = p
	}
	if err := w.WaitDurable(ctxT(t), pos); err != nil {
		t.Fatal(err)
	}
	got := f.written()
	if fmt.Sprint(got) != fmt.Sprint(seq(0, 95)) {
		t.Fatalf("written %v", got)
	}
	for _, n := range f.batchSizes() {
		if n > fastOpts.MaxRows {
			t.Errorf("batch of %d rows, max %d", n, fastOpts.MaxRows)
		}
	}
	if w.Durable() != 95 {
		t.Errorf("Durable() = %d", w.Durable())
	}
	if n := counterValue(t, reg, "correlator_analytics_insert_errors_total", "reason", "connection"); n != 5 {
		t.Errorf("insert errors (connection) = %v, want 5", n)
	}
	if n := counterValue(t, reg, "correlator_analytics_rows_written_total", "", ""); n != 95 {
		t.Errorf("rows written = %v, want 95", n)
	}
	if n := gaugeValue(t, reg, "correlator_analytics_rows_buffered"); n != 0 {
		t.Errorf("rows buffered = %v, want 0", n)
	}
}

func TestWriterDurableAdvancesOnlyAfterSuccess(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	f := &fakeSender{gate: gate, started: started, failures: 1}
	w := newWriter[int]("t", f, fastOpts, nil, nil)
	startWriter(t, w)

	pos, err := w.Append(ctxT(t), seq(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	<-started // first attempt in flight
	if d := w.Durable(); d != 0 {
		t.Fatalf("Durable() = %d while the insert is in flight", d)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.WaitDurable(short, pos); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDurable = %v, want deadline exceeded", err)
	}
	close(gate) // the first attempt fails, the retry succeeds
	if err := w.WaitDurable(ctxT(t), pos); err != nil {
		t.Fatal(err)
	}
	if d := w.Durable(); d != 3 {
		t.Fatalf("Durable() = %d, want 3", d)
	}
	f.mu.Lock()
	attempts := f.attempts
	f.mu.Unlock()
	if attempts != 2 {
		t.Errorf("%d attempts, want 2", attempts)
	}
}

func TestWriterBackpressure(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeSender{gate: gate}
	opts := fastOpts
	opts.MaxRows, opts.BufferRows = 5, 10
	w := newWriter[int]("t", f, opts, nil, nil)
	startWriter(t, w)

	if _, err := w.Append(ctxT(t), seq(0, 10)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		pos uint64
		err error
	}
	res := make(chan result, 1)
	go func() {
		p, err := w.Append(ctxT(t), seq(10, 3))
		res <- result{p, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("Append returned %v with a full buffer", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate) // the first batch (5 rows) is written, freeing space
	r := <-res
	if r.err != nil || r.pos != 13 {
		t.Fatalf("Append after space freed = %d, %v; want 13", r.pos, r.err)
	}
	if err := w.WaitDurable(ctxT(t), 13); err != nil {
		t.Fatal(err)
	}
	if got := f.written(); fmt.Sprint(got) != fmt.Sprint(seq(0, 13)) {
		t.Errorf("written %v", got)
	}
}

func TestWriterAppendCancelled(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeSender{gate: gate}
	opts := fastOpts
	opts.MaxRows, opts.BufferRows = 5, 5
	w := newWriter[int]("t", f, opts, nil, nil)
	startWriter(t, w)

	if _, err := w.Append(ctxT(t), seq(0, 5)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := w.Append(ctx, seq(5, 1))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Append = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not unblock Append")
	}
	// The cancelled rows were not accepted: the next position follows 5.
	close(gate)
	p, err := w.Append(ctxT(t), seq(100, 1))
	if err != nil || p != 6 {
		t.Fatalf("Append after cancel = %d, %v; want 6", p, err)
	}
	if err := w.WaitDurable(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	if got := f.written(); fmt.Sprint(got) != fmt.Sprint(append(seq(0, 5), 100)) {
		t.Errorf("written %v", got)
	}

	// An already cancelled context accepts nothing, even with space.
	if _, err := w.Append(ctx, seq(0, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v", err)
	}
}

func TestWriterOversizedAppend(t *testing.T) {
	f := &fakeSender{}
	opts := fastOpts
	opts.MaxRows, opts.BufferRows = 4, 8
	w := newWriter[int]("t", f, opts, nil, nil)
	startWriter(t, w)
	p, err := w.Append(ctxT(t), seq(0, 30))
	if err != nil || p != 30 {
		t.Fatalf("Append = %d, %v", p, err)
	}
	if err := w.WaitDurable(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	if got := f.written(); fmt.Sprint(got) != fmt.Sprint(seq(0, 30)) {
		t.Errorf("written %v", got)
	}
	if got := fmt.Sprint(f.batchSizes()); got != "[4 4 4 4 4 4 4 2]" {
		t.Errorf("batch sizes %s", got)
	}
}

func TestWriterBatchesByMaxRowsAndMaxWait(t *testing.T) {
	f := &fakeSender{}
	opts := fastOpts
	opts.MaxRows, opts.MaxWait = 5, time.Hour
	w := newWriter[int]("t", f, opts, nil, nil)
	startWriter(t, w)

	// A full batch goes out at once, without waiting for MaxWait.
	if _, err := w.Append(ctxT(t), seq(0, 3)); err != nil {
		t.Fatal(err)
	}
	p, err := w.Append(ctxT(t), seq(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	// A partial batch waits.
	p, err = w.Append(ctxT(t), seq(5, 2))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.WaitDurable(short, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a partial batch was sent before MaxWait: %v", err)
	}

	// With a short MaxWait, it goes after MaxWait.
	f2 := &fakeSender{}
	opts.MaxRows, opts.MaxWait = 1000, 30*time.Millisecond
	w2 := newWriter[int]("t2", f2, opts, nil, nil)
	startWriter(t, w2)
	start := time.Now()
	p, err = w2.Append(ctxT(t), seq(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.WaitDurable(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Errorf("partial batch sent after %s, before MaxWait", el)
	}
	if got := fmt.Sprint(f2.batchSizes()); got != "[3]" {
		t.Errorf("batch sizes %s", got)
	}
}

func TestWriterShutdownFlushes(t *testing.T) {
	f := &fakeSender{}
	opts := fastOpts
	opts.MaxWait = time.Hour
	w := newWriter[int]("t", f, opts, nil, nil)
	stop := startWriter(t, w)
	p, err := w.Append(ctxT(t), seq(0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := f.written(); fmt.Sprint(got) != fmt.Sprint(seq(0, 7)) {
		t.Errorf("written %v", got)
	}
	if err := w.WaitDurable(ctxT(t), p); err != nil {
		t.Errorf("WaitDurable after a clean shutdown = %v", err)
	}
	if _, err := w.Append(ctxT(t), seq(7, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after shutdown = %v, want ErrClosed", err)
	}
}

func TestWriterShutdownReportsUnwritten(t *testing.T) {
	f := &fakeSender{failures: 1 << 30}
	opts := fastOpts
	opts.ShutdownTimeout = 30 * time.Millisecond
	core, logs := observer.New(zap.WarnLevel)
	w := newWriter[int]("t", f, opts, nil, zap.New(core))
	stop := startWriter(t, w)

	// A blocked Append is released by the shutdown.
	if _, err := w.Append(ctxT(t), seq(0, 100)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Append(ctxT(t), seq(100, 1))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "100 rows of t could not be written") {
		t.Fatalf("Run = %v", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Run's error does not wrap the last insert error: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Append = %v, want ErrClosed", err)
	}
	if err := w.WaitDurable(ctxT(t), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitDurable of unwritten rows = %v, want ErrClosed", err)
	}
	if w.Durable() != 0 {
		t.Errorf("Durable() = %d", w.Durable())
	}
	// Many failed attempts, few log lines.
	f.mu.Lock()
	attempts := f.attempts
	f.mu.Unlock()
	warns := logs.FilterMessage("ClickHouse insert failed; retrying the same rows").Len()
	if attempts < 3 || warns != 1 {
		t.Errorf("%d failed attempts logged %d times, want once", attempts, warns)
	}
	if logs.FilterMessage("rows not written to ClickHouse at shutdown").Len() != 1 {
		t.Error("no error logged for the lost rows")
	}
}

func TestWriterConcurrentAppends(t *testing.T) {
	f := &fakeSender{failures: 3}
	opts := fastOpts
	opts.MaxRows, opts.BufferRows = 7, 20
	w := newWriter[int]("t", f, opts, nil, nil)
	startWriter(t, w)

	const goroutines, calls, per = 8, 50, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	positions := map[uint64][]int{}
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				rows := seq((g*calls+c)*per, per)
				p, err := w.Append(ctxT(t), rows)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				positions[p] = rows
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	const total = goroutines * calls * per
	if err := w.WaitDurable(ctxT(t), total); err != nil {
		t.Fatal(err)
	}
	got := f.written()
	if len(got) != total {
		t.Fatalf("%d rows written, want %d", len(got), total)
	}
	// Each call's rows are contiguous, ending at the position it returned.
	for p, rows := range positions {
		if fmt.Sprint(got[int(p)-per:p]) != fmt.Sprint(rows) {
			t.Fatalf("rows at position %d are %v, want %v", p, got[int(p)-per:p], rows)
		}
	}
}

func TestWriterRunTwice(t *testing.T) {
	w := newWriter[int]("t", &fakeSender{}, fastOpts, nil, nil)
	startWriter(t, w)
	time.Sleep(10 * time.Millisecond)
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run did not fail")
	}
}

func TestWriterMetricsShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	newWriter[int]("a", &fakeSender{}, fastOpts, reg, nil)
	newWriter[int]("b", &fakeSender{}, fastOpts, reg, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "correlator_analytics_") {
			t.Errorf("metric %s lacks the correlator_analytics_ prefix", mf.GetName())
		}
		series[mf.GetName()] = len(mf.GetMetric())
	}
	want := map[string]int{
		"correlator_analytics_rows_buffered":           2,
		"correlator_analytics_batch_rows":              2,
		"correlator_analytics_insert_duration_seconds": 2,
		"correlator_analytics_insert_errors_total":     2 * len(errorReasons),
		"correlator_analytics_rows_written_total":      2,
		"correlator_analytics_spilled_rows_total":      2,
		"correlator_analytics_spill_bytes":             2,
		"correlator_analytics_spill_full_total":        2,
	}
	if fmt.Sprint(series) != fmt.Sprint(want) {
		t.Errorf("series %v, want %v", series, want)
	}
}

func TestClassifyError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("x: %w", clickhouse.ErrAcquireConnTimeout), "timeout"},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, "timeout"},
		{&clickhouse.Exception{Code: 60, Message: "Table x doesn't exist"}, "server"},
		{fmt.Errorf("send: %w", &clickhouse.Exception{Code: 159}), "timeout"},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "connection"},
		{fmt.Errorf("read: %w", io.EOF), "connection"},
		{syscall.EPIPE, "connection"},
		{errors.New("converting row: bad"), "other"},
	} {
		if got := classifyError(tc.err); got != tc.want {
			t.Errorf("classifyError(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func metricFamily(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// counterValue sums the counter's series whose label has the value (all
// series if label is "").
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	var sum float64
	for _, m := range metricFamily(t, reg, name).GetMetric() {
		match := label == ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == value {
				match = true
			}
		}
		if match {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	var sum float64
	for _, m := range metricFamily(t, reg, name).GetMetric() {
		sum += m.GetGauge().GetValue()
	}
	return sum
}
