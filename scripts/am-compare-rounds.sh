#!/usr/bin/env bash
# Repeats the side-by-side comparison with Alertmanager and reports, for each
# way correlatord runs, its ratio to Alertmanager in every round and the
# median of them.
#
#   scripts/am-compare-rounds.sh [ROUNDS] [ALERTS] [HOSTS]
#
# ROUNDS (default 3) runs of scripts/am-compare.sh ALERTS HOSTS (defaults
# 500,000 and 5,000). One run pairs Alertmanager with correlatord a few
# minutes apart on a shared machine, and what else runs on it moved the
# ratios by a third between such runs (docs/PERFORMANCE.md); the medians of
# rounds in one sitting move less. The first round waits for Alertmanager's
# grouped output, which takes about 12 minutes; later rounds do not
# (AMCOMPARE_AM_WAIT=0), so each takes about 2 minutes. The other
# AMCOMPARE_* variables pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
alerts=${2:-500000}
hosts=${3:-5000}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds"
  AMCOMPARE_AM_WAIT=$([ "$r" -eq 1 ] && echo 1 || echo 0) bash scripts/am-compare.sh "$alerts" "$hosts" | tee -a "$log"
done

. scripts/bench-lib.sh

echo
echo "| correlatord | accepted rate / Alertmanager's, by round | median | Alertmanager's CPU per alert / correlatord's, by round | median |"
echo "|---|---|---|---|---|"
for k in http kafka kafka-http; do
  ratios=$(sed -nE "s/^correlatord \($k\) \/ Alertmanager: accepted rate ([0-9.]+)x, CPU per alert ([0-9.]+)x less$/\1 \2/p" "$log")
  [ -n "$ratios" ] || continue
  rates=$(awk '{print $1}' <<<"$ratios")
  cpus=$(awk '{print $2}' <<<"$ratios")
  echo "| $k | $(paste -sd, <<<"$rates" | sed 's/,/, /g') | $(median <<<"$rates")x | $(paste -sd, <<<"$cpus" | sed 's/,/, /g') | $(median <<<"$cpus")x |"
done
