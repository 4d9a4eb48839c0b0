package cmdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Source is where a Store loads its document from. Load reads and decodes
// the whole document every time; Name identifies the source in logs and
// errors (a path, or a URL without credentials). A Source is used by one
// Store at a time; Load need not be safe for concurrent use.
type Source interface {
	Load(ctx context.Context) (*Document, error)
	Name() string
}

// Poller is a Source that can tell cheaply whether its content changed.
// Poll returns (nil, nil) when the content is the one its last Load or Poll
// read — whether or not that one decoded and validated — and otherwise
// loads it like Load. A Store polls such sources on its interval and loads
// the others.
type Poller interface {
	Source
	Poll(ctx context.Context) (*Document, error)
}

// NewSource returns a Source named name that calls load: for documents
// that come from elsewhere than a file or a URL, such as an importer
// talking to a CMDB's API. load must return a new Document on each call.
func NewSource(name string, load func(ctx context.Context) (*Document, error)) Source {
	return funcSource{name, load}
}

type funcSource struct {
	name string
	load func(ctx context.Context) (*Document, error)
}

func (f funcSource) Name() string                                { return f.name }
func (f funcSource) Load(ctx context.Context) (*Document, error) { return f.load(ctx) }

// nativeDecoderFor picks the native decoder for a name (a path or URL path)
// and a media type: JSON or YAML when either says so, else by content.
func nativeDecoderFor(name, mediaType string) Decoder {
	switch {
	case strings.Contains(mediaType, "json"):
		return DecodeNativeJSON
	case strings.Contains(mediaType, "yaml"):
		return DecodeNativeYAML
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".json":
		return DecodeNativeJSON
	case ".yaml", ".yml":
		return DecodeNativeYAML
	}
	return DecodeNative
}

// FileSource loads a document from a file. Poll notices a change by the
// file's identity, size and modification time, and confirms it by a hash of
// the content, so touching a file does not rebuild the topology.
//
// Write the file atomically (write a temporary file, then rename it over
// the old one): a poll that reads a file half-written gets a document that
// fails to decode, or worse, a shorter YAML document that is valid.
type FileSource struct {
	path   string
	decode Decoder // nil: native, by extension or content

	mu   sync.Mutex
	last fileStamp
}

type fileStamp struct {
	info os.FileInfo // nil before the first read
	hash uint64
}

// NewFileSource returns a source reading path in the named format ("" or
// FormatNative for the native format, chosen by extension: .json, .yaml,
// .yml, else by content; or a format of formats or Importers).
func NewFileSource(path, format string, formats Formats) (*FileSource, error) {
	if path == "" {
		return nil, errors.New("cmdb file source: empty path")
	}
	s := &FileSource{path: path}
	if d, ok := formats[format]; ok || (format != "" && format != FormatNative) {
		var err error
		if !ok {
			if d, err = LookupFormat(format, formats); err != nil {
				return nil, err
			}
		}
		s.decode = d
	}
	return s, nil
}

// Name returns the path.
func (s *FileSource) Name() string { return s.path }

// Load reads and decodes the file.
func (s *FileSource) Load(ctx context.Context) (*Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load(ctx)
}

// Poll loads the file if it changed since the last Load or Poll.
func (s *FileSource) Poll(ctx context.Context) (*Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := os.Stat(s.path)
	if err != nil {
		return nil, err
	}
	last := s.last.info
	if last != nil && os.SameFile(last, info) && last.Size() == info.Size() && last.ModTime().Equal(info.ModTime()) {
		return nil, nil
	}
	if last != nil {
		// Metadata changed: compare the content before decoding it.
		info2, h, err := s.hash(ctx)
		if err != nil {
			return nil, err
		}
		if h == s.last.hash {
			s.last.info = info2
			return nil, nil
		}
	}
	return s.load(ctx)
}

func (s *FileSource) hash(ctx context.Context) (os.FileInfo, uint64, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	h := xxhash.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", s.path, err)
	}
	return info, h.Sum64(), nil
}

