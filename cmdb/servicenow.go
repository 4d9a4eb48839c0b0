package cmdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DecodeServiceNow decodes a ServiceNow CMDB export made with the Table API
// (GET /api/now/table/cmdb_ci and GET /api/now/table/cmdb_rel_ci) into a
// Document.
//
// # Accepted input
//
// The input is a stream of one or more JSON values (concatenated or
// separated by white space), each of which is either:
//
//   - a Table API response, {"result": [record, ...]} (or {"result": record}
//     as a single-record GET returns it). Records that have the fields
//     parent, child and type are cmdb_rel_ci records; all others are cmdb_ci
//     records. So `curl …/cmdb_ci; curl …/cmdb_rel_ci` concatenated, and any
//     number of pages fetched with sysparm_offset, can be fed as they are;
//   - a bundle naming the tables, {"cmdb_ci": R, "cmdb_rel_ci": R}, where
//     each R is a Table API response or a JSON array of them (one per page).
//     Either key may be missing.
//
// Any other top-level key is an error, so that a misspelt table name is not
// silently ignored. A ServiceNow error response ({"error": {...},
// "status": "failure"}) is reported as an error with its message.
//
// Every field may come in any of the shapes the Table API produces with
// sysparm_display_value=false (the default), true or all: a plain string, or
// an object {"value": …, "display_value": …, "link": …} with any of those
// members. Identifiers (sys_id, sys_class_name, references to CIs) prefer
// "value"; text meant for people (support group, location, status) prefers
// "display_value". Exporting with sysparm_display_value=all gives both and is
// recommended; with sysparm_display_value=true the relation endpoints are
// resolved from the sys_id at the end of their "link", or, when a reference
// is a bare string or a display value alone, as the sys_id or else the name
// of a CI (if no other CI has that name).
//
// # CIs
//
//	sys_id                       → ID (required, unique)
//	name                         → Name and an alias (required)
//	sys_class_name               → Type (required; see snCIType), and attribute sys_class_name
//	fqdn, host_name, ip_address  → aliases; host_name.dns_domain too when fqdn is empty
//	support_group                → SupportGroup; assignment_group when support_group is empty.
//	                               The display value is preferred; without one the group's
//	                               sys_id is used, which ServiceNow accepts for assignment
//	busines_criticality,         → Criticality, from the leading digit of
//	business_criticality           "1 - most critical" … "4 - not critical"
//	                               (cmdb_ci_service spells the field with one "s")
//	location, environment, operational_status, install_status, used_for,
//	company, department, category, os, os_version, model_id, serial_number
//	                             → attributes of the same name
//
// # Relations
//
// A cmdb_rel_ci record reads "parent <parent descriptor> child", so for
// "Depends on::Used by" the parent depends on the child. The table below maps
// each well-known relationship type onto "source depends on target"; a type
// given with its descriptors swapped ("Used by::Depends on") maps to the same
// row with the direction flipped.
//
//	type (parent::child)                     Type          source   why
//	Depends on::Used by                      depends_on    parent   the definition of the type
//	Uses::Used by, Uses::Is used by          depends_on    parent   same meaning
//	Consumes::Consumed by                    depends_on    parent   CSDM: an app consumes a service
//	Receives data from::Sends data to        depends_on    parent   no data when the sender fails
//	Sends data to::Receives data from        depends_on    child    the receiver needs the sender
//	Provides::Provided by                    depends_on    child    what is provided fails with its provider
//	Powered by::Powers                       depends_on    parent   power loss takes the parent down
//	Stored on::Stores                        depends_on    parent   storage loss takes the parent down
//	Runs on::Runs, Runs on::Hosts            runs_on       parent   software dies with its host
//	Virtualized by::Virtualizes              runs_on       parent   a VM dies with its hypervisor
//	Hosted on::Hosts                         hosted_on     parent   the hosted dies with its host
//	Located in::Houses                       hosted_on     parent   a device dies with its rack or room
//	Connected by::Connects                   connected_to  parent   the parent's link goes through the child
//	Connects to::Connected by                connected_to  parent   workstation to switch, switch to switch
//	IP Connection::IP Connection,            connected_to  parent   symmetric; kept as exported
//	Exchanges data with::Exchanges data with
//	Contains::Contained by                   member_of     parent   a service is impacted when a component it
//	                                                                contains fails
//	Members::Member of                       member_of     parent   a group (cluster, pool) is impacted when
//	                                                                a member fails
//	Cluster of::Cluster,                     member_of     parent   the parent is the cluster, the child a node
//	Cluster of::Cluster member
//	Manages::Managed by, Owns::Owned by,     (dropped)              administrative, not a failure dependency:
//	Backed up by::Backs up                                          vCenter failing does not stop its hosts
//
// Any other type keeps the exported direction, parent depends on child, with
// the parent descriptor in snake case as its Type ("Feeds::Fed by" becomes
// "feeds"). Relations whose parent or child is not among the exported CIs are
// an error naming the relation and the missing sys_id, as are relations of a
// CI to itself. Identical relations collapse into one.
func DecodeServiceNow(r io.Reader) (*Document, error) {
	var d snDecoder
	if err := d.read(r); err != nil {
		return nil, err
	}
	return d.build()
}

