package analytics

import (
	"regexp"
	"strings"
	"testing"
)

// shipped pins every migration that has been released. Append a line when
// adding a migration; never change one: a schema_migrations row out there
// records each of these versions and names. A checksum change means an
// applied migration was edited, which would never reach existing
// databases: add a new migration instead.
var shipped = []struct {
	version  int
	name     string
	checksum string
}{
	{1, "events", "a8adbc39fe0c9b4fccd36a16e8e6fb901ff8b6958f330048810ea9a2673b49a8"},
	{2, "events_ci_skip_index", "27ca02c0eeaea61050d13c6e8d720cf3d7ceb03920cd1ec898cdc27e3969523c"},
	{3, "cmdb_snapshots", "e36f009b4de754bf714a6dea15fa5e52268714524d01bc04762188a3e75d8539"},
	{4, "events_rules_decision", "c22f69f4eb3136f3a432a83bfd4394ef780865c7ce4d5fd7ba21331b2faa7894"},
	{5, "incidents", "149e47cf0371dc49f13bc2df9f5f02e2f46008a9dd21851671236415431cbf6f"},
	{6, "events_ci_type", "27d417b71a138cd6c2c29275fde4ac1f27ffdc833c5e293456a18468b41cdef4"},
	{7, "trends", "c578cdcf9626569d3ace7aec7e21fe122c54ff9b1f344b5ea832cc0ca294406a"},
	{8, "log_template_counts", "b316d258a1d1f1a9bf6f8fb8fd0e428571400d2c0c80142edc108c890c7f2ca1"},
}

func TestMigrationsOrdered(t *testing.T) {
	prev := 0
	for _, m := range migrations {
		if m.Version <= prev {
			t.Errorf("migration %s: version %d not above the previous one (%d)", m.ID(), m.Version, prev)
		}
		prev = m.Version
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(m.Name) {
			t.Errorf("migration %s: name not snake_case", m.ID())
		}
		if len(m.Statements) == 0 {
			t.Errorf("migration %s has no statement", m.ID())
		}
		for _, s := range m.Statements {
			if !strings.Contains(s, "{db}.") {
				t.Errorf("migration %s: statement does not name the database as {db}.: %s", m.ID(), s)
			}
			if strings.HasPrefix(strings.TrimSpace(s), "CREATE") && !strings.Contains(s, "IF NOT EXISTS") {
				t.Errorf("migration %s: CREATE without IF NOT EXISTS", m.ID())
			}
			if strings.HasPrefix(strings.TrimSpace(s), "ALTER") && m.Present == nil && !strings.Contains(s, "IF NOT EXISTS") {
				t.Errorf("migration %s: ALTER neither IF NOT EXISTS nor guarded by Present", m.ID())
			}
		}
	}
}

func TestMigrationsNeverRenumbered(t *testing.T) {
	if len(migrations) < len(shipped) {
		t.Fatalf("%d migrations, but %d have shipped: a shipped migration was removed", len(migrations), len(shipped))
	}
	for i, s := range shipped {
		m := migrations[i]
		if m.Version != s.version || m.Name != s.name {
			t.Errorf("migration %d is %s, shipped as %04d_%s: never renumber, rename or reorder", i, m.ID(), s.version, s.name)
		}
		if m.Checksum() != s.checksum {
			t.Errorf("migration %s changed (checksum %s, shipped %s): add a new migration instead", m.ID(), m.Checksum(), s.checksum)
		}
	}
	if len(migrations) > len(shipped) {
		t.Errorf("add the new migrations to shipped: %s", migrations[len(shipped)].ID())
	}
}

func TestMigrationsGate(t *testing.T) {
	// The version-gated example must be skipped on the oldest supported
	// server, 18.16, and applied on one with data-skipping indexes.
	var gated *Migration
	for i := range migrations {
		if !migrations[i].Requires.IsZero() {
			gated = &migrations[i]
		}
	}
	if gated == nil {
		t.Fatal("no version-gated migration")
	}
	if (Version{18, 16, 1}).AtLeast(gated.Requires.Major, gated.Requires.Minor) {
		t.Errorf("%s runs on 18.16", gated.ID())
	}
	if !(Version{20, 1, 2}).AtLeast(gated.Requires.Major, gated.Requires.Minor) {
		t.Errorf("%s does not run on 20.1", gated.ID())
	}
	if migrations[0].ID() != "0001_events" {
		t.Errorf("first migration is %s", migrations[0].ID())
	}
}

func TestExpandDB(t *testing.T) {
	got := expandDB("CREATE TABLE IF NOT EXISTS {db}.t; ALTER TABLE {db}.t", "x")
	if got != "CREATE TABLE IF NOT EXISTS x.t; ALTER TABLE x.t" {
		t.Error(got)
	}
}
