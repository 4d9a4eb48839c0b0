#!/usr/bin/env bash
# End-to-end load run: Kafka -> correlatord (first stage, keyed topic, rules,
# correlation, incidents) -> ClickHouse on this machine.
#
#   scripts/e2e-load.sh [EVENTS] [EVENTS_PER_MESSAGE] [FORMAT]
#
# Produces EVENTS alerts (default 2,000,000) into a fresh topic with loadgen,
# then starts correlatord with a fresh consumer group and database and times
# how long it takes until every event is a row in ClickHouse. Prints the
# sustained rate, the daemon's peak resident memory, and the row count check.
# E2E_PROFILE=FILE writes a 10 s CPU profile of the drain to FILE;
# E2E_CORRELATORD=PATH runs another correlatord binary, to compare builds.
# Needs the dev stack (bash deploy/dev/up.sh kafka clickhouse) and make build.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/dev/env.sh
events=${1:-2000000}
per_message=${2:-1}
format=${3:-events}
run=load_$(date +%s)
work=$(mktemp -d)
# The run's topics go at exit: left behind, they filled the broker's disk
# (20 GB after a day of runs) and slowed the runs after them.
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"
  bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --delete-topics "$run" --delete-topics "$run.dlq" \
    --delete-topics "$run.keyed" --delete-topics "$run.state" || true' EXIT
pid=

ch() { curl -sS --fail "http://$CORRELATORD_DEV_CLICKHOUSE_HTTP/" --data-binary "$1"; }

echo "== producing $events events ($per_message per message, $format) to topic $run"
bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --topic "$run" --events "$events" \
  --per-message "$per_message" --format "$format" --hosts 5000 --workers 4 --acks 1

cat > "$work/config.yml" <<YAML
data_dir: $work/data
ingest:
  max_event_age: 0s
kafka:
  brokers: [$CORRELATORD_DEV_KAFKA]
  topics: [$run]
  group_id: $run
  dead_letter_topic: $run.dlq
  keyed_topic: $run.keyed
  state_topic: $run.state
clickhouse:
  addr: [$CORRELATORD_DEV_CLICKHOUSE_NATIVE]
  database: $run
# The storm's hosts are in no CMDB and all carry job="node": grouped by the
# default labels (cluster, service, job) they would all share one key, so
# one partition. By instance, as Alertmanager would group them, they spread
# over the keyed topic's partitions.
correlate:
  group_by: [instance]
YAML

echo "== draining with correlatord"
start=$(date +%s.%N)
"${E2E_CORRELATORD:-bin/correlatord}" --config.file "$work/config.yml" --web.listen-address 127.0.0.1:19470 --log.level warn \
  ${E2E_PROFILE:+--web.enable-pprof} >"$work/daemon.log" 2>&1 &
pid=$!
if [ -n "${E2E_PROFILE:-}" ]; then
  (sleep 3; curl -s -o "$E2E_PROFILE" "http://127.0.0.1:19470/debug/pprof/profile?seconds=10") &
fi
written=0
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/daemon.log"; echo "correlatord died"; exit 1; fi
  written=$(curl -s 127.0.0.1:19470/metrics 2>/dev/null | awk '/^correlator_analytics_rows_written_total\{table="events"\}/ {s+=$2} END {printf "%d", s}' || true)
  [ "${written:-0}" -ge "$events" ] && break
  sleep 0.2
done
end=$(date +%s.%N)
hwm_kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
kill -TERM "$pid"; wait "$pid" || true; pid=
secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
rows=$(ch "SELECT uniqExact(event_id) FROM $run.events")
printf 'events=%d seconds=%.2f rate=%.0f events/s peak_rss=%d MiB distinct_rows=%s\n' \
  "$events" "$secs" "$(awk -v n="$events" -v s="$secs" 'BEGIN {print n / s}')" "$((hwm_kb / 1024))" "$rows"
ch "DROP DATABASE IF EXISTS $run" >/dev/null
[ "$rows" -eq "$events" ] || { echo "row count mismatch"; exit 1; }
