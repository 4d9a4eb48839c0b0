// Package logs turns log records from Kafka into events.
//
// # Flow
//
// A Kafka message of a logs topic is decoded by a Decoder into Records: a
// plain text line (the whole payload is the message; a level is guessed
// from a word such as ERROR near its start, a leading RFC 3339 or syslog
// time stamp is read), or JSON as Vector, Fluent Bit, Filebeat and the
// OpenTelemetry JSON export (resourceLogs[].scopeLogs[].logRecords[], many
// records per message) ship it. The fields are found through configurable
// paths (FieldsConfig). A record the decoder cannot use (no message, an
// unreadable time stamp) is a DecodeError naming the record and the field;
// its siblings in the same payload survive. The consumer writes a payload
// with errors to the dead-letter topic like an alert payload (Reason and
// Describe give the header values).
//
// A Processor (one per partition, not safe for concurrent use) takes the
// records in order:
//
//  1. The first line of the message is mined into a template with
//     logtemplate (Drain family): a template id, its text, and the
//     parameters of this line.
//  2. The record is bound to a CI through a Binder (the CMDB), with the
//     labels host, instance (= host), pod, namespace, service and container
//     set; the CMDB's bind_labels order decides which wins. The record's
//     subject is the CI, else its host, else namespace/pod, else service.
//  3. The record is counted per (subject, template) and minute of record
//     time. When a minute closes its count becomes a CountRow (Counts, for
//     ClickHouse) and is compared with the key's baseline, an exponentially
//     weighted moving average of the minutes before: a count of at least
//     anomaly.factor (10) times the baseline and at least
//     anomaly.min_count (20), on a key tracked for anomaly.min_history
//     (15m), makes one LogRateAnomaly event, at most one per key per
//     anomaly.cooldown (30m).
//  4. The record makes an event when a watch_templates rule matches it
//     (LogWatched), else when its template is new and its level at least
//     new_template_level (LogNewTemplate; default error), else when its level
//     is at least min_level (LogError; default error).
//  5. Aggregation: the first such record of a (subject, template) key is
//     emitted at once, with count 1, and opens a window of
//     aggregate_window (1m, from that record's time). Further qualifying
//     records of the key within the window only count. When the window
//     closes (Tick, once the watermark passes its end; a later record of the
//     key past its end; Flush; the key's eviction) and more than one record
//     was counted, one update event is emitted: the same fingerprint,
//     labels, summary and alertname as the opening event, the total count
//     (the first record included) in the count annotation, and last_seen.
//     1000 repeated error lines in a minute make two events, not 1000.
//
// Time is an input: windows and minutes run on record time, through a
// watermark (the latest record time; see DESIGN.md), never on the wall
// clock. Process, Tick and Flush take the caller's now.
//
// # Events
//
// Every event has Kind log, Status firing, CI the bound CI (empty when
// unbound), Source the shipper (vector, fluentbit, filebeat, otel, json,
// text; "logs" for anomalies), Time the first record's time (the last
// record's for an update), Summary the first line of the message (at most
// 1 KiB), and:
//
//   - Fingerprint: stable per (subject, template id), so every window of a
//     key, opening events and updates alike, shares it and joins one
//     incident downstream; anomalies have their own per key.
//   - ID: deterministic, a hash of the subject, template id, window start
//     and phase (open, update, anomaly): replaying the same records gives
//     the same ids.
//   - Severity: from the level (fatal and critical: critical; error: major;
//     warn: warning; else info), a watch rule's severity, or warning for an
//     anomaly.
//
// Labels (stable for the rules stage downstream; empty ones are left out):
//
//	alertname    LogError | LogNewTemplate | LogWatched | LogRateAnomaly
//	host         the record's host; instance repeats it, for CMDB binding
//	instance
//	pod, namespace, container, service
//	source       the shipper
//	level        trace, debug, info, warn, error, fatal or critical
//	template_id  16 hex digits (logtemplate.FormatID)
//	template     the template text, <*> for parameters (at most 1 KiB)
//	watch        the matching watch rule's name (LogWatched only)
//	rate         lines in the anomalous minute (LogRateAnomaly only)
//	baseline     the baseline, lines per minute, 2 decimals (LogRateAnomaly only)
//
// Annotations: template, count, first_seen, last_seen (RFC 3339), example
// (the first record's message, at most 4 KiB), the configured extra fields,
// and for anomalies rate and baseline.
//
// Watch rules match Alertmanager matchers over template_id, template,
// level, host, instance, service, pod, namespace, container, source, ci and
// param_0, param_1, ... (the line's template parameters, which are not
// labels of the event: they would make every line a new label set).
//
// # State
//
// The processor's state (the miner's templates, every key's minute,
// baseline and window, the count rows not yet handed over) is bounded by
// max_keys, key_ttl, max_pending_rows and the miner's max_templates, and
// persists through Snapshot and Restore, so template ids, fingerprints and
// windows survive a restart.
package logs
