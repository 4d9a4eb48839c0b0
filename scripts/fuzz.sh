#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10s), so
# CI exercises the fuzzers on a fixed budget. A failure leaves the crashing
# input under the package's testdata/fuzz, to be committed as a regression seed.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" at the end of -fuzztime, under CPU contention, having found
# nothing (go.dev/issue/75804, fixed in Go 1.27). Such a run, with no failing
# input written and no other failure in its output, is run once more; a
# second one fails the script like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# coordinator_race LOG: the run failed only with the coordinator's deadline.
coordinator_race() {
  grep -q '^    context deadline exceeded$' "$1" &&
    ! grep -q 'Failing input written to\|^panic:\|_test.go:[0-9]*:' "$1"
}

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    for attempt in 1 2; do
      echo "fuzz: $pkg $t for $fuzztime"
      if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
        tail -n 1 "$log"
        break
      fi
      cat "$log"
      if [ $attempt = 1 ] && coordinator_race "$log"; then
        echo "fuzz: $t failed with the fuzz coordinator's deadline race (go.dev/issue/75804), no input written; once more"
        continue
      fi
      status=1
      break
    done
  done
done
exit $status
