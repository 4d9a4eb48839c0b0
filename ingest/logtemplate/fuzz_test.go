package logtemplate

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzLogFormat compiles arbitrary header formats and matches arbitrary
// lines: no panic, and a matched Content is a part of the line.
func FuzzLogFormat(f *testing.F) {
	f.Add("<Date> <Time> <Pid> <Level> <Component>: <Content>", "091201 101500 148 INFO dfs.DataNode: PacketResponder 1\r\n")
	f.Add(`<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>`, "- 1 2005.11.09 tbird-admin1 Nov 9 12:01:01 local@tbird-admin1 crond[1]: (root) CMD")
	f.Add(`\[<Time>\] <Program> - <Content>`, "[10.30 16:49:06] chrome.exe - proxy.example.com:5070 open")
	f.Add("<<Content>>", "<<x>>")
	f.Fuzz(func(t *testing.T, format, line string) {
		lf, err := ParseLogFormat(format)
		if err != nil {
			return
		}
		c, ok := lf.Content([]byte(line))
		if !ok {
			return
		}
		if !strings.Contains(line, string(c)) {
			t.Fatalf("content %q is not part of line %q", c, line)
		}
		if _, ok := lf.Split([]byte(line)); !ok {
			t.Fatalf("Content matched %q but Split did not", line)
		}
	})
}

// FuzzParse parses arbitrary lines and checks the parser's invariants: the
// parameters are parts of the line and fill the template's <*> to give the
// line back (white space aside); the same lines give the same ids in a second
// parser; a snapshot restores to the same state.
func FuzzParse(f *testing.F) {
	f.Add([]byte("Accepted password for alice from 10.0.0.5 port 52113 ssh2\r\nInvalid user admin from 10.0.0.9\n"))
	f.Add([]byte("VM Started (Lifecycle Event)\nVM Paused (Lifecycle Event)\nVM Resumed (Lifecycle Event)\nVM Stopped (Lifecycle Event)\n"))
	f.Add([]byte("user=a x\nuser=b x\nuser=c x\nuser=d x\nuser= x\n(a) (b)\n() (c)\n"))
	f.Add([]byte("connection from 1.2.3.4 () at Fri Jun 17 07:07:00 2005\n<*> <*>\n\n   \n/a/b//c 0x1f <1 sec\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{MaxTemplates: 8, MaxWords: 8, MinVariants: 2}
		a, b := mustParser(t, cfg), mustParser(t, cfg)
		var ra, rb Result
		for line := range bytes.Lines(data) {
			a.Parse(line, &ra)
			for _, pm := range ra.Params {
				if len(pm) > 0 && !bytes.Contains(line, pm) {
					t.Fatalf("param %q is not part of line %q", pm, line)
				}
			}
			// A literal <*> in a line makes its template ambiguous to read
			// back; the other invariants still hold.
			literal := bytes.Contains(line, []byte("<*>"))
			got, ok := reconstruct(ra.Template, ra.Params)
			if !ok && !literal {
				t.Fatalf("line %q: template %q has %d <*> for %d params", line, ra.Template, strings.Count(ra.Template, "<*>"), len(ra.Params))
			}
			if !literal && normSpace(got) != normSpace(string(line)) {
				t.Fatalf("line %q: template %q with params %q gives %q", line, ra.Template, ra.Params, got)
			}
			b.Parse(line, &rb)
			if ra.ID != rb.ID || ra.Template != rb.Template {
				t.Fatalf("line %q: %x %q, then %x %q from the same lines", line, ra.ID, ra.Template, rb.ID, rb.Template)
			}
		}
		var s1, s2 bytes.Buffer
		if err := a.Snapshot(&s1); err != nil {
			t.Fatal(err)
		}
		c := mustParser(t, cfg)
		if err := c.Restore(bytes.NewReader(s1.Bytes())); err != nil {
			t.Fatalf("restore: %v\n%s", err, s1.String())
		}
		if err := c.Snapshot(&s2); err != nil {
			t.Fatal(err)
		}
		if s1.String() != s2.String() {
			t.Fatalf("snapshot changed by a restore:\n%s\n%s", s1.String(), s2.String())
		}
	})
}
