package cmdb

import (
	"strings"
	"testing"

	"github.com/correlatord/correlatord/event"
)

const bindYAML = `
cis:
  - id: web-01
    type: host
    aliases: [web-01.prod.example.com, 10.0.0.5, "2001:db8::5", "node-exporter-7:9100"]
  - {id: db-01, type: database, name: Orders DB Primary}
  - {id: orders-api, type: application, aliases: [orders-api-7d9f8]}
  - {id: kafka, type: application}
  - {id: k8s-node-3, type: host, aliases: [ip-10-0-3-7.ec2.internal]}
  - {id: Straße-01, type: host}
  - {id: batch, type: application}
`

func TestBind(t *testing.T) {
	topo := mustBuild(t, bindYAML)
	for _, tc := range []struct {
		name   string
		ci     string
		labels map[string]string
		want   string // "" for unbound
	}{
		{"explicit ci", "db-01", map[string]string{"instance": "web-01:9100"}, "db-01"},
		{"explicit ci, any case", "DB-01", nil, "db-01"},
		{"explicit ci by alias", "10.0.0.5", nil, "web-01"},
		{"unknown explicit ci falls back to labels", "retired-host", map[string]string{"host": "web-01"}, "web-01"},
		{"unknown explicit ci, no labels", "retired-host", nil, ""},
		{"instance host:port", "", map[string]string{"instance": "web-01:9100"}, "web-01"},
		{"instance fqdn:port via alias", "", map[string]string{"instance": "web-01.prod.example.com:9100"}, "web-01"},
		{"instance ip:port", "", map[string]string{"instance": "10.0.0.5:9182"}, "web-01"},
		{"instance [ipv6]:port", "", map[string]string{"instance": "[2001:db8::5]:9100"}, "web-01"},
		{"instance [ipv6]", "", map[string]string{"instance": "[2001:DB8::5]"}, "web-01"},
		{"instance bare ipv6", "", map[string]string{"instance": "2001:db8::5"}, "web-01"},
		{"instance url", "", map[string]string{"instance": "https://web-01.prod.example.com:8443/healthz"}, "web-01"},
		{"instance kept whole when an alias has the port", "", map[string]string{"instance": "Node-Exporter-7:9100"}, "web-01"},
		{"host", "", map[string]string{"host": "WEB-01"}, "web-01"},
		{"hostname", "", map[string]string{"hostname": "Web-01.Prod.Example.Com"}, "web-01"},
		{"node", "", map[string]string{"node": "ip-10-0-3-7.ec2.internal"}, "k8s-node-3"},
		{"pod", "", map[string]string{"pod": "orders-api-7d9f8"}, "orders-api"},
		{"service", "", map[string]string{"service": "kafka"}, "kafka"},
		{"job", "", map[string]string{"job": "batch"}, "batch"},
		{"by name, case-insensitive", "", map[string]string{"service": "orders db primary"}, "db-01"},
		{"unicode case folding", "", map[string]string{"host": "STRASSE-01"}, ""},
		{"unicode case folding ok", "", map[string]string{"host": "STRAßE-01"}, "Straße-01"},
		{"order: instance before job", "", map[string]string{"job": "batch", "instance": "kafka:9308"}, "kafka"},
		{"order: later label when earlier unknown", "", map[string]string{"instance": "unknown:9100", "pod": "orders-api-7d9f8"}, "orders-api"},
		{"empty label value ignored", "", map[string]string{"instance": "", "job": "batch"}, "batch"},
		{"unbound", "", map[string]string{"instance": "elsewhere:9100", "job": "node"}, ""},
		{"other labels are not tried", "", map[string]string{"cluster": "web-01"}, ""},
		{"no labels", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &event.Event{CI: tc.ci, Labels: event.FromMap(tc.labels)}
			got, ok := topo.Bind(e)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Bind = %q, %v; want %q", got, ok, tc.want)
			}
			n, ok2 := topo.BindNode(e)
			if ok2 != ok || ok && topo.ID(n) != got {
				t.Errorf("BindNode = %v, %v", n, ok2)
			}
		})
	}
}

