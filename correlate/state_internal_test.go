package correlate

import (
	stdjson "encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	segjson "github.com/segmentio/encoding/json"
)

// TestRestoreReadsVersion1Records: changelogs written before members had
// records of their own (version 1, members inside the group record) and
// before the state encoder changed (encoding/json: durations as
// nanoseconds) still restore, to the same incidents as current records.
func TestRestoreReadsVersion1Records(t *testing.T) {
	var steps []step
	for i := 1; i <= 10; i++ {
		steps = append(steps, step{at: time.Duration(i) * 10 * time.Second, id: fmt.Sprintf("eh%d", i), ci: fmt.Sprintf("h%d", i), alert: "HostDown"})
	}
	steps = append(steps, step{at: 30 * time.Second, id: "esw", ci: "sw1", alert: "SwitchDown"})
	e, _ := run(t, DefaultConfig(), steps)
	records, err := e.AppendChanges(nil)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string][]byte{}
	for _, r := range records {
		latest[r.Key] = r.Value
	}
	var old []StateRecord
	groups := 0
	for _, r := range records {
		switch {
		case strings.HasPrefix(r.Key, stateKeyMembersPrefx):
			// The current encoder writes offsets as text.
			if !strings.Contains(string(r.Value), `"Offset":"10s"`) {
				t.Fatalf("member record %s: %s", r.Key, r.Value)
			}
			continue
		case strings.HasPrefix(r.Key, stateKeyGroupPrefx):
			groups++
			var s groupState
			if err := segjson.Unmarshal(r.Value, &s); err != nil {
				t.Fatal(err)
			}
			if err := restoreMembers(&s, strings.TrimPrefix(r.Key, stateKeyGroupPrefx), latest); err != nil {
				t.Fatal(err)
			}
			if err := s.unpackAlerts(); err != nil {
				t.Fatal(err)
			}
			s.packedAlerts = packedAlerts{}
			s.V, s.Incident.MemberCount, s.Incident.MemberChunks = 1, 0, 0
			v, err := stdjson.Marshal(&s)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(v), `"Offset":10000000000`) {
				t.Fatalf("version 1 record: %s", v)
			}
			old = append(old, StateRecord{Key: r.Key, Value: v})
		default:
			var es engineState
			if err := segjson.Unmarshal(r.Value, &es); err != nil {
				t.Fatal(err)
			}
			es.V = 1
			v, err := stdjson.Marshal(&es)
			if err != nil {
				t.Fatal(err)
			}
			old = append(old, StateRecord{Key: r.Key, Value: v})
		}
	}
	if groups == 0 {
		t.Fatal("no group records")
	}
	topo := fixture(t)
	fromNew := New(DefaultConfig(), func() Topology { return topo })
	fromOld := New(DefaultConfig(), func() Topology { return topo })
	if err := fromNew.Restore(records); err != nil {
		t.Fatal(err)
	}
	if err := fromOld.Restore(old); err != nil {
		t.Fatal(err)
	}
	want := e.Incidents()
	if got := fromOld.Incidents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored from version 1 records:\n%+v\nwant\n%+v", got, want)
	}
	if got := fromNew.Incidents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored from current records:\n%+v\nwant\n%+v", got, want)
	}
}

