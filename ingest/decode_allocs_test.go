//go:build !race

package ingest

import (
	"testing"

	"github.com/correlatord/correlatord/event"
)

// TestDecodeAllocs keeps the allocations per decoded alert from creeping up:
// the garbage they make is a good part of the decoder's cost. An
// Alertmanager alert takes two: its packed strings (with the fingerprint
// and derived id, computed into them) and one array for its labels and
// annotations (until 2026-11-25 they were two maps of two allocations
// each).
func TestDecodeAllocs(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		data   []byte
		max    float64 // per alert
	}{
		{"webhook", FormatAlertmanagerWebhook, benchWebhook(t), 2},
		{"alert list", FormatAlertList, benchAlertList(t), 2},
		{"JSON lines", FormatEvents, benchEventLines(t), 4.1},
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
