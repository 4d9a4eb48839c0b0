package cmdb

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func impDecodeNetBoxFixture(t *testing.T, name string) *Document {
	t.Helper()
	doc, err := DecodeNetBox(bytes.NewReader(impReadFixture(t, "netbox/"+name)))
	if err != nil {
		t.Fatal(err)
	}
	impCheckDocument(t, doc)
	return doc
}

func TestNetBoxGolden(t *testing.T) {
	for _, name := range []string{"bundle", "legacy-3.2"} {
		t.Run(name, func(t *testing.T) {
			impGolden(t, "netbox/"+name+".golden.json", impDecodeNetBoxFixture(t, name+".json"))
		})
	}
}

// The issue this importer exists for: "A rack power loss or a top-of-rack
// switch failure must correlate through this physical topology."
func TestNetBoxPhysicalCorrelation(t *testing.T) {
	doc := impDecodeNetBoxFixture(t, "bundle.json")
	servers := map[string]struct{ rack, tor, pdu string }{}
	for _, ci := range doc.CIs {
		if ci.Type != "host" {
			continue
		}
		switch ci.Attributes["rack"] {
		case "R01":
			servers[ci.ID] = struct{ rack, tor, pdu string }{"rack-fra1-R01", "tor-r01", "pdu-r01"}
		case "R02":
			servers[ci.ID] = struct{ rack, tor, pdu string }{"rack-fra1-R02", "tor-r02", "pdu-r02"}
		default:
			t.Errorf("server %s in rack %q", ci.ID, ci.Attributes["rack"])
		}
	}
	if len(servers) != 6 {
		t.Fatalf("%d servers, want 6", len(servers))
	}
	for srv, want := range servers {
		for _, target := range []string{want.tor, want.rack, want.pdu, "spine-01"} {
			if !impDependsOn(doc, srv, target) {
				t.Errorf("%s does not depend on %s", srv, target)
			}
		}
		// Directly, not only through another path.
		if !impHasRelation(doc, srv, want.tor, RelConnectedTo) || !impHasRelation(doc, srv, want.rack, RelHostedOn) || !impHasRelation(doc, srv, want.pdu, RelDependsOn) {
			t.Errorf("%s: missing a direct relation to %s, %s or %s", srv, want.tor, want.rack, want.pdu)
		}
	}
	// What each failure takes down. The planned cable from srv-06 to tor-r01
	// adds nothing, and a ToR does not depend on the servers below it.
	for _, tc := range []struct {
		failed string
		want   []string
	}{
		{"tor-r01", []string{"cluster-prod-kvm", "srv-01", "srv-02", "srv-03", "vm-web-01", "vm-web-02"}},
		{"tor-r02", []string{"cluster-prod-kvm", "srv-04", "srv-05", "srv-06", "vm-db-01", "vm-web-01", "vm-web-02"}},
		{"spine-01", []string{"cluster-prod-kvm", "srv-01", "srv-02", "srv-03", "srv-04", "srv-05", "srv-06", "tor-r01", "tor-r02", "vm-db-01", "vm-web-01", "vm-web-02"}},
		{"pdu-r02", []string{"cluster-prod-kvm", "srv-04", "srv-05", "srv-06", "tor-r02", "vm-db-01", "vm-web-01", "vm-web-02"}},
		{"rack-fra1-R01", []string{"cluster-prod-kvm", "pdu-r01", "spine-01", "srv-01", "srv-02", "srv-03", "srv-04", "srv-05", "srv-06", "tor-r01", "tor-r02", "vm-db-01", "vm-web-01", "vm-web-02"}},
		{"srv-04", []string{"cluster-prod-kvm", "vm-db-01", "vm-web-01", "vm-web-02"}},
		{"srv-05", nil},
		{"vm-web-01", nil},
	} {
		slices.Sort(tc.want)
		if got := impImpacted(doc, tc.failed); !slices.Equal(got, tc.want) {
			t.Errorf("a failure of %s impacts %q, want %q", tc.failed, got, tc.want)
		}
	}
}

