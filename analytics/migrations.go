package analytics

import (
	"context"
	"fmt"
	"strings"
)

// migrations is the schema, in order. Append new migrations at the end with
// the next version; never renumber, reorder, remove or edit one that has
// shipped (TestMigrationsNeverRenumbered pins them). Every statement must be
// safe to run twice and concurrently with another instance: CREATE ... IF
// NOT EXISTS, or a Present check for DDL that has no IF NOT EXISTS on the
// oldest server that runs it. {db} stands for the database name.
//
// A migration with Requires runs only on servers of that version or later;
// on older ones it is recorded as skipped and applied on the first start
// after an upgrade, possibly after later migrations. Such a migration must
// therefore not be something a later migration depends on.
var migrations = []Migration{
	{
		Version: 1,
		Name:    "events",
		// 18.16: no DateTime64 (time_ms keeps the milliseconds), no Map
		// (labels are parallel sorted arrays), no LowCardinality by default.
		// ReplacingMergeTree removes the duplicates at-least-once delivery
		// can write, since event_id is in the sorting key.
		Statements: []string{`CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String,
    time DateTime('UTC'),
    time_ms UInt64,
    received_at DateTime('UTC'),
    date Date DEFAULT toDate(time),
    source String,
    kind Enum8('alert' = 1, 'log' = 2, 'change' = 3),
    status Enum8('firing' = 1, 'resolved' = 2),
    severity Enum8('critical' = 5, 'major' = 4, 'minor' = 3, 'warning' = 2, 'info' = 1),
    ci String,
    fingerprint String,
    summary String,
    label_keys Array(String),
    label_values Array(String),
    annotation_keys Array(String),
    annotation_values Array(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(date)
ORDER BY (fingerprint, time, event_id)`},
	},
	{
		Version: 2,
		Name:    "events_ci_skip_index",
		// Data-skipping indexes are experimental before 20.1 (behind
		// allow_experimental_data_skipping_indices) and unknown to 18.16.
		// ADD INDEX IF NOT EXISTS is not in every version that has indexes,
		// so Present makes it idempotent instead.
		Requires:   Version{Major: 20, Minor: 1},
		Statements: []string{`ALTER TABLE {db}.events ADD INDEX idx_events_ci ci TYPE bloom_filter(0.01) GRANULARITY 4`},
		Present:    tableHas("events", "INDEX idx_events_ci "),
	},
	{
		Version: 3,
		Name:    "cmdb_snapshots",
		// Every topology version the daemon runs on, so analytics can join
		// events to the CIs, types, criticalities and services of their
		// time. A snapshot is complete when its cmdb_versions row exists:
		// WriteTopology writes that row last.
		Statements: []string{
			`CREATE TABLE IF NOT EXISTS {db}.cmdb_versions (
    version String,
    loaded_at DateTime('UTC'),
    source String,
    cis UInt64,
    relations UInt64
) ENGINE = ReplacingMergeTree()
ORDER BY version`,
			`CREATE TABLE IF NOT EXISTS {db}.cmdb_cis (
    version String,
    id String,
    type String,
    name String,
    criticality UInt8,
    support_group String,
    aliases Array(String),
    attribute_keys Array(String),
    attribute_values Array(String),
    services Array(String),
    component UInt32
) ENGINE = ReplacingMergeTree()
ORDER BY (version, id)`,
			`CREATE TABLE IF NOT EXISTS {db}.cmdb_relations (
    version String,
    source String,
    target String,
    type String
) ENGINE = ReplacingMergeTree()
ORDER BY (version, source, target, type)`,
		},
	},
	{
		Version: 4,
		Name:    "events_rules_decision",
		// What the rules stage decided about each event. One ALTER adds
		// every column at once; 18.16 has no ADD COLUMN IF NOT EXISTS, so
		// Present makes a re-run (or a second instance) a no-op.
		Statements: []string{`ALTER TABLE {db}.events
    ADD COLUMN class String DEFAULT '',
    ADD COLUMN outcome String DEFAULT '',
    ADD COLUMN rule String DEFAULT '',
    ADD COLUMN maintenance String DEFAULT '',
    ADD COLUMN change_id String DEFAULT '',
    ADD COLUMN inhibited_by String DEFAULT '',
    ADD COLUMN correlate UInt8 DEFAULT 0,
    ADD COLUMN flapping UInt8 DEFAULT 0,
    ADD COLUMN dedup_count UInt32 DEFAULT 0`},
		Present: tableHasColumn("events", "dedup_count"),
	},
	{
		Version: 5,
		Name:    "incidents",
		// The incidents stage's records (incidents.Change), written by the
		// Writers of incidents.go. Every write of an incident or problem is
		// a new row whose version is the record's Version; a query reads
		// the latest with FINAL (ReplacingMergeTree(version) keeps the
		// highest version of an id). A row written twice by at-least-once
		// delivery has the same id and version, so it collapses the same
		// way. WHERE is applied after FINAL's merge, so filters on columns
		// that change between versions (status, resolved_at) are exact;
		// PREWHERE is not, and must not be used on these tables.
		//
		// Times that are not set yet (acknowledged_at, resolved_at,
		// closed_at) are stored as 0 (1970-01-01 00:00:00): 18.16 has
		// Nullable, but a plain column keeps the engine's sort and merge
		// simple. Queries test `resolved_at > 0` or use nullIf(resolved_at, 0).
		//
		// Priority, status and category are Strings, not Enum8: a value the
		// incidents stage adds later would make every INSERT with it fail,
		// and the Writer retries a failing batch forever.
		//
		// incidents is partitioned by the month of opened_at, which never
		// changes between the versions of an incident (the incidents stage
		// sets OpenedAt once, at creation): all versions of an id are in one
		// partition, where merges replace them, and queries on a time range
		// of opened_at read only its months. An incident is therefore
		// counted in the month it opened.
		//
		// incident_timeline holds the entries of each incident's history,
		// one row each, kind saying which: a status transition, an
		// escalation, an SLA breach or an operator's comment. One table
		// rather than one per kind, since the entries share their key and
		// are read together (an incident's timeline, in time order). seq is
		// the entry's index among those of its kind on the incident, whose
		// lists only grow: (incident_id, at, kind, seq) identifies an entry,
		// so one written twice is merged.
		//
		// incident_members: one row per event of an incident, and why it
		// joined; an event moved by a merge gets a row under the incident
		// it was merged into, merged_from naming the old one.
		Statements: []string{
			`CREATE TABLE IF NOT EXISTS {db}.incidents (
    id String,
    version UInt64,
    partition_key String,
    title String,
    description String,
    category String,
    priority String,
    impact UInt8,
    urgency UInt8,
    service_class UInt8,
    services Array(String),
    cis Array(String),
    root_cause_ci String,
    root_cause_confidence Float64,
    root_cause_suspected UInt8,
    support_group String,
    assigned_to String,
    status String,
    auto_resolved UInt8,
    opened_at DateTime('UTC'),
    acknowledged_at DateTime('UTC'),
    resolved_at DateTime('UTC'),
    closed_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    reopened UInt32,
    response_target_s UInt32,
    resolution_target_s UInt32,
    escalation_level UInt8,
    response_breached UInt8,
    resolution_breached UInt8,
    change_id String,
    known_error_id String,
    problem_id String,
    event_count UInt32,
    suppressed_count UInt32,
    merged_from Array(String)
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY id`,
			`CREATE TABLE IF NOT EXISTS {db}.incident_timeline (
    incident_id String,
    kind Enum8('transition' = 1, 'escalation' = 2, 'breach' = 3, 'comment' = 4),
    seq UInt32,
    at DateTime('UTC'),
    at_ms UInt64,
    priority String,
    from_status String,
    to_status String,
    actor String,
    note String,
    from_level UInt8,
    to_level UInt8,
    breach String,
    target_s UInt32
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (incident_id, at, kind, seq)`,
			`CREATE TABLE IF NOT EXISTS {db}.incident_members (
    incident_id String,
    event_id String,
    ci String,
    reason String,
    related_ci String,
    path Array(String),
    hops UInt8,
    offset_s Float64,
    merged_from String,
    severity String,
    symptom String,
    added_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY (incident_id, event_id)`,
			// Few rows: no partitions. transition_at and transition_to are
			// the problem's status history, so the backlog of any past day
			// can be computed (TrendQueries problem_backlog).
			`CREATE TABLE IF NOT EXISTS {db}.problems (
    id String,
    version UInt64,
    partition_key String,
    status String,
    reason String,
    title String,
    root_cause_ci String,
    category String,
    service String,
    incidents Array(String),
    raised_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    root_cause String,
    workaround String,
    known_error_id String,
    detail String,
    transition_at Array(DateTime('UTC')),
    transition_to Array(String)
) ENGINE = ReplacingMergeTree(version)
ORDER BY id`,
		},
	},
	{
		Version: 6,
		Name:    "events_ci_type",
		// The type of the event's CI in the topology it was correlated
		// with, for the per-CI-type trends: 18.16 has no DDL dictionaries
		// to look it up at query time, and a join with cmdb_cis would have
		// to pick each event's topology version. Empty for events without
		// a known CI, and for events written before this migration.
		// 18.16 has no ADD COLUMN IF NOT EXISTS: Present guards it.
		Statements: []string{`ALTER TABLE {db}.events ADD COLUMN ci_type String DEFAULT ''`},
		Present:    tableHasColumn("events", "ci_type"),
	},
	{
		Version: 7,
		Name:    "trends",
		// Events per minute by source, kind, severity and CI type, kept
		// by a materialized view on events INSERTs (events written before
		// this migration are not counted). The count is uniq(event_id)
		// rather than a sum, so an event stored twice by at-least-once
		// delivery counts once, even across INSERTs: uniq is exact up to
		// 65536 distinct events per minute and group, bar the rare
		// collision of its 32-bit hashes. The incident and problem trends
		// need no table: versioned rows make a view on INSERT count
		// versions, so TrendQueries read incidents and problems with FINAL.
		Statements: []string{
			`CREATE TABLE IF NOT EXISTS {db}.events_per_minute (
    minute DateTime('UTC'),
    source String,
    kind Enum8('alert' = 1, 'log' = 2, 'change' = 3),
    severity Enum8('critical' = 5, 'major' = 4, 'minor' = 3, 'warning' = 2, 'info' = 1),
    ci_type String,
    events AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, kind, severity, ci_type)`,
			`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_per_minute_mv TO {db}.events_per_minute AS
SELECT
    toStartOfMinute(time) AS minute,
    source,
    kind,
    severity,
    ci_type,
    uniqState(event_id) AS events
FROM {db}.events
GROUP BY minute, source, kind, severity, ci_type`,
		},
	},
	{
		Version: 8,
		Name:    "log_template_counts",
		// Log template counts per minute and CI (ingest/logs.CountRow). A
		// SummingMergeTree: one (ci, template_id, minute) may get several
		// rows (a record after its minute closed, several partitions seeing
		// one CI), which add up. No TTL: 18.16 has none for tables.
		Statements: []string{`CREATE TABLE IF NOT EXISTS {db}.log_template_counts (
    minute DateTime('UTC'),
    ci String,
    bound UInt8,
    host String,
    service String,
    template_id UInt64,
    template String,
    level String,
    count UInt64
) ENGINE = SummingMergeTree(count)
PARTITION BY toYYYYMM(minute)
ORDER BY (ci, template_id, minute)`},
	},
}

