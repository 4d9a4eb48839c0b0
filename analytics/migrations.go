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