func TestNetBoxRelations(t *testing.T) {
	doc := impDecodeNetBoxFixture(t, "bundle.json")
	for _, tc := range []struct {
		source, target, typ, why string
	}{
		{"srv-01", "tor-r01", RelConnectedTo, "a server depends on its ToR (server on the A end)"},
		{"srv-02", "tor-r01", RelConnectedTo, "a server depends on its ToR (server on the B end)"},
		{"tor-r01", "spine-01", RelConnectedTo, "tor is nearer the edge than spine"},
		{"tor-r02", "spine-01", RelConnectedTo, "tor is nearer the edge than spine (spine on the A end)"},
		{"tor-r01", "pdu-r01", RelDependsOn, "the power port end depends on the outlet end"},
		{"spine-01", "pdu-r01", RelDependsOn, "power"},
		{"srv-03", "pdu-r01", RelDependsOn, "power, outlet on the A end"},
		{"srv-01", "rack-fra1-R01", RelHostedOn, "a device is hosted on its rack"},
		{"pdu-r02", "rack-fra1-R02", RelHostedOn, "a zero-U PDU is in its rack too"},
		{"vm-web-01", "cluster-prod-kvm", RelRunsOn, "a VM without a device runs on its cluster"},
		{"vm-db-01", "srv-04", RelRunsOn, "a VM pinned to a device runs on that device"},
		{"cluster-prod-kvm", "srv-01", RelMemberOf, "a cluster depends on its hosts"},
	} {
		if !impHasRelation(doc, tc.source, tc.target, tc.typ) {
			t.Errorf("want %s %s %s (%s)", tc.source, tc.typ, tc.target, tc.why)
		}
		if impDependsOn(doc, tc.target, tc.source) {
			t.Errorf("%s depends on %s: a direction is reversed somewhere", tc.target, tc.source)
		}
	}
	if impDependsOn(doc, "srv-06", "tor-r01") {
		t.Error("the planned cable srv-06 -> tor-r01 was imported")
	}
	// The PDUs' management ports are cabled to the ToRs, which the PDUs
	// power: that cable must not make the PDU, and so everything it powers,
	// depend on the switch.
	if impDependsOn(doc, "pdu-r01", "tor-r01") || impDependsOn(doc, "spine-01", "tor-r01") {
		t.Error("a PDU depends on the switch its management port is cabled to")
	}
	if impHasRelation(doc, "vm-db-01", "cluster-prod-kvm", RelRunsOn) {
		t.Error("a VM pinned to a device also runs on its cluster")
	}
}

