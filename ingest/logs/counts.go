package logs

import "time"

// CountRow is the count of one template on one subject in one minute, for
// trend analysis in ClickHouse. The Processor queues a row when a minute
// closes (Tick, Flush, a later record of the key, or the key's eviction);
// Counts hands them over. The Processor writes nothing itself.
//
// The intended table (analytics owns it):
//
//	CREATE TABLE log_template_counts (
//	    minute      DateTime('UTC'),
//	    ci          LowCardinality(String), -- CountRow.CI: the CI, or the subject when unbound
//	    bound       UInt8,
//	    host        LowCardinality(String),
//	    service     LowCardinality(String),
//	    template_id UInt64,
//	    template    String,
//	    level       LowCardinality(String), -- Level.String()
//	    count       UInt64
//	) ENGINE = SummingMergeTree(count)
//	PARTITION BY toYYYYMM(minute)
//	ORDER BY (ci, template_id, minute)
//	TTL minute + INTERVAL 90 DAY
//
// SummingMergeTree, because one (ci, template_id, minute) can get several
// rows, which must add up: a record arriving after its minute closed counts
// in a later minute of its key, a key evicted and recreated starts a new
// row, and several partitions (processors) may see one CI. Query with
// sum(count) ... GROUP BY. Kafka redelivery after a crash counts the
// redelivered records again (counts are at-least-once); restoring a
// snapshot taken with the committed offsets avoids most of it.
type CountRow struct {
	// Minute is the start of the minute (record time), UTC.
	Minute time.Time
	// CI is the bound CI's id. When the record bound to none, it is the
	// subject the key used instead: the host, else namespace/pod, else the
	// service, else empty; Bound tells which.
	CI    string
	Bound bool
	// Host and Service are those of the record that created the key.
	Host    string
	Service string
	// TemplateID and Template are the template's id (logtemplate.FormatID
	// writes it as 16 hex digits, as the template_id label does) and its
	// text when the minute closed.
	TemplateID uint64
	Template   string
	// Level is the highest level among the minute's records.
	Level Level
	Count uint64
}
