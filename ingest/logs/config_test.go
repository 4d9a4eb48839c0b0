package logs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no config test files", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadConfig(data)
			if strings.HasSuffix(f, ".good.yml") {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# error: ")
			if !ok {
				t.Fatal("a .bad.yml file starts with # error: <expected error>")
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want one containing %q", err, want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	// The full example spells out the defaults: it must decode to the same
	// configuration as the empty one, but for the fields it marks as not
	// defaults.
	full, err := LoadConfig(mustRead(t, "testdata/config/full.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if empty.AggregateWindow != time.Minute || empty.Anomaly.Factor != 10 || empty.Anomaly.MinCount != 20 ||
		empty.minLevel != LevelError || empty.newTemplateLevel != LevelError || empty.Format != FormatAuto ||
		!reflect.DeepEqual(empty.Fields.Message, DefaultMessagePaths) {
		t.Errorf("defaults %+v", empty)
	}
	full.Fields = empty.Fields
	full.WatchTemplates, full.watch = nil, nil
	empty.watch = nil
	if !reflect.DeepEqual(full, empty) {
		t.Errorf("full.good.yml does not spell out the defaults:\n%+v\n%+v", full, empty)
	}
	text, err := LoadConfig(mustRead(t, "testdata/config/text.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if text.newTemplateLevel != LevelNone || text.minLevel != LevelWarn || text.Text.defaultLevel != LevelWarn {
		t.Errorf("text config %+v", text)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
