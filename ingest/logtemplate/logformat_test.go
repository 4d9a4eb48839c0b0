package logtemplate

import (
	"fmt"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	for _, tc := range []struct {
		format, line string
		content      string
		ok           bool
		fields       string
	}{
		{"<Date> <Time> <Pid> <Level> <Component>: <Content>",
			"091201 101500 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating\r\n",
			"PacketResponder 1 terminating", true, `["091201" "101500" "148" "INFO" "dfs.DataNode$PacketResponder" "PacketResponder 1 terminating"]`},
		// Runs of spaces in the format match any white space run.
		{"<Date> <Time>  <Level> <Content>", "2024-01-01 10:00:00\tWARN   disk almost full", "disk almost full", true, ""},
		// An optional part with a field, as in Thunderbird's and Linux's formats.
		{`<Component>(\[<PID>\])?: <Content>`, "sshd[42]: Accepted password", "Accepted password", true, `["sshd" "42" "Accepted password"]`},
		{`<Component>(\[<PID>\])?: <Content>`, "kernel: link up", "link up", true, `["kernel" "" "link up"]`},
		{`\[<Time>\] \[<Level>\] <Content>`, "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok", "workerEnv.init() ok", true, ""},
		{"<Time>\\|<Component>\\|<Pid>\\|<Content>", "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579", "onStandStepChanged 3579", true, ""},
		// Lines that do not match are reported, not guessed at.
		{"<Date> <Time> <Pid> <Level> <Component>: <Content>", "this line has no header", "", false, ""},
		{`\[<Time>\] \[<Level>\] <Content>`, "no brackets here", "", false, ""},
	} {
		lf, err := ParseLogFormat(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		c, ok := lf.Content([]byte(tc.line))
		if ok != tc.ok || string(c) != tc.content {
			t.Errorf("%q on %q: %q, %v; want %q, %v", tc.format, tc.line, c, ok, tc.content, tc.ok)
		}
		if tc.fields != "" {
			f, _ := lf.Split([]byte(tc.line))
			if got := fmt.Sprintf("%q", f); got != tc.fields {
				t.Errorf("%q on %q: fields %s, want %s", tc.format, tc.line, got, tc.fields)
			}
		}
	}
}

func TestLogFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"", "empty"},
		{"<Date> <Time> <Message>", "no <Content> field"},
		{"<Date> <Date> <Content>", "<Date> appears twice"},
		{"<Da te> <Content>", "not a valid name"},
		{`<Date> ( <Content>`, "not a valid regular expression"},
	} {
		_, err := ParseLogFormat(tc.format)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.format, err, tc.want)
		}
	}
}

// TestLoghubFormats checks that every benchmark format splits every line of
// its sample, as the benchmark's loader does.
func TestLoghubFormats(t *testing.T) {
	skipWithoutData(t)
	for _, s := range loghubFormats {
		contents, skipped := loghubContents(t, s.system, s.format)
		if skipped != 0 || len(contents) != 2000 {
			t.Errorf("%s: %d lines matched, %d skipped; want 2000 and 0", s.system, len(contents), skipped)
		}
	}
}
