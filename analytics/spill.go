package analytics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

// The spill: where a Writer puts rows once BufferRows are held in memory.
//
// It relieves memory during a ClickHouse outage; it is not a durability
// layer. A spilled row has a position like a row in memory, and Durable
// passes it only once it is in ClickHouse, so no Kafka offset is committed
// and no HTTP request is answered for a row that is only on disk. Files are
// therefore not synced, and the files a process leaves behind (a crash, or
// a shutdown that could not write everything) are deleted when the next
// Writer of the table starts: their rows were never reported durable, so
// Kafka redelivers them from the last committed offset, and a client of the
// HTTP ingest without Kafka never got its 200 and sends them again.
//
// Layout: SpillDir/<table>/<position of the first row, 20 digits>.spill,
// append-only segments holding one record per row: a uvarint length, then
// the row as the Table's Encode wrote it. Rows keep their order: once a row
// is spilled, later rows are spilled too until Run has read every spilled
// row back, and Run sends the rows in memory (older) before reading the
// spill. A segment is deleted once all its rows are read and durable.
//
// Concurrency: the spill's fields are guarded by Writer.mu. Append writes
// under it (WriteAt past the segment's size); Run reads without it (ReadAt
// below the size it noted under it), and only Run deletes segments, so a
// segment Run reads is never closed under it.

// errSpillFull says a write would take the spill past its byte bound.
var errSpillFull = errors.New("spill full")

const (
	spillSuffix = ".spill"
	// maxSegmentBytes caps a segment's size; smaller segments free disk
	// sooner while the spill drains.
	maxSegmentBytes = 64 << 20
	// spillReadWindow is how much Run reads at a time; a larger record is
	// read whole.
	spillReadWindow = 1 << 20
)

type spill struct {
	dir      string // SpillDir/<table>
	maxBytes int64
	segBytes int64 // a segment at or past it takes no more rows
	logger   *zap.Logger

	segs   []*segment // oldest first
	bytes  int64      // sum of the segments' sizes
	unread int        // rows written and not read back yet

	readBuf []byte // Run's only
}

// segment is one spill file. Its rows are the positions first+1 through
// first+rows (a position counts the rows accepted up to and including a
// row).
type segment struct {
	f        *os.File
	path     string
	first    uint64
	rows     int
	size     int64
	readRows int
	readOff  int64
}

func (g *segment) end() uint64 { return g.first + uint64(g.rows) }

// openSpill returns the spill of one table in dir, after deleting the
// files a previous process left there.
func openSpill(dir string, maxBytes int64, logger *zap.Logger) *spill {
	s := &spill{
		dir:      dir,
		maxBytes: maxBytes,
		segBytes: min(max(maxBytes/16, 1), maxSegmentBytes),
		logger:   logger,
	}
	s.removeLeftovers()
	return s
}

// removeLeftovers deletes the segments of a previous process. See the
// comment at the top of the file for why that loses nothing.
func (s *spill) removeLeftovers() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.logger.Error("cannot list the spill directory to delete leftover files", zap.String("dir", s.dir), zap.Error(err))
		}
		return
	}
	var files int
	var bytes int64
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), spillSuffix) {
			continue
		}
		if info, err := e.Info(); err == nil {
			bytes += info.Size()
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		files++
	}
	if files > 0 {
		s.logger.Warn("deleted the spill files of a previous run: their rows were never reported durable, "+
			"so their Kafka offsets were not committed (Kafka redelivers them) and HTTP clients were not answered 200",
			zap.String("dir", s.dir), zap.Int("files", files), zap.Int64("bytes", bytes))
	}
	if err := errors.Join(errs...); err != nil {
		s.logger.Error("cannot delete leftover spill files; they take disk space but are never read", zap.Error(err))
	}
}