// Migration is one versioned step of the schema.
type Migration struct {
	// Version orders migrations; it is what schema_migrations records.
	Version int
	// Name says what the migration does, in snake_case.
	Name string
	// Requires is the oldest server version the migration runs on; zero
	// means any. Only Major and Minor are compared.
	Requires Version
	// Statements run in order, {db} replaced by the database name.
	Statements []string
	// Present, if set, reports whether the migration's effect is already in
	// place, for DDL without IF NOT EXISTS: the statements are not run when
	// it says so, and a statement's error is ignored when it says so
	// afterwards (another instance got there first).
	Present func(ctx context.Context, c *Client) (bool, error)
}

// ID returns the migration's name as logs and Migrate's result show it:
// 0001_events.
func (m *Migration) ID() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

// Migrations returns a copy of the schema's migrations, in order.
func Migrations() []Migration { return append([]Migration(nil), migrations...) }

// tableHasColumn returns a Present check that looks the column up in
// system.columns.
func tableHasColumn(table, column string) func(context.Context, *Client) (bool, error) {
	return func(ctx context.Context, c *Client) (bool, error) {
		var n uint64
		q := "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?"
		if err := c.conn.QueryRow(ctx, q, c.database, table, column).Scan(&n); err != nil {
			return false, fmt.Errorf("look up column %s.%s: %w", table, column, err)
		}
		return n > 0, nil
	}
}

// tableHas returns a Present check that looks for fragment in the table's
// SHOW CREATE TABLE, which every server version has (system tables
// listing indexes came later).
func tableHas(table, fragment string) func(context.Context, *Client) (bool, error) {
	return func(ctx context.Context, c *Client) (bool, error) {
		var ddl string
		q := fmt.Sprintf("SHOW CREATE TABLE %s.%s", c.database, table)
		if err := c.conn.QueryRow(ctx, q).Scan(&ddl); err != nil {
			return false, fmt.Errorf("%s: %w", q, err)
		}
		return strings.Contains(ddl, fragment), nil
	}
}
