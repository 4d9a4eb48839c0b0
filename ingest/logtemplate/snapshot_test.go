package logtemplate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idStability parses lines[:half] with one parser, snapshots it, restores
// the snapshot into a new parser, and checks that both give every line of
// lines[half:] the same id and template, and end with the same snapshot.
func idStability(t *testing.T, lines [][]byte, cfg Config) {
	t.Helper()
	half := len(lines) / 2
	a := mustParser(t, cfg)
	var r Result
	for _, l := range lines[:half] {
		a.Parse(l, &r)
	}
	var snap bytes.Buffer
	if err := a.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := mustParser(t, cfg)
	if err := b.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if a.Len() != b.Len() {
		t.Fatalf("restored %d templates of %d", b.Len(), a.Len())
	}
	var again bytes.Buffer
	if err := b.Snapshot(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != snap.String() {
		t.Fatalf("a restored parser snapshots differently:\n%s\nwant:\n%s", again.String(), snap.String())
	}
	var rb Result
	for i, l := range lines[half:] {
		a.Parse(l, &r)
		b.Parse(l, &rb)
		if r.ID != rb.ID || r.Template != rb.Template {
			t.Fatalf("line %d %q: %x %q before the restart, %x %q after", half+i+1, l, r.ID, r.Template, rb.ID, rb.Template)
		}
	}
}

func TestSnapshotRestoreHandmade(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "parse", "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for l := range bytes.Lines(raw) {
		lines = append(lines, l)
	}
	// Twice the file: the second half meets the restored templates.
	idStability(t, append(lines, lines...), Config{})
}

// TestSnapshotRestoreLoghub checks id stability across a restart on every
// Loghub sample, with a template bound that makes the parser evict.
func TestSnapshotRestoreLoghub(t *testing.T) {
	skipWithoutData(t)
	for _, s := range loghubFormats {
		t.Run(s.system, func(t *testing.T) {
			contents, _ := loghubContents(t, s.system, s.format)
			idStability(t, contents, Config{})
			idStability(t, contents, Config{MaxTemplates: 20})
		})
	}
}

func TestRestoreErrors(t *testing.T) {
	good := `{"format":"correlatord-logtemplate","version":1,"masking":1,"evicted":0,"templates":[{"id":"00000000000000aa","size":1,"aliases":[],"words":[{"kind":"const","text":"hello"},{"kind":"wild"}]}]}`
	p := mustParser(t, Config{})
	if err := p.Restore(strings.NewReader(good)); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
	var r Result
	p.Parse([]byte("hello 42"), &r)
	if r.ID != 0xaa || r.Created {
		t.Errorf("restored template not used: id %x created %v", r.ID, r.Created)
	}
	for _, tc := range []struct{ name, snap, want string }{
		{"not json", `{`, "decode"},
		{"format", strings.Replace(good, "correlatord-logtemplate", "drain3", 1), "format"},
		{"version", strings.Replace(good, `"version":1`, `"version":9`, 1), "version 9"},
		{"masking", strings.Replace(good, `"masking":1`, `"masking":0`, 1), "masking rules"},
		{"unknown field", strings.Replace(good, `"evicted":0`, `"evicted":0,"extra":1`, 1), "unknown field"},
		{"bad id", strings.Replace(good, "00000000000000aa", "xyz", 1), "16 hex digits"},
		{"kind", strings.Replace(good, `"kind":"wild"`, `"kind":"star"`, 1), `kind "star"`},
		{"const with a variable", strings.Replace(good, `"text":"hello"`, `"text":"42"`, 1), "constant"},
		{"duplicate id", strings.Replace(good, `]}]}`, `]},{"id":"00000000000000aa","size":1,"aliases":[],"words":[]}]}`, 1), "used twice"},
	} {
		err := p.Restore(strings.NewReader(tc.snap))
		if !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrSnapshot mentioning %q", tc.name, err, tc.want)
		}
		if p.Len() != 0 {
			t.Errorf("%s: a failed restore left %d templates", tc.name, p.Len())
		}
	}
}
