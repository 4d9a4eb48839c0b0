#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10s), so
# CI exercises the fuzzers on a fixed budget. A failure leaves the crashing
# input under the package's testdata/fuzz, to be committed as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    echo "fuzz: $pkg $t for $fuzztime"
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz-$t.log 2>&1; then
      cat /tmp/fuzz-$t.log
      status=1
    else
      tail -n 1 /tmp/fuzz-$t.log
    fi
  done
done
exit $status