// snRecord is one Table API record, its fields still raw.
type snRecord struct {
	table  string // "cmdb_ci" or "cmdb_rel_ci"
	index  int    // position among the records of its table, from 0
	fields map[string]json.RawMessage
}

// snDecoder collects the records of an export before building the Document:
// relations may come before the CIs they reference.
type snDecoder struct {
	cis, rels []snRecord
	values    int
}

const (
	snTableCI  = "cmdb_ci"
	snTableRel = "cmdb_rel_ci"
)

func snError(record, field, reason string, err error) error {
	return &ImportError{Format: "servicenow", Record: record, Field: field, Reason: reason, Err: err}
}

func (d *snDecoder) read(r io.Reader) error {
	ir := &importReader{r: r}
	dec := json.NewDecoder(ir)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if rerr := ir.readError("servicenow"); rerr != nil {
			return rerr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		where := fmt.Sprintf("top-level value %d", d.values)
		if err != nil {
			return snError(where, "", "malformed JSON", err)
		}
		d.values++
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil || top == nil {
			return snError(where, "", `want an object: a Table API response {"result": [...]} or a bundle {"cmdb_ci": ..., "cmdb_rel_ci": ...}`, nil)
		}
		if err := d.readTop(where, top); err != nil {
			return err
		}
	}
	if d.values == 0 {
		return snError("", "", `empty input: want a Table API response {"result": [...]} or a bundle {"cmdb_ci": ..., "cmdb_rel_ci": ...}`, nil)
	}
	return nil
}

func (d *snDecoder) readTop(where string, top map[string]json.RawMessage) error {
	if raw, ok := top["error"]; ok {
		var e struct {
			Message string `json:"message"`
			Detail  string `json:"detail"`
		}
		_ = json.Unmarshal(raw, &e)
		msg := strings.TrimSpace(e.Message + ": " + e.Detail)
		return snError(where, "", "the export is a ServiceNow error response, not data: "+strings.Trim(msg, ": "), nil)
	}
	if _, ok := top["result"]; ok {
		for _, k := range importKeys(top) {
			if k != "result" {
				return snError(where, k, `unexpected key next to "result"`, nil)
			}
		}
		return d.readPage(where, "", top["result"])
	}
	if len(top) == 0 {
		return snError(where, "", `empty object: want {"result": [...]} or {"cmdb_ci": ..., "cmdb_rel_ci": ...}`, nil)
	}
	// A bundle. Read the keys in a fixed order so that record indexes, and
	// so error messages, do not depend on map iteration.
	for _, k := range importKeys(top) {
		if k != snTableCI && k != snTableRel {
			return snError(where, k, `unknown key: a bundle has only "cmdb_ci" and "cmdb_rel_ci" (or use a Table API response {"result": [...]})`, nil)
		}
	}
	for _, table := range []string{snTableCI, snTableRel} {
		raw, ok := top[table]
		if !ok {
			continue
		}
		if err := d.readTable(where+": "+table, table, raw); err != nil {
			return err
		}
	}
	return nil
}

