package dashboards

// Label selectors of the filter variables (label=~"$var": All is .*).
const (
	byPriority        = `priority=~"$priority"`
	byPriorityService = `priority=~"$priority", service=~"$service"`
)

// operations is the Operations overview: event flow, noise reduction,
// open incidents by priority, SLA breaches.
func operations(d *board, o Options) error {
	bySeverity, err := trendByName("events_per_minute_by_severity")
	if err != nil {
		return err
	}
	byPriorityPerDay, err := filtered("incidents_per_day_by_priority", "incidents", incidentFilter)
	if err != nil {
		return err
	}
	db := o.Database
	s4 := size{4, 4}

	d.row("Overview")
	d.stat("Events received", "Events accepted by ingest in the range (every transport).", "short", s4,
		prom(`sum(increase(correlator_ingest_events_received_total[$__range]))`, ""))
	d.stat("Incidents created", "Incidents opened in the range.", "short", s4,
		prom(`sum(increase(correlator_incidents_created_total{`+byPriorityService+`}[$__range]))`, ""))
	d.stat("Noise reduction", "Events received per incident created in the range: how many alerts one incident stands for.", "short", s4,
		prom(`sum(increase(correlator_ingest_events_received_total[$__range])) / sum(increase(correlator_incidents_created_total[$__range]))`, ""))
	d.stat("Suppressed by rules", "Share of the events the rules stage did not pass on to correlation (dropped, deduplicated, held, recorded only).", "percentunit", s4,
		prom(`1 - sum(increase(correlator_rules_events_total{outcome="pass"}[$__range])) / sum(increase(correlator_rules_events_total[$__range]))`, ""))
	d.stat("Open incidents", "Incidents not resolved or closed now.", "short", s4,
		prom(`sum(correlator_incidents_open{`+byPriority+`, status!="resolved"})`, ""))
	d.stat("SLA breaches", "Response and resolution targets missed in the range.", "short", s4,
		prom(`sum(increase(correlator_sla_breaches_total{`+byPriority+`}[$__range]))`, ""))

	d.row("Event flow")
	d.timeseries("Events per second", "Events accepted by transport, and events or payloads rejected by reason.", "short", size{12, 8},
		prom(`sum by (transport) (rate(correlator_ingest_events_received_total[$__rate_interval]))`, "received {{transport}}"),
		prom(`sum by (reason) (rate(correlator_ingest_events_rejected_total[$__rate_interval]))`, "rejected {{reason}}"))
	d.timeseries("Rules stage decisions per second", "What the rules stage decided about each event: pass goes on to correlation.", "short", size{12, 8},
		prom(`sum by (outcome) (rate(correlator_rules_events_total[$__rate_interval]))`, "{{outcome}}"))
	d.timeseries(bySeverity.Title, "Distinct events stored in ClickHouse, per minute.", bySeverity.Unit, size{12, 8}, trend(bySeverity, db))
	d.timeseries(eventsPerMinuteBySite.Title, "Distinct events stored in ClickHouse per minute, by the site label the CMDB enriches.", eventsPerMinuteBySite.Unit, size{12, 8},
		trend(eventsPerMinuteBySite, db))

	d.row("Incidents")
	d.bargauge("Open incidents by priority", "Incidents not resolved or closed now.", "short", size{8, 8},
		prom(`sum by (priority) (correlator_incidents_open{`+byPriority+`, status!="resolved"})`, "{{priority}}"))
	d.timeseries("Incidents not closed by status", "Open and resolved (not yet closed) incidents by status.", "short", size{8, 8},
		prom(`sum by (status) (correlator_incidents_open{`+byPriority+`})`, "{{status}}"))
	d.bars("Incidents created by priority", "Incidents opened per interval.", "short", size{8, 8},
		prom(`sum by (priority) (increase(correlator_incidents_created_total{`+byPriorityService+`}[$__rate_interval]))`, "{{priority}}"))
	d.bars("SLA breaches by kind", "Response and resolution targets missed per interval.", "short", size{12, 8},
		prom(`sum by (kind) (increase(correlator_sla_breaches_total{`+byPriority+`}[$__rate_interval]))`, "{{kind}}"))
	d.bars(byPriorityPerDay.Title, "From ClickHouse: incidents by the day they opened (event time).", byPriorityPerDay.Unit, size{12, 8},
		trend(byPriorityPerDay, db))
	d.table(openIncidents.Title, "From ClickHouse: incidents opened in the range that are not resolved or closed, highest priority first.", "", size{24, 10},
		trend(openIncidents, db))
	return nil
}
