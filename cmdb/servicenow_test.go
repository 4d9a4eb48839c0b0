package cmdb

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func impDecodeServiceNowFixture(t *testing.T, name string) *Document {
	t.Helper()
	doc, err := DecodeServiceNow(bytes.NewReader(impReadFixture(t, "servicenow/"+name)))
	if err != nil {
		t.Fatal(err)
	}
	impCheckDocument(t, doc)
	return doc
}

// snIDs maps the CI names of the fixtures to their sys_ids.
func snIDs(doc *Document) map[string]string {
	m := map[string]string{}
	for _, ci := range doc.CIs {
		m[ci.Name] = ci.ID
	}
	return m
}

func TestServiceNowGolden(t *testing.T) {
	for _, name := range []string{"bundle", "stream"} {
		t.Run(name, func(t *testing.T) {
			doc := impDecodeServiceNowFixture(t, name+".json")
			impGolden(t, "servicenow/"+name+".golden.json", doc)
		})
	}
}

// The bundle (sysparm_display_value=all and false) and the stream
// (sysparm_display_value=true: references carry only a display value and a
// link) export the same CMDB: they must give the same CIs and relations.
func TestServiceNowShapesAgree(t *testing.T) {
	bundle := impDecodeServiceNowFixture(t, "bundle.json")
	stream := impDecodeServiceNowFixture(t, "stream.json")
	if !slices.Equal(bundle.Relations, stream.Relations) {
		t.Errorf("relations differ:\nbundle %v\nstream %v", bundle.Relations, stream.Relations)
	}
	if len(bundle.CIs) != len(stream.CIs) {
		t.Fatalf("%d CIs in the bundle, %d in the stream", len(bundle.CIs), len(stream.CIs))
	}
	for i := range bundle.CIs {
		b, s := bundle.CIs[i], stream.CIs[i]
		if b.ID != s.ID || b.Name != s.Name || b.Criticality != s.Criticality || !slices.Equal(b.Aliases, s.Aliases) {
			t.Errorf("CI %s differs:\nbundle %+v\nstream %+v", b.ID, b, s)
		}
	}
}

func TestServiceNowDirection(t *testing.T) {
	doc := impDecodeServiceNowFixture(t, "bundle.json")
	id := snIDs(doc)
	for _, tc := range []struct {
		source, target, typ string
		why                 string
	}{
		{"orders-api", "db-01", RelDependsOn, "Depends on::Used by: the parent depends on the child"},
		{"orders-api", "db-02", RelDependsOn, "Used by::Depends on with db-02 as parent: flipped"},
		{"Online Orders", "Orders Application Service", RelDependsOn, "a business service depends on its application service"},
		{"Order Management", "Orders Application Service", RelDependsOn, "Consumes::Consumed by"},
		{"Orders Application Service", "orders-api", RelMemberOf, "Contains: a service fails when a contained component fails"},
		{"Orders Application Service", "lb-01", RelDependsOn, "Provides::Provided by: what is provided depends on the provider"},
		{"orders-events", "orders-api", RelDependsOn, "Sends data to::Receives data from: the receiver depends on the sender"},
		{"orders-api", "app-01", RelRunsOn, "Runs on::Runs"},
		{"vm-db-01", "esx-01", RelRunsOn, "Virtualized by::Virtualizes"},
		{"db-02", "esx-01", RelHostedOn, "Hosted on::Hosts"},
		{"esx-cluster-fra1", "esx-01", RelMemberOf, "Members::Member of: a cluster fails with a member"},
		{"app-01", "sw-core-01", RelConnectedTo, "Connected by::Connects"},
		{"sw-core-01", "rtr-01", RelConnectedTo, "Connects to::Connected by"},
		{"esx-01", "san-01", RelDependsOn, "Stored on::Stores"},
		{"fw-01", "sw-core-01", "protects", "unknown type: parent to child, parent descriptor in snake case"},
	} {
		if !impHasRelation(doc, id[tc.source], id[tc.target], tc.typ) {
			t.Errorf("want %s %s %s (%s)", tc.source, tc.typ, tc.target, tc.why)
		}
		if impDependsOn(doc, id[tc.target], id[tc.source]) {
			t.Errorf("%s depends on %s: the direction is reversed somewhere", tc.target, tc.source)
		}
	}
	// "Backed up by::Backs up" is not a failure dependency.
	if impHasRelation(doc, id["db-01"], id["san-01"], "backed_up_by") || impDependsOn(doc, id["san-01"], id["db-01"]) {
		t.Error("backup relation imported")
	}
	// The chain a correlator walks: the business service is impacted by the
	// hypervisor under the database VM and the switch in front of the app
	// server.
	for _, root := range []string{"esx-01", "sw-core-01", "san-01", "db-01"} {
		if !impDependsOn(doc, id["Online Orders"], id[root]) {
			t.Errorf("Online Orders does not depend on %s", root)
		}
	}
	if n := len(doc.Relations); n != 21 {
		t.Errorf("%d relations, want 21 (22 exported, one backup relation dropped)", n)
	}
}

