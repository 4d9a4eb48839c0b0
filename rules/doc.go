// Package rules is the stage every event goes through before correlation:
// it decides what an event is (the ITIL event classes: informational,
// warning, exception), whether it is a repeat, and whether it is
// suppressed, without ever silently losing it. Every event gets a Decision,
// every decision is counted, and suppression never loses a resolution.
//
// # Pieces
//
//   - Rule files (docs/RULES.md) are YAML, decoded strictly and compiled
//     into an immutable RuleSet: ordered rules (drop, classify, set,
//     enrich, continue/stop) over Alertmanager matchers, maintenance
//     windows and inhibit rules. Load, Parse, CheckFiles.
//   - Manager loads the files, checks everything before swapping the new
//     rule set in with an atomic pointer, reloads on change (polling) or
//     on Reload (SIGHUP), and keeps the previous rules when a file fails.
//   - Engine runs the stages in order: rules, deduplication, flap
//     detection, maintenance windows, change windows, inhibition, warning
//     persistence. Process decides about a batch; Tick passes on what was
//     held (persisted warnings, resolutions of flapping alerts once stable)
//     and expires state.
//   - ChangeStore holds the change records (from a file or the change
//     topic, DecodeChange), for change windows now and for incidents to
//     flag possibly change-induced incidents later (CompletedBefore).
//   - RunTestFiles runs `correlatord rules test` files.
//
// # Invariants
//
//   - Time is an input: Process and Tick take `now`; the package reads no
//     clock except Manager's reload timestamp metric.
//   - A resolution of an alert that was passed on to correlation is always
//     passed on (Decision.Correlate), whatever suppresses the alert now:
//     maintenance, a change window, inhibition, a drop rule added since.
//     A flapping alert's resolution is held and released by Tick once the
//     alert is stable; an evicted alert's held resolution is released by
//     the next Tick; a resolution the engine knows nothing about (evicted,
//     or after a restart) is passed on unless a drop rule or the
//     informational class says it never was.
//   - State is bounded (Config.State, Config.Inhibition) and keyed by the
//     xxhash of the fingerprint; evictions are counted.
//   - The no-match path of Process does not allocate.
//
// See DESIGN.md for the decision order, locking and the reasons behind them.
package rules