func (s *FileSource) load(ctx context.Context) (*Document, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a CMDB file", s.path)
	}
	h := xxhash.New()
	rd := ctxReader{ctx, f}
	tee := io.TeeReader(rd, h)
	dec := s.decode
	if dec == nil {
		dec = nativeDecoderFor(s.path, "")
	}
	doc, derr := dec(tee)
	// Hash the rest even when decoding stopped early, so that the stamp
	// describes the whole file and an unchanged bad file is not retried.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	s.last = fileStamp{info: info, hash: h.Sum64()}
	if derr != nil {
		return nil, derr
	}
	return doc, nil
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// URLOptions configure a URLSource.
type URLOptions struct {
	// URL is an http or https URL.
	URL string
	// Format is FormatNative (or empty) or another format name; the native
	// format is read as JSON or YAML by Content-Type, else by the URL
	// path's extension, else by content.
	Format  string
	Formats Formats
	// Client sends the requests; nil means a plain http.Client. Configure
	// TLS and authentication on it.
	Client *http.Client
	// Timeout bounds one request, body included. Default 1m.
	Timeout time.Duration
	// MaxBytes bounds the body; a larger one is an error. Default 1 GiB.
	MaxBytes int64
}

// URLSource loads a document over HTTP(S) with GET. Poll sends the
// validators of the last response (If-None-Match, If-Modified-Since) and
// takes a 304 as unchanged; for servers that send neither, it compares a
// hash of the body, which is then downloaded and decoded on every poll.
type URLSource struct {
	url     string
	name    string // url without credentials
	decode  Decoder
	client  *http.Client
	timeout time.Duration
	max     int64

	mu           sync.Mutex
	etag         string
	lastModified string
	hash         uint64
	hashed       bool
}

// Defaults of URLOptions.
const (
	DefaultURLTimeout  = time.Minute
	DefaultURLMaxBytes = 1 << 30
)

// NewURLSource returns a source for o.URL.
func NewURLSource(o URLOptions) (*URLSource, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("cmdb url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("cmdb url %q: want an http:// or https:// URL", u.Redacted())
	}
	s := &URLSource{url: o.URL, name: u.Redacted(), client: o.Client, timeout: o.Timeout, max: o.MaxBytes}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.timeout <= 0 {
		s.timeout = DefaultURLTimeout
	}
	if s.max <= 0 {
		s.max = DefaultURLMaxBytes
	}
	if d, ok := o.Formats[o.Format]; ok || (o.Format != "" && o.Format != FormatNative) {
		if !ok {
			if d, err = LookupFormat(o.Format, o.Formats); err != nil {
				return nil, err
			}
		}
		s.decode = d
	}
	return s, nil
}

// Name returns the URL, without credentials.
func (s *URLSource) Name() string { return s.name }

// Load fetches and decodes the document.
func (s *URLSource) Load(ctx context.Context) (*Document, error) {
	return s.fetch(ctx, false)
}

// Poll fetches the document if it changed since the last Load or Poll.
func (s *URLSource) Poll(ctx context.Context) (*Document, error) {
	return s.fetch(ctx, true)
}

// StatusError is a response other than 200 (or 304 to a poll).
type StatusError struct {
	URL        string
	StatusCode int
	Status     string
	Body       string // the start of the body, for the operator
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: %s", e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func (s *URLSource) fetch(ctx context.Context, poll bool) (*Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/yaml;q=0.9, */*;q=0.5")
	req.Header.Set("User-Agent", "correlatord-cmdb")
	if poll {
		if s.etag != "" {
			req.Header.Set("If-None-Match", s.etag)
		}
		if s.lastModified != "" {
			req.Header.Set("If-Modified-Since", s.lastModified)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusNotModified && poll:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return nil, &StatusError{URL: s.name, StatusCode: resp.StatusCode, Status: resp.Status,
			Body: strings.TrimSpace(strings.ToValidUTF8(string(snippet), "?"))}
	}
	h := xxhash.New()
	lr := &io.LimitedReader{R: resp.Body, N: s.max + 1}
	tee := io.TeeReader(lr, h)
	dec := s.decode
	if dec == nil {
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		dec = nativeDecoderFor(req.URL.Path, mt)
	}
	doc, derr := dec(tee)
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", s.name, err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes (max_bytes)", s.name, s.max)
	}
	sum := h.Sum64()
	unchanged := poll && s.hashed && sum == s.hash
	s.etag, s.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	s.hash, s.hashed = sum, true
	if unchanged {
		return nil, nil
	}
	if derr != nil {
		return nil, fmt.Errorf("GET %s: %w", s.name, derr)
	}
	return doc, nil
}
