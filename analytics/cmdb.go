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
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+db+".cmdb_cis (version, id, type, name, criticality, support_group, aliases, attribute_keys, attribute_values, services, component)")
	if err != nil {
		return false, fmt.Errorf("snapshot cmdb_cis: %w", err)
	}
	var kv []string
	var appendErr error
	topo.EachCI(func(ci *cmdb.CI) {
		if appendErr != nil {
			return
		}
		if batch.Rows() >= snapshotBatchRows {
			if appendErr = batch.Send(); appendErr != nil {
				return
			}
			if batch, appendErr = c.conn.PrepareBatch(ctx, "INSERT INTO "+db+".cmdb_cis (version, id, type, name, criticality, support_group, aliases, attribute_keys, attribute_values, services, component)"); appendErr != nil {
				return
			}
		}
		kv = sortedPairs(kv[:0], ci.Attributes)
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
		appendErr = batch.Append(version, ci.ID, ci.Type, ci.Name, uint8(ci.Criticality), ci.SupportGroup,
			aliases, keys, vals, services, uint32(component))
	})
	if appendErr == nil {
		appendErr = batch.Send()
	} else {
		_ = batch.Abort()
	}
	if appendErr != nil {
		return false, fmt.Errorf("snapshot cmdb_cis of version %s: %w", version, appendErr)
	}

	// Relations.
	if err := sendRelations(ctx, c, topo, version); err != nil {
		return false, err
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

func sendRelations(ctx context.Context, c *Client, topo *cmdb.Topology, version string) error {
	q := "INSERT INTO " + c.database + ".cmdb_relations (version, source, target, type)"
	var (
		batch driver.Batch
		err   error
	)
	if batch, err = c.conn.PrepareBatch(ctx, q); err != nil {
		return fmt.Errorf("snapshot cmdb_relations: %w", err)
	}
	topo.EachRelation(func(r cmdb.Relation) {
		if err != nil {
			return
		}
		if batch.Rows() >= snapshotBatchRows {
			if err = batch.Send(); err != nil {
				return
			}
			if batch, err = c.conn.PrepareBatch(ctx, q); err != nil {
				return
			}
		}
		err = batch.Append(version, r.Source, r.Target, r.Type)
	})
	if err == nil {
		err = batch.Send()
	} else {
		_ = batch.Abort()
	}
	if err != nil {
		return fmt.Errorf("snapshot cmdb_relations of version %s: %w", version, err)
	}
	return nil
}
