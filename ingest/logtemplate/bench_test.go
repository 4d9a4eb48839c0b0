package logtemplate

import (
	"testing"
)

// BenchmarkParse parses the <Content> of the 16 Loghub 2k samples (32,000
// lines, headers split off beforehand) with one warm parser per system, so
// it measures the steady state of the hot path: a line that joins an
// existing template. Bytes are the content bytes.
//
//	go test -run '^$' -bench BenchmarkParse -benchtime 20x ./ingest/logtemplate
func BenchmarkParse(b *testing.B) {
	skipWithoutData(b)
	type sys struct {
		p     *Parser
		lines [][]byte
	}
	var all []sys
	var bytes int64
	nlines := 0
	for _, s := range loghubFormats {
		contents, _ := loghubContents(b, s.system, s.format)
		p, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		var r Result
		for _, c := range contents {
			p.Parse(c, &r) // warm: templates exist
			bytes += int64(len(c))
		}
		nlines += len(contents)
		all = append(all, sys{p, contents})
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	var r Result
	for b.Loop() {
		for _, s := range all {
			for _, c := range s.lines {
				s.p.Parse(c, &r)
			}
		}
	}
	b.ReportMetric(float64(nlines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nlines), "ns/line")
}

// BenchmarkParseCold is one pass over the same 32,000 lines with a fresh
// parser per system, templates created on the way: what a single Drain3 run
// over the files measures (scripts/drain3-compare.sh).
func BenchmarkParseCold(b *testing.B) {
	skipWithoutData(b)
	var all [][][]byte
	var bytes int64
	nlines := 0
	for _, s := range loghubFormats {
		contents, _ := loghubContents(b, s.system, s.format)
		for _, c := range contents {
			bytes += int64(len(c))
		}
		nlines += len(contents)
		all = append(all, contents)
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	var r Result
	for b.Loop() {
		for _, lines := range all {
			p, _ := New(Config{})
			for _, c := range lines {
				p.Parse(c, &r)
			}
		}
	}
	b.ReportMetric(float64(nlines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nlines), "ns/line")
}