// TestCheckpointWritesOnlyNewMembers: a checkpoint rewrites a group's last
// member record and those after it, not every member; a merge rewrites
// them all; closing a group removes its member records; a lost member
// record fails the restore instead of restoring an incident without it.
func TestCheckpointWritesOnlyNewMembers(t *testing.T) {
	topo := fixture(t)
	cfg := DefaultConfig()
	e := New(cfg, func() Topology { return topo })
	var all []StateRecord
	checkpoint := func() []StateRecord {
		t.Helper()
		recs, err := e.AppendChanges(nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		return recs
	}
	members := func(recs []StateRecord) (keys []string) {
		for _, r := range recs {
			if strings.HasPrefix(r.Key, stateKeyMembersPrefx) {
				keys = append(keys, r.Key)
			}
		}
		return keys
	}
	// 300 alerts on one host: one incident, three member records.
	for i := range 300 {
		e.Process(ev(step{at: time.Duration(i) * time.Millisecond, id: fmt.Sprintf("e%d", i), ci: "h1", alert: fmt.Sprintf("A%d", i)}), Input{}, time.Time{})
	}
	if got := members(checkpoint()); len(got) != 3 {
		t.Fatalf("first checkpoint wrote member records %v, want 3", got)
	}
	id := e.Incidents()[0].ID
	// Ten more: only the last record is rewritten.
	for i := 300; i < 310; i++ {
		e.Process(ev(step{at: time.Duration(i) * time.Millisecond, id: fmt.Sprintf("e%d", i), ci: "h1", alert: fmt.Sprintf("A%d", i)}), Input{}, time.Time{})
	}
	if got, want := members(checkpoint()), []string{membersKey(id, 2)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second checkpoint wrote member records %v, want %v", got, want)
	}
	restored := New(cfg, func() Topology { return topo })
	if err := restored.Restore(all); err != nil {
		t.Fatal(err)
	}
	if got, want := restored.Incidents(), e.Incidents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored\n%+v\nwant\n%+v", got, want)
	}
	// A restored engine carries on from the records it read.
	restored.Process(ev(step{at: 400 * time.Millisecond, id: "e400", ci: "h1", alert: "A400"}), Input{}, time.Time{})
	if recs, err := restored.AppendChanges(nil); err != nil {
		t.Fatal(err)
	} else if got, want := members(recs), []string{membersKey(id, 2)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after restore, member records %v, want %v", got, want)
	}

	var lost []StateRecord
	for _, r := range all {
		if r.Key != membersKey(id, 1) {
			lost = append(lost, r)
		}
	}
	if err := New(cfg, func() Topology { return topo }).Restore(lost); err == nil || !strings.Contains(err.Error(), membersKey(id, 1)) {
		t.Fatalf("restore without a member record: %v", err)
	}

	// Closing removes the group and its member records.
	e.Advance(t0.Add(24 * time.Hour))
	e.Advance(t0.Add(48 * time.Hour))
	recs := checkpoint()
	tomb := map[string]bool{}
	for _, r := range recs {
		if r.Value == nil {
			tomb[r.Key] = true
		}
	}
	for _, k := range []string{stateKeyGroupPrefx + id, membersKey(id, 0), membersKey(id, 1), membersKey(id, 2)} {
		if !tomb[k] {
			t.Fatalf("no tombstone for %s after the incident closed; records %v", k, recs)
		}
	}
}

