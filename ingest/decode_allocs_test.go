//go:build !race

package ingest

import (
	"testing"

	"github.com/correlatord/correlatord/event"
)

// TestDecodeAllocs keeps the allocations per decoded alert from creeping up:
// the garbage they make is a good part of the decoder's cost. A webhook alert
// takes six: its packed strings, two allocations for each of its two maps,
// and its derived ID.
func TestDecodeAllocs(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		data   []byte
		max    float64 // per alert
	}{
		{"webhook", FormatAlertmanagerWebhook, benchWebhook(t), 6},
		// Normalize computes the fingerprint, which costs two more: the
		// sorted label names and the hex digits.
		{"alert list", FormatAlertList, benchAlertList(t), 8},
		{"JSON lines", FormatEvents, benchEventLines(t), 8.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Limits{}, event.DefaultDefaults)
			events, _ := d.Decode(tt.format, tt.data, testNow, nil)
			allocs := testing.AllocsPerRun(20, func() {
				events, _ = d.Decode(tt.format, tt.data, testNow, events[:0])
			})
			if perAlert := allocs / benchAlerts; perAlert > tt.max {
				t.Errorf("%.2f allocations per alert, want at most %.1f", perAlert, tt.max)
			}
		})
	}
}
