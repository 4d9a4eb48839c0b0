package dashboards

// incidentKPIs is Incident KPIs: MTTA and MTTR by priority and service,
// SLA compliance, escalations and reopen rate.
func incidentKPIs(d *board, o Options) error {
	qs, err := trends("incidents", incidentFilter, "mttr_by_service", "sla_compliance_monthly", "sla_compliance_by_priority")
	if err != nil {
		return err
	}
	mttrByService, slaMonthly, slaByPriority := qs[0], qs[1], qs[2]
	db := o.Database
	const (
		ack     = "correlator_incident_time_to_acknowledge_seconds"
		resolve = "correlator_incident_time_to_resolve_seconds"
	)
	meanOver := func(metric, sel, by string) string {
		return `sum` + by + ` (increase(` + metric + `_sum{` + sel + `}[$__range])) / sum` + by + ` (increase(` + metric + `_count{` + sel + `}[$__range]))`
	}
	quantile := func(q, metric, sel, by string) string {
		return `histogram_quantile(` + q + `, sum by (le, ` + by + `) (rate(` + metric + `_bucket{` + sel + `}[$__rate_interval])))`
	}

	d.row("Response and resolution")
	s6 := size{6, 4}
	d.stat("MTTA", "Mean time from opening to acknowledgement of the incidents acknowledged in the range.", "s", s6,
		prom(meanOver(ack, byPriority, ""), ""))
	d.stat("MTTR", "Mean time from opening to resolution of the incidents resolved in the range.", "s", s6,
		prom(meanOver(resolve, byPriorityService, ""), ""))
	d.stat("Resolution SLA met", "1 - resolution targets missed / incidents resolved, in the range (a breach counts when it happens, the resolution when it happens).", "percentunit", s6,
		prom(`clamp_min(1 - sum(increase(correlator_sla_breaches_total{kind="resolution", `+byPriority+`}[$__range])) / sum(increase(correlator_incidents_resolved_total{`+byPriority+`}[$__range])), 0)`, ""))
	d.stat("Reopen rate", "Incidents reopened per incident resolved, in the range.", "percentunit", s6,
		prom(`sum(increase(correlator_incidents_reopened_total[$__range])) / sum(increase(correlator_incidents_resolved_total[$__range]))`, ""))
	d.timeseries("MTTA by priority (p50, p90)", "Time to acknowledge, from the histogram of acknowledgements per interval.", "s", size{12, 8},
		prom(quantile("0.5", ack, byPriority, "priority"), "{{priority}} p50"),
		prom(quantile("0.9", ack, byPriority, "priority"), "{{priority}} p90"))
	d.timeseries("MTTR by priority (p50, p90)", "Time to resolve, from the histogram of resolutions per interval.", "s", size{12, 8},
		prom(quantile("0.5", resolve, byPriorityService, "priority"), "{{priority}} p50"),
		prom(quantile("0.9", resolve, byPriorityService, "priority"), "{{priority}} p90"))
	d.bargauge("MTTA by priority", "Mean over the range.", "s", size{8, 8}, prom(meanOver(ack, byPriority, " by (priority)"), "{{priority}}"))
	d.bargauge("MTTR by priority", "Mean over the range.", "s", size{8, 8}, prom(meanOver(resolve, byPriorityService, " by (priority)"), "{{priority}}"))
	d.bargauge("MTTR by service", "Mean over the range, by first impacted service.", "s", size{8, 8},
		prom(meanOver(resolve, byPriorityService, " by (service)"), "{{service}}"))
	d.table(responseAndResolutionByPriority.Title, "From ClickHouse.", "s", size{12, 8},
		trend(responseAndResolutionByPriority, db))
	d.table(responseAndResolutionByService.Title, "From ClickHouse: an incident counts for every service it impacts, not only the first.", "s", size{12, 8},
		trend(responseAndResolutionByService, db))
	d.timeseries(mttrByService.Title, "From ClickHouse: mean and 90th percentile of the time to resolve, by the day of resolution.", mttrByService.Unit, size{24, 8},
		trend(mttrByService, db))

	d.row("SLA compliance")
	d.bargauge("Resolution SLA met by priority", "From Prometheus, over the range.", "percentunit", size{8, 8},
		prom(`clamp_min(1 - sum by (priority) (increase(correlator_sla_breaches_total{kind="resolution", `+byPriority+`}[$__range])) / sum by (priority) (increase(correlator_incidents_resolved_total{`+byPriority+`}[$__range])), 0)`, "{{priority}}"))
	d.timeseries(slaMonthly.Title, "From ClickHouse: share of the incidents resolved in each month that met their targets.", slaMonthly.Unit, size{8, 8},
		trend(slaMonthly, db))
	d.table(slaByPriority.Title, "From ClickHouse: incidents resolved in the range.", slaByPriority.Unit, size{8, 8},
		trend(slaByPriority, db))
	d.bars("SLA breaches by priority and kind", "Targets missed per interval.", "short", size{12, 8},
		prom(`sum by (priority, kind) (increase(correlator_sla_breaches_total{`+byPriority+`}[$__rate_interval]))`, "{{priority}} {{kind}}"))
	d.bars(breachesPerDay.Title, "From ClickHouse: the breaches of the incidents' timelines.", breachesPerDay.Unit, size{12, 8},
		trend(breachesPerDay, db))

	d.row("Escalations, reopens and closure")
	d.bars("Escalations by level", "Escalation steps per interval, by the level escalated to.", "short", size{8, 8},
		prom(`sum by (level) (increase(correlator_incident_escalations_total[$__rate_interval]))`, "{{level}}"))
	d.bars(escalationsPerDay.Title, "From ClickHouse: the escalations of the incidents' timelines.", escalationsPerDay.Unit, size{8, 8},
		trend(escalationsPerDay, db))
	d.timeseries(reopenRatePerDay.Title, "From ClickHouse: share of the incidents opened each day that were reopened.", reopenRatePerDay.Unit, size{8, 8},
		trend(reopenRatePerDay, db))
	d.bargauge("Resolved by how", "Incidents resolved in the range: auto (every alert cleared) or manual.", "short", size{8, 8},
		prom(`sum by (how) (increase(correlator_incidents_resolved_total{`+byPriority+`}[$__range]))`, "{{how}}"))
	d.bargauge("Closed by how", "Incidents closed in the range: auto (after incidents.auto_close_after), manual or merged.", "short", size{8, 8},
		prom(`sum by (how) (increase(correlator_incidents_closed_total[$__range]))`, "{{how}}"))
	d.bargauge("Operator actions", "Operator actions in the range, by action and result.", "short", size{8, 8},
		prom(`sum by (action, result) (increase(correlator_operator_actions_total[$__range]))`, "{{action}} {{result}}"))
	return nil
}
