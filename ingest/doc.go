// Package ingest turns what monitors send into canonical events: it decodes
// Alertmanager webhooks, Alertmanager API v2 alert lists and canonical event
// JSON, consumes them from Kafka (github.com/segmentio/kafka-go) and takes them
// over HTTP.
//
// Delivery is at least once. The Kafka consumer commits an offset only once
// the Handler reports that everything decoded from it is durable, and it never
// stops on bad input: an undecodable message goes to the dead-letter topic with
// the reason in a header, and its good siblings go on. The HTTP endpoints
// answer 2xx only once what they accepted is safe: acknowledged by the Kafka
// broker, or durable in the in-process pipeline when Kafka is off.
//
// Downstream stages are reached only through the Handler interface, so this
// package imports no package further down the flow.
package ingest