// readTable reads a bundle member: one Table API response or an array of
// them.
func (d *snDecoder) readTable(where, table string, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var pages []json.RawMessage
		if err := json.Unmarshal(raw, &pages); err != nil {
			return snError(where, "", "malformed array of pages", err)
		}
		for i, p := range pages {
			if err := d.readResponse(fmt.Sprintf("%s[%d]", where, i), table, p); err != nil {
				return err
			}
		}
		return nil
	}
	return d.readResponse(where, table, raw)
}

func (d *snDecoder) readResponse(where, table string, raw json.RawMessage) error {
	var page map[string]json.RawMessage
	if err := json.Unmarshal(raw, &page); err != nil || page == nil {
		return snError(where, "", `want a Table API response {"result": [...]}`, nil)
	}
	res, ok := page["result"]
	if !ok {
		return snError(where, "result", `missing: want a Table API response {"result": [...]}`, nil)
	}
	for _, k := range importKeys(page) {
		if k != "result" {
			return snError(where, k, `unexpected key next to "result"`, nil)
		}
	}
	return d.readPage(where, table, res)
}

// readPage reads the value of "result": an array of records, or one record.
// An empty table means the records are told apart by their fields.
func (d *snDecoder) readPage(where, table string, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	var records []json.RawMessage
	switch {
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &records); err != nil {
			return snError(where, "result", "malformed array of records", err)
		}
	case len(raw) > 0 && raw[0] == '{':
		records = []json.RawMessage{raw}
	default:
		return snError(where, "result", "want an array of records", nil)
	}
	for i, rec := range records {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rec, &fields); err != nil || fields == nil {
			return snError(fmt.Sprintf("%s: result[%d]", where, i), "", "want a record object", nil)
		}
		t := table
		if t == "" {
			t = snTableCI
			_, p := fields["parent"]
			_, c := fields["child"]
			_, ty := fields["type"]
			if p && c && ty {
				t = snTableRel
			}
		}
		if t == snTableRel {
			d.rels = append(d.rels, snRecord{table: t, index: len(d.rels), fields: fields})
		} else {
			d.cis = append(d.cis, snRecord{table: t, index: len(d.cis), fields: fields})
		}
	}
	return nil
}

// snField is one field value in any of the Table API's shapes.
type snField struct {
	Value, Display, Link string
	// Plain is set when the field was a bare string rather than an object:
	// a stored value, or a display value with sysparm_display_value=true.
	Plain bool
}

// id prefers the stored value: sys_ids, class names, choice values.
func (f snField) id() string {
	if f.Value != "" {
		return f.Value
	}
	return f.Display
}

// text prefers the display value: names of groups, locations, choice labels.
func (f snField) text() string {
	if f.Display != "" {
		return f.Display
	}
	return f.Value
}

// refSysID is the sys_id a reference field points at: its value, or the last
// path element of its link.
func (f snField) refSysID() string {
	if f.Value != "" {
		return f.Value
	}
	if f.Link != "" {
		link := strings.TrimRight(f.Link, "/")
		return link[strings.LastIndexByte(link, '/')+1:]
	}
	return ""
}

func (rec *snRecord) label() string {
	s := fmt.Sprintf("%s[%d]", rec.table, rec.index)
	if f, err := rec.field("sys_id"); err == nil && f.id() != "" {
		s += " (sys_id " + f.id() + ")"
	}
	return s
}

// field parses the named field; a missing field is the zero snField.
func (rec *snRecord) field(name string) (snField, error) {
	raw, ok := rec.fields[name]
	if !ok {
		return snField{}, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return snField{}, err
		}
		var f snField
		var err error
		if f.Value, err = snScalar(obj["value"]); err != nil {
			return snField{}, fmt.Errorf("value: %w", err)
		}
		if f.Display, err = snScalar(obj["display_value"]); err != nil {
			return snField{}, fmt.Errorf("display_value: %w", err)
		}
		if f.Link, err = snScalar(obj["link"]); err != nil {
			return snField{}, fmt.Errorf("link: %w", err)
		}
		return f, nil
	}
	v, err := snScalar(raw)
	return snField{Value: v, Plain: true}, err
}

// snScalar returns a JSON scalar as text: strings unquoted, numbers and
// booleans as written, null and absence as "".
func snScalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return strings.TrimSpace(s), nil
	case '{', '[':
		return "", errors.New(`want a string or a {"value": …, "display_value": …} object`)
	case 'n':
		return "", nil
	}
	return string(raw), nil
}

