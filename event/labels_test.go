package event

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	segjson "github.com/segmentio/encoding/json"
)

// TestLabelsLookup: Get and Lookup find every label and no other, by scan
// (a few labels) and by binary search (more than linearLookupMax).
func TestLabelsLookup(t *testing.T) {
	for _, n := range []int{0, 1, 6, linearLookupMax, linearLookupMax + 1, 100} {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("l%03d", i)] = fmt.Sprintf("v%d", i)
		}
		ls := FromMap(m)
		if !ls.Sorted() || len(ls) != n {
			t.Fatalf("FromMap of %d: %v", n, ls)
		}
		for k, v := range m {
			if got, ok := ls.Lookup(k); !ok || got != v || ls.Get(k) != v {
				t.Errorf("%d labels: Lookup(%q) = %q, %v, want %q", n, k, got, ok, v)
			}
		}
		for _, absent := range []string{"", "l", "l0000", "zzz", "a"} {
			if got, ok := ls.Lookup(absent); ok || got != "" {
				t.Errorf("%d labels: Lookup(%q) = %q, %v, want none", n, absent, got, ok)
			}
		}
	}
}

// TestLabelsSetAndDeleteCopy: Set and Delete give labels that are still
// sorted and leave the labels they were called on as they were, even when
// those have room to grow, which an append would write into.
func TestLabelsSetAndDeleteCopy(t *testing.T) {
	backing := make(Labels, 0, 10)
	ls := append(backing, Label{"a", "1"}, Label{"c", "3"})
	before := slices.Clone(ls)
	for _, tc := range []struct {
		got  Labels
		want map[string]string
	}{
		{ls.Set("b", "2"), map[string]string{"a": "1", "b": "2", "c": "3"}},
		{ls.Set("c", "x"), map[string]string{"a": "1", "c": "x"}},
		{ls.Set("0", "z"), map[string]string{"0": "z", "a": "1", "c": "3"}},
		{ls.Set("d", "4"), map[string]string{"a": "1", "c": "3", "d": "4"}},
		{ls.Delete("a"), map[string]string{"c": "3"}},
		{ls.Delete("b"), map[string]string{"a": "1", "c": "3"}},
		{Labels(nil).Set("a", "1"), map[string]string{"a": "1"}},
	} {
		if !tc.got.Sorted() || !maps.Equal(tc.got.Map(), tc.want) {
			t.Errorf("got %v, want %v", tc.got, tc.want)
		}
	}
	if !slices.Equal(ls, before) || !slices.Equal(backing[:2], before) || backing[:3][2] != (Label{}) {
		t.Errorf("the original changed: %v, its array %v", ls, backing[:3])
	}
}

// TestSortLabels: SortLabels orders by name and, of a repeated name, keeps
// the last value given, as assigning the pairs to a map in order would.
func TestSortLabels(t *testing.T) {
	for _, n := range []int{3, linearLookupMax + 5} {
		var in Labels
		m := map[string]string{}
		for i := range n {
			name := fmt.Sprintf("n%d", (i*7)%(n-1)) // one name twice
			value := fmt.Sprintf("v%d", i)
			in = append(in, Label{name, value})
			m[name] = value
		}
		got := SortLabels(slices.Clone(in))
		if !got.Sorted() || !maps.Equal(got.Map(), m) {
			t.Errorf("%d: SortLabels(%v) = %v, want %v", n, in, got, m)
		}
	}
}

// TestLabelsJSON: Labels write the JSON a map of strings writes, in both
// encoders the daemon uses, nil as null and empty as {}, and read it back,
// a repeated name keeping its last value.
func TestLabelsJSON(t *testing.T) {
	for _, m := range []map[string]string{nil, {}, {"b": "<2>", "a": "1&", "é": "\"q\"\n"}} {
		ls := FromMap(m)
		for name, marshal := range map[string]func(any) ([]byte, error){"encoding/json": json.Marshal, "segmentio": segjson.Marshal} {
			got, err := marshal(ls)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := marshal(m)
			if string(got) != string(want) {
				t.Errorf("%s: %s, a map gives %s", name, got, want)
			}
			var back Labels
			if err := json.Unmarshal(got, &back); err != nil || !slices.Equal(back, ls) || (back == nil) != (ls == nil) {
				t.Errorf("%s: %s read back as %#v (%v), want %#v", name, got, back, err, ls)
			}
		}
	}
	var ls Labels
	if err := json.Unmarshal([]byte(`{"a":"1","a":"2"}`), &ls); err != nil || ls.Get("a") != "2" || len(ls) != 1 {
		t.Errorf("repeated name: %v, %v", ls, err)
	}
	if err := json.Unmarshal([]byte(`{"a":1}`), &ls); err == nil {
		t.Error("a number value was accepted")
	}
}

// TestCheckLabelsWantsThemSorted: labels out of order, or with a name
// twice, are refused: every lookup would miss them.
func TestCheckLabelsWantsThemSorted(t *testing.T) {
	for _, ls := range []Labels{{{"b", "1"}, {"a", "2"}}, {{"a", "1"}, {"a", "2"}}} {
		if err := CheckLabels(ls); err == nil {
			t.Errorf("CheckLabels(%v) accepted them", ls)
		}
	}
}
