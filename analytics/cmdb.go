package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/correlatord/correlatord/cmdb"
)

// snapshotBatchRows bounds one INSERT of a topology snapshot.
const snapshotBatchRows = 50000

// TopologyWritten reports whether the snapshot of version is complete in
// ClickHouse.
func TopologyWritten(ctx context.Context, c *Client, version string) (bool, error) {
	var n uint64
	q := "SELECT count() FROM " + c.database + ".cmdb_versions WHERE version = ?"
	if err := c.conn.QueryRow(ctx, q, version).Scan(&n); err != nil {
		return false, fmt.Errorf("check topology snapshot %s: %w", version, err)
	}
	return n > 0, nil
}

// WriteTopology writes a snapshot of topo (its CIs, relations and version)
// unless that version is there already. The version row goes last, so an
// interrupted write is redone whole the next time; ReplacingMergeTree merges
// the rows written twice.
func WriteTopology(ctx context.Context, c *Client, topo *cmdb.Topology, source string, now time.Time) (written bool, err error) {
	version := topo.Version()
	if done, err := TopologyWritten(ctx, c, version); err != nil || done {
		return false, err
	}
	db := c.database

	// CIs.
	cis := &chunkedInsert{ctx: ctx, conn: c.conn, query: "INSERT INTO " + db + ".cmdb_cis (version, id, type, name, criticality, support_group, aliases, attribute_keys, attribute_values, services, component)"}
	var kv []string
	topo.EachCI(func(ci *cmdb.CI) {
		kv = sortedMapPairs(kv[:0], ci.Attributes)
		keys, vals := make([]string, 0, len(kv)/2), make([]string, 0, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			keys, vals = append(keys, kv[i]), append(vals, kv[i+1])
		}
		component, _ := topo.Component(ci.ID)
		aliases := ci.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		services := topo.ImpactedServices(ci.ID)
		if services == nil {
			services = []string{}
		}
		cis.append(version, ci.ID, ci.Type, ci.Name, uint8(ci.Criticality), ci.SupportGroup,
			aliases, keys, vals, services, uint32(component))
	})
	if err := cis.finish(); err != nil {
		return false, fmt.Errorf("snapshot cmdb_cis of version %s: %w", version, err)
	}

	// Relations.
	rels := &chunkedInsert{ctx: ctx, conn: c.conn, query: "INSERT INTO " + db + ".cmdb_relations (version, source, target, type)"}
	topo.EachRelation(func(r cmdb.Relation) {
		rels.append(version, r.Source, r.Target, r.Type)
	})
	if err := rels.finish(); err != nil {
		return false, fmt.Errorf("snapshot cmdb_relations of version %s: %w", version, err)
	}

	// The version row last: it marks the snapshot complete.
	vb, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+db+".cmdb_versions (version, loaded_at, source, cis, relations)")
	if err != nil {
		return false, fmt.Errorf("snapshot cmdb_versions: %w", err)
	}
	if err := vb.Append(version, now.UTC(), source, uint64(topo.Len()), uint64(topo.NumRelations())); err != nil {
		_ = vb.Abort()
		return false, fmt.Errorf("snapshot cmdb_versions: %w", err)
	}
	if err := vb.Send(); err != nil {
		return false, fmt.Errorf("snapshot cmdb_versions: %w", err)
	}
	return true, nil
}

// chunkedInsert sends one INSERT every snapshotBatchRows rows. The first
// error stops it: later appends are ignored and finish returns that error.
type chunkedInsert struct {
	ctx   context.Context
	conn  driver.Conn
	query string
	batch driver.Batch
	err   error
}

func (c *chunkedInsert) append(vals ...any) {
	if c.err != nil {
		return
	}
	if c.batch != nil && c.batch.Rows() >= snapshotBatchRows {
		if c.err = c.batch.Send(); c.err != nil {
			return
		}
		c.batch = nil
	}
	if c.batch == nil {
		if c.batch, c.err = c.conn.PrepareBatch(c.ctx, c.query); c.err != nil {
			return
		}
	}
	c.err = c.batch.Append(vals...)
}

// finish sends what is left, or aborts after an error.
func (c *chunkedInsert) finish() error {
	if c.batch == nil {
		return c.err
	}
	if c.err != nil {
		_ = c.batch.Abort()
		return c.err
	}
	return c.batch.Send()
}
