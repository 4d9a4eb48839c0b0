// Package notify delivers incident notifications to external receivers (chat
// and on-call webhooks, ServiceNow) through a persistent outbox.
//
// # Flow
//
// The incident lifecycle builds a [Notification] for each change worth
// telling (created, updated, escalated, resolved, reopened, closed) and hands
// it to an [Outbox]. The outbox makes it durable before Enqueue returns: a
// Kafka topic ([KafkaOutbox]) or a bbolt file in a data directory
// ([FileOutbox]). A runner ([KafkaRunner], [FileOutbox.Run]) reads pending
// notifications in order and hands each to the [Dispatcher], which sends it to
// every [Route] whose [Filter] matches, retrying each failing [Target] with
// capped exponential backoff and jitter. Only when every matching target has
// delivered or given up does the runner mark the notification done (commit
// the Kafka offset, delete the bbolt record).
//
// # Delivery guarantees
//
//   - At least once. A notification is marked done only after the dispatcher
//     is finished with it, so a crash, a restart or a receiver outage at any
//     point leads to redelivery, never to loss. Enqueue returns only once the
//     notification is durable (broker acknowledgement or fsync).
//   - Exactly once for receivers that honour the idempotency key. Every
//     request carries Idempotency-Key: <Notification.Key>, a key the producer
//     derives deterministically (incident id and version), so a redelivery
//     after a crash or a retry after a lost response carries the same key.
//     Within one dispatch, a target that has delivered is not sent again while
//     another target is retried. The ServiceNow target is idempotent on its
//     own: it looks a record up by correlation_id before creating one, so a
//     retry after a POST whose answer was lost updates the record created
//     instead of creating a second.
//   - Ordered per incident. Runners process one notification at a time, in
//     outbox order (Kafka messages are keyed by incident id, so one incident's
//     notifications share a partition), so a receiver never sees an update
//     before the create it follows.
//   - Bounded in time. A target that keeps failing is given up on once the
//     next attempt would fall after the notification's enqueue time plus
//     retry.max_age; the notification is counted as dropped for that target
//     and logged with the target, incident id and key. A permanent error (an
//     HTTP 4xx other than 408 and 429, see [ErrPermanent]) is not retried and
//     is counted as failed_permanent. While a target keeps failing, the
//     backlog older than max_age is dropped for it without further attempts,
//     so a long outage does not take max_age per queued notification to
//     drain.
//
// Head-of-line blocking is the price of ordering: while one target is down,
// later notifications wait (for every target) until that target recovers or
// max_age passes. To isolate receivers from each other, run one runner per
// target, each with its own Dispatcher, consumer group or data directory.
//
// # Concurrency
//
// Targets, the Dispatcher and the outboxes' Enqueue are safe for concurrent
// use. A runner is one goroutine; start it once.
package notify
