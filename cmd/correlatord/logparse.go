package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/correlatord/correlatord/ingest/logtemplate"
)

type logparseOptions struct {
	in, out   string
	logFormat string
}

// maxLogLine bounds one input line, so a file without line ends cannot
// exhaust memory.
const maxLogLine = 16 << 20

// runLogparse is `correlatord logparse`: it mines the templates of a log
// file offline, with the parser's default configuration, and writes
// LineId,EventId,EventTemplate as CSV, like the Loghub benchmark's
// structured output, so the result can be scored with the benchmark's own
// tools.
//
// As in the benchmark, a line is given the final template of its group (a
// template generalises as later lines join it, so the output is written at
// the end), LineId counts the lines that matched --log-format (the
// benchmark's loader drops the others), and parameters are shown as <*>.
// Lines that do not match are counted and reported on stderr, with the
// first few line numbers, so a wrong format is noticed rather than silently
// losing most of a file. Memory grows by 8 bytes per line besides the
// templates.
func runLogparse(stderr io.Writer, o logparseOptions) error {
	var lf *logtemplate.LogFormat
	if o.logFormat != "" {
		var err error
		if lf, err = logtemplate.ParseLogFormat(o.logFormat); err != nil {
			return fmt.Errorf("--log-format: %w", err)
		}
	}
	p, err := logtemplate.New(logtemplate.Config{})
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if o.in != "-" {
		f, err := os.Open(o.in)
		if err != nil {
			return fmt.Errorf("--in: %w", err)
		}
		defer f.Close()
		in = f
	}

	var (
		ids      []uint64
		last     = map[uint64]string{} // latest template per id, for evicted ones
		skipped  int
		firstBad []int
		r        logtemplate.Result
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLogLine)
	n := 0
	for sc.Scan() {
		n++
		content := sc.Bytes()
		if lf != nil {
			c, ok := lf.Content(content)
			if !ok {
				skipped++
				if len(firstBad) < 5 {
					firstBad = append(firstBad, n)
				}
				continue
			}
			content = c
		}
		p.Parse(content, &r)
		ids = append(ids, r.ID)
		if r.Created || r.Updated {
			last[r.ID] = r.Template
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("--in: line %d is longer than %d bytes", n+1, maxLogLine)
		}
		return fmt.Errorf("--in: %w", err)
	}

	out := io.Writer(os.Stdout)
	var f *os.File
	if o.out != "-" {
		if f, err = os.Create(o.out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 1<<16)
	cw := csv.NewWriter(bw)
	if err := cw.Write([]string{"LineId", "EventId", "EventTemplate"}); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	rec := make([]string, 3)
	for i, id := range ids {
		tpl, ok := "", false
		if final, live := p.Resolve(id); live {
			id = final
			tpl, ok = p.Template(final)
		}
		if !ok {
			tpl = last[id] // evicted (MaxTemplates): its last known text
		}
		rec[0], rec[1], rec[2] = strconv.Itoa(i+1), logtemplate.FormatID(id), tpl
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	fmt.Fprintf(stderr, "logparse: %d lines, %d parsed, %d templates", n, len(ids), p.Len())
	if p.Evicted() > 0 {
		fmt.Fprintf(stderr, ", %d evicted", p.Evicted())
	}
	fmt.Fprintln(stderr)
	if skipped > 0 {
		nums := make([]string, len(firstBad))
		for i, l := range firstBad {
			nums[i] = strconv.Itoa(l)
		}
		fmt.Fprintf(stderr, "logparse: %d lines did not match --log-format and were skipped (first: line %s)\n", skipped, strings.Join(nums, ", "))
	}
	return nil
}
