package cmdb

import (
	"io"
	"strings"
	"testing"
)

var errEOF = io.EOF

// mustBuild decodes a YAML (or JSON) document and builds it.
func mustBuild(t testing.TB, in string, opts ...BuildOptions) *Topology {
	t.Helper()
	doc, err := DecodeNative(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var o BuildOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	topo, err := Build(doc, o)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

const exampleTopologyPath = "../examples/topology.yaml"

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

type ioReader = io.Reader
