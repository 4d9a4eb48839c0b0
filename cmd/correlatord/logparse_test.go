package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logparseInput has CRLF line ends, a line that does not match the format,
// a template whose text has a comma and a quote (CSV quoting), and a
// template that generalises after its first line (the output gives every
// line the final template).
const logparseInput = "2024-05-14 10:00:01 INFO sshd: Accepted password for alice from 10.0.0.5 port 52113\r\n" +
	"garbage without a header\r\n" +
	"2024-05-14 10:00:02 WARN disk: usage 91%, \"sda1\" almost full\r\n" +
	"2024-05-14 10:00:03 INFO sshd: Accepted password for alice from 10.0.0.6 port 40022\r\n" +
	"2024-05-14 10:00:04 WARN disk: usage 93%, \"sda1\" almost full\r\n"

const logparseFormat = "<Date> <Time> <Level> <Component>: <Content>"

func TestLogparse(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.log"), filepath.Join(dir, "out.csv")
	if err := os.WriteFile(in, []byte(logparseInput), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := runLogparse(&stderr, logparseOptions{in: in, out: out, logFormat: logparseFormat}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "LineId,EventId,EventTemplate\n" +
		"1,14a736fa73e6be3d,Accepted password for alice from <*> port <*>\n" +
		"2,7af597d6aad98e13,\"usage <*>%, \"\"sda1\"\" almost full\"\n" +
		"3,14a736fa73e6be3d,Accepted password for alice from <*> port <*>\n" +
		"4,7af597d6aad98e13,\"usage <*>%, \"\"sda1\"\" almost full\"\n"
	if string(got) != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", got, want)
	}
	recs, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
	if err != nil || len(recs) != 5 || recs[2][2] != `usage <*>%, "sda1" almost full` {
		t.Errorf("CSV does not read back: %q, %v", recs, err)
	}
	if strings.Contains(string(got), "\r") {
		t.Errorf("a CR reached the output")
	}
	for _, w := range []string{"5 lines, 4 parsed, 2 templates", "1 lines did not match --log-format and were skipped (first: line 2)"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr %q does not say %q", stderr.String(), w)
		}
	}
}

// TestLogparseWholeLine checks that without --log-format the whole line is
// mined, headers included, and no line is skipped.
func TestLogparseWholeLine(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.log"), filepath.Join(dir, "out.csv")
	if err := os.WriteFile(in, []byte(logparseInput), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := runLogparse(&stderr, logparseOptions{in: in, out: out}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !strings.Contains(string(got), "2,") || !strings.Contains(string(got), "garbage without a header") || strings.Count(string(got), "\n") != 6 {
		t.Errorf("CSV:\n%s", got)
	}
	// The date and time are one parameter: adjacent <*> are written as one.
	if !strings.Contains(string(got), "1,a8c5246764fdd246,<*> INFO sshd: Accepted password for alice from <*> port <*>\n") {
		t.Errorf("headers are not part of the template:\n%s", got)
	}
	if strings.Contains(stderr.String(), "skipped") {
		t.Errorf("stderr %q reports skipped lines", stderr.String())
	}
}

// TestLogparseCommand drives the registered subcommand through realMain.
func TestLogparseCommand(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.log"), filepath.Join(dir, "out.csv")
	if err := os.WriteFile(in, []byte(logparseInput), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := realMain([]string{"logparse", "--in", in, "--log-format", logparseFormat, "--out", out}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.HasPrefix(b, []byte("LineId,EventId,EventTemplate\n1,")) {
		t.Errorf("output %q, %v", b, err)
	}
	if code := realMain([]string{"logparse", "--in", in, "--log-format", "<Date> <Time>", "--out", out}); code != 1 {
		t.Errorf("a format without <Content>: exit code %d, want 1", code)
	}
	if code := realMain([]string{"logparse", "--in", filepath.Join(dir, "missing.log"), "--out", out}); code != 1 {
		t.Errorf("a missing input: exit code %d, want 1", code)
	}
}
