package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/incidents"
)

// replayIncident is one line of replay's --out: the contract other tools
// (the evaluation, dashboards' fixtures) rely on. Status is the
// correlator's (open or resolved); the incident record's lifecycle status
// is record_status.
type replayIncident struct {
	ID                  string           `json:"id"`
	Title               string           `json:"title"`
	Status              string           `json:"status"`
	Priority            string           `json:"priority"`
	Impact              int              `json:"impact"`
	Urgency             int              `json:"urgency"`
	Category            string           `json:"category"`
	RecordStatus        string           `json:"record_status"`
	SupportGroup        string           `json:"support_group,omitempty"`
	EscalationLevel     int              `json:"escalation_level"`
	SLABreaches         []string         `json:"sla_breaches"`
	ProblemID           *string          `json:"problem_id"`
	KnownErrorID        *string          `json:"known_error_id"`
	ChangeID            *string          `json:"change_id"`
	OpenedAt            time.Time        `json:"opened_at"`
	ResolvedAt          *time.Time       `json:"resolved_at"`
	RootCauseCI         *string          `json:"root_cause_ci"`
	RootCauseConfidence float64          `json:"root_cause_confidence"`
	RootCauseSuspected  bool             `json:"root_cause_suspected"`
	RootCauseRevisions  []replayRevision `json:"root_cause_revisions"`
	CIs                 []string         `json:"cis"`
	Services            []string         `json:"services"`
	EventIDs            []string         `json:"event_ids"`
	SuppressedEventIDs  []string         `json:"suppressed_event_ids"`
	MergedFrom          []string         `json:"merged_from"`
	Reopened            int              `json:"reopened"`
	Members             []replayMember   `json:"members"`
}

type replayRevision struct {
	At         time.Time `json:"at"`
	EventID    string    `json:"event_id"`
	CI         string    `json:"ci"`
	Confidence float64   `json:"confidence"`
	Suspected  bool      `json:"suspected"`
}

// replayMember says why an event is in its incident.
type replayMember struct {
	EventID       string   `json:"event_id"`
	CI            string   `json:"ci"`
	Reason        string   `json:"reason"`
	RelatedCI     string   `json:"related_ci,omitempty"`
	Path          []string `json:"path,omitempty"`
	Hops          int      `json:"hops"`
	OffsetSeconds float64  `json:"offset_seconds"`
	MergedFrom    string   `json:"merged_from,omitempty"`
}

func newReplayIncident(in *correlate.Incident, topo *cmdb.Topology, rec *incidents.Incident) replayIncident {
	r := replayIncident{
		ID: in.ID, Status: string(in.Status), OpenedAt: in.OpenedAt.UTC(),
		RootCauseConfidence: in.RootCauseConfidence, RootCauseSuspected: in.RootCauseSuspected,
		CIs: nonNil(in.CIs), EventIDs: nonNil(in.EventIDs), SuppressedEventIDs: nonNil(in.SuppressedEventIDs),
		MergedFrom: nonNil(in.MergedFrom), Reopened: in.Reopened, Services: []string{},
		RootCauseRevisions: []replayRevision{}, Members: []replayMember{},
	}
	if !in.ResolvedAt.IsZero() {
		t := in.ResolvedAt.UTC()
		r.ResolvedAt = &t
	}
	if in.RootCauseCI != "" {
		rc := in.RootCauseCI
		r.RootCauseCI = &rc
	}
	for _, v := range in.RootCauseRevisions {
		r.RootCauseRevisions = append(r.RootCauseRevisions, replayRevision{At: v.At.UTC(), EventID: v.EventID, CI: v.CI, Confidence: v.Confidence, Suspected: v.Suspected})
	}
	for _, m := range in.Members {
		r.Members = append(r.Members, replayMember{EventID: m.EventID, CI: m.CI, Reason: string(m.Reason), RelatedCI: m.RelatedCI,
			Path: m.Path, Hops: m.Hops, OffsetSeconds: m.Offset.Seconds(), MergedFrom: m.MergedFrom})
	}
	if topo != nil {
		for _, ci := range in.CIs {
			r.Services = append(r.Services, topo.ImpactedServices(ci)...)
		}
		slices.Sort(r.Services)
		r.Services = slices.Compact(r.Services)
	}
	r.Title = incidentTitle(in)
	r.SLABreaches = []string{}
	if rec != nil {
		r.Title, r.Priority, r.Impact, r.Urgency = rec.Title, string(rec.Priority), rec.Impact, rec.Urgency
		r.Category, r.RecordStatus, r.SupportGroup, r.EscalationLevel = string(rec.Category), string(rec.Status), rec.SupportGroup, rec.EscalationLevel
		for _, b := range rec.Breaches {
			r.SLABreaches = append(r.SLABreaches, string(b.Kind))
		}
		r.ProblemID, r.KnownErrorID, r.ChangeID = optional(rec.ProblemID), optional(rec.KnownErrorID), optional(rec.ChangeID)
	}
	return r
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// incidentTitle names the cause when there is one, else what alerted.
func incidentTitle(in *correlate.Incident) string {
	switch {
	case in.RootCauseCI != "" && in.RootCauseSuspected:
		return fmt.Sprintf("Suspected failure of %s: %d alerts on %d CIs", in.RootCauseCI, len(in.EventIDs), len(in.CIs))
	case in.RootCauseCI != "":
		return fmt.Sprintf("%s failure: %d alerts on %d CIs", in.RootCauseCI, len(in.EventIDs), len(in.CIs))
	case len(in.CIs) > 0:
		return fmt.Sprintf("%d alerts on %s", len(in.EventIDs), in.CIs[0])
	}
	return fmt.Sprintf("%d alerts without a CI", len(in.EventIDs))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