func TestServiceNowCIFields(t *testing.T) {
	doc := impDecodeServiceNowFixture(t, "bundle.json")
	id := snIDs(doc)
	for _, tc := range []struct {
		name, typ, group string
		crit             int
		aliases          []string
	}{
		{"Online Orders", TypeService, "Orders Service Desk", 1, []string{"Online Orders"}},
		{"Orders Application Service", TypeService, "Orders DevOps", 2, nil},
		{"Order Management", "application", "Orders DevOps", 2, nil},
		{"db-01", "database", "DBA Team", 0, []string{"10.20.3.21", "db-01", "db-01.fra1.example.com"}},
		{"db-02", "database", "DBA Team", 0, nil},
		{"app-01", "host", "Linux Ops", 0, []string{"10.20.1.11", "app-01", "app-01.fra1.example.com"}},
		// host_name.dns_domain when there is no fqdn.
		{"app-02", "host", "Windows Ops", 0, []string{"10.20.1.12", "app-02", "app-02.fra1.example.com"}},
		{"vm-db-01", "vm", "", 0, nil},
		{"lb-01", "load_balancer", "", 0, nil},
		{"sw-core-01", "switch", "", 0, nil},
		{"k8s-prod", "container", "", 0, nil},
		{"esx-cluster-fra1", "vcenter_cluster", "", 0, nil},
	} {
		ci := impCI(t, doc, id[tc.name])
		if ci.Type != tc.typ || ci.Criticality != tc.crit {
			t.Errorf("%s: type %q criticality %d, want %q %d", tc.name, ci.Type, ci.Criticality, tc.typ, tc.crit)
		}
		if tc.group != "" && ci.SupportGroup != tc.group {
			t.Errorf("%s: support group %q, want %q", tc.name, ci.SupportGroup, tc.group)
		}
		if tc.aliases != nil && !slices.Equal(ci.Aliases, tc.aliases) {
			t.Errorf("%s: aliases %q, want %q", tc.name, ci.Aliases, tc.aliases)
		}
	}
	// The bundle's second page was exported with sysparm_display_value=false:
	// a reference is then only its sys_id, which ServiceNow accepts as an
	// assignment group.
	if got := impCI(t, doc, id["vm-db-01"]).SupportGroup; got != "bace252a27e637c08e87e79039fe1f6a" {
		t.Errorf("vm-db-01: support group %q, want the group's sys_id", got)
	}
	if got := impCI(t, doc, id["app-01"]).Attributes; got["location"] != "FRA1 Data Centre" || got["sys_class_name"] != "cmdb_ci_linux_server" || got["os_version"] != "9.3" {
		t.Errorf("app-01 attributes %v", got)
	}
	if got := impCI(t, doc, id["Online Orders"]).Attributes["operational_status"]; got != "Operational" {
		t.Errorf("operational_status %q, want the display value", got)
	}
}