func TestNetBoxCIs(t *testing.T) {
	doc := impDecodeNetBoxFixture(t, "bundle.json")
	for _, tc := range []struct {
		id, typ string
		aliases []string
	}{
		{"srv-01", "host", []string{"10.10.1.11", "srv-01", "srv-01.fra1.example.com"}},
		{"tor-r01", "switch", []string{"10.10.0.11", "tor-r01", "tor-r01.fra1.example.com"}},
		{"spine-01", "switch", nil},
		{"pdu-r01", "pdu", nil},
		{"vm-web-01", "vm", []string{"10.10.2.21", "vm-web-01", "vm-web-01.fra1.example.com"}},
		{"cluster-prod-kvm", "cluster", []string{"prod-kvm"}},
		{"rack-fra1-R01", "rack", nil},
	} {
		ci := impCI(t, doc, tc.id)
		if ci.Type != tc.typ || tc.aliases != nil && !slices.Equal(ci.Aliases, tc.aliases) {
			t.Errorf("%s: type %q aliases %q, want %q %q", tc.id, ci.Type, ci.Aliases, tc.typ, tc.aliases)
		}
	}
	attrs := impCI(t, doc, "srv-01").Attributes
	for k, v := range map[string]string{
		"netbox_id": "11", "site": "fra1", "rack": "R01", "tenant": "platform", "platform": "ubuntu-22-04",
		"role": "server", "status": "active", "device_type": "PowerEdge R650", "serial": "7XK2Q91", "cluster": "prod-kvm",
	} {
		if attrs[k] != v {
			t.Errorf("srv-01 attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if got := impCI(t, doc, "cluster-prod-kvm").Attributes; got["cluster_type"] != "kvm" || got["site"] != "fra1" {
		t.Errorf("cluster attributes %v", got)
	}
}

func TestNetBoxLegacy(t *testing.T) {
	doc := impDecodeNetBoxFixture(t, "legacy-3.2.json")
	want := []Relation{
		{Source: "sw-a1", Target: "core-01", Type: RelConnectedTo},
		{Source: "sw-a1", Target: "rack-ams1-A1", Type: RelHostedOn},
		{Source: "web-01", Target: "rack-ams1-A1", Type: RelHostedOn},
		{Source: "web-01", Target: "sw-a1", Type: RelConnectedTo},
	}
	if !slices.Equal(doc.Relations, want) {
		t.Errorf("relations %v, want %v (the console cable adds none)", doc.Relations, want)
	}
	if ci := impCI(t, doc, "sw-a1"); ci.Type != "switch" || ci.Attributes["role"] != "access-switch" {
		t.Errorf("sw-a1: %+v", ci)
	}
}

// nbTest builds a bundle from devices (name:role) and cables (a-b, or
// a=b for power from a's power port to b's outlet).
func nbTest(devices []string, cables []string) string {
	var devs, cbls []string
	ids := map[string]int{}
	for i, d := range devices {
		name, role, _ := strings.Cut(d, ":")
		ids[name] = i + 1
		devs = append(devs, `{"id": `+itoaTest(i+1)+`, "name": "`+name+`", "role": {"id": 1, "name": "`+role+`", "slug": "`+role+`"}, "site": {"id": 1, "slug": "s1"}}`)
	}
	term := func(kind, dev string) string {
		return `[{"object_type": "` + kind + `", "object_id": 1, "object": {"id": 1, "name": "p", "device": {"id": ` + itoaTest(ids[dev]) + `, "name": "` + dev + `"}}}]`
	}
	for i, c := range cables {
		if a, b, ok := strings.Cut(c, "="); ok {
			cbls = append(cbls, `{"id": `+itoaTest(i+1)+`, "a_terminations": `+term("dcim.powerport", a)+`, "b_terminations": `+term("dcim.poweroutlet", b)+`}`)
			continue
		}
		a, b, _ := strings.Cut(c, "-")
		cbls = append(cbls, `{"id": `+itoaTest(i+1)+`, "a_terminations": `+term("dcim.interface", a)+`, "b_terminations": `+term("dcim.interface", b)+`}`)
	}
	return `{"devices": [` + strings.Join(devs, ",") + `], "cables": [` + strings.Join(cbls, ",") + `]}`
}

func itoaTest(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestNetBoxCableDirection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		devices []string
		cables  []string
		opts    NetBoxOptions
		want    []string // "source>target"
	}{
		{"server to tor", []string{"s:server", "t:tor"}, []string{"s-t"}, NetBoxOptions{}, []string{"s>t"}},
		{"tor to server", []string{"s:server", "t:tor"}, []string{"t-s"}, NetBoxOptions{}, []string{"s>t"}},
		{"leaf to spine", []string{"l:leaf", "x:spine"}, []string{"x-l"}, NetBoxOptions{}, []string{"l>x"}},
		{"spine to core to firewall to router", []string{"x:spine", "c:core-switch", "f:firewall", "r:router"}, []string{"c-x", "c-f", "r-f"}, NetBoxOptions{}, []string{"f>r", "x>c", "c>f"}},
		{"MLAG peers: both ways", []string{"a:tor", "b:tor"}, []string{"a-b"}, NetBoxOptions{}, []string{"a>b", "b>a"}},
		{"servers back to back: both ways", []string{"a:server", "b:server"}, []string{"b-a"}, NetBoxOptions{}, []string{"a>b", "b>a"}},
		{"unknown role to switch", []string{"p:patch-panel", "t:switch"}, []string{"t-p"}, NetBoxOptions{}, []string{"p>t"}},
		{"custom roles", []string{"a:agg", "e:edge"}, []string{"a-e"}, NetBoxOptions{NetworkRoles: []string{"EDGE", "agg"}}, []string{"e>a"}},
		{"custom roles: tor is not network gear", []string{"s:server", "t:tor"}, []string{"s-t"}, NetBoxOptions{NetworkRoles: []string{"leaf"}}, []string{"s>t", "t>s"}},
		{"power", []string{"s:server", "p:pdu"}, []string{"s=p"}, NetBoxOptions{}, []string{"s>p"}},
		{"power between network gear", []string{"t:tor", "p:pdu"}, []string{"t=p"}, NetBoxOptions{}, []string{"t>p"}},
		{"PDU management port", []string{"t:tor", "p:pdu"}, []string{"p-t", "t=p"}, NetBoxOptions{}, []string{"t>p"}},
		{"a cable to the same device", []string{"s:server"}, []string{"s-s"}, NetBoxOptions{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := tc.opts.Decode(strings.NewReader(nbTest(tc.devices, tc.cables)))
			if err != nil {
				t.Fatal(err)
			}
			impCheckDocument(t, doc)
			var got []string
			for _, r := range doc.Relations {
				got = append(got, r.Source+">"+r.Target)
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("relations %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNetBoxTerminationKinds(t *testing.T) {
	devs := `{"id": 1, "name": "s", "role": {"slug": "server"}}, {"id": 2, "name": "t", "role": {"slug": "tor"}}`
	end := func(kind string, dev int) string {
		d := `{"id": 1, "name": "s"}`
		if dev == 2 {
			d = `{"id": 2, "name": "t"}`
		}
		return `[{"object_type": "` + kind + `", "object_id": 7, "object": {"id": 7, "name": "x", "device": ` + d + `}}]`
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"dcim.interface", "dcim.interface", 1},
		{"dcim.frontport", "dcim.rearport", 1},
		{"dcim.consoleport", "dcim.consoleserverport", 0},
		{"dcim.powerport", "dcim.interface", 0},
		{"dcim.poweroutlet", "dcim.poweroutlet", 0},
		{"dcim.powerport", "dcim.powerfeed", 0},
		{"circuits.circuittermination", "dcim.interface", 0},
	} {
		in := `{"devices": {"count": 2, "next": null, "previous": null, "results": [` + devs + `]}, "cables": [{"id": 1, "a_terminations": ` + end(tc.a, 1) + `, "b_terminations": ` + end(tc.b, 2) + `}]}`
		doc, err := DecodeNetBox(strings.NewReader(in))
		if err != nil {
			t.Errorf("%s-%s: %v", tc.a, tc.b, err)
			continue
		}
		if len(doc.Relations) != tc.want {
			t.Errorf("%s-%s: relations %v, want %d", tc.a, tc.b, doc.Relations, tc.want)
		}
	}
}

func TestNetBoxAcceptedInputs(t *testing.T) {
	dev := func(id, name string) string {
		return `{"id": ` + id + `, "name": "` + name + `", "device_role": {"id": 1, "slug": "server"}, "status": "active"}`
	}
	for name, in := range map[string]string{
		"plain lists":     `{"devices": [` + dev("1", "a") + `,` + dev("2", "b") + `]}`,
		"one page":        `{"devices": {"count": 2, "next": null, "previous": null, "results": [` + dev("1", "a") + `,` + dev("2", "b") + `]}}`,
		"pages in order":  `{"devices": [{"count": 2, "next": "https://nb/api/dcim/devices/?limit=1&offset=1", "previous": null, "results": [` + dev("1", "a") + `]}, {"count": 2, "next": null, "previous": "https://nb/api/dcim/devices/?limit=1", "results": [` + dev("2", "b") + `]}]}`,
		"pages reversed":  `{"devices": [{"count": 2, "next": null, "results": [` + dev("2", "b") + `]}, {"count": 2, "next": "https://nb/api/dcim/devices/?limit=1&offset=1", "results": [` + dev("1", "a") + `]}]}`,
		"two bundles":     `{"devices": [` + dev("1", "a") + `]} {"devices": [` + dev("2", "b") + `], "cables": []}`,
		"empty endpoints": `{"devices": [` + dev("1", "a") + `,` + dev("2", "b") + `], "cables": {"count": 0, "next": null, "previous": null, "results": []}, "virtual_machines": [], "clusters": []}`,
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := DecodeNetBox(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			impCheckDocument(t, doc)
			if len(doc.CIs) != 2 || doc.CIs[0].ID != "a" || doc.CIs[1].Attributes["status"] != "active" {
				t.Errorf("got %+v", doc)
			}
		})
	}
	// A device without a name, and a VM whose cluster is not exported.
	doc, err := DecodeNetBox(strings.NewReader(`{"devices": [{"id": 7, "name": null, "role": {"slug": "pdu"}}], "virtual_machines": [{"id": 3, "name": "vm", "cluster": {"id": 4, "name": "c"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	impCheckDocument(t, doc)
	if doc.CIs[0].ID != "cluster-c" || doc.CIs[1].ID != "netbox-device-7" || !impHasRelation(doc, "vm", "cluster-c", RelRunsOn) {
		t.Errorf("got %+v", doc)
	}
}

func TestNetBoxPagination(t *testing.T) {
	var bundle map[string]json.RawMessage
	if err := json.Unmarshal(impReadFixture(t, "netbox/bundle.json"), &bundle); err != nil {
		t.Fatal(err)
	}
	var pages []json.RawMessage
	if err := json.Unmarshal(bundle["devices"], &pages); err != nil || len(pages) != 2 {
		t.Fatalf("the fixture's devices are not two pages: %v", err)
	}
	with := func(devices ...json.RawMessage) string {
		b := map[string]json.RawMessage{"devices": mustJSON(t, devices)}
		return string(mustJSON(t, b))
	}
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"second page missing", with(pages[0]), []string{"netbox: devices: count: the pages say 11 records but hold 6"}},
		{"first page missing", with(pages[1]), []string{"netbox: devices: count: the pages say 11 records but hold 5"}},
		{"page doubled", with(pages[0], pages[1], pages[1]), []string{"devices: count: the pages say 11 records but hold 16"}},
		{"no last page", with(pages[0], pages[0]), []string{"devices: count:"}},
		{"next not followed", `{"devices": [{"count": 1, "next": "https://nb/api/dcim/devices/?limit=1&offset=1", "results": [{"id": 1, "name": "a"}]}]}`, []string{`devices: next: no page has "next": null`, "fetch https://nb/api/dcim/devices/?limit=1&offset=1"}},
		{"two last pages", `{"devices": [{"count": 2, "next": null, "results": [{"id": 1, "name": "a"}]}, {"count": 2, "next": null, "results": [{"id": 2, "name": "b"}]}]}`, []string{`devices: next: 2 pages have "next": null`}},
		{"counts disagree", `{"devices": [{"count": 2, "next": "x", "results": [{"id": 1, "name": "a"}]}, {"count": 3, "next": null, "results": [{"id": 2, "name": "b"}]}]}`, []string{"devices page 1: count: 3, but devices page 0 says 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			impWantError(t, "netbox", DecodeNetBox, tc.in, tc.want)
		})
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNetBoxBadInput(t *testing.T) {
	const srv = `{"id": 1, "name": "srv", "role": {"slug": "server"}}`
	const tor = `{"id": 2, "name": "tor", "role": {"slug": "tor"}}`
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{"netbox: empty input"}},
		{"malformed JSON", `{"devices": [`, []string{"top-level value 0: malformed JSON"}},
		{"not an object", `[]`, []string{"top-level value 0: want a bundle"}},
		{"a bare page", `{"count": 0, "next": null, "previous": null, "results": []}`, []string{"top-level value 0: a single page, not a bundle"}},
		{"unknown key", `{"devices": [], "virtual-machines": []}`, []string{"top-level value 0: virtual-machines: unknown key"}},
		{"endpoint not a list", `{"devices": 3}`, []string{"devices: want a page"}},
		{"record not an object", `{"devices": [3]}`, []string{"devices[0]: want a record object"}},
		{"page record not an object", `{"devices": {"count": 1, "next": null, "results": ["x"]}}`, []string{"devices page 0, results[0]: want a record object"}},
		{"missing id", `{"devices": [{"name": "srv"}]}`, []string{"devices[0] (id 0, srv): id: missing or not a positive integer"}},
		{"id not a number", `{"devices": [{"id": "1", "name": "srv"}]}`, []string{"devices[0]: id: want a number, not a JSON string"}},
		{"role not an object", `{"devices": [{"id": 1, "name": "srv", "role": "server"}]}`, []string{"devices[0]: role: want an object, not a JSON string"}},
		{"nested id not a number", `{"devices": [{"id": 1, "name": "srv", "rack": {"id": true}}]}`, []string{"devices[0]: rack.id: want a number, not a JSON bool"}},
		{"terminations not a list", `{"cables": [{"id": 1, "a_terminations": {}}]}`, []string{"cables[0]: a_terminations: want an array, not a JSON object"}},
		{"record syntax", `{"devices": [{"id": 1, "status": {"value": [}}]}`, []string{"top-level value 0: malformed JSON"}},
		{"duplicate id", `{"devices": [` + srv + `,` + srv + `]}`, []string{"devices[1] (id 1, srv): id: duplicate: devices[0] (id 1, srv)"}},
		{"duplicate name", `{"devices": [` + srv + `, {"id": 3, "name": "srv"}]}`, []string{"devices[1] (id 3, srv): name: CI id \"srv\" is taken by devices[0] (id 1, srv)"}},
		{"VM named like a device", `{"devices": [` + srv + `], "virtual_machines": [{"id": 9, "name": "srv"}]}`, []string{"virtual_machines[0] (id 9, srv): name: CI id \"srv\" is taken by devices[0]"}},
		{"VM without name", `{"virtual_machines": [{"id": 9}]}`, []string{"virtual_machines[0] (id 9): name: missing or empty"}},
		{"VM on a missing device", `{"virtual_machines": [{"id": 9, "name": "vm", "device": {"id": 5, "name": "ghost"}}]}`, []string{"virtual_machines[0] (id 9, vm): device: device 5 (ghost) is not among the exported devices"}},
		{"cluster without name", `{"clusters": [{"id": 4}]}`, []string{"clusters[0] (id 4): name: missing or empty"}},
		{"cable to a missing device", `{"devices": [` + srv + `], "cables": [{"id": 31, "a_terminations": [{"object_type": "dcim.interface", "object_id": 1, "object": {"device": {"id": 1, "name": "srv"}}}], "b_terminations": [{"object_type": "dcim.interface", "object_id": 2, "object": {"device": {"id": 2, "name": "tor"}}}]}]}`, []string{"cables[0] (id 31): b_terminations[0].object.device: device 2 (tor) is not among the exported devices"}},
		{"termination without object", `{"devices": [` + srv + `,` + tor + `], "cables": [{"id": 31, "a_terminations": [{"object_type": "dcim.interface", "object_id": 1}], "b_terminations": []}]}`, []string{"cables[0] (id 31): a_terminations[0].object: missing"}},
		{"termination without type", `{"devices": [` + srv + `], "cables": [{"id": 31, "a_terminations": [{"object_id": 1, "object": {"device": {"id": 1}}}]}]}`, []string{"cables[0] (id 31): a_terminations[0].object_type: missing or empty"}},
		{"legacy termination to a missing device", `{"devices": [` + srv + `], "cables": [{"id": 8, "termination_a_type": "dcim.interface", "termination_a_id": 1, "termination_a": {"id": 1, "device": {"id": 1, "name": "srv"}}, "termination_b_type": "dcim.interface", "termination_b_id": 2, "termination_b": {"id": 2, "device": {"id": 6, "name": "sw"}}}]}`, []string{"cables[0] (id 8): termination_b[0].object.device: device 6 (sw) is not among"}},
		{"cable without id", `{"cables": [{"a_terminations": []}]}`, []string{"cables[0] (id 0): id: missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			impWantError(t, "netbox", DecodeNetBox, tc.in, tc.want)
		})
	}
}

// nbFuzzSeeds returns the fixtures cut down to one rack's ToR, PDU and first
// server with the cables between them, compact.
func nbFuzzSeeds(f *testing.F) [][]byte {
	var legacy, bundle map[string]any
	if err := json.Unmarshal(impReadFixture(f, "netbox/legacy-3.2.json"), &legacy); err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(impReadFixture(f, "netbox/bundle.json"), &bundle); err != nil {
		f.Fatal(err)
	}
	keep := map[string]bool{"tor-r01": true, "pdu-r01": true, "srv-01": true}
	var devices []any
	for _, p := range bundle["devices"].([]any) {
		for _, d := range p.(map[string]any)["results"].([]any) {
			if keep[d.(map[string]any)["name"].(string)] {
				devices = append(devices, d)
			}
		}
	}
	bundle["devices"] = map[string]any{"count": len(devices), "next": nil, "previous": nil, "results": devices}
	var cables []any
	for _, c := range bundle["cables"].([]any)[0].(map[string]any)["results"].([]any) {
		ok := true
		for _, end := range []string{"a_terminations", "b_terminations"} {
			for _, term := range c.(map[string]any)[end].([]any) {
				if d, _ := term.(map[string]any)["object"].(map[string]any)["device"].(map[string]any); d != nil && !keep[d["name"].(string)] {
					ok = false
				}
			}
		}
		if ok {
			cables = append(cables, c)
		}
	}
	bundle["cables"] = cables
	vms := bundle["virtual_machines"].(map[string]any)
	vms["results"] = vms["results"].([]any)[:1]
	vms["count"] = 1
	return [][]byte{impCompact(f, legacy), impCompact(f, bundle)}
}

func FuzzDecodeNetBox(f *testing.F) {
	for _, seed := range nbFuzzSeeds(f) {
		if _, err := DecodeNetBox(bytes.NewReader(seed)); err != nil {
			f.Fatalf("seed: %v", err)
		}
		f.Add(seed)
	}
	f.Add([]byte(nbTest([]string{"a:server", "b:tor", "c:spine", "d:pdu"}, []string{"a-b", "b-c", "a=d", "b=d", "c-b"})))
	for _, s := range []string{
		``, `{}`, `{"devices": []}`, `{"devices": {"count": 1, "next": null, "results": []}}`,
		`{"virtual_machines": [{"id": 1, "name": "v", "cluster": {"id": 0}}], "clusters": [{"id": 1, "name": "0"}]}`,
		`{"devices": [{"id": 1, "name": "cluster-x", "cluster": {"id": 2, "name": "x"}}]}`,
		`{"devices": [{"id": 1, "name": "a", "rack": {"id": 1, "name": "r"}, "site": {"slug": "s"}}, {"id": 2, "name": "rack-s-r"}]}`,
	} {
		f.Add([]byte(s))
	}
	impAddFuzzSeeds(f, "netbox")
	f.Fuzz(func(t *testing.T, data []byte) {
		impFuzzCheck(t, DecodeNetBox, data)
	})
}
