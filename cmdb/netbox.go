package cmdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// NetBoxOptions configures DecodeNetBox. The zero value uses the defaults.
type NetBoxOptions struct {
	// NetworkRoles are the device role slugs of network gear, ordered from
	// the edge of the network to its core. They decide the direction of a
	// data cable (see NetBoxOptions.Decode). Matching is case-insensitive.
	// Empty means:
	//
	//	access-switch, tor, leaf, switch, distribution-switch, spine,
	//	core-switch, firewall, router
	NetworkRoles []string
}

var nbDefaultNetworkRoles = []string{
	"access-switch", "tor", "leaf", "switch", "distribution-switch", "spine",
	"core-switch", "firewall", "router",
}

// DecodeNetBox decodes a NetBox export with the default NetBoxOptions.
func DecodeNetBox(r io.Reader) (*Document, error) {
	return NetBoxOptions{}.Decode(r)
}

// Decode decodes a NetBox (DCIM/IPAM) export, made with its REST API, into a
// Document of the physical and virtual topology, so that a rack power loss or
// a top-of-rack switch failure correlates with what it takes down.
//
// # Accepted input
//
// A bundle, a JSON object with any of these keys:
//
//	{
//	  "devices":          E,  // GET /api/dcim/devices/
//	  "virtual_machines": E,  // GET /api/virtualization/virtual-machines/
//	  "cables":           E,  // GET /api/dcim/cables/
//	  "clusters":         E   // GET /api/virtualization/clusters/ (optional)
//	}
//
// where each E is one page as the API returns it, {"count": N, "next":
// url|null, "previous": url|null, "results": [...]}, or a JSON array of such
// pages (every page of a paged list), or a plain JSON array of records. For
// pages, the records of all pages must add up to "count" and exactly one page
// must have "next": null; otherwise a page is missing and the export is
// rejected. Other keys are an error. Several bundles in one stream are
// merged.
//
// Records use the NetBox 3.x and 4.x shapes: a device's role is "role"
// (4.x) or "device_role" (3.x); a cable's ends are "a_terminations" and
// "b_terminations" (3.3 and later: lists of {"object_type": "dcim.interface",
// "object_id": …, "object": {"device": {"id": …, "name": …}, "name": …}}), or
// "termination_a_type"/"termination_a" and the same for b (before 3.3).
// Status fields may be {"value": …, "label": …} objects or plain strings.
//
// # CIs
//
// A device's CI ID is its name: events name hosts, NetBox names are unique
// per site and in practice across an estate, and a numeric id would be
// meaningless to whoever reads an incident. The numeric id is attribute
// netbox_id; a device without a name gets "netbox-device-<id>". Two devices
// (or a device and a VM) with the same name are an error naming both ids.
//
//	record                   ID                         Type
//	device                   name                       from the role's slug (nbDeviceType):
//	                                                    switch, router, firewall, host, pdu,
//	                                                    storage, load_balancer, else the slug
//	virtual machine          name                       vm
//	cluster                  cluster-<name>             cluster
//	rack (of a device)       rack-<site slug>-<name>    rack
//
// Aliases are the name and the primary IPv4/IPv6 addresses without their
// prefix length ("10.0.0.5/24" → "10.0.0.5") and their DNS names. Attributes
// are netbox_id, site, rack, location, tenant, platform, role, status,
// device_type, serial and cluster where they apply. Racks exist only as
// devices reference them; clusters come from the clusters list, or from a
// reference when the list is not exported.
//
// # Relations (source depends on target)
//
//	device → its rack                    hosted_on     a rack power or cooling loss takes down
//	                                                   everything mounted in it
//	device → PDU, by a power cable       depends_on    the dcim.powerport end depends on the
//	                                                   dcim.poweroutlet end
//	edge device → network device,        connected_to  a server depends on its ToR switch; a
//	by a data cable                                    device that is not network gear depends
//	                                                   on the one that is
//	network → network, by a data cable   connected_to  the role nearer the edge in NetworkRoles
//	                                                   depends on the one nearer the core (ToR on
//	                                                   spine)
//	same rank, by a data cable           connected_to  one relation each way: two devices of one
//	                                                   network role (an MLAG peer link), or two
//	                                                   that are not network gear (servers
//	                                                   cabled back to back)
//	VM → its device, else its cluster    runs_on       a VM dies with its host
//	cluster → each device in it          member_of     a host failure impacts the cluster
//
// Devices of the same rank get two relations, a cycle the core validator
// warns about but accepts, because nothing in the data says which side serves the other: a
// single relation chosen by name or id would make correlation depend on
// naming. Data cables are those between interfaces, front ports and rear
// ports. Console cables (out of band) and ends without a device (circuit
// terminations, power feeds) add no relation, nor does the data cable of a
// PDU (its management port): the PDU keeps delivering power when its switch
// fails, and with the power cables from the switch to the PDU that relation
// would make everything the PDU powers depend on the switch. Planned cables
// are skipped. A cable or VM that names a device not among the exported
// devices is an error naming the cable or VM and the device.
func (o NetBoxOptions) Decode(r io.Reader) (*Document, error) {
	roles := o.NetworkRoles
	if len(roles) == 0 {
		roles = nbDefaultNetworkRoles
	}
	d := nbDecoder{tier: map[string]int{}}
	for i, role := range roles {
		role = strings.ToLower(strings.TrimSpace(role))
		if _, dup := d.tier[role]; !dup {
			d.tier[role] = i
		}
	}
	if err := d.read(r); err != nil {
		return nil, err
	}
	return d.build()
}

