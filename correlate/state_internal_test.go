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

// TestRestoreReadsEncodingJSONRecords: changelogs written before the state
// encoder changed (encoding/json: durations as nanoseconds) still restore,
// to the same incidents as records of the current encoder (durations as
// text).
func TestRestoreReadsEncodingJSONRecords(t *testing.T) {
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
	old := make([]StateRecord, len(records))
	groups := 0
	for i, r := range records {
		old[i] = r
		if !strings.HasPrefix(r.Key, stateKeyGroupPrefx) {
			continue
		}
		groups++
		var s groupState
		if err := segjson.Unmarshal(r.Value, &s); err != nil {
			t.Fatal(err)
		}
		if old[i].Value, err = stdjson.Marshal(&s); err != nil {
			t.Fatal(err)
		}
		// The two encodings differ where it matters: the member offsets.
		if !strings.Contains(string(r.Value), `"Offset":"10s"`) || !strings.Contains(string(old[i].Value), `"Offset":10000000000`) {
			t.Fatalf("offsets not as expected:\n new %s\n old %s", r.Value, old[i].Value)
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
		t.Fatalf("restored from encoding/json records:\n%+v\nwant\n%+v", got, want)
	}
	if got := fromNew.Incidents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored from current records:\n%+v\nwant\n%+v", got, want)
	}
}
