package logs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
)

// FuzzDecodeRecord decodes any payload: it must not panic, every record it
// returns must be usable (a message within the limit, a level, a time, a
// source), a payload rejected whole has exactly one error, decoding twice
// gives the same records, and processing them gives valid events.
func FuzzDecodeRecord(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "decode", "*.json"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
		"Nov  2 09:59:58 web-01 sshd[1234]: error: PAM: Authentication failure",
		"[2026-11-02 10:00:00] [error] boom",
		`{"message":"x","timestamp":"abc"}`,
		`[{"msg":"a","level":50},{"log":"b","ts":1793613603.5}]`,
		"{\"message\":\"a\"}\n{\"message\":\n",
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"},"timeUnixNano":"0"}]}]}]}`,
		`{"message":"\ud800 \xff","host":{"name":"h"},"kubernetes":{"pod":{"name":"p"}}}`,
	} {
		f.Add([]byte(s))
	}
	cfg := defaultConfig(f, func(c *Config) {
		c.MaxMessageBytes = 512
		c.Fields.Extra = []string{"attributes.thread.name", "kubernetes.labels"}
		c.WatchTemplates = []WatchRule{{Name: "w", Matchers: []string{`param_0=~".*1.*"`}}}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(cfg, nil)
		recs, errs := d.Decode(data, received, nil)
		for _, e := range errs {
			if e.Index < -1 || e.Error() == "" {
				t.Fatalf("bad error %+v", e)
			}
			if e.Index == -1 && (len(errs) != 1 || len(recs) != 0) {
				t.Fatalf("payload error with other results: %v, %d records", errs, len(recs))
			}
		}
		for _, r := range recs {
			if r.Message == "" || len(r.Message) > cfg.MaxMessageBytes || r.Level < LevelTrace || r.Level > LevelCritical ||
				r.Time.IsZero() || r.Source == "" {
				t.Fatalf("unusable record %+v", r)
			}
		}
		again, errs2 := d.Decode(data, received, nil)
		if !reflect.DeepEqual(view(recs), view(again)) || len(errs) != len(errs2) {
			t.Fatalf("decoding twice differs:\n%+v\n%+v", view(recs), view(again))
		}
		p, err := NewProcessor(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		for i := range recs {
			evs = p.Process(&recs[i], received, evs)
		}
		evs = p.Flush(received.Add(time.Hour), evs)
		for i := range evs {
			if err := event.Normalize(&evs[i], event.DefaultDefaults); err != nil {
				t.Fatalf("invalid event %+v: %v", evs[i], err)
			}
		}
	})
}

// FuzzLoadConfig loads any configuration: no panic, and what loads
// validates again and makes a decoder and a processor.
func FuzzLoadConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.yml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config does not validate again: %v", err)
		}
		_ = NewDecoder(c, nil)
		if _, err := NewProcessor(c, nil, nil); err != nil {
			t.Fatal(err)
		}
	})
}
