package logs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// BenchmarkDecode decodes each shipper's sample and a text line.
func BenchmarkDecode(b *testing.B) {
	inputs := map[string][]byte{
		"text": []byte("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating"),
	}
	for _, name := range []string{"vector", "fluentbit", "filebeat", "otel"} {
		in, err := os.ReadFile(filepath.Join("testdata", "decode", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		inputs[name] = in
	}
	for _, name := range []string{"text", "vector", "fluentbit", "filebeat", "otel"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			d := NewDecoder(defaultConfig(b, nil), nil)
			var recs []Record
			n := 0
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				var errs []DecodeError
				recs, errs = d.Decode(in, received, recs[:0])
				if len(errs) > 0 {
					b.Fatal(errs)
				}
				n += len(recs)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// loghubHDFS is the Loghub HDFS 2k sample, shared outside the repository
// (its licence keeps it out): the benchmark skips without it.
const loghubHDFS = "../../../shared/data/loghub/HDFS/HDFS_2k.log"

// BenchmarkProcessLoghub runs the 2,000 HDFS lines of Loghub through the
// text decoder and the processor (template mining, counting, events for
// the WARN/ERROR lines, a CMDB binding), over and over with advancing
// times so that minutes and windows keep closing.
func BenchmarkProcessLoghub(b *testing.B) {
	raw, err := os.ReadFile(loghubHDFS)
	if err != nil {
		b.Skipf("Loghub HDFS sample not found (%v); it lives outside the repository at %s", err, loghubHDFS)
	}
	var lines [][]byte
	for l := range bytes.Lines(raw) {
		if l = bytes.TrimRight(l, "\r\n"); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	doc := &cmdb.Document{}
	for i := range 500 {
		doc.CIs = append(doc.CIs, cmdb.CI{ID: fmt.Sprintf("host-%03d", i), Type: "host", Aliases: []string{fmt.Sprintf("hdfs-dn-%02d", i)}})
	}
	topo, err := cmdb.Build(doc, cmdb.BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		binder Binder
		decode bool
	}{
		{"process", nil, false},
		{"decode+process", nil, true},
		{"decode+process+bind", topo, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := defaultConfig(b, func(c *Config) {
				c.Format = FormatText
				c.Text.Host = "hdfs-dn-07"
				// HDFS has WARN lines but no ERROR: make them events, so
				// the event path is measured too.
				c.MinLevel = "warn"
			})
			d := NewDecoder(cfg, nil)
			p, err := NewProcessor(cfg, bc.binder, nil)
			if err != nil {
				b.Fatal(err)
			}
			// Pre-decoded records for the process-only case.
			pre := make([]Record, 0, len(lines))
			for _, l := range lines {
				pre, _ = d.Decode(l, t0, pre)
			}
			var (
				recs   []Record
				evs    []event.Event
				n, ev  int
				nbytes int
			)
			for _, l := range lines {
				nbytes += len(l)
			}
			b.SetBytes(int64(nbytes))
			b.ReportAllocs()
			at := t0
			for b.Loop() {
				for i, l := range lines {
					at = at.Add(10 * time.Millisecond)
					r := &pre[i]
					if bc.decode {
						recs, _ = d.Decode(l, at, recs[:0])
						r = &recs[0]
					} else {
						r.Time = at
					}
					evs = p.Process(r, at, evs[:0])
					ev += len(evs)
				}
				evs = p.Tick(at, evs[:0])
				ev += len(evs)
				_ = p.Counts(nil)
				n += len(lines)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(ev)/float64(n), "events/record")
		})
	}
}
