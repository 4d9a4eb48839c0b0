package analytics

import (
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/correlatord/correlatord/ingest/logs"
)

var logCountColumns = []string{"minute", "ci", "bound", "host", "service", "template_id", "template", "level", "count"}

// LogCountsTable returns the Table of log_template_counts (migration
// 0008): how often each log template was seen per minute and CI. The
// table is a SummingMergeTree: rows of one (ci, template_id, minute) add
// up, so query with sum(count).
func LogCountsTable() Table[logs.CountRow] {
	return Table[logs.CountRow]{
		Name:    "log_template_counts",
		Columns: slices.Clone(logCountColumns),
		Append:  appendLogCount,
	}
}

func appendLogCount(b driver.Batch, r *logs.CountRow) error {
	bound := uint8(0)
	if r.Bound {
		bound = 1
	}
	return b.Append(chTime(r.Minute), r.CI, bound, r.Host, r.Service, r.TemplateID, r.Template, r.Level.String(), r.Count)
}
