package dashboards

// pipeline is Pipeline health: the daemon itself.
func pipeline(d *board, o Options) error {
	bySource, err := trendByName("events_per_minute_by_source")
	if err != nil {
		return err
	}
	db := o.Database
	s4 := size{4, 4}
	quantile := func(q, metric, by string) string {
		return `histogram_quantile(` + q + `, sum by (` + by + `) (rate(` + metric + `_bucket[$__rate_interval])))`
	}

	d.row("Status")
	// The scrape job is called correlatord in deploy/dev and by the Helm
	// chart's ServiceMonitor, as deploy/prometheus's rules assume.
	d.stat("Instances up", `Targets of the scrape job "correlatord" that answered the last scrape.`, "short", s4,
		prom(`sum(up{job="correlatord"})`, ""))
	d.stat("Dependencies down", "Dependencies (Kafka, ClickHouse) whose last readiness check failed, over every instance.", "short", s4,
		prom(`count(correlator_dependency_up == 0) or vector(0)`, ""))
	d.stat("Config reload", "1: the last configuration reload succeeded on every instance.", "short", s4,
		prom(`min(correlator_config_last_reload_successful)`, ""))
	d.stat("Rules reload", "1: the last load of the rule files succeeded on every instance.", "short", s4,
		prom(`min(correlator_rules_last_reload_successful)`, ""))
	d.stat("CMDB reload", "1: the last load of the CMDB succeeded on every instance.", "short", s4,
		prom(`min(correlator_cmdb_last_reload_successful)`, ""))
	d.stat("Keyed partitions assigned", "Partitions of the keyed topic owned by the instances (correlation state).", "short", s4,
		prom(`sum(correlator_partitions_assigned)`, ""))

	d.row("Ingest")
	d.timeseries("Events received per second by source", "", "short", size{8, 8},
		prom(`sum by (source) (rate(correlator_ingest_events_received_total[$__rate_interval]))`, "{{source}}"))
	d.timeseries("Kafka messages consumed and commits per second", "", "short", size{8, 8},
		prom(`sum by (topic) (rate(correlator_ingest_kafka_messages_consumed_total[$__rate_interval]))`, "consumed {{topic}}"),
		prom(`sum(rate(correlator_ingest_kafka_commits_total[$__rate_interval]))`, "commits"))
	d.timeseries("Kafka errors per second", "Fetch and commit errors are retried; produce errors answer HTTP ingest with 503.", "short", size{8, 8},
		prom(`sum(rate(correlator_ingest_kafka_fetch_errors_total[$__rate_interval]))`, "fetch"),
		prom(`sum(rate(correlator_ingest_kafka_commit_errors_total[$__rate_interval]))`, "commit"),
		prom(`sum(rate(correlator_ingest_kafka_produce_errors_total[$__rate_interval]))`, "produce"))
	d.timeseries("Consumer lag", "Messages not yet consumed: per keyed-topic partition from the instance that owns it, and per consumer group (input, log and outbox topics) from the broker, which every instance reports (hence max).", "short", size{12, 8},
		prom(`sum by (topic, partition) (correlator_kafka_consumer_lag)`, "{{topic}}/{{partition}}"),
		prom(`max by (group, topic) (correlator_kafka_group_lag)`, "{{group}} {{topic}}"))
	d.bars("Dead letters and rejected events", "Kafka messages dead-lettered and events rejected, per interval, by reason.", "short", size{12, 8},
		prom(`sum by (reason) (increase(correlator_ingest_dead_letter_messages_total[$__rate_interval]))`, "dead-lettered {{reason}}"),
		prom(`sum by (transport, reason) (increase(correlator_ingest_events_rejected_total[$__rate_interval]))`, "rejected {{transport}} {{reason}}"))
	d.timeseries(bySource.Title, "From ClickHouse: distinct events stored per minute.", bySource.Unit, size{12, 8}, trend(bySource, db))
	d.table(eventsByOutcome.Title, "From ClickHouse: events stored in the range by the rules stage's class and outcome.", "", size{12, 8},
		trend(eventsByOutcome, db))

	d.row("Processing")
	d.timeseries("Event to incident latency", "From an event's own timestamp to its incident update: ingest, Kafka, queueing and correlation.", "s", size{12, 8},
		prom(quantile("0.5", "correlator_event_to_incident_seconds", "le"), "p50"),
		prom(quantile("0.99", "correlator_event_to_incident_seconds", "le"), "p99"))
	d.timeseries("Batch accept time (backpressure)", "Time the pipeline takes to accept a batch from the Kafka consumer.", "s", size{12, 8},
		prom(quantile("0.5", "correlator_ingest_handle_duration_seconds", "le"), "p50"),
		prom(quantile("0.99", "correlator_ingest_handle_duration_seconds", "le"), "p99"))
	d.timeseries("Correlation updates per second", "Changes the correlation engine made to incidents, by kind.", "short", size{8, 8},
		prom(`sum by (kind) (rate(correlator_correlate_updates_total[$__rate_interval]))`, "{{kind}}"))
	d.timeseries("Rules and correlation state", "Entries of the rules stage's bounded state, and incidents live in the correlation state.", "short", size{8, 8},
		prom(`sum by (state) (correlator_rules_state_entries)`, "rules {{state}}"),
		prom(`sum(correlator_correlate_incidents_live)`, "live incidents"))
	d.timeseries("Partition checkpoints per second", "State written and offset committed, by result.", "short", size{8, 8},
		prom(`sum by (result) (rate(correlator_partition_checkpoints_total[$__rate_interval]))`, "{{result}}"))

	d.row("ClickHouse")
	d.timeseries("Rows written per second", "", "short", size{8, 8},
		prom(`sum by (table) (rate(correlator_analytics_rows_written_total[$__rate_interval]))`, "{{table}}"))
	d.timeseries("Batch size (rows per INSERT)", "", "short", size{8, 8},
		prom(quantile("0.5", "correlator_analytics_batch_rows", "le, table"), "{{table}} p50"),
		prom(quantile("0.99", "correlator_analytics_batch_rows", "le, table"), "{{table}} p99"))
	d.timeseries("INSERT latency", "Duration of INSERT attempts, failed ones included.", "s", size{8, 8},
		prom(quantile("0.5", "correlator_analytics_insert_duration_seconds", "le, table"), "{{table}} p50"),
		prom(quantile("0.99", "correlator_analytics_insert_duration_seconds", "le, table"), "{{table}} p99"))
	d.timeseries("Rows buffered", "Rows accepted and not yet written; at clickhouse.buffer_rows ingest waits.", "short", size{12, 8},
		prom(`sum by (table) (correlator_analytics_rows_buffered)`, "{{table}}"))
	d.timeseries("INSERT errors per second", "Failed INSERT attempts by reason; batches are retried.", "short", size{12, 8},
		prom(`sum by (table, reason) (rate(correlator_analytics_insert_errors_total[$__rate_interval]))`, "{{table}} {{reason}}"))

	d.row("Reloads")
	d.timeseries("Last reload successful", "1: the last reload succeeded; 0: it failed and the previous configuration, rules or topology is in use.", "short", size{12, 8},
		prom(`min(correlator_config_last_reload_successful)`, "config"),
		prom(`min(correlator_rules_last_reload_successful)`, "rules"),
		prom(`min(correlator_cmdb_last_reload_successful)`, "cmdb"))
	d.bars("Reloads", "Loads of the rule files by result, and failed loads of the CMDB, per interval.", "short", size{12, 8},
		prom(`sum by (result) (increase(correlator_rules_reloads_total[$__rate_interval]))`, "rules {{result}}"),
		prom(`sum(increase(correlator_cmdb_reload_failures_total[$__rate_interval]))`, "cmdb failure"))
	return nil
}