// must returns a field that has to be present and non-empty.
func (rec *snRecord) must(name string, pick func(snField) string) (string, error) {
	f, err := rec.field(name)
	if err != nil {
		return "", snError(rec.label(), name, "malformed field", err)
	}
	if v := pick(f); v != "" {
		return v, nil
	}
	return "", snError(rec.label(), name, "missing or empty", nil)
}

// get returns an optional field.
func (rec *snRecord) get(name string, pick func(snField) string) (string, error) {
	f, err := rec.field(name)
	if err != nil {
		return "", snError(rec.label(), name, "malformed field", err)
	}
	return pick(f), nil
}

// snAttributes are the cmdb_ci fields copied into attributes, by display
// value.
var snAttributes = []string{
	"location", "environment", "operational_status", "install_status", "used_for",
	"company", "department", "category", "os", "os_version", "model_id", "serial_number",
}

func (d *snDecoder) build() (*Document, error) {
	b := newImportBuilder()
	first := map[string]int{}     // sys_id -> index of the record that defined it
	byName := map[string]string{} // name -> sys_id, "" when ambiguous
	for i := range d.cis {
		rec := &d.cis[i]
		ci, err := rec.ci()
		if err != nil {
			return nil, err
		}
		if !b.add(ci) {
			return nil, snError(rec.label(), "sys_id", fmt.Sprintf("duplicate: cmdb_ci[%d] has the same sys_id", first[ci.ID]), nil)
		}
		first[ci.ID] = rec.index
		if _, seen := byName[ci.Name]; seen {
			byName[ci.Name] = ""
		} else {
			byName[ci.Name] = ci.ID
		}
	}
	for i := range d.rels {
		rec := &d.rels[i]
		if err := rec.relate(b, byName); err != nil {
			return nil, err
		}
	}
	return b.document(), nil
}

func (rec *snRecord) ci() (CI, error) {
	var ci CI
	var err error
	if ci.ID, err = rec.must("sys_id", snField.id); err != nil {
		return ci, err
	}
	if ci.Name, err = rec.must("name", snField.id); err != nil {
		return ci, err
	}
	class, err := rec.must("sys_class_name", snField.id)
	if err != nil {
		return ci, err
	}
	ci.Type = snCIType(class)
	ci.Attributes = map[string]string{"sys_class_name": class}
	for _, name := range snAttributes {
		if ci.Attributes[name], err = rec.get(name, snField.text); err != nil {
			return ci, err
		}
	}
	for _, name := range []string{"support_group", "assignment_group"} {
		if ci.SupportGroup, err = rec.get(name, snField.text); err != nil {
			return ci, err
		}
		if ci.SupportGroup != "" {
			break
		}
	}
	for _, name := range []string{"busines_criticality", "business_criticality"} {
		v, err := rec.get(name, snField.id)
		if err != nil {
			return ci, err
		}
		if v == "" {
			continue
		}
		if ci.Criticality, err = snCriticality(v); err != nil {
			return ci, snError(rec.label(), name, err.Error(), nil)
		}
		break
	}
	ci.Aliases = []string{ci.Name}
	var host, domain, fqdn, ip string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"host_name", &host}, {"dns_domain", &domain}, {"fqdn", &fqdn}, {"ip_address", &ip}} {
		if *f.dst, err = rec.get(f.name, snField.id); err != nil {
			return ci, err
		}
	}
	if fqdn == "" && host != "" && domain != "" && !strings.Contains(host, ".") {
		fqdn = host + "." + domain
	}
	ci.Aliases = append(ci.Aliases, host, fqdn, ip)
	return ci, nil
}

// snCriticality parses "1 - most critical" … "4 - not critical" (or a bare
// digit) by its leading number.
func snCriticality(s string) (int, error) {
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil || n < MostCritical || n > LeastCritical {
		return 0, fmt.Errorf(`%q: want "1 - most critical", "2 - somewhat critical", "3 - less critical" or "4 - not critical"`, s)
	}
	return n, nil
}

