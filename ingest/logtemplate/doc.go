// Package logtemplate mines templates from log lines online, in the family
// of Drain (He et al., ICWS 2017): it gives each line a template id and the
// parameters the template abstracts away, so that downstream stages can
// count, group and alert on "what happened" rather than on free text.
//
// # How a line is parsed
//
// A line is split into words at white space, and every word is masked: the
// parts of it that are values (numbers, hex, IPs and ports, UUIDs, block and
// job ids, paths, time stamps, host:port) become variables, the rest stays
// literal, so "rhost=10.0.0.1" is "rhost=<*>". The rules are built in and
// the same for every source (see tokenize.go): no per-source regular
// expression is needed, and none can be given. The masked words route the
// line through a fixed-depth prefix tree (word count, then the leading
// PrefixTokens words), to a short list of templates, and the line joins the
// most similar of them (SimilarityThreshold), or starts a new one.
//
// Joining generalises the template: a word that differs becomes a wildcard,
// keeping a common literal prefix and suffix such as "(<*>)" or "user=<*>".
// Two different constant words are treated more carefully than in Drain: a
// position becomes a variable only after MinVariants different constants
// were seen there; until then each starts a sibling template, and the
// siblings are merged when the threshold is reached. A template that
// generalises so far that it covers another of its leaf absorbs it. This
// post-processing keeps "VM Started" and "VM Paused" apart and still
// recognises user names without digits as parameters.
//
// Templates are written with <*> for a parameter, adjacent parameters that
// only ".", ":" or a space separate written as one (the normalisation of the
// Loghub-2.0 evaluator), and Result.Params holds the matching spans of the
// line, one per <*>.
//
// # Ids
//
// A template's id is the 64-bit xxhash of its first template text (the
// masked words of the line that created it). A hash rather than a sequence
// number makes the id the same in every process that sees the same first
// line, in any order relative to other templates, and after an eviction
// when the same line comes back. An id in use is rehashed with a counter,
// so ids stay unique. The id never changes afterwards, however the template
// generalises; a merged-away template's id stays an alias of the survivor
// (Parser.Resolve). Snapshot and Restore persist templates, ids and aliases,
// so ids are stable across restarts.
//
// # Bounded memory
//
// MaxTemplates bounds the templates: the least recently matched one is
// evicted (LRU) when a new one would exceed it. MaxWords bounds the words
// compared per line, MaxChildren the fan-out of a tree node, MaxAliases the
// aliases per template. Empty tree nodes are pruned on eviction.
//
// # Performance
//
// Parse allocates nothing for a line that joins an existing template: words
// are located and hashed (FNV-1a over the masked form) into buffers the
// Parser reuses, templates compare word hashes, and parameters are
// sub-slices of the caller's line. A Parser is not safe for concurrent use.
//
// LogFormat splits Loghub-style headers ("<Date> <Time> <Level> <Content>")
// off a line, as the Loghub benchmark's loader does, so that only the
// message is mined.
package logtemplate
