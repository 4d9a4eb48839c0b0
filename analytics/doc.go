// Package analytics owns everything the daemon stores in ClickHouse: the
// connection (Open), the schema and its versioned migrations (Migrate), and
// the batched, at-least-once writes of rows (Writer). No other package of
// the daemon talks to ClickHouse; they hand rows to a Writer and read
// Writer.Durable to know what has been stored.
//
// # Server versions
//
// The oldest supported server is ClickHouse 18.16. Everything here works on
// it: batch INSERTs name their columns explicitly, event times are stored as
// DateTime plus a UInt64 of Unix milliseconds (18.16 has no DateTime64), and
// labels are stored as parallel key/value arrays (18.16 has no Map).
// Newer features are used only when the server has them: Open reads the
// server version, and a migration can require a minimum version. A migration
// whose requirement is not met is recorded as skipped and applied on a later
// start once the server has been upgraded.
//
// # Delivery
//
// Writer delivers at least once: a batch whose INSERT failed, or whose
// outcome is unknown (a timeout), is sent again, in order, until it is
// acknowledged. A row can therefore be stored twice. Tables are
// ReplacingMergeTree ordered by a key that includes the row's deterministic
// id, so background merges remove such duplicates; queries that must be
// exact use FINAL or count uniqExact(event_id).
//
// # Incidents and problems
//
// IncidentsTable and ProblemsTable write one row per version of a record
// (ReplacingMergeTree(version)); IncidentTimelineTable writes the entries
// of an incident's history (transitions, escalations, SLA breaches,
// comments; AppendTimeline makes them) and IncidentMembersTable its
// events. Read records with FINAL, which keeps each id's latest version,
// and filter in WHERE, never PREWHERE: WHERE applies after FINAL's merge,
// PREWHERE before it, so it could match a version that is no longer the
// latest. A time that is not set (acknowledged_at, resolved_at,
// closed_at) is stored as 0: test `resolved_at > 0`, or use
// nullIf(resolved_at, toDateTime(0)).
//
// # Trends
//
// TrendQueries holds the SQL of the KPI panels of the Grafana dashboards,
// with grafana-clickhouse-datasource macros (ExpandMacros expands them
// for a fixed range). Events per minute come from events_per_minute, an
// AggregatingMergeTree a materialized view fills on every events INSERT;
// the incident and problem trends are computed from the versioned tables
// with FINAL when they are queried (see trends.go for why).
package analytics
