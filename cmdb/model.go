package cmdb

// Relation types with a fixed meaning. Any other non-empty string is allowed
// and read the same way: source depends on target.
const (
	RelDependsOn   = "depends_on"
	RelRunsOn      = "runs_on"
	RelHostedOn    = "hosted_on"
	RelConnectedTo = "connected_to"
	RelMemberOf    = "member_of"
)

// CI types with a meaning to the daemon. Type is free text; these are the
// ones other packages look for.
const (
	TypeService = "service" // a business service: the top of dependency chains
)

// Criticality bounds: 1 is the most critical, 4 the least; 0 in input means
// DefaultCriticality.
const (
	MostCritical       = 1
	LeastCritical      = 4
	DefaultCriticality = 3
)

// CI is a configuration item.
type CI struct {
	// ID is unique across the CMDB.
	ID string `json:"id" yaml:"id"`
	// Type is free text: service, application, host, vm, container,
	// database, switch, router, firewall, load_balancer, storage, site, ...
	Type string `json:"type" yaml:"type"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Criticality is 1 (highest) to 4; it feeds incident impact.
	Criticality int `json:"criticality,omitempty" yaml:"criticality,omitempty"`
	// SupportGroup receives the incidents whose root cause is this CI.
	SupportGroup string `json:"support_group,omitempty" yaml:"support_group,omitempty"`
	// Aliases are other names events use for this CI: hostnames, FQDNs, IP
	// addresses, instance names.
	Aliases []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	// Attributes are free key/values such as site, env, cluster.
	Attributes map[string]string `json:"attributes,omitempty" yaml:"attributes,omitempty"`
}

// Relation says that Source depends on Target.
type Relation struct {
	Source string `json:"source" yaml:"source"`
	Target string `json:"target" yaml:"target"`
	Type   string `json:"type" yaml:"type"`
}

// Document is the native CMDB format (YAML or JSON), and what every importer
// produces.
type Document struct {
	CIs       []CI       `json:"cis" yaml:"cis"`
	Relations []Relation `json:"relations" yaml:"relations"`
}
