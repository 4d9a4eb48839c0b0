// Package correlate is the pure correlation engine: it groups exception-class
// events into incident candidates by CMDB topology and event-time windows,
// names a root-cause candidate for each incident, and runs the incident
// lifecycle (hold-down resolution, reopen).
//
// The engine holds no clock: event time drives every window, and the caller
// moves the watermark with Advance. The same input gives the same incidents.
// An Engine is not safe for concurrent use; the runner owns it from one
// goroutine (Kafka partitioning gives each engine its own key space).
package correlate