func TestBindLabelsOption(t *testing.T) {
	doc, err := DecodeNativeYAML(strings.NewReader(bindYAML))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Build(doc, BuildOptions{BindLabels: []string{"job", "instance"}})
	if err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Labels: event.FromMap(map[string]string{"job": "batch", "instance": "kafka:9308"})}
	if got, _ := topo.Bind(e); got != "batch" {
		t.Errorf("Bind with job first = %q, want batch", got)
	}
	if got, ok := topo.Bind(&event.Event{Labels: event.FromMap(map[string]string{"host": "web-01"})}); ok {
		t.Errorf("host is not in the configured labels, yet bound to %q", got)
	}
}

func TestBindNoHostKeys(t *testing.T) {
	// Without any key holding a port, values with one are only tried
	// reduced to their host; the result is the same.
	topo := mustBuild(t, "cis: [{id: a, type: host, aliases: [a.example.com]}]")
	if topo.bind.hostKeys {
		t.Fatal("hostKeys set without a key with a port")
	}
	if got, _ := topo.Bind(&event.Event{Labels: event.FromMap(map[string]string{"instance": "A.example.com:9100"})}); got != "a" {
		t.Errorf("got %q", got)
	}
	if !mustBuild(t, bindYAML).bind.hostKeys {
		t.Error("hostKeys not set with an alias host:port")
	}
}

func TestBindAllocs(t *testing.T) {
	topo := mustBuild(t, bindYAML)
	evs := []*event.Event{
		{CI: "DB-01"},
		{Labels: event.FromMap(map[string]string{"instance": "[2001:db8::5]:9100"})},
		{Labels: event.FromMap(map[string]string{"instance": "https://web-01.prod.example.com:8443/x"})},
		{Labels: event.FromMap(map[string]string{"host": "STRAßE-01"})},
		{Labels: event.FromMap(map[string]string{"instance": "nowhere:1", "job": "x"})},
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, e := range evs {
			topo.Bind(e)
		}
	})
	if allocs != 0 {
		t.Errorf("Bind allocates %v times per run", allocs)
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"host":                          "host",
		"host:9100":                     "host",
		"host.example.com:443":          "host.example.com",
		"10.1.2.3:9100":                 "10.1.2.3",
		"[2001:db8::1]:9100":            "2001:db8::1",
		"[2001:db8::1]":                 "2001:db8::1",
		"[2001:db8::1]:x":               "[2001:db8::1]:x",
		"[broken":                       "[broken",
		"2001:db8::1":                   "2001:db8::1",
		"::1":                           "::1",
		"node:exporter":                 "node:exporter",
		"host:123456":                   "host:123456",
		"host:":                         "host:",
		"http://host:8080/metrics":      "host",
		"https://user:pw@host/x?y#z":    "host",
		"https://[2001:db8::1]:443/x":   "2001:db8::1",
		"tcp://10.0.0.1:5432":           "10.0.0.1",
		"":                              "",
		"https://host.example.com?x=1":  "host.example.com",
		"https://host.example.com#frag": "host.example.com",
	} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBindHashFolding(t *testing.T) {
	for _, pair := range [][2]string{
		{"abcdefghijklmnopqrstuvwxyz0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"},
		{"web-01.PROD.example.com", "WEB-01.prod.EXAMPLE.COM"},
		{"straße-ÄÖÜ-12345678", "STRAßE-äöü-12345678"},
		{"kelvin-\u212a", "kelvin-k"}, // KELVIN SIGN folds to k
		{"@[`{", "@[`{"},
	} {
		if bindHash(pair[0]) != bindHash(pair[1]) || !bindEqualFold(pair[0], pair[1]) {
			t.Errorf("%q and %q should be equal folded", pair[0], pair[1])
		}
	}
	for _, pair := range [][2]string{
		{"@", "`"}, {"[", "{"}, {"abc", "abd"}, {"abcdefgh1", "abcdefgh2"},
		{"a\xffb", "a\xfeb"}, {"x", "xx"},
	} {
		if bindEqualFold(pair[0], pair[1]) {
			t.Errorf("%q and %q should differ", pair[0], pair[1])
		}
	}
}
