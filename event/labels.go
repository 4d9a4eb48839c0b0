package event

import (
	"encoding/json"
	"slices"
	"strings"
)

// Label is one label or annotation of an event: a name and its value.
type Label struct {
	Name  string
	Value string
}

// Labels are an event's labels, or its annotations: sorted by name, each name
// once. In JSON they are an object, as a map of strings would be.
//
// They are a slice rather than a map because every event has a handful of
// them, and a Go map costs a header and a group of eight slots, allocated
// and cleared, however few entries it holds: building an event's two maps
// was a tenth of the daemon's CPU over HTTP with Kafka on (a map of one
// annotation cost nearly as much as one of six labels). A decoder puts an
// event's labels and annotations in one array; a lookup scans a few
// entries.
//
// Copies of an event share its Labels, as they shared its maps. Never change
// a Labels in place: Set returns a new one.
type Labels []Label

// linearLookupMax is the length up to which Lookup scans rather than
// searches: a scan of a few entries is faster than a binary search.
const linearLookupMax = 16

// Get returns the value of the label called name, "" if there is none.
func (ls Labels) Get(name string) string {
	v, _ := ls.Lookup(name)
	return v
}

// Lookup returns the value of the label called name, and whether there is
// one.
func (ls Labels) Lookup(name string) (string, bool) {
	if len(ls) <= linearLookupMax {
		for i := range ls {
			if ls[i].Name == name {
				return ls[i].Value, true
			}
		}
		return "", false
	}
	i, ok := ls.search(name)
	if !ok {
		return "", false
	}
	return ls[i].Value, true
}

func (ls Labels) search(name string) (int, bool) {
	return slices.BinarySearchFunc(ls, name, func(l Label, n string) int { return strings.Compare(l.Name, n) })
}

// Set returns labels with name set to value: a new slice, ls unchanged.
func (ls Labels) Set(name, value string) Labels {
	i, ok := ls.search(name)
	if ok {
		out := slices.Clone(ls)
		out[i].Value = value
		return out
	}
	out := make(Labels, 0, len(ls)+1)
	out = append(out, ls[:i]...)
	out = append(out, Label{Name: name, Value: value})
	return append(out, ls[i:]...)
}

// Delete returns labels without the one called name: ls itself if it has
// none, else a new slice, ls unchanged.
func (ls Labels) Delete(name string) Labels {
	i, ok := ls.search(name)
	if !ok {
		return ls
	}
	out := make(Labels, 0, len(ls)-1)
	return append(append(out, ls[:i]...), ls[i+1:]...)
}

// Map returns the labels as a map: nil for nil labels, empty for empty ones.
func (ls Labels) Map() map[string]string {
	if ls == nil {
		return nil
	}
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// FromMap returns the entries of m as Labels: nil for a nil map, empty (not
// nil) for an empty one, so that an event's JSON stays what it was.
func FromMap(m map[string]string) Labels {
	if m == nil {
		return nil
	}
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// SortLabels sorts ls by name in place, removes repeated names, keeping the
// last one given (as assigning them to a map in order would), and returns
// the result, which shares ls's array.
func SortLabels(ls Labels) Labels {
	if len(ls) <= linearLookupMax {
		// Insertion sort: stable, no allocation, fast for a few.
		for i := 1; i < len(ls); i++ {
			for j := i; j > 0 && ls[j].Name < ls[j-1].Name; j-- {
				ls[j], ls[j-1] = ls[j-1], ls[j]
			}
		}
	} else {
		slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	}
	out := ls[:0]
	for i := range ls {
		if i+1 < len(ls) && ls[i+1].Name == ls[i].Name {
			continue // a later one of the same name wins
		}
		out = append(out, ls[i])
	}
	clear(ls[len(out):]) // keeps no strings alive beyond the result
	return out
}

// Sorted reports whether ls is sorted by name with each name once, as
// Labels must be.
func (ls Labels) Sorted() bool {
	for i := 1; i < len(ls); i++ {
		if ls[i-1].Name >= ls[i].Name {
			return false
		}
	}
	return true
}

// MarshalJSON writes the labels as a JSON object in order of name, as
// encoding/json writes a map of strings; nil labels are null, as a nil map
// is.
func (ls Labels) MarshalJSON() ([]byte, error) {
	if ls == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(ls)*24)
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(l.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(l.Value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads a JSON object of strings (null: nil labels). A name
// given twice keeps its last value, as with a map.
func (ls *Labels) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*ls = FromMap(m)
	return nil
}