// write appends the encoded records of rows rows, the first of which
// follows position first, to the spill. Called with Writer.mu held. On
// error nothing was added.
func (s *spill) write(enc []byte, rows int, first uint64) error {
	if s.bytes+int64(len(enc)) > s.maxBytes {
		return errSpillFull
	}
	var g *segment
	if k := len(s.segs); k > 0 {
		// A segment holds consecutive positions only: rows accepted into
		// memory meanwhile start a new one.
		if last := s.segs[k-1]; last.end() == first && last.size < s.segBytes {
			g = last
		}
	}
	if g == nil {
		if err := os.MkdirAll(s.dir, 0o750); err != nil {
			return fmt.Errorf("create spill directory: %w", err)
		}
		path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", first, spillSuffix))
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return fmt.Errorf("create spill file: %w", err)
		}
		g = &segment{f: f, path: path, first: first}
		s.segs = append(s.segs, g)
	}
	// WriteAt, not Write: after a short write the next one overwrites the
	// partial record, which nothing reads since size did not move.
	if _, err := g.f.WriteAt(enc, g.size); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	g.size += int64(len(enc))
	g.rows += rows
	s.bytes += int64(len(enc))
	s.unread += rows
	return nil
}

// next returns the segment to read from, with where to start and how many
// bytes and rows are there to read. Called with Writer.mu held, and
// unread > 0.
func (s *spill) next() (g *segment, off, bytes int64) {
	for _, g := range s.segs {
		if g.readRows < g.rows {
			return g, g.readOff, g.size - g.readOff
		}
	}
	panic("analytics: spill has unread rows but no segment holds them")
}

// advance records that Run read rows rows (bytes bytes) of g. Called with
// Writer.mu held.
func (s *spill) advance(g *segment, bytes int64, rows int) {
	g.readOff += bytes
	g.readRows += rows
	s.unread -= rows
}

// read calls each, in order, for up to maxRows records of g from off,
// within the bytes bytes written there. It returns the bytes and records
// consumed. Called by Run without Writer.mu.
func (s *spill) read(g *segment, off, bytes int64, maxRows int, each func(rec []byte) error) (consumed int64, rows int, err error) {
	window := int64(spillReadWindow)
	for rows < maxRows && consumed < bytes {
		n := min(bytes-consumed, window)
		if int64(cap(s.readBuf)) < n {
			s.readBuf = make([]byte, n)
		}
		buf := s.readBuf[:n]
		if _, err := g.f.ReadAt(buf, off+consumed); err != nil {
			return consumed, rows, fmt.Errorf("read %s at offset %d: %w", g.path, off+consumed, err)
		}
		for rows < maxRows && len(buf) > 0 {
			l, k := binary.Uvarint(buf)
			if k < 0 || (k == 0 && int64(len(buf)) == bytes-consumed) {
				return consumed, rows, fmt.Errorf("%s: bad record length at offset %d", g.path, off+consumed)
			}
			if k == 0 {
				break // the length goes on past the window: read on from here
			}
			if l > uint64(bytes-consumed-int64(k)) {
				return consumed, rows, fmt.Errorf("%s: record of %d bytes at offset %d runs past the %d bytes written", g.path, l, off+consumed, off+bytes)
			}
			if uint64(len(buf)-k) < l {
				window = max(window, int64(k)+int64(l)) // read it whole
				break
			}
			if err := each(buf[k : k+int(l)]); err != nil {
				return consumed, rows, fmt.Errorf("%s: record at offset %d: %w", g.path, off+consumed, err)
			}
			buf = buf[k+int(l):]
			consumed += int64(k) + int64(l)
			rows++
		}
	}
	if cap(s.readBuf) > spillReadWindow {
		s.readBuf = nil // keep no unusually large record's buffer
	}
	return consumed, rows, nil
}

// trim deletes the oldest segments whose rows are all read and durable.
// Called with Writer.mu held; it reports whether it freed anything.
func (s *spill) trim(durable uint64) bool {
	freed := false
	for len(s.segs) > 0 {
		g := s.segs[0]
		if g.readRows < g.rows || g.end() > durable {
			break
		}
		s.remove(g)
		s.segs[0] = nil
		s.segs = s.segs[1:]
		freed = true
	}
	if len(s.segs) == 0 {
		s.segs = nil
	}
	return freed
}

// removeAll deletes every segment. Called with Writer.mu held, once Run
// no longer reads.
func (s *spill) removeAll() {
	for _, g := range s.segs {
		s.remove(g)
	}
	s.segs, s.unread = nil, 0
}

