#!/usr/bin/env bash
# scripts/promtool-rules.sh: checks deploy/prometheus/correlatord-rules.yml.
#
#   1. promtool check rules: syntax, PromQL, templates.
#   2. promtool test rules correlatord-rules.test.yml: each alert firing and
#      not firing, with its labels and annotations.
#   3. Every alert has a test, and every correlator_* metric the rules read is
#      one the code registers (Name: "..." in a non-test .go file), so a
#      renamed metric cannot leave an alert silently watching nothing.
#
# promtool comes from Debian's prometheus package (deploy/dev/up.sh installs
# it); when it is missing and we are root, it is installed here, without
# letting the package start its daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=deploy/prometheus/correlatord-rules.yml
tests=deploy/prometheus/correlatord-rules.test.yml

if ! command -v promtool >/dev/null 2>&1; then
  if ((EUID != 0)) || ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool-rules: promtool not found: apt-get install prometheus (or run deploy/dev/up.sh prometheus)" >&2
    exit 1
  fi
  echo "promtool-rules: installing Debian's prometheus package for promtool" >&2
  policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# created by correlatord scripts/promtool-rules.sh during apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends prometheus >/dev/null || rc=$?
  if [[ -n $policy ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if ((rc != 0)); then
    echo "promtool-rules: apt-get install prometheus failed (run apt-get update first?)" >&2
    exit 1
  fi
fi

promtool check rules "$rules"
(cd "$(dirname "$tests")" && promtool test rules "$(basename "$tests")")

status=0
# Alerts without a test.
while read -r alert; do
  grep -q "alertname: ${alert}\$" "$tests" || { echo "promtool-rules: alert $alert has no test in $tests" >&2; status=1; }
done < <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$rules")

# Metric names: correlator_* words not inside a recording rule's name
# (level:metric:operation), with a histogram's series suffix removed.
registered=$(grep -rhoE --include='*.go' --exclude='*_test.go' 'Name: +"correlator_[a-z0-9_]+"' . | sed -E 's/.*"(.*)"/\1/' | sort -u)
used=$(grep -v '^ *#' "$rules" | grep -oE '(^|[^:a-z0-9_])correlator_[a-z0-9_]+' | sed -E 's/^[^c]//; s/_(bucket|sum|count)$//' | sort -u)
for m in $used; do
  grep -qx "$m" <<<"$registered" || { echo "promtool-rules: $rules uses $m, which no code registers" >&2; status=1; }
done
if ((status == 0)); then
  echo "promtool-rules: ok ($(wc -w <<<"$used") metrics, all registered; every alert tested)"
fi
exit $status
