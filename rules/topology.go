package rules

import "github.com/correlatord/correlatord/cmdb"

// Topology is what the rules stage needs from the CMDB. Implementations are
// immutable snapshots, safe for concurrent use; cmd adapts the cmdb
// package's topology to it. Both methods are called on the hot path and
// must not allocate.
type Topology interface {
	// CI returns the configuration item with this id.
	CI(id string) (*cmdb.CI, bool)
	// DependsOn reports whether dependent depends on dependency,
	// transitively, within maxHops relations.
	DependsOn(dependent, dependency string, maxHops int) bool
}
