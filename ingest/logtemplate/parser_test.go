package logtemplate

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/parse")

// goldenParse parses a file line by line (with a header format, if given)
// and writes, per line, the id and template it got, its parameters, and at
// the end the final templates, as the golden output.
func goldenParse(t *testing.T, file, format string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lf *LogFormat
	if format != "" {
		if lf, err = ParseLogFormat(format); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var r Result
	n := 0
	for line := range bytes.Lines(raw) {
		n++
		content := line
		if lf != nil {
			c, ok := lf.Content(line)
			if !ok {
				fmt.Fprintf(&b, "%d skipped: does not match the format\n", n)
				continue
			}
			content = c
		}
		p.Parse(content, &r)
		fmt.Fprintf(&b, "%d %s created=%v updated=%v merged=%d %q params=%q\n", n, FormatID(r.ID), r.Created, r.Updated, len(r.Merged), r.Template, r.Params)
	}
	b.WriteString("final:\n")
	p.Templates(func(id uint64, tpl string, size uint64) bool {
		fmt.Fprintf(&b, "%s %d %q\n", FormatID(id), size, tpl)
		return true
	})
	return b.String()
}

// TestParseGolden checks ids, templates and parameters on small handmade
// inputs against golden files (go test -update rewrites them). sshd.log has
// CRLF line ends, which must not reach the templates or parameters.
func TestParseGolden(t *testing.T) {
	for _, tc := range []struct{ name, format string }{
		{"sshd", ""},
		{"hdfs", "<Date> <Time> <Pid> <Level> <Component>: <Content>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := goldenParse(t, filepath.Join("testdata", "parse", tc.name+".log"), tc.format)
			golden := filepath.Join("testdata", "parse", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			if strings.Contains(got, `\r`) {
				t.Errorf("a CR reached the output:\n%s", got)
			}
		})
	}
}

func mustParser(t testing.TB, cfg Config) *Parser {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// reconstruct writes the template with its <*> replaced by params, and
// reports whether that gives back the line, white space runs aside.
func reconstruct(template string, params [][]byte) (string, bool) {
	pieces := strings.Split(template, "<*>")
	if len(pieces) != len(params)+1 {
		return "", false
	}
	var b strings.Builder
	for i, pc := range pieces {
		b.WriteString(pc)
		if i < len(params) {
			b.Write(params[i])
		}
	}
	return b.String(), true
}

func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestParams(t *testing.T) {
	p := mustParser(t, Config{})
	var r Result
	// Four user names: MinVariants different constants make a variable.
	lines := []string{
		"Accepted password for alice from 10.0.0.5 port 52113 ssh2",
		"Accepted password for carol from 10.0.0.7 port 40021 ssh2",
		"Accepted password for dave from 10.0.0.8 port 40020 ssh2",
		"Accepted password for bob from 10.0.0.6 port 40022 ssh2",
	}
	for _, l := range lines {
		p.Parse([]byte(l), &r)
	}
	if r.Template != "Accepted password for <*> from <*> port <*> ssh2" {
		t.Fatalf("template %q", r.Template)
	}
	if got := fmt.Sprintf("%q", r.Params); got != `["bob" "10.0.0.6" "40022"]` {
		t.Errorf("params %s", got)
	}
	// Parse resets the Result: a line with fewer parameters leaves none of
	// the previous ones behind.
	p.Parse([]byte("session closed"), &r)
	if len(r.Params) != 0 || !r.Created {
		t.Errorf("after a new constant line: params %q, created %v", r.Params, r.Created)
	}
	// Adjacent variables are one parameter, one span of the line.
	p.Parse([]byte("took 12.5 ms at 10:11:12"), &r)
	if r.Template != "took <*> ms at <*>" || fmt.Sprintf("%q", r.Params) != `["12.5" "10:11:12"]` {
		t.Errorf("got %q %q", r.Template, r.Params)
	}
	for _, l := range []string{"  user=root  uid=0 tty=(pts/1) \r\n", "user=guest uid=12 tty=(pts/2)"} {
		p.Parse([]byte(l), &r)
		got, ok := reconstruct(r.Template, r.Params)
		if !ok || normSpace(got) != normSpace(l) {
			t.Errorf("%q: template %q with params %q gives %q", l, r.Template, r.Params, got)
		}
	}
}

// TestParseNoAllocs checks the hot path: a line of a known template
// allocates nothing, and a line given twice decodes the same.
func TestParseNoAllocs(t *testing.T) {
	p := mustParser(t, Config{})
	var r Result
	line := []byte("Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6 in 12 ms")
	p.Parse(line, &r)
	p.Parse([]byte("Received block blk_1 of size 3 from /10.250.10.7 in 1 ms"), &r)
	id, tpl := r.ID, r.Template
	allocs := testing.AllocsPerRun(100, func() { p.Parse(line, &r) })
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per line, want 0", allocs)
	}
	if r.ID != id || r.Template != tpl {
		t.Errorf("same line, different result: %x %q, then %x %q", id, tpl, r.ID, r.Template)
	}
}

func TestMinVariants(t *testing.T) {
	p := mustParser(t, Config{})
	var r Result
	ids := map[string]uint64{}
	for _, v := range []string{"Started", "Paused", "Started", "Stopped"} {
		p.Parse([]byte("[instance: 4f1c2a] VM "+v+" (Lifecycle Event)"), &r)
		if old, ok := ids[v]; ok && old != r.ID {
			t.Errorf("%s: id %x, then %x", v, old, r.ID)
		}
		ids[v] = r.ID
	}
	if p.Len() != 3 {
		t.Fatalf("3 variants of one word: %d templates, want 3 (MinVariants is 4)", p.Len())
	}
	// The fourth variant makes the word a variable: the siblings merge.
	p.Parse([]byte("[instance: 4f1c2a] VM Resumed (Lifecycle Event)"), &r)
	if p.Len() != 1 || r.Template != "[instance: <*>] VM <*> (Lifecycle Event)" || len(r.Merged) != 2 {
		t.Fatalf("after the 4th variant: %d templates, %q, merged %d", p.Len(), r.Template, len(r.Merged))
	}
	for v, id := range ids {
		if got, ok := p.Resolve(id); !ok || got != r.ID {
			t.Errorf("%s's id %x resolves to %x, %v; want %x", v, id, got, ok, r.ID)
		}
	}
}

func TestEviction(t *testing.T) {
	p := mustParser(t, Config{MaxTemplates: 2})
	var r Result
	p.Parse([]byte("alpha one"), &r)
	first := r.ID
	p.Parse([]byte("beta two three"), &r)
	p.Parse([]byte("alpha one"), &r) // alpha is now the most recent
	p.Parse([]byte("gamma four five six"), &r)
	if p.Len() != 2 || p.Evicted() != 1 {
		t.Fatalf("Len %d, Evicted %d; want 2 and 1", p.Len(), p.Evicted())
	}
	if _, ok := p.Template(first); !ok {
		t.Errorf("the most recently matched template was evicted")
	}
	p.Parse([]byte("beta two three"), &r)
	if !r.Created {
		t.Errorf("the least recently matched template was not evicted")
	}
}

func TestMaxWords(t *testing.T) {
	p := mustParser(t, Config{MaxWords: 8})
	var r Result
	long := "a b c d e f g h i j k 12 l"
	p.Parse([]byte(long), &r)
	if r.Template != "a b c d e f g h i j k <*> l" {
		t.Errorf("template %q", r.Template)
	}
	if n := len(p.head.words); n != 8 {
		t.Errorf("%d words kept, want 8", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{PrefixTokens: 9}, "prefix_tokens"},
		{Config{SimilarityThreshold: 1.5}, "similarity_threshold"},
		{Config{SimilarityThreshold: -1}, "similarity_threshold"},
		{Config{MinVariants: 1}, "min_variants"},
		{Config{MaxChildren: 1}, "max_children"},
		{Config{MaxTemplates: -5}, "max_templates"},
		{Config{MaxWords: 3}, "max_words"},
		{Config{MaxAliases: -2}, "max_aliases"},
	} {
		_, err := New(tc.cfg)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
	var c Config
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}
