package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var received = time.Date(2026, 11, 2, 10, 1, 0, 0, time.UTC)

func defaultConfig(t testing.TB, mutate func(*Config)) Config {
	t.Helper()
	var c Config
	if mutate != nil {
		mutate(&c)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// recordView is a Record as the golden files show it.
type recordView struct {
	Time      string            `json:"time"`
	Message   string            `json:"message"`
	Level     string            `json:"level"`
	Host      string            `json:"host,omitempty"`
	Service   string            `json:"service,omitempty"`
	Pod       string            `json:"pod,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Container string            `json:"container,omitempty"`
	Source    string            `json:"source"`
	Extra     map[string]string `json:"extra,omitempty"`
}

func view(recs []Record) []recordView {
	out := make([]recordView, len(recs))
	for i, r := range recs {
		out[i] = recordView{
			Time: r.Time.Format(time.RFC3339Nano), Message: r.Message, Level: r.Level.String(),
			Host: r.Host, Service: r.Service, Pod: r.Pod, Namespace: r.Namespace, Container: r.Container,
			Source: r.Source, Extra: r.Extra,
		}
	}
	return out
}

// TestDecodeGolden decodes one record of each shipper's documented output
// (written by hand after the shippers' documentation: Vector's
// kubernetes_logs source, Fluent Bit's kubernetes filter and kafka output
// with its default @timestamp double, Filebeat's container input with
// add_kubernetes_metadata and an ECS logging application, and an
// OpenTelemetry collector's OTLP/JSON export) and compares with the golden
// file. go test -update rewrites them.
func TestDecodeGolden(t *testing.T) {
	cfg := defaultConfig(t, nil)
	d := NewDecoder(cfg, nil)
	for _, name := range []string{"vector", "fluentbit", "filebeat", "otel"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "decode", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			recs, errs := d.Decode(in, received, nil)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			// A decoder reuses its buffers: decoding again must give the
			// same records, and the first ones must be unaffected.
			again, _ := d.Decode(in, received.Add(time.Hour), nil)
			if !reflect.DeepEqual(view(recs), view(again)) {
				t.Errorf("second decode differs:\n%+v\n%+v", view(recs), view(again))
			}
			got, _ := json.MarshalIndent(view(recs), "", "  ")
			got = append(got, '\n')
			golden := filepath.Join("testdata", "decode", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestDecodeOTelUnknownTime(t *testing.T) {
	// The third record of the sample has timeUnixNano "0" (unknown): its
	// observed time is used. Decoded at another receive time, it is the
	// same, since the record has a time of its own.
	in, _ := os.ReadFile(filepath.Join("testdata", "decode", "otel.json"))
	d := NewDecoder(defaultConfig(t, nil), nil)
	recs, errs := d.Decode(in, received, nil)
	if len(errs) > 0 || len(recs) != 3 {
		t.Fatalf("%d records, errors %v", len(recs), errs)
	}
	if want := time.Unix(0, 1793613606002000000).UTC(); !recs[2].Time.Equal(want) {
		t.Errorf("time %s, want the observed time %s", recs[2].Time, want)
	}
	if recs[2].Level != LevelInfo || recs[1].Level != LevelWarn || recs[0].Level != LevelError {
		t.Errorf("levels %s %s %s", recs[0].Level, recs[1].Level, recs[2].Level)
	}
}

func TestDecodeFieldPaths(t *testing.T) {
	cfg := defaultConfig(t, func(c *Config) {
		c.Fields.Message = []string{"payload.text"}
		c.Fields.Timestamp = []string{"when"}
		c.Fields.Level = []string{"sev"}
		c.Fields.Host = []string{"origin.node"}
		c.Fields.Service = []string{"origin.app"}
		c.Fields.Extra = []string{"trace.id", "origin.dc"}
		c.Source = "custom"
	})
	d := NewDecoder(cfg, nil)
	in := `{"message":"not this one","payload":{"text":"boom at 12"},"when":"2026-11-02 10:00:00,250","sev":"E",` +
		`"origin":{"node":"n1","app":"api","dc":{"name":"fra"}},"trace.id":"abc123","host":"ignored"}`
	recs, errs := d.Decode([]byte(in), received, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := view(recs)[0]
	want := recordView{
		Time: "2026-11-02T10:00:00.25Z", Message: "boom at 12", Level: "error", Host: "n1", Service: "api",
		Source: "custom", Extra: map[string]string{"trace.id": "abc123", "origin.dc": `{"name":"fra"}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// A literal dotted key and the nested form are both found; the literal
	// key is tried first.
	d = NewDecoder(defaultConfig(t, nil), nil)
	for _, in := range []string{
		`{"message":"m","log.level":"warn"}`,
		`{"message":"m","log":{"level":"warn"}}`,
		`{"message":"m","log.level":"warn","log":{"level":"error"}}`,
	} {
		recs, errs := d.Decode([]byte(in), received, nil)
		if len(errs) > 0 || recs[0].Level != LevelWarn {
			t.Errorf("%s: level %v, errors %v", in, recs[0].Level, errs)
		}
	}
}

func TestDecodeText(t *testing.T) {
	cfg := defaultConfig(t, func(c *Config) { c.Text.Host = "hdfs-dn-01" })
	d := NewDecoder(cfg, nil)
	for _, tc := range []struct {
		line  string
		level Level
		time  string // "" is the receive time
	}{
		{"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating", LevelInfo, ""},
		{"081109 204655 556 WARN dfs.DataNode$DataXceiver: 10.251.195.33:50010:Got exception while serving blk_7 to /10.251.195.33:", LevelWarn, ""},
		{"2026-11-02T09:59:58.123+01:00 ERROR [main] c.e.App - request failed", LevelError, "2026-11-02T08:59:58.123Z"},
		{"2026-11-02 09:59:58,123 - app.worker - CRITICAL - queue is gone", LevelCritical, "2026-11-02T09:59:58.123Z"},
		{"Nov  2 09:59:58 web-01 sshd[1234]: error: PAM: Authentication failure for root", LevelError, "2026-11-02T09:59:58Z"},
		{"[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6", LevelError, ""},
		{"E1102 10:00:03.512345       1 payment.go:88] charge failed", LevelError, ""},
		{`ts=2026-11-02T10:00:00Z level=warn msg="slow query" duration=2.5s`, LevelWarn, ""},
		{"ERROR:root:cannot open /etc/app.conf", LevelError, ""},
		{"the request had an error but we retried", LevelInfo, ""},
		{"connection reset by peer", LevelInfo, ""},
	} {
		recs, errs := d.Decode([]byte(tc.line+"\n"), received, nil)
		if len(errs) > 0 {
			t.Errorf("%q: %v", tc.line, errs)
			continue
		}
		r := recs[0]
		if r.Message != tc.line || r.Level != tc.level || r.Host != "hdfs-dn-01" || r.Source != "text" {
			t.Errorf("%q: got %+v, want level %s", tc.line, r, tc.level)
		}
		want := received
		if tc.time != "" {
			want, _ = time.Parse(time.RFC3339Nano, tc.time)
		}
		if !r.Time.Equal(want) {
			t.Errorf("%q: time %s, want %s", tc.line, r.Time, want)
		}
	}

	// A multi-line text payload, a stack trace, is one record.
	recs, errs := d.Decode([]byte("ERROR boom\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n"), received, nil)
	if len(errs) > 0 || len(recs) != 1 || !strings.HasSuffix(recs[0].Message, "F.java:2)") {
		t.Errorf("stack trace: %+v %v", recs, errs)
	}
}

func TestDecodeBadRecords(t *testing.T) {
	d := NewDecoder(defaultConfig(t, func(c *Config) { c.UnknownLevel = UnknownLevelReject }), nil)
	for _, tc := range []struct {
		name, in string
		good     int
		errs     []string
	}{
		{"bad timestamp", `{"message":"x","timestamp":"abc"}`, 0,
			[]string{`record: timestamp: "abc" is not a time (field timestamp)`}},
		{"timestamp out of range", `{"message":"x","@timestamp":12}`, 0,
			[]string{`record: timestamp: 12 is out of range as epoch time (1970-01-01T00:00:12Z) (field @timestamp)`}},
		{"no message", `{"level":"error","host":"h"}`, 0,
			[]string{`record: message: missing: none of message, msg, log, body, MESSAGE is a string (logs.fields.message)`}},
		{"empty message", `{"message":""}`, 0, []string{`record: message: empty`}},
		{"unknown level", `{"message":"x","level":"loud"}`, 0,
			[]string{`record: level: "loud" is not a level (field level; logs.unknown_level: reject)`}},
		{"malformed", `{"message":"x"`, 0, []string{`payload: malformed JSON: `}},
		{"not an object", `"just a string"`, 1, nil}, // auto format: text
		{"array", `[{"message":"a"},{"message":"b","time":true},{"msg":"c"}]`, 2,
			[]string{`records[1]: timestamp: expected a string or a number, got true (field time)`}},
		{"json lines", "{\"message\":\"a\"}\n{\"message\":\n{\"msg\":\"c\",\"ts\":\"1793613603123\"}\n", 2,
			[]string{`line 2: malformed JSON: `}},
		{"otel batch", `{"resourceLogs":[{"resource":{"attributes":[]},"scopeLogs":[{"logRecords":[` +
			`{"timeUnixNano":"1793613605120000000","body":{"stringValue":"one"}},` +
			`{"timeUnixNano":"yesterday","body":{"stringValue":"two"}},` +
			`{"timeUnixNano":"1793613605130000000","body":{"stringValue":"three"}}]}]},` +
			`{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":{"values":[]}}}]}]}]}`, 2,
			[]string{
				`resourceLogs[0].scopeLogs[0].logRecords[1]: timestamp: "yesterday" is not a time (field timeUnixNano)`,
				`resourceLogs[1].scopeLogs[0].logRecords[0]: message: missing: none of message, msg, log, body, MESSAGE is a string (logs.fields.message)`,
			}},
		{"empty", "  \n", 0, []string{"payload: empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, errs := d.Decode([]byte(tc.in), received, nil)
			if len(recs) != tc.good {
				t.Errorf("%d good records, want %d", len(recs), tc.good)
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("errors %v, want %v", errs, tc.errs)
			}
			for i := range errs {
				if !strings.HasPrefix(errs[i].Error(), tc.errs[i]) {
					t.Errorf("error %q, want %q", errs[i].Error(), tc.errs[i])
				}
				if !errors.Is(&errs[i], ErrInvalidRecord) {
					t.Errorf("%v does not wrap ErrInvalidRecord", errs[i])
				}
			}
		})
	}
	// The OTel error indexes count log records across the batch, so the
	// consumer can report which ones it dead-lettered.
	_, errs := d.Decode([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"}},{"body":{"stringValue":"b"},"timeUnixNano":"x"}]}]}]}`), received, nil)
	if len(errs) != 1 || errs[0].Index != 1 || Reason(errs) != ReasonInvalidRecord {
		t.Errorf("errors %+v", errs)
	}
	if _, errs := d.Decode([]byte(`{"x"`), received, nil); Reason(errs) != ReasonMalformed || errs[0].Index != -1 {
		t.Errorf("malformed: %+v", errs)
	}
}

func TestDecodeLimits(t *testing.T) {
	d := NewDecoder(defaultConfig(t, func(c *Config) { c.MaxRecords = 2; c.MaxMessageBytes = 256 }), nil)
	_, errs := d.Decode([]byte(`[{"message":"a"},{"message":"b"},{"message":"c"}]`), received, nil)
	if len(errs) != 1 || errs[0].Index != -1 || !strings.Contains(errs[0].Error(), "logs.max_records") {
		t.Errorf("errors %v", errs)
	}
	long := strings.Repeat("é", 200) // 400 bytes
	recs, _ := d.Decode([]byte(`{"message":"`+long+`"}`), received, nil)
	if len(recs[0].Message) != 256 || !strings.HasPrefix(long, recs[0].Message) {
		t.Errorf("message of %d bytes", len(recs[0].Message))
	}
}

func TestLevels(t *testing.T) {
	d := NewDecoder(defaultConfig(t, nil), nil)
	for in, want := range map[string]Level{
		`"level":"WARNING"`:         LevelWarn,
		`"severity":"ERROR2"`:       LevelError,
		`"severityText":"Fatal"`:    LevelFatal,
		`"severityNumber":21`:       LevelFatal,
		`"severityNumber":"10"`:     LevelInfo,
		`"PRIORITY":"3"`:            LevelError,
		`"severity":2`:              LevelCritical,
		`"level":50`:                LevelError, // pino
		`"level":30`:                LevelInfo,
		`"levelname":"CRITICAL"`:    LevelCritical,
		`"level":"emerg"`:           LevelCritical,
		`"lvl":"dbug"`:              LevelInfo, // unknown: the default level
		`"level":"notice"`:          LevelInfo,
		`"level":"trace"`:           LevelTrace,
		`"level":{"name":"error"}`:  LevelInfo,
		`"level":null,"lvl":"warn"`: LevelWarn,
	} {
		recs, errs := d.Decode([]byte(`{"message":"m",`+in+`}`), received, nil)
		if len(errs) > 0 || recs[0].Level != want {
			t.Errorf("%s: %v %v, want %v", in, recs[0].Level, errs, want)
		}
	}
	// Numbers and times.
	for in, want := range map[string]string{
		`"ts":1793613603`:                    "2026-11-02T10:00:03Z",
		`"ts":1793613603.25`:                 "2026-11-02T10:00:03.25Z",
		`"ts":1793613603250`:                 "2026-11-02T10:00:03.25Z",
		`"ts":"1793613603250000"`:            "2026-11-02T10:00:03.25Z",
		`"timeUnixNano":1793613603250000001`: "2026-11-02T10:00:03.250000001Z",
		`"time":"2026-11-02T11:00:03+01:00"`: "2026-11-02T10:00:03Z",
		`"date":1.79361360325e9`:             "2026-11-02T10:00:03.25Z",
	} {
		recs, errs := d.Decode([]byte(`{"message":"m",`+in+`}`), received, nil)
		if len(errs) > 0 || recs[0].Time.Format(time.RFC3339Nano) != want {
			t.Errorf("%s: %v %v, want %v", in, recs[0].Time, errs, want)
		}
	}
}
