package main

import (
	"context"
	"time"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/incidents"
)

// incidentFilter selects incidents for the list endpoint. Zero fields do
// not filter.
type incidentFilter struct {
	Status   []incidents.Status
	Priority []incidents.Priority
	Service  string
	CI       string // a member CI or the root cause
	From, To time.Time
	// Limit and Offset page the result (newest first).
	Limit, Offset int
}

// actResult is what an operator action did: the record's new version when
// this instance applied it, else Accepted (the owning instance will).
type actResult struct {
	Incident *incidents.Incident
	Problem  *incidents.Problem
	// Accepted: the command is durable on the keyed topic and will be
	// applied by the instance that owns the record's partition.
	Accepted  bool
	CommandID string
}

// incidentBackend is what the incidents API reads and acts on. The daemon
// implements it over its partitions (stateStage); tests use a fake.
type incidentBackend interface {
	// ListIncidents returns the records passing f, newest first, and the
	// total count before paging.
	ListIncidents(ctx context.Context, f incidentFilter) ([]*incidents.Incident, int, error)
	// GetIncident returns a record with its member events (why each
	// joined); false when unknown.
	GetIncident(ctx context.Context, id string) (*incidents.Incident, []correlate.Member, bool, error)
	ListProblems(ctx context.Context, status []incidents.ProblemStatus) ([]*incidents.Problem, error)
	GetProblem(ctx context.Context, id string) (*incidents.Problem, bool, error)
	// KnownErrors lists the KEDB: the file's entries and those recorded
	// from problems.
	KnownErrors(ctx context.Context) ([]*incidents.KnownError, error)
	// Act applies or routes an operator action. Errors wrap
	// incidents.ErrNotFound, ErrConflict or ErrBadInput.
	Act(ctx context.Context, cmd incidents.Command) (actResult, error)
	// Topology is the current CMDB snapshot (nil without a CMDB), for the
	// subgraph around an incident.
	Topology() *cmdb.Topology
}