// nbEndpoints are the bundle keys, in the order they are built.
var nbEndpoints = []string{"clusters", "devices", "virtual_machines", "cables"}

type nbDecoder struct {
	tier    map[string]int // role slug -> position in NetworkRoles
	records map[string][]json.RawMessage
	pages   map[string][]nbPage
	values  int
}

type nbPage struct {
	where   string
	count   *int
	next    *string
	results int
}

func nbError(record, field, reason string, err error) error {
	return &ImportError{Format: "netbox", Record: record, Field: field, Reason: reason, Err: err}
}

const nbBundleHint = `want a bundle {"devices": ..., "virtual_machines": ..., "cables": ..., "clusters": ...}`

func (d *nbDecoder) read(r io.Reader) error {
	d.records = map[string][]json.RawMessage{}
	d.pages = map[string][]nbPage{}
	ir := &importReader{r: r}
	dec := json.NewDecoder(ir)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if rerr := ir.readError("netbox"); rerr != nil {
			return rerr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		where := fmt.Sprintf("top-level value %d", d.values)
		if err != nil {
			return nbError(where, "", "malformed JSON", err)
		}
		d.values++
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil || top == nil {
			return nbError(where, "", nbBundleHint, nil)
		}
		if _, ok := top["results"]; ok {
			return nbError(where, "", "a single page, not a bundle: "+nbBundleHint+" with this page under its endpoint's key", nil)
		}
		for _, k := range importKeys(top) {
			if !slices.Contains(nbEndpoints, k) {
				return nbError(where, k, "unknown key: "+nbBundleHint, nil)
			}
		}
		for _, ep := range nbEndpoints {
			if v, ok := top[ep]; ok {
				if err := d.readEndpoint(ep, v); err != nil {
					return err
				}
			}
		}
	}
	if d.values == 0 {
		return nbError("", "", "empty input: "+nbBundleHint, nil)
	}
	for _, ep := range nbEndpoints {
		if err := d.checkPages(ep); err != nil {
			return err
		}
	}
	return nil
}

// readEndpoint reads a bundle member: a page, an array of pages, or an array
// of records.
func (d *nbDecoder) readEndpoint(ep string, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nbError(ep, "", "malformed array", err)
		}
		for i, item := range items {
			if nbIsPage(item) {
				if err := d.readPage(ep, fmt.Sprintf("%s page %d", ep, len(d.pages[ep])), item); err != nil {
					return err
				}
				continue
			}
			if len(bytes.TrimSpace(item)) == 0 || bytes.TrimSpace(item)[0] != '{' {
				return nbError(fmt.Sprintf("%s[%d]", ep, i), "", "want a record object or a page {\"count\": ..., \"results\": [...]}", nil)
			}
			d.records[ep] = append(d.records[ep], item)
		}
		return nil
	}
	if !nbIsPage(raw) {
		return nbError(ep, "", `want a page {"count": N, "next": ..., "results": [...]}, an array of pages, or an array of records`, nil)
	}
	return d.readPage(ep, fmt.Sprintf("%s page %d", ep, len(d.pages[ep])), raw)
}

