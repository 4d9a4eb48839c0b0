// Package dashboards generates correlatord's Grafana dashboards as code,
// with the Grafana Foundation SDK, into the JSON models that
// deploy/grafana provisions:
//
//   - Operations overview: event flow, noise reduction, open incidents by
//     priority, SLA breaches;
//   - Incident KPIs: MTTA and MTTR by priority and service, SLA
//     compliance, escalations, reopen rate;
//   - Problem management: recurring root causes, problem candidates,
//     known-error matches, change-induced incidents, availability per
//     service;
//   - Pipeline health: ingest, Kafka lag, processing latency, ClickHouse
//     writes, dead letters, reloads.
//
// Panels query Prometheus (the daemon's correlator_* metrics, live) or
// ClickHouse through the official grafana-clickhouse-datasource plugin
// (history: analytics.TrendQueries and the SQL of sql.go). Every
// dashboard has the variables service, priority and site (multi-value,
// with All); Prometheus metrics carry no site, so site filters only the
// ClickHouse panels, through the CMDB's site attribute.
//
// Dashboards returns each dashboard's JSON and its queries, read back from
// the JSON, and Query.Render substitutes a Selection into a query as
// Grafana would, so that a test can run every panel's query against the
// real Prometheus and ClickHouse (cmd/correlatord's
// TestDashboardQueries). The files in deploy/grafana/dashboards are
// generated: `go run ./dashboards/cmd/gen -out deploy/grafana/dashboards`
// (or `go test ./dashboards -update`); a test fails when they differ from
// what the code generates.
package dashboards