func (s *spill) remove(g *segment) {
	s.bytes -= g.size
	err := errors.Join(g.f.Close(), os.Remove(g.path))
	if err != nil {
		s.logger.Error("cannot delete a spill file; it takes disk space until the next start", zap.String("file", g.path), zap.Error(err))
	}
}

// spillMetrics are a Writer's spill metrics, present whether or not its
// table spills.
type spillMetrics struct {
	spilled prometheus.Counter
	bytes   prometheus.Gauge
	full    prometheus.Counter
}

func newSpillMetrics(reg prometheus.Registerer, table string) spillMetrics {
	spilled := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_analytics_spilled_rows_total",
		Help: "Rows written to the spill files because the ClickHouse writer's memory buffer was full.",
	}, []string{"table"}))
	bytes := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "correlator_analytics_spill_bytes",
		Help: "Bytes of the ClickHouse writer's spill files, rows read back but not yet written included.",
	}, []string{"table"}))
	full := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_analytics_spill_full_total",
		Help: "Appends that found the memory buffer and the spill full (or failing) and waited: ingest is throttled.",
	}, []string{"table"}))
	return spillMetrics{
		spilled: spilled.WithLabelValues(table),
		bytes:   bytes.WithLabelValues(table),
		full:    full.WithLabelValues(table),
	}
}

// Spill record encoding. The format lives as long as one process (files
// are deleted at start), so it has no version: it only has to round-trip
// within one build. Integers are varints, strings a length and their
// bytes, times seconds and nanoseconds (the location is dropped: rows are
// written as instants), and maps and slices a count plus one, zero
// meaning nil.

func appendSpillString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendSpillTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

func appendSpillBool(dst []byte, b bool) []byte { return append(dst, boolCode(b)) }

// appendSpillLabels writes labels as builds before 2026-11-25 wrote the
// maps they were: a count plus one (0 for nil), then each name and value.
func appendSpillLabels(dst []byte, ls event.Labels) []byte {
	if ls == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(ls))+1)
	for _, l := range ls {
		dst = appendSpillString(dst, l.Name)
		dst = appendSpillString(dst, l.Value)
	}
	return dst
}

func appendSpillStrings(dst []byte, s []string) []byte {
	if s == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s))+1)
	for _, v := range s {
		dst = appendSpillString(dst, v)
	}
	return dst
}

// spillReader decodes a record. The first error sticks: read every field,
// then check err(). Strings are copied out of the record.
type spillReader struct {
	b   []byte
	bad error
}

var errSpillRecord = errors.New("malformed spill record")

func (r *spillReader) fail() {
	if r.bad == nil {
		r.bad = errSpillRecord
	}
	r.b = nil
}

func (r *spillReader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *spillReader) varint() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *spillReader) int() int {
	v := r.varint()
	if v < math.MinInt || v > math.MaxInt {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *spillReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *spillReader) time() time.Time {
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= 1e9 {
		r.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (r *spillReader) bool() bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// count reads a count plus one written by appendSpillLabels or
// appendSpillStrings; nil is false for a nil map or slice. Every element
// takes at least per bytes, which bounds what a corrupt count allocates.
func (r *spillReader) count(per int) (n int, ok bool) {
	c := r.uvarint()
	if c == 0 {
		return 0, false
	}
	if c-1 > uint64(len(r.b)/per) {
		r.fail()
		return 0, false
	}
	return int(c - 1), true
}

// labels reads what appendSpillLabels wrote, sorted: older spill files hold
// a map's entries in its iteration order.
func (r *spillReader) labels() event.Labels {
	n, ok := r.count(2)
	if !ok {
		return nil
	}
	ls := make(event.Labels, n)
	for i := range ls {
		ls[i].Name = r.string()
		ls[i].Value = r.string()
	}
	return event.SortLabels(ls)
}

func (r *spillReader) strings() []string {
	n, ok := r.count(1)
	if !ok {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = r.string()
	}
	return s
}

// err returns the first error, or one for bytes left over.
func (r *spillReader) err() error {
	if r.bad != nil {
		return r.bad
	}
	if len(r.b) > 0 {
		return fmt.Errorf("%w: %d bytes left over", errSpillRecord, len(r.b))
	}
	return nil
}