func nbIsPage(raw json.RawMessage) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil {
		return false
	}
	_, ok := probe["results"]
	return ok
}

func (d *nbDecoder) readPage(ep, where string, raw json.RawMessage) error {
	var p struct {
		Count   *int              `json:"count"`
		Next    *string           `json:"next"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nbError(where, "", "malformed page", err)
	}
	for i, rec := range p.Results {
		rec = bytes.TrimSpace(rec)
		if len(rec) == 0 || rec[0] != '{' {
			return nbError(fmt.Sprintf("%s, results[%d]", where, i), "", "want a record object", nil)
		}
		d.records[ep] = append(d.records[ep], rec)
	}
	d.pages[ep] = append(d.pages[ep], nbPage{where: where, count: p.Count, next: p.Next, results: len(p.Results)})
	return nil
}

// checkPages rejects a paged list with a page missing: its records do not
// add up to "count", or not exactly one page is the last.
func (d *nbDecoder) checkPages(ep string) error {
	pages := d.pages[ep]
	if len(pages) == 0 {
		return nil
	}
	total, last := 0, 0
	var lastNext string
	var count *int // the first page's "count"
	var countAt string
	for _, p := range pages {
		total += p.results
		if p.count != nil {
			if count == nil {
				count, countAt = p.count, p.where
			} else if *p.count != *count {
				return nbError(p.where, "count", fmt.Sprintf("%d, but %s says %d: the pages come from different listings", *p.count, countAt, *count), nil)
			}
		}
		if p.next == nil || *p.next == "" {
			last++
		} else {
			lastNext = *p.next
		}
	}
	if count != nil && *count != total {
		return nbError(ep, "count", fmt.Sprintf("the pages say %d records but hold %d: a page is missing or doubled; export every page, following \"next\" until it is null", *count, total), nil)
	}
	if last != 1 {
		if last == 0 {
			return nbError(ep, "next", fmt.Sprintf("no page has \"next\": null, so the list is incomplete; fetch %s and add it", lastNext), nil)
		}
		return nbError(ep, "next", fmt.Sprintf("%d pages have \"next\": null; only the last page of one listing may", last), nil)
	}
	return nil
}

// nbRef is a nested object: site, rack, role, tenant, platform, cluster,
// device, type, group.
type nbRef struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Slug    string `json:"slug"`
	Display string `json:"display"`
	Model   string `json:"model"` // device_type
}

// key is the slug where the object has one, else its name.
func (r *nbRef) key() string {
	if r == nil {
		return ""
	}
	if r.Slug != "" {
		return r.Slug
	}
	return r.Name
}

func (r *nbRef) name() string {
	if r == nil {
		return ""
	}
	return r.Name
}

// nbChoice is a choice field: {"value": "active", "label": "Active"}, or a
// plain string in old versions.
type nbChoice string

func (c *nbChoice) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var v struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		b = v.Value
	}
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else if len(b) > 0 && string(b) != "null" {
		s = string(b)
	}
	*c = nbChoice(s)
	return nil
}

type nbIP struct {
	Address string `json:"address"`
	DNSName string `json:"dns_name"`
}

// host strips the prefix length: "10.0.0.5/24" → "10.0.0.5".
func (ip *nbIP) aliases() []string {
	if ip == nil {
		return nil
	}
	addr, _, _ := strings.Cut(ip.Address, "/")
	return []string{addr, ip.DNSName}
}

type nbDevice struct {
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	Role       *nbRef   `json:"role"`
	DeviceRole *nbRef   `json:"device_role"`
	DeviceType *nbRef   `json:"device_type"`
	Site       *nbRef   `json:"site"`
	Location   *nbRef   `json:"location"`
	Rack       *nbRef   `json:"rack"`
	Tenant     *nbRef   `json:"tenant"`
	Platform   *nbRef   `json:"platform"`
	Cluster    *nbRef   `json:"cluster"`
	Status     nbChoice `json:"status"`
	Serial     string   `json:"serial"`
	PrimaryIP4 *nbIP    `json:"primary_ip4"`
	PrimaryIP6 *nbIP    `json:"primary_ip6"`
}

type nbVM struct {
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	Role       *nbRef   `json:"role"`
	Site       *nbRef   `json:"site"`
	Cluster    *nbRef   `json:"cluster"`
	Device     *nbRef   `json:"device"`
	Tenant     *nbRef   `json:"tenant"`
	Platform   *nbRef   `json:"platform"`
	Status     nbChoice `json:"status"`
	PrimaryIP4 *nbIP    `json:"primary_ip4"`
	PrimaryIP6 *nbIP    `json:"primary_ip6"`
}

type nbCluster struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Type   *nbRef   `json:"type"`
	Group  *nbRef   `json:"group"`
	Status nbChoice `json:"status"`
	Tenant *nbRef   `json:"tenant"`
	Site   *nbRef   `json:"site"`  // before 4.2
	Scope  *nbRef   `json:"scope"` // 4.2 and later
}

// nbTermObject is the object at one end of a cable: an interface, port or
// outlet with its device.
type nbTermObject struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Device *nbRef `json:"device"`
}

type nbTermination struct {
	ObjectType string        `json:"object_type"`
	ObjectID   int64         `json:"object_id"`
	Object     *nbTermObject `json:"object"`
}

type nbCable struct {
	ID            int64           `json:"id"`
	Status        nbChoice        `json:"status"`
	ATerminations []nbTermination `json:"a_terminations"`
	BTerminations []nbTermination `json:"b_terminations"`
	// Before NetBox 3.3.
	TerminationAType string        `json:"termination_a_type"`
	TerminationAID   int64         `json:"termination_a_id"`
	TerminationA     *nbTermObject `json:"termination_a"`
	TerminationBType string        `json:"termination_b_type"`
	TerminationBID   int64         `json:"termination_b_id"`
	TerminationB     *nbTermObject `json:"termination_b"`
}

// nbDeviceType maps a device role slug to a CI type.
func nbDeviceType(slug string) string {
	s := strings.ToLower(slug)
	switch {
	case s == "":
		return "device"
	case slices.Contains([]string{"switch", "tor", "top-of-rack", "leaf", "spine"}, s) || strings.HasSuffix(s, "-switch"):
		return "switch"
	case s == "router" || strings.HasSuffix(s, "-router"):
		return "router"
	case s == "firewall" || strings.HasSuffix(s, "-firewall"):
		return "firewall"
	case slices.Contains([]string{"server", "compute", "host", "hypervisor"}, s) || strings.HasSuffix(s, "-server"):
		return "host"
	case slices.Contains([]string{"pdu", "power"}, s) || strings.HasSuffix(s, "-pdu"):
		return "pdu"
	case s == "storage":
		return "storage"
	case slices.Contains([]string{"load-balancer", "loadbalancer", "lb"}, s):
		return "load_balancer"
	}
	return slug
}

// nbDev is what cables and VMs need to know of a device.
type nbDev struct {
	ci    string
	role  string // lower-case slug
	pdu   bool   // its type is pdu
	where string
}

// nbBuild holds the state of one build.
type nbBuild struct {
	*nbDecoder
	b        *importBuilder
	devices  map[int64]nbDev
	clusters map[int64]string // cluster id -> CI ID
	owner    map[string]string
}

func (d *nbDecoder) build() (*Document, error) {
	s := &nbBuild{
		nbDecoder: d,
		b:         newImportBuilder(),
		devices:   map[int64]nbDev{},
		clusters:  map[int64]string{},
		owner:     map[string]string{},
	}
	steps := []func(int, json.RawMessage) error{s.cluster, s.device, s.vm, s.cable}
	for i, ep := range nbEndpoints {
		for j, raw := range d.records[ep] {
			if err := steps[i](j, raw); err != nil {
				return nil, err
			}
		}
	}
	return s.b.document(), nil
}

// add adds a CI, or reports which record already took its ID.
func (s *nbBuild) add(where string, ci CI) error {
	if !s.b.add(ci) {
		return nbError(where, "name", fmt.Sprintf("CI id %q is taken by %s: NetBox names must be unique across devices and VMs to import", ci.ID, s.owner[ci.ID]), nil)
	}
	s.owner[ci.ID] = where
	return nil
}

func nbLabel(ep string, i int, id int64, name string) string {
	s := fmt.Sprintf("%s[%d] (id %d", ep, i, id)
	if name != "" {
		s += ", " + name
	}
	return s + ")"
}

func nbUnmarshal(where string, raw json.RawMessage, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "another type"
		switch te.Type.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.Struct, reflect.Map, reflect.Pointer:
			want = "an object"
		case reflect.Slice, reflect.Array:
			want = "an array"
		case reflect.Bool:
			want = "true or false"
		}
		return nbError(where, te.Field, fmt.Sprintf("want %s, not a JSON %s", want, te.Value), nil)
	}
	return nbError(where, "", "malformed record", err)
}

// clusterCI returns the CI of a cluster, adding it on first sight. c is the
// cluster's own record, or nil when only a reference to it is known.
func (s *nbBuild) clusterCI(where string, ref *nbRef, c *nbCluster) (string, error) {
	if id, ok := s.clusters[ref.ID]; ok && ref.ID > 0 {
		return id, nil
	}
	name := ref.Name
	if name == "" {
		name = strconv.FormatInt(ref.ID, 10)
	}
	if ref.ID <= 0 && c == nil {
		// A reference without an id (malformed, but harmless): the
		// cluster of that name if there is one.
		if ci := s.b.ci("cluster-" + name); ci != nil && ci.Type == "cluster" {
			return ci.ID, nil
		}
	}
	ci := CI{
		ID:         "cluster-" + name,
		Type:       "cluster",
		Name:       ref.Name,
		Aliases:    []string{ref.Name},
		Attributes: map[string]string{"netbox_id": strconv.FormatInt(ref.ID, 10)},
	}
	if c != nil {
		ci.Attributes["cluster_type"] = c.Type.key()
		ci.Attributes["cluster_group"] = c.Group.key()
		ci.Attributes["status"] = string(c.Status)
		ci.Attributes["tenant"] = c.Tenant.key()
		ci.Attributes["site"] = c.Site.key()
		if ci.Attributes["site"] == "" {
			ci.Attributes["site"] = c.Scope.key()
		}
	}
	if err := s.add(where, ci); err != nil {
		return "", err
	}
	s.clusters[ref.ID] = ci.ID
	return ci.ID, nil
}

func (s *nbBuild) cluster(i int, raw json.RawMessage) error {
	var c nbCluster
	where := fmt.Sprintf("clusters[%d]", i)
	if err := nbUnmarshal(where, raw, &c); err != nil {
		return err
	}
	where = nbLabel("clusters", i, c.ID, c.Name)
	if c.ID <= 0 {
		return nbError(where, "id", "missing or not a positive integer", nil)
	}
	if c.Name == "" {
		return nbError(where, "name", "missing or empty", nil)
	}
	if prev, dup := s.clusters[c.ID]; dup {
		return nbError(where, "id", "duplicate: "+s.owner[prev]+" has the same id", nil)
	}
	_, err := s.clusterCI(where, &nbRef{ID: c.ID, Name: c.Name}, &c)
	return err
}

func (s *nbBuild) device(i int, raw json.RawMessage) error {
	var dv nbDevice
	where := fmt.Sprintf("devices[%d]", i)
	if err := nbUnmarshal(where, raw, &dv); err != nil {
		return err
	}
	where = nbLabel("devices", i, dv.ID, dv.Name)
	if dv.ID <= 0 {
		return nbError(where, "id", "missing or not a positive integer", nil)
	}
	if prev, dup := s.devices[dv.ID]; dup {
		return nbError(where, "id", "duplicate: "+prev.where+" has the same id", nil)
	}
	role := dv.Role
	if role == nil {
		role = dv.DeviceRole
	}
	roleSlug := strings.ToLower(role.key())
	id := dv.Name
	if id == "" {
		id = "netbox-device-" + strconv.FormatInt(dv.ID, 10)
	}
	ci := CI{
		ID:   id,
		Type: nbDeviceType(roleSlug),
		Name: dv.Name,
		Attributes: map[string]string{
			"netbox_id":   strconv.FormatInt(dv.ID, 10),
			"site":        dv.Site.key(),
			"location":    dv.Location.key(),
			"rack":        dv.Rack.name(),
			"tenant":      dv.Tenant.key(),
			"platform":    dv.Platform.key(),
			"role":        roleSlug,
			"status":      string(dv.Status),
			"device_type": dv.DeviceType.key(),
			"serial":      dv.Serial,
			"cluster":     dv.Cluster.name(),
		},
	}
	if dv.DeviceType != nil && dv.DeviceType.Model != "" {
		ci.Attributes["device_type"] = dv.DeviceType.Model
	}
	ci.Aliases = append([]string{dv.Name}, dv.PrimaryIP4.aliases()...)
	ci.Aliases = append(ci.Aliases, dv.PrimaryIP6.aliases()...)
	if err := s.add(where, ci); err != nil {
		return err
	}
	s.devices[dv.ID] = nbDev{ci: id, role: roleSlug, pdu: ci.Type == "pdu", where: where}

	if dv.Rack != nil && dv.Rack.Name != "" {
		rackID := "rack-" + dv.Site.key() + "-" + dv.Rack.Name
		if dv.Site.key() == "" {
			rackID = "rack-" + dv.Rack.Name
		}
		if !s.b.has(rackID) {
			rack := CI{
				ID:   rackID,
				Type: "rack",
				Name: dv.Rack.Name,
				Attributes: map[string]string{
					"netbox_id": strconv.FormatInt(dv.Rack.ID, 10),
					"site":      dv.Site.key(),
				},
			}
			if err := s.add(where+" rack", rack); err != nil {
				return err
			}
		} else if r := s.b.ci(rackID); r.Type != "rack" || r.Attributes["netbox_id"] != strconv.FormatInt(dv.Rack.ID, 10) {
			return nbError(where, "rack", fmt.Sprintf("CI id %q is taken by %s", rackID, s.owner[rackID]), nil)
		}
		s.b.relate(id, rackID, RelHostedOn)
	}
	if dv.Cluster != nil {
		cl, err := s.clusterCI(where+" cluster", dv.Cluster, nil)
		if err != nil {
			return err
		}
		s.b.relate(cl, id, RelMemberOf)
	}
	return nil
}

func (s *nbBuild) vm(i int, raw json.RawMessage) error {
	var vm nbVM
	where := fmt.Sprintf("virtual_machines[%d]", i)
	if err := nbUnmarshal(where, raw, &vm); err != nil {
		return err
	}
	where = nbLabel("virtual_machines", i, vm.ID, vm.Name)
	if vm.ID <= 0 {
		return nbError(where, "id", "missing or not a positive integer", nil)
	}
	if vm.Name == "" {
		return nbError(where, "name", "missing or empty", nil)
	}
	ci := CI{
		ID:   vm.Name,
		Type: "vm",
		Name: vm.Name,
		Attributes: map[string]string{
			"netbox_id": strconv.FormatInt(vm.ID, 10),
			"site":      vm.Site.key(),
			"tenant":    vm.Tenant.key(),
			"platform":  vm.Platform.key(),
			"role":      strings.ToLower(vm.Role.key()),
			"status":    string(vm.Status),
			"cluster":   vm.Cluster.name(),
		},
	}
	ci.Aliases = append([]string{vm.Name}, vm.PrimaryIP4.aliases()...)
	ci.Aliases = append(ci.Aliases, vm.PrimaryIP6.aliases()...)
	if err := s.add(where, ci); err != nil {
		return err
	}
	switch {
	case vm.Device != nil:
		host, ok := s.devices[vm.Device.ID]
		if !ok {
			return nbError(where, "device", fmt.Sprintf("device %d (%s) is not among the exported devices", vm.Device.ID, vm.Device.Name), nil)
		}
		s.b.relate(ci.ID, host.ci, RelRunsOn)
	case vm.Cluster != nil:
		cl, err := s.clusterCI(where+" cluster", vm.Cluster, nil)
		if err != nil {
			return err
		}
		s.b.relate(ci.ID, cl, RelRunsOn)
	}
	return nil
}

// nbEnd is one end of a cable that has a device.
type nbEnd struct {
	dev  nbDev
	kind string // "data", "powerport", "poweroutlet"
}

// nbTermKind classifies a termination's object type; "" means it adds no
// relation.
func nbTermKind(objectType string) string {
	switch strings.ToLower(objectType) {
	case "dcim.powerport":
		return "powerport"
	case "dcim.poweroutlet":
		return "poweroutlet"
	case "dcim.consoleport", "dcim.consoleserverport", "dcim.powerfeed", "circuits.circuittermination":
		return ""
	}
	return "data"
}

func (s *nbBuild) ends(where, field string, terms []nbTermination) ([]nbEnd, error) {
	var out []nbEnd
	for i, t := range terms {
		f := fmt.Sprintf("%s[%d]", field, i)
		kind := nbTermKind(t.ObjectType)
		if t.ObjectType == "" {
			return nil, nbError(where, f+".object_type", "missing or empty", nil)
		}
		if kind == "" {
			continue
		}
		if t.Object == nil {
			return nil, nbError(where, f+".object", "missing: export cables through the REST API, which nests each termination's object and its device", nil)
		}
		if t.Object.Device == nil {
			continue
		}
		dev, ok := s.devices[t.Object.Device.ID]
		if !ok {
			return nil, nbError(where, f+".object.device", fmt.Sprintf("device %d (%s) is not among the exported devices", t.Object.Device.ID, t.Object.Device.Name), nil)
		}
		out = append(out, nbEnd{dev: dev, kind: kind})
	}
	return out, nil
}

func (s *nbBuild) cable(i int, raw json.RawMessage) error {
	var c nbCable
	where := fmt.Sprintf("cables[%d]", i)
	if err := nbUnmarshal(where, raw, &c); err != nil {
		return err
	}
	where = nbLabel("cables", i, c.ID, "")
	if c.ID <= 0 {
		return nbError(where, "id", "missing or not a positive integer", nil)
	}
	if c.Status == "planned" {
		return nil
	}
	aTerms, bTerms := c.ATerminations, c.BTerminations
	aField, bField := "a_terminations", "b_terminations"
	if len(aTerms) == 0 && len(bTerms) == 0 && (c.TerminationAType != "" || c.TerminationBType != "") {
		aTerms = []nbTermination{{ObjectType: c.TerminationAType, ObjectID: c.TerminationAID, Object: c.TerminationA}}
		bTerms = []nbTermination{{ObjectType: c.TerminationBType, ObjectID: c.TerminationBID, Object: c.TerminationB}}
		aField, bField = "termination_a", "termination_b"
	}
	as, err := s.ends(where, aField, aTerms)
	if err != nil {
		return err
	}
	bs, err := s.ends(where, bField, bTerms)
	if err != nil {
		return err
	}
	for _, a := range as {
		for _, b := range bs {
			if a.dev.ci != b.dev.ci {
				s.link(a, b)
			}
		}
	}
	return nil
}

// link adds the relations of one cable between two devices; see Decode.
func (s *nbBuild) link(a, b nbEnd) {
	switch {
	case a.kind == "powerport" && b.kind == "poweroutlet":
		s.b.relate(a.dev.ci, b.dev.ci, RelDependsOn)
		return
	case a.kind == "poweroutlet" && b.kind == "powerport":
		s.b.relate(b.dev.ci, a.dev.ci, RelDependsOn)
		return
	case a.kind != "data" || b.kind != "data":
		return // power to data, outlet to outlet: not a dependency
	}
	at, aNet := s.tier[a.dev.role]
	bt, bNet := s.tier[b.dev.role]
	data := func(source, target nbDev) {
		// A PDU's data port is its management port: the PDU keeps
		// delivering power when the switch fails, and the relation would
		// make everything it powers depend on that switch.
		if !source.pdu {
			s.b.relate(source.ci, target.ci, RelConnectedTo)
		}
	}
	switch {
	case aNet && !bNet || aNet && bNet && at > bt:
		data(b.dev, a.dev)
	case bNet && !aNet || aNet && bNet && at < bt:
		data(a.dev, b.dev)
	default:
		data(a.dev, b.dev)
		data(b.dev, a.dev)
	}
}