// snClassLabels maps the labels sysparm_display_value=true puts in
// sys_class_name back to a CI type.
var snClassLabels = map[string]string{
	"business service":                "service",
	"service":                         "service",
	"application service":             "service",
	"mapped application service":      "service",
	"technical service":               "service",
	"business application":            "application",
	"application":                     "application",
	"server":                          "host",
	"linux server":                    "host",
	"windows server":                  "host",
	"unix server":                     "host",
	"esx server":                      "host",
	"virtual machine instance":        "vm",
	"vmware virtual machine instance": "vm",
	"database instance":               "database",
	"mysql instance":                  "database",
	"oracle instance":                 "database",
	"mssql instance":                  "database",
	"postgresql instance":             "database",
	"ip switch":                       "switch",
	"ip router":                       "router",
	"ip firewall":                     "firewall",
	"load balancer":                   "load_balancer",
	"storage device":                  "storage",
	"storage server":                  "storage",
	"kubernetes cluster":              "container",
	"docker container":                "container",
}

// snCIType maps a ServiceNow class to a CI type:
//
//	cmdb_ci_service*  (business, application and technical services)  service
//	cmdb_ci_business_app                                                application
//	cmdb_ci_appl*, cmdb_ci_app_server*                                  application
//	cmdb_ci_db_*, cmdb_ci_database                                      database
//	cmdb_ci_vm_instance, cmdb_ci_vmware_instance, cmdb_ci_vm*,
//	cmdb_ci_ec2_instance                                                vm
//	cmdb_ci_kubernetes*, cmdb_ci_docker*, cmdb_ci_container*            container
//	cmdb_ci_ip_switch                                                   switch
//	cmdb_ci_ip_router                                                   router
//	cmdb_ci_ip_firewall                                                 firewall
//	cmdb_ci_lb*                                                         load_balancer
//	cmdb_ci_storage*                                                    storage
//	cmdb_ci_server, cmdb_ci_*_server (linux, win, unix, esx…),
//	cmdb_ci_computer                                                    host
//	anything else: the class without its cmdb_ci_ prefix, "cmdb_ci" itself is "ci"
//
// Application services (cmdb_ci_service_discovered, _auto, _calculated) are
// services: they are what ServiceNow's own service maps compute impact on,
// and what an incident's impact should name. A business application
// (cmdb_ci_business_app) is a portfolio record for a piece of software, so it
// is an application. A class given as its label (sysparm_display_value=true)
// is looked up in snClassLabels, else snake-cased.
func snCIType(class string) string {
	if t := snClassType(class); t != "" {
		return t
	}
	return "ci" // "cmdb_ci_", or a label without letters or digits
}

func snClassType(class string) string {
	c := strings.ToLower(strings.TrimSpace(class))
	rest, ok := strings.CutPrefix(c, "cmdb_ci_")
	if !ok {
		if c == "cmdb_ci" {
			return "ci"
		}
		if t, ok := snClassLabels[c]; ok {
			return t
		}
		return importSnake(c)
	}
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(rest, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("service"):
		return "service"
	case rest == "business_app":
		return "application"
	case has("appl", "app_server"):
		return "application"
	case has("db_") || rest == "database":
		return "database"
	case has("vm", "vmware_instance", "ec2_instance"):
		return "vm"
	case has("kubernetes", "docker", "container"):
		return "container"
	case rest == "ip_switch":
		return "switch"
	case rest == "ip_router":
		return "router"
	case rest == "ip_firewall":
		return "firewall"
	case has("lb"):
		return "load_balancer"
	case has("storage"):
		return "storage"
	case rest == "server" || rest == "computer" || strings.HasSuffix(rest, "_server"):
		return "host"
	}
	return rest
}

// snRelKind is how a relationship type maps onto "source depends on target".
type snRelKind struct {
	typ          string
	parentSource bool // the parent is the source (depends on the child)
	drop         bool // not a failure dependency
}

