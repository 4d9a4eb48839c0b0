// Package cmdb holds the configuration items (CIs) and relations that
// correlation runs against: the model, the native YAML/JSON format, importers
// from the formats configuration managers keep (ServiceNow, Backstage,
// NetBox), validation, immutable topology snapshots with the queries the
// correlator needs, binding of events to CIs, and atomic reloads.
//
// Every relation reads "source depends on target": when the target fails,
// the source is impacted. Importers map their own direction conventions onto
// this one; nothing downstream ever sees another convention.
//
// A Topology is immutable once built. Reloads build a new one off the hot
// path and swap it in atomically, so readers see the old or the new topology,
// never a mixture.
package cmdb
