package analytics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Statuses a schema_migrations record can have.
const (
	statusApplied = "applied"
	statusSkipped = "skipped"
)

const schemaMigrationsDDL = `CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    status Enum8('applied' = 1, 'skipped' = 2),
    applied_at DateTime('UTC'),
    checksum String,
    server_version String
) ENGINE = MergeTree()
ORDER BY (version, applied_at)`

// Checksum returns the SHA-256 of the migration's statements as written
// (before {db} is replaced), which schema_migrations records.
func (m *Migration) Checksum() string {
	h := sha256.New()
	for _, s := range m.Statements {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

type migrationRecord struct {
	status   string
	name     string
	checksum string
}

// Migrate brings the schema up to date: it creates the database and the
// schema_migrations table if needed, then runs, in order, every migration
// not yet recorded as applied. A migration whose server requirement is not
// met is recorded as skipped and tried again on the next call. It returns
// the IDs (0001_events) of the migrations it applied; none on a second run.
//
// Migrate is safe to run twice and from two instances at once: every
// statement is idempotent, and the record is re-read before it is written
// (two racing instances may both record a migration; reading tolerates it).
func Migrate(ctx context.Context, c *Client, logger *zap.Logger) (applied []string, err error) {
	return migrate(ctx, c, migrations, logger)
}

func migrate(ctx context.Context, c *Client, list []Migration, logger *zap.Logger) (applied []string, err error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	db := c.database
	if err := c.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return nil, fmt.Errorf("analytics: creating database %s (does user have CREATE rights?): %w", db, err)
	}
	if err := c.conn.Exec(ctx, expandDB(schemaMigrationsDDL, db)); err != nil {
		return nil, fmt.Errorf("analytics: creating %s.schema_migrations: %w", db, err)
	}
	records, err := readMigrationRecords(ctx, c, 0)
	if err != nil {
		return nil, err
	}
	for i := range list {
		m := &list[i]
		log := logger.With(zap.String("migration", m.ID()))
		if r, ok := records[m.Version]; ok && r.status == statusApplied {
			if r.checksum != m.Checksum() {
				log.Warn("applied migration has changed since; the change is not applied: add a new migration instead",
					zap.String("recorded_checksum", r.checksum), zap.String("checksum", m.Checksum()))
			}
			continue
		}
		if !m.Requires.IsZero() && !c.version.AtLeast(m.Requires.Major, m.Requires.Minor) {
			log.Info("migration skipped: the server is too old; it will be applied on a start after an upgrade",
				zap.Stringer("requires", m.Requires), zap.Stringer("server_version", c.version))
			if r, ok := records[m.Version]; ok && r.status == statusSkipped {
				continue
			}
			if err := recordMigration(ctx, c, m, statusSkipped); err != nil {
				return applied, err
			}
			continue
		}
		start := time.Now()
		if err := runMigration(ctx, c, m); err != nil {
			return applied, err
		}
		// Re-check: another instance may have recorded it meanwhile.
		again, err := readMigrationRecords(ctx, c, m.Version)
		if err != nil {
			return applied, err
		}
		if r, ok := again[m.Version]; !ok || r.status != statusApplied {
			if err := recordMigration(ctx, c, m, statusApplied); err != nil {
				return applied, err
			}
		}
		log.Info("migration applied", zap.Duration("took", time.Since(start)))
		applied = append(applied, m.ID())
	}
	return applied, nil
}

func runMigration(ctx context.Context, c *Client, m *Migration) error {
	if m.Present != nil {
		done, err := m.Present(ctx, c)
		if err != nil {
			return fmt.Errorf("analytics: migration %s: checking whether it is in place: %w", m.ID(), err)
		}
		if done {
			return nil
		}
	}
	for _, stmt := range m.Statements {
		q := expandDB(stmt, c.database)
		if err := c.conn.Exec(ctx, q); err != nil {
			if m.Present != nil {
				if done, perr := m.Present(ctx, c); perr == nil && done {
					return nil // another instance applied it concurrently
				}
			}
			return fmt.Errorf("analytics: migration %s failed (ClickHouse %s): %w\n%s", m.ID(), c.version, err, q)
		}
	}
	return nil
}

// readMigrationRecords reads schema_migrations, of one version or, with
// version 0, all. A version recorded as applied stays applied whatever else
// is recorded for it.
func readMigrationRecords(ctx context.Context, c *Client, version int) (map[int]migrationRecord, error) {
	q := "SELECT version, name, toString(status), checksum FROM " + c.database + ".schema_migrations"
	var args []any
	if version > 0 {
		q += " WHERE version = ?"
		args = append(args, uint32(version))
	}
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("analytics: reading %s.schema_migrations: %w", c.database, err)
	}
	defer rows.Close()
	out := make(map[int]migrationRecord)
	for rows.Next() {
		var (
			v uint32
			r migrationRecord
		)
		if err := rows.Scan(&v, &r.name, &r.status, &r.checksum); err != nil {
			return nil, fmt.Errorf("analytics: reading %s.schema_migrations: %w", c.database, err)
		}
		if prev, ok := out[int(v)]; ok && prev.status == statusApplied {
			continue
		}
		out[int(v)] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics: reading %s.schema_migrations: %w", c.database, err)
	}
	return out, nil
}

func recordMigration(ctx context.Context, c *Client, m *Migration, status string) error {
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.database+
		".schema_migrations (version, name, status, applied_at, checksum, server_version)")
	if err != nil {
		return fmt.Errorf("analytics: recording migration %s: %w", m.ID(), err)
	}
	defer b.Close()
	if err := b.Append(uint32(m.Version), m.Name, status, time.Now(), m.Checksum(), c.version.String()); err != nil {
		return fmt.Errorf("analytics: recording migration %s: %w", m.ID(), err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("analytics: recording migration %s: %w", m.ID(), err)
	}
	return nil
}

func expandDB(stmt, db string) string { return strings.ReplaceAll(stmt, "{db}", db) }