// snRelTypes is the table in DecodeServiceNow's comment, keyed by the
// normalised type name.
var snRelTypes = map[string]snRelKind{
	"depends on::used by":                      {RelDependsOn, true, false},
	"uses::used by":                            {RelDependsOn, true, false},
	"uses::is used by":                         {RelDependsOn, true, false},
	"consumes::consumed by":                    {RelDependsOn, true, false},
	"receives data from::sends data to":        {RelDependsOn, true, false},
	"sends data to::receives data from":        {RelDependsOn, false, false},
	"provides::provided by":                    {RelDependsOn, false, false},
	"powered by::powers":                       {RelDependsOn, true, false},
	"stored on::stores":                        {RelDependsOn, true, false},
	"runs on::runs":                            {RelRunsOn, true, false},
	"runs on::hosts":                           {RelRunsOn, true, false},
	"virtualized by::virtualizes":              {RelRunsOn, true, false},
	"hosted on::hosts":                         {RelHostedOn, true, false},
	"located in::houses":                       {RelHostedOn, true, false},
	"connected by::connects":                   {RelConnectedTo, true, false},
	"connects to::connected by":                {RelConnectedTo, true, false},
	"ip connection::ip connection":             {RelConnectedTo, true, false},
	"exchanges data with::exchanges data with": {RelConnectedTo, true, false},
	"contains::contained by":                   {RelMemberOf, true, false},
	"members::member of":                       {RelMemberOf, true, false},
	"cluster of::cluster":                      {RelMemberOf, true, false},
	"cluster of::cluster member":               {RelMemberOf, true, false},
	"manages::managed by":                      {drop: true},
	"owns::owned by":                           {drop: true},
	"backed up by::backs up":                   {drop: true},
}

// snRelType maps a relationship type name such as "Depends on::Used by".
func snRelType(name string) snRelKind {
	parent, child, _ := strings.Cut(name, "::")
	parent = strings.Join(strings.Fields(strings.ToLower(parent)), " ")
	child = strings.Join(strings.Fields(strings.ToLower(child)), " ")
	if k, ok := snRelTypes[parent+"::"+child]; ok {
		return k
	}
	if k, ok := snRelTypes[child+"::"+parent]; ok {
		k.parentSource = !k.parentSource
		return k
	}
	typ := importSnake(parent)
	if typ == "" {
		typ = importSnake(child)
	}
	return snRelKind{typ: typ, parentSource: true}
}

func (rec *snRecord) relate(b *importBuilder, byName map[string]string) error {
	typeField, err := rec.field("type")
	if err != nil {
		return snError(rec.label(), "type", "malformed field", err)
	}
	typeName := typeField.Display
	if typeName == "" && strings.Contains(typeField.Value, "::") {
		typeName = typeField.Value
	}
	if typeName == "" {
		if typeField.Value == "" && typeField.Link == "" {
			return snError(rec.label(), "type", "missing or empty", nil)
		}
		return snError(rec.label(), "type", fmt.Sprintf(`reference %q has no display value: export cmdb_rel_ci with sysparm_display_value=all so that the type's name (such as "Depends on::Used by") is included`, typeField.id()), nil)
	}
	kind := snRelType(typeName)
	if kind.typ == "" && !kind.drop {
		return snError(rec.label(), "type", fmt.Sprintf("%q is not a relationship type name", typeName), nil)
	}
	var ends [2]string
	for i, name := range []string{"parent", "child"} {
		f, err := rec.field(name)
		if err != nil {
			return snError(rec.label(), name, "malformed field", err)
		}
		id := f.refSysID()
		switch {
		case b.has(id):
		case f.Value == "" && f.Display == "" && f.Link == "":
			return snError(rec.label(), name, "missing or empty", nil)
		case id != "" && !f.Plain:
			return snError(rec.label(), name, fmt.Sprintf("%s is not among the exported cmdb_ci records", id), nil)
		default:
			// A bare string or a display value alone, as with
			// sysparm_display_value=true and
			// sysparm_exclude_reference_link=true: the CI's name, if
			// unique.
			ref := f.text()
			if id = byName[ref]; id == "" {
				return snError(rec.label(), name, fmt.Sprintf("%s is neither the sys_id nor the unique name of an exported cmdb_ci record", ref), nil)
			}
		}
		ends[i] = id
	}
	if ends[0] == ends[1] {
		return snError(rec.label(), "child", fmt.Sprintf("the relation links %s to itself", ends[0]), nil)
	}
	if kind.drop {
		return nil
	}
	if kind.parentSource {
		b.relate(ends[0], ends[1], kind.typ)
	} else {
		b.relate(ends[1], ends[0], kind.typ)
	}
	return nil
}