// TestMergeRewritesMembers: a merge interleaves the members of two
// incidents, so every member record of the merged incident is rewritten.
func TestMergeRewritesMembers(t *testing.T) {
	topo := fixture(t)
	cfg := Config{MaxHops: 2}
	e := New(cfg, func() Topology { return topo })
	var all []StateRecord
	checkpoint := func() {
		t.Helper()
		recs, err := e.AppendChanges(nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	// Two unrelated incidents (a2 and h9), their alerts interleaved in
	// time, each over two member records.
	for i := range 150 {
		at := time.Duration(i) * 10 * time.Millisecond
		e.Process(ev(step{at: at, id: fmt.Sprintf("a%d", i), ci: "a2", alert: fmt.Sprintf("AppDown%d", i)}), Input{}, time.Time{})
		e.Process(ev(step{at: at + 5*time.Millisecond, id: fmt.Sprintf("h%d", i), ci: "h9", alert: fmt.Sprintf("HostDown%d", i)}), Input{}, time.Time{})
		if i == 100 {
			checkpoint()
		}
	}
	checkpoint()
	if n := len(e.Incidents()); n != 2 {
		t.Fatalf("%d incidents before the merge, want 2", n)
	}
	e.Process(ev(step{at: 2 * time.Second, id: "sw", ci: "sw1", alert: "SwitchDown"}), Input{}, time.Time{})
	checkpoint()
	want := e.Incidents()
	if len(want) != 1 || len(want[0].Members) != 301 {
		t.Fatalf("after the switch alert: %d incidents, want one of 301 members", len(want))
	}
	restored := New(cfg, func() Topology { return topo })
	if err := restored.Restore(all); err != nil {
		t.Fatal(err)
	}
	if got := restored.Incidents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored after a merge:\n%+v\nwant\n%+v", got[0].EventIDs, want[0].EventIDs)
	}
}

// alertMaps are a group's alert maps, compared across a restore.
type alertMaps struct {
	firing, seen map[uint64]uint64
	sigFiring    map[uint64]int
	keys         []uint64
}

func alertMapsOf(e *Engine) map[string]alertMaps {
	out := map[string]alertMaps{}
	for _, g := range e.groups {
		if !g.merged {
			out[g.inc.ID] = alertMaps{g.firing, g.seen, g.sigFiring, g.keys}
		}
	}
	return out
}

// TestRestoreKeepsAlertMaps: the firing, seen and signature maps and the
// index keys, packed since version 3, come back exactly from a checkpoint;
// version 2 records, which wrote them as JSON objects, restore to the same;
// a packed map cut short fails the restore, naming its record.
func TestRestoreKeepsAlertMaps(t *testing.T) {
	var steps []step
	for i := range 40 {
		steps = append(steps, step{at: time.Duration(i) * time.Second, id: fmt.Sprintf("e%d", i), ci: fmt.Sprintf("h%d", i%4), alert: fmt.Sprintf("A%d", i%7)})
	}
	for i := range 10 { // some resolve: firing shrinks, seen does not
		steps = append(steps, step{at: time.Duration(40+i) * time.Second, id: fmt.Sprintf("r%d", i), ci: fmt.Sprintf("h%d", i%4), alert: fmt.Sprintf("A%d", i%7), resolved: true})
	}
	e, _ := run(t, DefaultConfig(), steps)
	want := alertMapsOf(e)
	firing, seen := 0, 0
	for _, m := range want {
		firing, seen = firing+len(m.firing), seen+len(m.seen)
	}
	if firing == 0 || firing == seen {
		t.Fatalf("the steps should leave firing and resolved alerts: %d firing of %d seen", firing, seen)
	}
	records, err := e.AppendChanges(nil)
	if err != nil {
		t.Fatal(err)
	}
	topo := fixture(t)
	restore := func(recs []StateRecord) (*Engine, error) {
		r := New(DefaultConfig(), func() Topology { return topo })
		return r, r.Restore(recs)
	}
	r, err := restore(records)
	if err != nil {
		t.Fatal(err)
	}
	if got := alertMapsOf(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored alert maps\n%+v\nwant\n%+v", got, want)
	}

	var v2, cut []StateRecord
	for _, rec := range records {
		if !strings.HasPrefix(rec.Key, stateKeyGroupPrefx) {
			v2, cut = append(v2, rec), append(cut, rec)
			continue
		}
		if !strings.Contains(string(rec.Value), `"firing_packed":"`) || strings.Contains(string(rec.Value), `"firing":{`) {
			t.Fatalf("group record without packed maps: %s", rec.Value)
		}
		var s groupState
		if err := segjson.Unmarshal(rec.Value, &s); err != nil {
			t.Fatal(err)
		}
		if err := s.unpackAlerts(); err != nil {
			t.Fatal(err)
		}
		short := s
		short.FiringPacked = short.FiringPacked[:len(short.FiringPacked)-3]
		s.packedAlerts, s.V = packedAlerts{}, 2
		v, err := stdjson.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		v2 = append(v2, StateRecord{Key: rec.Key, Value: v})
		if v, err = stdjson.Marshal(&short); err != nil {
			t.Fatal(err)
		}
		cut = append(cut, StateRecord{Key: rec.Key, Value: v})
	}
	if r, err = restore(v2); err != nil {
		t.Fatal(err)
	}
	if got := alertMapsOf(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored from version 2 records\n%+v\nwant\n%+v", got, want)
	}
	if _, err := restore(cut); err == nil || !strings.Contains(err.Error(), "firing_packed") || !strings.Contains(err.Error(), stateKeyGroupPrefx) {
		t.Fatalf("a cut packed map restored with error %v", err)
	}
}

// TestMemberRecordLeavesOutEmptyFields: a member record carries only the
// fields that are set, and a record of every field (as builds before
// 2026-11-25 wrote them, empty ones included) reads back as the same
// member, as does a record without the empty ones.
func TestMemberRecordLeavesOutEmptyFields(t *testing.T) {
	labels := memberState{Member: Member{EventID: "e1", Reason: ReasonLabels, Offset: 2 * time.Second,
		Severity: "major", Symptom: "HostDown"}, Seq: 7}
	full := memberState{Member: Member{EventID: "e2", CI: "app1", Reason: ReasonTopology, RelatedCI: "db1",
		Path: []string{"app1", "db1"}, Hops: 1, Offset: time.Second, MergedFrom: "INC-1", Severity: "minor",
		Symptom: "Latency"}, Seq: 8}
	v, err := segjson.Append(nil, []memberState{labels, full}, stateEncoding)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"CI"`, `"RelatedCI"`, `"Path"`, `"Hops"`, `"MergedFrom"`} {
		if n := strings.Count(string(v), name); n != 1 {
			t.Errorf("%s appears %d times, want once (only in the member that has it): %s", name, n, v)
		}
	}
	var back []memberState
	if err := segjson.Unmarshal(v, &back); err != nil {
		t.Fatal(err)
	}
	old := `[{"EventID":"e1","CI":"","Reason":"labels","RelatedCI":"","Path":null,"Hops":0,"Offset":"2s","MergedFrom":"",` +
		`"Severity":"major","Symptom":"HostDown","seq":7}]`
	var fromOld []memberState
	if err := segjson.Unmarshal([]byte(old), &fromOld); err != nil {
		t.Fatal(err)
	}
	want := []memberState{labels, full}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("read back %+v, want %+v", back, want)
	}
	if !reflect.DeepEqual(fromOld, want[:1]) {
		t.Errorf("old record read back %+v, want %+v", fromOld, want[:1])
	}
}
