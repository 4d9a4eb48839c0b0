package main

import (
	"encoding/json"
	"net/http"

	"github.com/correlatord/correlatord/cmdb"
)

// registerIncidentAPI serves the correlation state of this instance's
// partitions: GET /api/v1/incidents lists the live and recently closed
// incidents in replay's --out format, optionally filtered by ?status=open
// or resolved.
func registerIncidentAPI(mux *http.ServeMux, state *stateStage, topology func() *cmdb.Topology) {
	mux.HandleFunc("GET /api/v1/incidents", func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		if status != "" && status != "open" && status != "resolved" {
			writeStatus(w, http.StatusBadRequest, map[string]any{"status": "error", "error": "status: must be open or resolved, got " + status})
			return
		}
		var topo *cmdb.Topology
		if topology != nil {
			topo = topology()
		}
		out := []replayIncident{}
		incs, recs := state.incidents()
		for _, in := range incs {
			if status != "" && string(in.Status) != status {
				continue
			}
			out = append(out, newReplayIncident(in, topo, recs[in.ID]))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}
