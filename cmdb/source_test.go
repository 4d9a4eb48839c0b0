package cmdb

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// cmdbServer serves a document that tests change, with an ETag when etags
// is set, and counts requests.
type cmdbServer struct {
	body        atomic.Value // string
	status      atomic.Int32
	contentType atomic.Value // string
	etags       bool
	requests    atomic.Int32
	notModified atomic.Int32
}

func (s *cmdbServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body := s.body.Load().(string)
	if st := int(s.status.Load()); st != 0 && st != http.StatusOK {
		http.Error(w, "upstream CMDB is down", st)
		return
	}
	if s.etags {
		etag := `"` + bindHashString(body) + `"`
		if r.Header.Get("If-None-Match") == etag {
			s.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
	}
	if ct, _ := s.contentType.Load().(string); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	_, _ = w.Write([]byte(body))
}

func bindHashString(s string) string { return strconv.FormatUint(bindHash(s), 16) }

func newCMDBServer(t *testing.T, body string, etags bool) (*cmdbServer, *httptest.Server) {
	cs := &cmdbServer{etags: etags}
	cs.body.Store(body)
	srv := httptest.NewServer(cs)
	t.Cleanup(srv.Close)
	return cs, srv
}

func TestURLSource(t *testing.T) {
	for _, etags := range []bool{true, false} {
		t.Run(map[bool]string{true: "etag", false: "hash"}[etags], func(t *testing.T) {
			cs, srv := newCMDBServer(t, issueJSON, etags)
			src, err := NewURLSource(URLOptions{URL: srv.URL + "/cmdb", Client: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			doc, err := src.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(doc.CIs) != 2 {
				t.Fatalf("%d CIs", len(doc.CIs))
			}
			// Unchanged: Poll says so.
			doc, err = src.Poll(ctx)
			if doc != nil || err != nil {
				t.Fatalf("unchanged poll: %v, %v", doc, err)
			}
			if etags && cs.notModified.Load() != 1 {
				t.Error("no conditional request")
			}
			// Changed (YAML now, by content): Poll loads.
			cs.body.Store(issueYAML)
			doc, err = src.Poll(ctx)
			if err != nil || doc == nil || len(doc.CIs) != 2 {
				t.Fatalf("changed poll: %v, %v", doc, err)
			}
			// Load always loads.
			if doc, err := src.Load(ctx); err != nil || doc == nil {
				t.Fatalf("load: %v, %v", doc, err)
			}
		})
	}
}

func TestURLSourceErrors(t *testing.T) {
	cs, srv := newCMDBServer(t, issueJSON, false)
	reg := prometheus.NewRegistry()
	src, err := NewURLSource(URLOptions{URL: srv.URL + "/cmdb.json", Client: srv.Client(), MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(StoreOptions{Source: src, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	good := s.Topology()

	// A 500 keeps the topology, counts, and says what the server said.
	cs.status.Store(http.StatusInternalServerError)
	err = s.Reload(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(err.Error(), "upstream CMDB is down") {
		t.Fatalf("500: %v", err)
	}
	if s.Topology() != good {
		t.Fatal("a 500 replaced the topology")
	}
	cs.status.Store(0)

	// A bad body (unknown field) likewise.
	cs.body.Store(`{"cis": [{"id": "a", "type": "host", "colour": "red"}]}`)
	err = s.Reload(ctx)
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `cis[0]: unknown field "colour"`) {
		t.Fatalf("bad body: %v", err)
	}
	// Truncated JSON.
	cs.body.Store(issueJSON[:40])
	if err := s.Reload(ctx); !errors.Is(err, ErrInvalid) {
		t.Fatalf("truncated body: %v", err)
	}
	// Too large.
	cs.body.Store(`{"cis": [` + strings.Repeat(`{"id": "x", "type": "y"},`, 200) + `]}`)
	if err := s.Reload(ctx); err == nil || !strings.Contains(err.Error(), "larger than 4096 bytes") {
		t.Fatalf("large body: %v", err)
	}
	if s.Topology() != good {
		t.Fatal("a bad body replaced the topology")
	}
	if got := testutil.ToFloat64(s.metrics.reloadFailures); got != 4 {
		t.Errorf("failures = %v, want 4", got)
	}
	// A bad body that stays the same is not retried by polls.
	cs.body.Store(`{"cis": [{"id": "a"}]}`)
	if err := s.reload(ctx, true); err == nil {
		t.Fatal("invalid document accepted")
	}
	for range 3 {
		if err := s.reload(ctx, true); err != nil {
			t.Fatalf("unchanged bad body retried: %v", err)
		}
	}
	if got := testutil.ToFloat64(s.metrics.reloadFailures); got != 5 {
		t.Errorf("failures = %v, want 5", got)
	}
}

func TestURLSourceFormatAndTimeout(t *testing.T) {
	cs, srv := newCMDBServer(t, issueYAML, false)
	cs.contentType.Store("application/yaml; charset=utf-8")
	src, err := NewURLSource(URLOptions{URL: srv.URL + "/export", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(context.Background()); err != nil {
		t.Fatalf("yaml by content type: %v", err)
	}
	// JSON content type with a YAML body: the JSON decoder says so.
	cs.contentType.Store("application/json")
	if _, err := src.Load(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("yaml body as json: %v", err)
	}

	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	}))
	defer slow.Close()
	defer close(block)
	src, err = NewURLSource(URLOptions{URL: slow.URL, Client: slow.Client(), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow server: %v", err)
	}
}

func TestNewURLSource(t *testing.T) {
	for _, bad := range []string{"", "ftp://host/x", "http://", "://x", "file:///etc/cmdb.yaml"} {
		if _, err := NewURLSource(URLOptions{URL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	src, err := NewURLSource(URLOptions{URL: "https://user:secret@cmdb.example.com/export.json"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(src.Name(), "secret") {
		t.Errorf("Name %q shows the password", src.Name())
	}
	if _, err := NewURLSource(URLOptions{URL: "https://x/y", Format: "cmdbuild"}); err == nil || !strings.Contains(err.Error(), "native") {
		t.Errorf("unknown format: %v", err)
	}
	for name := range Importers {
		if _, err := NewURLSource(URLOptions{URL: "https://x/y", Format: name}); err != nil {
			t.Errorf("format %s: %v", name, err)
		}
	}
}

func TestFileSourcePoll(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cmdb.json")
	writeFile(t, path, issueJSON)
	src, err := NewFileSource(path, FormatNative, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	doc, err := src.Poll(ctx) // first poll loads
	if err != nil || doc == nil {
		t.Fatalf("first poll: %v, %v", doc, err)
	}
	if doc, err := src.Poll(ctx); doc != nil || err != nil {
		t.Fatalf("unchanged: %v, %v", doc, err)
	}
	// Touched, same content: unchanged.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if doc, err := src.Poll(ctx); doc != nil || err != nil {
		t.Fatalf("touched: %v, %v", doc, err)
	}
	// Same size, other content.
	writeFile(t, path, strings.Replace(issueJSON, "db-01", "db-02", -1))
	doc, err = src.Poll(ctx)
	if err != nil || doc == nil || doc.CIs[0].ID != "db-02" {
		t.Fatalf("changed: %v, %v", doc, err)
	}
	// Gone.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Poll(ctx); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed: %v", err)
	}
	// A .json file must be JSON.
	writeFile(t, path, issueYAML)
	if _, err := src.Load(ctx); !errors.Is(err, ErrInvalid) {
		t.Fatalf("yaml in a .json file: %v", err)
	}
	// A directory is not a file.
	dsrc, _ := NewFileSource(dir, "", nil)
	if _, err := dsrc.Load(ctx); err == nil {
		t.Fatal("loaded a directory")
	}
	if _, err := NewFileSource("", "", nil); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := NewFileSource(path, "nope", nil); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestFileSourceFormats(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "export.txt")
	writeFile(t, path, "whatever")
	called := 0
	custom := Formats{"custom": Decoder(func(r ioReader) (*Document, error) {
		called++
		return &Document{CIs: []CI{{ID: "x", Type: "host"}}}, nil
	})}
	src, err := NewFileSource(path, "custom", custom)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := src.Load(context.Background())
	if err != nil || called != 1 || doc.CIs[0].ID != "x" {
		t.Fatalf("custom decoder: %v %v %d", doc, err, called)
	}
	// A native file without a known extension is sniffed.
	writeFile(t, path, issueJSON)
	src, _ = NewFileSource(path, "", nil)
	if _, err := src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Format names.
	names := FormatNames(custom)
	for _, want := range []string{"custom", "native", "servicenow", "backstage", "netbox"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("FormatNames lacks %s: %v", want, names)
		}
	}
}
