package dashboards

// problems is Problem management: recurring root causes, problem
// candidates, known-error matches, change-induced incidents and
// availability per service.
func problems(d *board, o Options) error {
	inc, err := trends("incidents", incidentFilter, "top_root_cause_cis", "incidents_per_day_by_category")
	if err != nil {
		return err
	}
	prob, err := trends("problems", problemFilter, "problem_backlog")
	if err != nil {
		return err
	}
	topRootCauses, byCategory, backlog := inc[0], inc[1], prob[0]
	db := o.Database
	s6 := size{6, 4}

	d.row("Problems")
	d.stat("Problem candidates raised", "Problem candidates raised in the range (recurring, major incident, rate anomaly).", "short", s6,
		prom(`sum(increase(correlator_problem_candidates_total[$__range]))`, ""))
	d.stat("Problem backlog", "Problems not closed or rejected now.", "short", s6,
		prom(`sum(correlator_problems_open)`, ""))
	d.stat("Known-error matches", "New incidents that matched a known error (and got its workaround) in the range.", "short", s6,
		prom(`sum(increase(correlator_known_error_matches_total[$__range]))`, ""))
	d.stat("Change-induced incidents", "Incidents flagged as caused by a change completed shortly before their onset, in the range.", "short", s6,
		prom(`sum(increase(correlator_change_induced_incidents_total[$__range]))`, ""))
	d.bargauge("Problem candidates by reason", "Raised in the range.", "short", size{8, 8},
		prom(`sum by (reason) (increase(correlator_problem_candidates_total[$__range]))`, "{{reason}}"))
	d.timeseries("Problem backlog by status", "Problems not closed or rejected, by status.", "short", size{8, 8},
		prom(`sum by (status) (correlator_problems_open)`, "{{status}}"))
	d.bargauge(problemsByReason.Title, "From ClickHouse: problems raised in the range.", problemsByReason.Unit, size{8, 8},
		trend(problemsByReason, db))
	d.timeseries(backlog.Title, "From ClickHouse: problems open at the end of each day, by status, from their status history.", backlog.Unit, size{12, 8},
		trend(backlog, db))
	d.table(problemCandidates.Title, "From ClickHouse: problems raised in the range, newest first.", "", size{12, 8},
		trend(problemCandidates, db))

	d.row("Recurring root causes")
	d.table(topRootCauses.Title, "From ClickHouse: root-cause CIs and categories of more than one incident in the range.", "", size{12, 9},
		trend(topRootCauses, db))
	d.bars(byCategory.Title, "From ClickHouse: incidents by the day they opened.", byCategory.Unit, size{12, 9},
		trend(byCategory, db))

	d.row("Known errors and changes")
	d.timeseries("Known-error matches and change-induced incidents", "Per interval, with the incidents created for scale.", "short", size{12, 8},
		prom(`sum(increase(correlator_known_error_matches_total[$__rate_interval]))`, "known-error matches"),
		prom(`sum(increase(correlator_change_induced_incidents_total[$__rate_interval]))`, "change-induced"),
		prom(`sum(increase(correlator_incidents_created_total[$__rate_interval]))`, "incidents created"))
	d.stat("Known-error match rate", "Share of the incidents created in the range that matched a known error.", "percentunit", s6,
		prom(`sum(increase(correlator_known_error_matches_total[$__range])) / sum(increase(correlator_incidents_created_total[$__range]))`, ""))
	d.stat("Change-induced share", "Share of the incidents created in the range that a change caused.", "percentunit", s6,
		prom(`sum(increase(correlator_change_induced_incidents_total[$__range])) / sum(increase(correlator_incidents_created_total[$__range]))`, ""))
	d.table(knownErrorMatches.Title, "From ClickHouse: incidents opened in the range with a known error, by known error.", "", size{12, 8},
		trend(knownErrorMatches, db))
	d.table(changeInduced.Title, "From ClickHouse: incidents opened in the range that a change caused, by change.", "", size{12, 8},
		trend(changeInduced, db))

	d.row("Availability")
	d.bargauge("Availability by service (metrics)", "1 - downtime in the range / the range, from the resolved outage and unreachable incidents impacting each service (Prometheus).", "percentunit", size{12, 9},
		prom(`clamp_min(1 - sum by (service) (increase(correlator_service_downtime_seconds_total{service=~"$service"}[$__range])) / $__range_s, 0)`, "{{service}}"))
	d.table(availabilityByService.Title, "From ClickHouse: the part of each resolved outage or unreachable incident within the range; services without one are not listed.", "", size{12, 9},
		trend(availabilityByService, db))
	d.bars("Service downtime", "Downtime added per interval (at each incident's resolution), by service.", "s", size{24, 8},
		prom(`sum by (service) (increase(correlator_service_downtime_seconds_total{service=~"$service"}[$__rate_interval]))`, "{{service}}"))
	return nil
}
