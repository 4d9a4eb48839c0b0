// Package incidents turns the correlator's incident candidates into ITIL /
// ISO/IEC 20000 incident records and problem records.
//
// A Manager runs per partition, next to the correlation engine whose
// output it follows. It derives category, impact, urgency and priority
// (an impact x urgency matrix), keeps the lifecycle (new, acknowledged,
// in_progress, resolved, closed, reopened) with a timestamp for every
// transition, runs SLA timers and the escalation policy on the injected
// (event-time) clock, flags change-induced incidents, attaches known
// errors, and raises problem candidates: a recurring signature, a resolved
// major incident, an incident rate far above its baseline.
//
// Every change is reported as a Change: the record's new version (for
// analytics and the API) and, where receivers care, a notification. The
// state goes to the partition's changelog with the correlation state
// (AppendChanges, Restore), so it survives restarts and moves with its
// partition.
package incidents
