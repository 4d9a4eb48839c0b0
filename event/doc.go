// Package event holds correlatord's canonical event model and nothing else.
//
// Every input format (Alertmanager webhooks, Alertmanager API v2 alert lists,
// canonical JSON, later logs and change records) is decoded into an Event by
// the ingest package. Every later stage (rules, correlate, incidents,
// analytics) reads only this type, so the model is kept small, stable and
// documented as a JSON schema in docs/schema/event.schema.json.
//
// Normalize fills the derived fields (fingerprint, id, severity from labels)
// so that repeated deliveries of one alert share a fingerprint and an exact
// re-delivery of one event shares its id: downstream stages rely on both for
// idempotency under Kafka's at-least-once delivery.
package event
