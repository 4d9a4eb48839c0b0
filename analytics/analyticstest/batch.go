// Package analyticstest provides a ClickHouse batch that encodes rows with
// clickhouse-go's real column encoders but needs no server, for tests and
// benchmarks of the path into a batch.
package analyticstest

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// EventColumnTypes are the ClickHouse types of the events table's columns
// (migrations 0001, 0004 and 0006), which the encoders need.
var EventColumnTypes = map[string]string{
	"event_id":          "String",
	"time":              "DateTime('UTC')",
	"time_ms":           "UInt64",
	"received_at":       "DateTime('UTC')",
	"source":            "String",
	"kind":              "Enum8('alert' = 1, 'log' = 2, 'change' = 3)",
	"status":            "Enum8('firing' = 1, 'resolved' = 2)",
	"severity":          "Enum8('critical' = 5, 'major' = 4, 'minor' = 3, 'warning' = 2, 'info' = 1)",
	"ci":                "String",
	"fingerprint":       "String",
	"summary":           "String",
	"label_keys":        "Array(String)",
	"label_values":      "Array(String)",
	"annotation_keys":   "Array(String)",
	"annotation_values": "Array(String)",
	"class":             "String",
	"outcome":           "String",
	"rule":              "String",
	"maintenance":       "String",
	"change_id":         "String",
	"inhibited_by":      "String",
	"correlate":         "UInt8",
	"flapping":          "UInt8",
	"dedup_count":       "UInt32",
	"ci_type":           "String",
}

// BlockBatch is a driver.Batch over clickhouse-go's column encoders: what
// PrepareBatch returns, less the connection. Methods other than Append and
// Rows panic.
type BlockBatch struct {
	driver.Batch
	Block *proto.Block
}

// NewBlockBatch returns a batch for columns, whose types it looks up in types.
func NewBlockBatch(tb testing.TB, columns []string, types map[string]string) *BlockBatch {
	tb.Helper()
	b := &BlockBatch{Block: proto.NewBlock()}
	for _, name := range columns {
		typ, ok := types[name]
		if !ok {
			tb.Fatalf("column %s has no type", name)
		}
		if err := b.Block.AddColumn(name, column.Type(typ)); err != nil {
			tb.Fatal(err)
		}
	}
	return b
}

// Append implements driver.Batch.
func (b *BlockBatch) Append(v ...any) error { return b.Block.Append(v...) }

// Rows implements driver.Batch.
func (b *BlockBatch) Rows() int { return b.Block.Rows() }

// Value returns the value of column name in row, for assertions.
func (b *BlockBatch) Value(tb testing.TB, name string, row int) any {
	tb.Helper()
	for i, n := range b.Block.ColumnsNames() {
		if n == name {
			return b.Block.Columns[i].Row(row, false)
		}
	}
	tb.Fatalf("no column %s", name)
	return nil
}