func TestServiceNowFieldShapes(t *testing.T) {
	const sys = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, field, want string
	}{
		{"plain string", `"DBA Team"`, "DBA Team"},
		{"display_value=all", `{"display_value": "DBA Team", "link": "https://x/api/now/table/sys_user_group/` + sys + `", "value": "` + sys + `"}`, "DBA Team"},
		{"display_value=true", `{"display_value": "DBA Team", "link": "https://x/api/now/table/sys_user_group/` + sys + `"}`, "DBA Team"},
		{"display_value=false", `{"link": "https://x/api/now/table/sys_user_group/` + sys + `", "value": "` + sys + `"}`, sys},
		{"empty reference", `""`, ""},
		{"null", `null`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"result": [{"sys_id": "a1", "name": "db-01", "sys_class_name": "cmdb_ci_db_mysql_instance", "support_group": ` + tc.field + `}]}`
			doc, err := DecodeServiceNow(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.CIs[0].SupportGroup; got != tc.want {
				t.Errorf("support group %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		field string
		want  int
	}{
		{`"busines_criticality": "1 - most critical"`, 1},
		{`"busines_criticality": {"display_value": "2 - somewhat critical", "value": "2 - somewhat critical"}`, 2},
		{`"business_criticality": "3 - less critical"`, 3},
		{`"business_criticality": {"value": "4 - not critical"}`, 4},
		{`"busines_criticality": "", "business_criticality": "2"`, 2},
		{`"busines_criticality": ""`, 0},
	} {
		in := `{"result": [{"sys_id": "a1", "name": "svc", "sys_class_name": "cmdb_ci_service", ` + tc.field + `}]}`
		doc, err := DecodeServiceNow(strings.NewReader(in))
		if err != nil {
			t.Errorf("%s: %v", tc.field, err)
			continue
		}
		if got := doc.CIs[0].Criticality; got != tc.want {
			t.Errorf("%s: criticality %d, want %d", tc.field, got, tc.want)
		}
	}
}

func TestServiceNowCIType(t *testing.T) {
	for class, want := range map[string]string{
		"cmdb_ci_service":              "service",
		"cmdb_ci_service_discovered":   "service",
		"cmdb_ci_service_auto":         "service",
		"cmdb_ci_business_app":         "application",
		"cmdb_ci_appl":                 "application",
		"cmdb_ci_appl_tomcat":          "application",
		"cmdb_ci_app_server_websphere": "application",
		"cmdb_ci_server":               "host",
		"cmdb_ci_linux_server":         "host",
		"cmdb_ci_win_server":           "host",
		"cmdb_ci_esx_server":           "host",
		"cmdb_ci_computer":             "host",
		"cmdb_ci_vm_instance":          "vm",
		"cmdb_ci_vmware_instance":      "vm",
		"cmdb_ci_db_instance":          "database",
		"cmdb_ci_db_mysql_instance":    "database",
		"cmdb_ci_db_ora_instance":      "database",
		"cmdb_ci_db_mssql_instance":    "database",
		"cmdb_ci_database":             "database",
		"cmdb_ci_ip_switch":            "switch",
		"cmdb_ci_ip_router":            "router",
		"cmdb_ci_ip_firewall":          "firewall",
		"cmdb_ci_lb":                   "load_balancer",
		"cmdb_ci_lb_bigip":             "load_balancer",
		"cmdb_ci_storage_device":       "storage",
		"cmdb_ci_storage_server":       "storage",
		"cmdb_ci_kubernetes_cluster":   "container",
		"cmdb_ci_docker_container":     "container",
		"cmdb_ci_netgear":              "netgear",
		"cmdb_ci":                      "ci",
		"cmdb_ci_":                     "ci",
		"--":                           "ci",
		"CMDB_CI_Linux_Server":         "host",
		"Linux Server":                 "host",
		"MySQL Instance":               "database",
		"Printer":                      "printer",
		"Wireless Access Point":        "wireless_access_point",
	} {
		if got := snCIType(class); got != want {
			t.Errorf("snCIType(%q) = %q, want %q", class, got, want)
		}
	}
}

func TestServiceNowRelTypes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		typ          string
		parentSource bool
		drop         bool
	}{
		{"Depends on::Used by", RelDependsOn, true, false},
		{"Used by::Depends on", RelDependsOn, false, false},
		{"  depends ON :: used   by ", RelDependsOn, true, false},
		{"Uses::Used by", RelDependsOn, true, false},
		{"Runs on::Runs", RelRunsOn, true, false},
		{"Runs::Runs on", RelRunsOn, false, false},
		{"Hosted on::Hosts", RelHostedOn, true, false},
		{"Hosts::Hosted on", RelHostedOn, false, false},
		{"Virtualized by::Virtualizes", RelRunsOn, true, false},
		{"Connected by::Connects", RelConnectedTo, true, false},
		{"Connects to::Connected by", RelConnectedTo, true, false},
		{"Contains::Contained by", RelMemberOf, true, false},
		{"Contained by::Contains", RelMemberOf, false, false},
		{"Members::Member of", RelMemberOf, true, false},
		{"Member of::Members", RelMemberOf, false, false},
		{"Cluster of::Cluster", RelMemberOf, true, false},
		{"Provides::Provided by", RelDependsOn, false, false},
		{"Provided by::Provides", RelDependsOn, true, false},
		{"Sends data to::Receives data from", RelDependsOn, false, false},
		{"Powered by::Powers", RelDependsOn, true, false},
		{"Located in::Houses", RelHostedOn, true, false},
		{"Manages::Managed by", "", false, true},
		{"Managed by::Manages", "", true, true},
		{"Feeds::Fed by", "feeds", true, false},
		{"Implement End Point To::Implement End Point From", "implement_end_point_to", true, false},
		{"Replicates", "replicates", true, false},
	} {
		got := snRelType(tc.name)
		if got.typ != tc.typ || got.drop != tc.drop || !tc.drop && got.parentSource != tc.parentSource {
			t.Errorf("snRelType(%q) = %+v, want type %q parentSource %v drop %v", tc.name, got, tc.typ, tc.parentSource, tc.drop)
		}
	}
}

func TestServiceNowAcceptedInputs(t *testing.T) {
	ci := func(id, name string) string {
		return `{"sys_id": "` + id + `", "name": "` + name + `", "sys_class_name": "cmdb_ci_appl"}`
	}
	rel := `{"sys_id": "r1", "parent": {"value": "a1", "link": "https://x/api/now/table/cmdb_ci/a1"}, "child": "b2", "type": {"display_value": "Depends on::Used by", "value": "t1"}}`
	want := []Relation{{Source: "a1", Target: "b2", Type: RelDependsOn}}
	for name, in := range map[string]string{
		"bundle":                    `{"cmdb_ci": {"result": [` + ci("a1", "api") + `,` + ci("b2", "db") + `]}, "cmdb_rel_ci": {"result": [` + rel + `]}}`,
		"bundle of pages":           `{"cmdb_rel_ci": [{"result": [` + rel + `]}], "cmdb_ci": [{"result": [` + ci("a1", "api") + `]}, {"result": [` + ci("b2", "db") + `]}]}`,
		"stream, relations first":   `{"result": [` + rel + `]}` + "\n" + `{"result": [` + ci("b2", "db") + `,` + ci("a1", "api") + `]}`,
		"one response, mixed":       `{"result": [` + ci("a1", "api") + `,` + rel + `,` + ci("b2", "db") + `]}`,
		"single-record responses":   `{"result": ` + ci("a1", "api") + `} {"result": ` + ci("b2", "db") + `} {"result": ` + rel + `}`,
		"bundle then response":      `{"cmdb_ci": {"result": [` + ci("a1", "api") + `]}}{"result": [` + ci("b2", "db") + `,` + rel + `]}`,
		"references by name (true)": `{"result": [` + ci("a1", "api") + `,` + ci("b2", "db") + `, {"parent": "api", "child": "db", "type": "Depends on::Used by"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := DecodeServiceNow(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			impCheckDocument(t, doc)
			if len(doc.CIs) != 2 || !slices.Equal(doc.Relations, want) {
				t.Errorf("got %+v", doc)
			}
		})
	}
	// An empty table is a valid, empty export.
	doc, err := DecodeServiceNow(strings.NewReader(`{"result": []}`))
	if err != nil || len(doc.CIs) != 0 || len(doc.Relations) != 0 {
		t.Errorf("empty result: %+v, %v", doc, err)
	}
}

func TestServiceNowBadInput(t *testing.T) {
	ok := `{"sys_id": "a1", "name": "api", "sys_class_name": "cmdb_ci_appl"}`
	ok2 := `{"sys_id": "b2", "name": "db", "sys_class_name": "cmdb_ci_database"}`
	for _, tc := range []struct {
		name, in string
		want     []string // substrings of the error, in order
	}{
		{"empty", ``, []string{"servicenow: empty input"}},
		{"malformed JSON", `{"result": [`, []string{"top-level value 0", "malformed JSON", "unexpected EOF"}},
		{"syntax error", `{"result": [}`, []string{"top-level value 0", "malformed JSON", "invalid character"}},
		{"not an object", `[1, 2]`, []string{"top-level value 0", "want an object"}},
		{"unknown bundle key", `{"cmdb_ci": {"result": []}, "cmdb_rel": {"result": []}}`, []string{"top-level value 0", "cmdb_rel: unknown key"}},
		{"extra key next to result", `{"result": [], "count": 3}`, []string{"count: unexpected key"}},
		{"result not an array", `{"result": "x"}`, []string{"result: want an array of records"}},
		{"record not an object", `{"result": [1]}`, []string{"result[0]", "want a record object"}},
		{"bundle member not a response", `{"cmdb_ci": [1]}`, []string{"cmdb_ci[0]", `want a Table API response`}},
		{"bundle member without result", `{"cmdb_ci": {"records": []}}`, []string{"cmdb_ci: result: missing"}},
		{"error response", `{"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}`, []string{"ServiceNow error response", "User Not Authenticated: Required to provide Auth information"}},
		{"missing sys_id", `{"result": [` + ok + `, {"name": "db", "sys_class_name": "cmdb_ci_database"}]}`, []string{"cmdb_ci[1]: sys_id: missing or empty"}},
		{"missing name", `{"result": [{"sys_id": "b2", "name": {"display_value": "", "value": ""}, "sys_class_name": "cmdb_ci_database"}]}`, []string{"cmdb_ci[0] (sys_id b2): name: missing or empty"}},
		{"missing class", `{"result": [{"sys_id": "b2", "name": "db"}]}`, []string{"cmdb_ci[0] (sys_id b2): sys_class_name: missing or empty"}},
		{"array field", `{"result": [{"sys_id": "b2", "name": ["db"], "sys_class_name": "x"}]}`, []string{"cmdb_ci[0] (sys_id b2): name: malformed field"}},
		{"object in value", `{"result": [{"sys_id": "b2", "name": {"value": {"x": 1}}, "sys_class_name": "x"}]}`, []string{"cmdb_ci[0] (sys_id b2): name: malformed field: value:"}},
		{"duplicate sys_id", `{"result": [` + ok + `,` + ok + `]}`, []string{"cmdb_ci[1] (sys_id a1): sys_id: duplicate: cmdb_ci[0]"}},
		{"bad criticality", `{"result": [{"sys_id": "s1", "name": "svc", "sys_class_name": "cmdb_ci_service", "busines_criticality": "high"}]}`, []string{"cmdb_ci[0] (sys_id s1): busines_criticality:", `"high"`}},
		{"criticality out of range", `{"result": [{"sys_id": "s1", "name": "svc", "sys_class_name": "cmdb_ci_service", "business_criticality": "5 - whatever"}]}`, []string{"business_criticality:", "5 - whatever"}},
		{"relation to a missing CI", `{"result": [` + ok + `, {"sys_id": "r1", "parent": "a1", "child": {"value": "c3", "link": "https://x/c3"}, "type": "Depends on::Used by"}]}`, []string{"cmdb_rel_ci[0] (sys_id r1): child: c3 is not among the exported cmdb_ci records"}},
		{"relation from a missing CI", `{"result": [` + ok + `, {"sys_id": "r1", "parent": {"display_value": "ghost", "link": "https://x/api/now/table/cmdb_ci/c3"}, "child": "a1", "type": "Depends on::Used by"}]}`, []string{"cmdb_rel_ci[0] (sys_id r1): parent: c3 is not among"}},
		{"unknown sys_id, known name", `{"result": [` + ok + `,` + ok2 + `, {"sys_id": "r1", "parent": {"display_value": "api", "value": "zz"}, "child": "b2", "type": "Depends on::Used by"}]}`, []string{"cmdb_rel_ci[0] (sys_id r1): parent: zz is not among the exported cmdb_ci records"}},
		{"unknown name", `{"result": [` + ok + `, {"sys_id": "r1", "parent": {"display_value": "ghost"}, "child": "a1", "type": "Depends on::Used by"}]}`, []string{"parent: ghost is neither the sys_id nor the unique name"}},
		{"ambiguous name", `{"result": [` + ok + `, {"sys_id": "a2", "name": "api", "sys_class_name": "cmdb_ci_appl"},` + ok2 + `, {"sys_id": "r1", "parent": "api", "child": "b2", "type": "Depends on::Used by"}]}`, []string{"parent: api is neither the sys_id nor the unique name"}},
		{"relation without parent", `{"cmdb_rel_ci": {"result": [{"sys_id": "r1", "child": "a1", "type": "Depends on::Used by"}]}}`, []string{"cmdb_rel_ci[0] (sys_id r1): parent: missing or empty"}},
		{"relation without type", `{"cmdb_ci": {"result": [` + ok + `,` + ok2 + `]}, "cmdb_rel_ci": {"result": [{"sys_id": "r1", "parent": "a1", "child": "b2"}]}}`, []string{"cmdb_rel_ci[0] (sys_id r1): type: missing or empty"}},
		{"type without display value", `{"result": [` + ok + `,` + ok2 + `, {"sys_id": "r1", "parent": "a1", "child": "b2", "type": {"link": "https://x/cmdb_rel_type/1a9c", "value": "1a9c"}}]}`, []string{"cmdb_rel_ci[0] (sys_id r1): type:", "sysparm_display_value=all"}},
		{"self relation", `{"result": [` + ok + `, {"sys_id": "r1", "parent": "a1", "child": "a1", "type": "Runs on::Runs"}]}`, []string{"cmdb_rel_ci[0] (sys_id r1): child: the relation links a1 to itself"}},
		{"type is punctuation", `{"result": [` + ok + `,` + ok2 + `, {"sys_id": "r1", "parent": "a1", "child": "b2", "type": "::"}]}`, []string{"type:", "not a relationship type name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			impWantError(t, "servicenow", DecodeServiceNow, tc.in, tc.want)
		})
	}
}

// snFuzzSeeds returns the fixtures cut down to a few CIs and the relations
// between them, compact.
func snFuzzSeeds(f *testing.F) [][]byte {
	ref := func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case map[string]any:
			if s, ok := v["value"].(string); ok {
				return s
			}
			l, _ := v["link"].(string)
			return l[strings.LastIndexByte(l, '/')+1:]
		}
		return ""
	}
	keep := map[string]bool{}
	trimCIs := func(page map[string]any, n int) {
		res := page["result"].([]any)[:n]
		for _, r := range res {
			keep[ref(r.(map[string]any)["sys_id"])] = true
		}
		page["result"] = res
	}
	trimRels := func(page map[string]any) {
		var res []any
		for _, r := range page["result"].([]any) {
			m := r.(map[string]any)
			if keep[ref(m["parent"])] && keep[ref(m["child"])] {
				res = append(res, r)
			}
		}
		page["result"] = res
	}
	var bundle map[string]any
	if err := json.Unmarshal(impReadFixture(f, "servicenow/bundle.json"), &bundle); err != nil {
		f.Fatal(err)
	}
	pages := bundle["cmdb_ci"].([]any)
	trimCIs(pages[0].(map[string]any), 8)
	trimCIs(pages[1].(map[string]any), 2)
	trimRels(bundle["cmdb_rel_ci"].(map[string]any))
	seeds := [][]byte{impCompact(f, bundle)}

	clear(keep)
	dec := json.NewDecoder(bytes.NewReader(impReadFixture(f, "servicenow/stream.json")))
	var rels, cis map[string]any
	if err := dec.Decode(&rels); err != nil {
		f.Fatal(err)
	}
	if err := dec.Decode(&cis); err != nil {
		f.Fatal(err)
	}
	trimCIs(cis, 8)
	trimRels(rels)
	return append(seeds, append(append(impCompact(f, rels), '\n'), impCompact(f, cis)...))
}

func FuzzDecodeServiceNow(f *testing.F) {
	for _, seed := range snFuzzSeeds(f) {
		if _, err := DecodeServiceNow(bytes.NewReader(seed)); err != nil {
			f.Fatalf("seed: %v", err)
		}
		f.Add(seed)
	}
	for _, s := range []string{
		``, `{}`, `{"result": []}`, `{"result": {}}`, `[]`, `null`,
		`{"result": [{"sys_id": "a", "name": "a", "sys_class_name": "cmdb_ci_appl"}, {"sys_id": "b", "name": "b", "sys_class_name": "x"}, {"parent": "a", "child": "b", "type": "Runs on::Runs"}]}`,
		`{"cmdb_ci": [{"result": [{"sys_id": {"value": "a"}, "name": {"display_value": "a"}, "sys_class_name": "Linux Server", "busines_criticality": "9"}]}]}`,
		`{"result": [{"parent": {"link": "/"}, "child": {"link": ""}, "type": {"display_value": "::"}}]}`,
	} {
		f.Add([]byte(s))
	}
	impAddFuzzSeeds(f, "servicenow")
	f.Fuzz(func(t *testing.T, data []byte) {
		impFuzzCheck(t, DecodeServiceNow, data)
	})
}
