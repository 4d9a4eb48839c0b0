#!/usr/bin/env bash
# A/B of correlatord builds over HTTP with Kafka on, run after run.
#
#   scripts/kafka-http-ab.sh ROUNDS BINARY...
#
# Each round posts the storm of scripts/am-compare.sh (500,000 distinct firing
# alerts over 5,000 hosts, API v2 lists of 1,000, 4 senders) to each binary
# in turn, with Kafka on and grouping by instance, and waits until every
# alert is decided. Per run it prints the accepted rate, the CPU time of the
# daemon and of the broker from the first request until every alert was
# decided, the stateful stage's batches, the events the first stage handed over
# to it locally (and refused or dropped: those are decoded from the topic)
# and peak RSS; at the end, each
# binary's medians. On this shared machine the same build's CPU moves by a
# third between minutes, so compare medians of interleaved runs, not single
# runs. KAFKAAB_ALERTS and KAFKAAB_HOSTS change the storm; KAFKAAB_FETCH_WAIT
# sets kafka.fetch_wait; KAFKAAB_PROFILE=PREFIX writes a 5 s CPU profile of
# each run to PREFIX.<round>.<n>.
# Needs: make build (for bin/loadgen) and the dev Kafka (bash deploy/dev/up.sh kafka).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/dev/env.sh
rounds=${1:?usage: $0 ROUNDS BINARY...}
shift
(($# > 0)) || { echo "usage: $0 ROUNDS BINARY..." >&2; exit 2; }
alerts=${KAFKAAB_ALERTS:-500000}
hosts=${KAFKAAB_HOSTS:-5000}
addr=127.0.0.1:19478
[ -x bin/loadgen ] || { echo "run make build first" >&2; exit 1; }
broker=$(pgrep -f kafka.Kafka | head -1) || { echo "the dev Kafka is not running: bash deploy/dev/up.sh kafka" >&2; exit 1; }

. scripts/bench-lib.sh

# run BINARY ROUND N: one storm; prints "rate cpu-total" on fd 3.
run() {
  local bin=$1 work topic daemon c0 b0 rate
  work=$(mktemp -d)
  topic=kafkaab_$(date +%s%N)
  kafka_config "$work/c.yml" "$topic" "$work/data" "${KAFKAAB_FETCH_WAIT:-}"
  "$bin" --config.file "$work/c.yml" --web.listen-address "$addr" --log.level warn \
    ${KAFKAAB_PROFILE:+--web.enable-pprof} >"$work/log" 2>&1 &
  daemon=$!
  for _ in $(seq 150); do curl -fs -o /dev/null "http://$addr/readyz" && break; sleep 0.2; done
  c0=$(cpu "$daemon") b0=$(cpu "$broker")
  if [ -n "${KAFKAAB_PROFILE:-}" ]; then
    (sleep 0.5; curl -s -o "$KAFKAAB_PROFILE.$2.$3" "http://$addr/debug/pprof/profile?seconds=5") &
  fi
  rate=$(bin/loadgen --http "http://$addr/api/v2/alerts" --format am-v2 --events "$alerts" --hosts "$hosts" \
    --per-message 1000 --resolved 0 --workers 4 2>&1 | rate_of)
  for _ in $(seq 1200); do [ "$(metric "http://$addr" correlator_rules_events_total)" -ge "$alerts" ] && break; sleep 0.1; done
  local decided dc bc total handoffs rss
  decided=$(metric "http://$addr" correlator_rules_events_total)
  dc=$(sub "$c0" "$(cpu "$daemon")")
  bc=$(sub "$b0" "$(cpu "$broker")")
  total=$(awk -v a="$dc" -v b="$bc" 'BEGIN {printf "%.2f", a + b}')
  handoffs=$(metric "http://$addr" correlator_ingest_handle_duration_seconds_count)
  local taken refused dropped
  read -r taken refused dropped < <(curl -s "http://$addr/metrics" | awk -F'[{}" ]+' \
    '$1 == "correlator_ingest_handoff_events_total" {n[$3] = $NF} END {print n["taken"] + 0, n["refused"] + 0, n["dropped"] + 0}')
  rss=$(hwm "$daemon")
  kill "$daemon"
  wait "$daemon" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
  bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --delete-topics "$topic" --delete-topics "$topic.dlq" \
    --delete-topics "$topic.keyed" --delete-topics "$topic.state" >/dev/null 2>&1 || true
  ((decided >= alerts)) || echo "   warning: only $decided of $alerts alerts decided" >&2
  printf '%s round %d: %s alerts/s; CPU daemon %s s + broker %s s = %s s; %s batches; events handed over locally %s, refused %s, dropped %s; peak RSS %s MiB\n' \
    "$bin" "$2" "$rate" "$dc" "$bc" "$total" "$handoffs" "$taken" "$refused" "$dropped" "$rss"
  echo "$rate $total" >&3
}

declare -A rates cpus
for r in $(seq "$rounds"); do
  n=0
  for bin in "$@"; do
    n=$((n + 1))
    read -r rate total < <(run "$bin" "$r" "$n" 3>&1 >&2)
    rates[$bin]+="$rate "
    cpus[$bin]+="$total "
  done
done
for bin in "$@"; do
  echo "$bin: median $(tr ' ' '\n' <<<"${rates[$bin]}" | grep . | median 0) alerts/s," \
    "daemon+broker CPU $(tr ' ' '\n' <<<"${cpus[$bin]}" | grep . | median 2) s per $alerts alerts" \
    "(runs: ${cpus[$bin]% })"
done
