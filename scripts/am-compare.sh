#!/usr/bin/env bash
# Side by side: the same alert storm to Alertmanager and to correlatord, in one
# run on this machine.
#
#   scripts/am-compare.sh [ALERTS] [HOSTS] [RUNS]
#
# RUNS picks which of the runs below to make (default all four: "am http
# kafka kafka-http"); the targets compare them, so a report needs them all
# in one run.
# ALERTS distinct firing alerts (default 500,000) over HOSTS hosts (default
# 5,000), posted in batches of 1,000 as Alertmanager API v2 alert lists (what
# Prometheus sends) by 4 concurrent senders:
#   1. Alertmanager (Debian's prometheus-alertmanager) on /api/v2/alerts,
#      grouping by instance, group_wait and group_interval 1s, notifying a
#      webhook sink (loadgen --sink.listen) that counts the distinct alerts it
#      was told about;
#   2. correlatord on its Alertmanager-compatible /api/v2/alerts, without
#      Kafka (in-process partitions: rules, correlation, incidents);
#   3. correlatord through Kafka: the storm produced to a topic first, then
#      drained by correlatord (first stage, keyed topic, 8 partitions of the
#      stateful stage);
#   4. correlatord on /api/v2/alerts with Kafka on: it binds and keys the
#      alerts as the first stage does, answers once they are on the keyed
#      topic, and drains them through the stateful stage meanwhile.
# The senders render every request before they start (loadgen
# --render-ahead), so that their JSON encoding takes no CPU from the server
# while it is measured.
# For each: alerts accepted per second (senders' rate; for 3, the drain
# rate), the CPU time the server (with the Kafka broker for 3 and 4) spent
# per alert while accepting, which the machine's noise moves far less than
# the rate (see below), the time until the grouped output is complete (Alertmanager: the
# sink has heard of every alert; correlatord: every alert is in the
# correlation state, i.e. in an incident or decided by the rules stage), peak
# resident memory (VmHWM) and memory per active alert.
# AMCOMPARE_PROFILE=FILE writes a 4 s CPU profile of the Kafka drain to FILE,
# and one of run 4 from its first request to FILE.kafka-http;
# AMCOMPARE_PROFILE_KIND=allocs makes them allocation profiles instead, and
# AMCOMPARE_PROFILE_SECONDS=N makes them N seconds long.
# AMCOMPARE_CORRELATORD=PATH runs another correlatord binary (default
# bin/correlatord), to compare two builds run after run.
# AMCOMPARE_AM_WAIT=0 does not wait for Alertmanager's grouped output.
# scripts/am-compare-rounds.sh repeats the whole comparison for medians.
# AMCOMPARE_WARMUP=N drains N alerts through Kafka, unmeasured, before (3)
# and (4), then sends unmeasured storms over HTTP with Kafka on until the
# broker's CPU per storm settles (at most AMCOMPARE_WARMUP_STORMS, default
# 12), so they meet a warm broker (default 1,000,000; 0: no warm-up).
# AMCOMPARE_FETCH_WAIT=DURATION sets kafka.fetch_wait for (3) and (4), to
# compare settings run after run (default: the daemon's, 250ms).
# Needs: make build, Debian's prometheus-alertmanager, and for (3) and (4)
# the dev Kafka (bash deploy/dev/up.sh kafka).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/dev/env.sh
alerts=${1:-500000}
hosts=${2:-5000}
runs=${3:-am http kafka kafka-http}
want() { [[ " $runs " == *" $1 "* ]]; }
batch=1000
work=$(mktemp -d)
pids=()
topics=() # the Kafka runs' topics, deleted at exit: left behind, they filled
# the broker's disk (20 GB after a day of runs) and slowed the runs after them
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  for t in "${topics[@]}"; do
    bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --delete-topics "$t" --delete-topics "$t.dlq" \
      --delete-topics "$t.keyed" --delete-topics "$t.state" || true
  done
}
trap cleanup EXIT
correlatord=${AMCOMPARE_CORRELATORD:-bin/correlatord}
[ -x "$correlatord" ] && [ -x bin/loadgen ] || { echo "run make build first" >&2; exit 1; }
am=$(command -v prometheus-alertmanager || command -v alertmanager) || { echo "prometheus-alertmanager not installed (bash deploy/dev/up.sh alertmanager installs it)" >&2; exit 1; }

now() { date +%s.%N; }
wait_http() { for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }
. scripts/bench-lib.sh

declare -A RATE DONE MEM CPU

# per_alert CPU0 CPU1: microseconds of CPU per alert between the two.
per_alert() { awk -v a="$1" -v b="$2" -v n="$alerts" 'BEGIN {printf "%.1f", (b - a) * 1e6 / n}'; }
broker=$(pgrep -f 'kafka\.Kafka' | head -1 || true)

# kafka_up: the dev broker takes connections.
kafka_up() { (exec 3<>"/dev/tcp/${CORRELATORD_DEV_KAFKA%:*}/${CORRELATORD_DEV_KAFKA#*:}") 2>/dev/null; }

# produce_storm TOPIC N produces the storm's first N alerts to TOPIC (4
# partitions), in the senders' lists of $batch.
produce_storm() {
  bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --topic "$1" --format am-v2 --events "$2" --hosts "$hosts" \
    --per-message $batch --resolved 0 --workers 4 --acks 1 --partitions 4 >/dev/null
}

# --- 1. Alertmanager -------------------------------------------------------
if want am; then
bin/loadgen --sink.listen 127.0.0.1:19095 >/dev/null &
pids+=($!)
cat >"$work/am.yml" <<YAML
route:
  receiver: sink
  group_by: ['instance']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 24h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:19095/
        send_resolved: false
YAML
"$am" --config.file="$work/am.yml" --storage.path="$work/am" --web.listen-address=127.0.0.1:19093 \
  --cluster.listen-address= --log.level=warn >"$work/am.log" 2>&1 &
ampid=$!
pids+=($ampid)
wait_http http://127.0.0.1:19093/-/ready
wait_http http://127.0.0.1:19095/stats
echo "== Alertmanager $("$am" --version 2>&1 | head -1 | awk '{print $3}'): $alerts alerts over $hosts hosts"
t0=$(now)
c0=$(cpu_of $ampid)
out=$(bin/loadgen --http http://127.0.0.1:19093/api/v2/alerts --format am-v2 --events "$alerts" --hosts "$hosts" \
  --per-message $batch --resolved 0 --workers 4)
CPU[am]=$(per_alert "$c0" "$(cpu_of $ampid)")
echo "$out"
RATE[am]=$(echo "$out" | rate_of)
# AMCOMPARE_AM_WAIT=0 skips the wait for the grouped output (rounds after
# the first in scripts/am-compare-rounds.sh): the table then says so.
for _ in $(seq 1 $((${AMCOMPARE_AM_WAIT:-1} ? 3000 : 0))); do
  n=$(curl -s http://127.0.0.1:19095/stats | sed -n 's/.*"distinct_alerts":\([0-9]*\).*/\1/p')
  [ "${n:-0}" -ge "$alerts" ] && break
  sleep 0.2
done
DONE[am]="$(sub "$t0" "$(now)") s"
# The wait gives up after about 600 s: the table says so rather than
# passing the give-up time off as the completion time.
if [ "${AMCOMPARE_AM_WAIT:-1}" = 0 ]; then
  DONE[am]="not waited for (AMCOMPARE_AM_WAIT=0)"
elif [ "${n:-0}" -lt "$alerts" ]; then
  DONE[am]="not complete: ${n:-0} of $alerts notified after ${DONE[am]}"
fi
MEM[am]=$(hwm $ampid)
echo "   grouped output: ${DONE[am]}, peak RSS ${MEM[am]} MiB"
kill $ampid; wait $ampid 2>/dev/null || true
fi

# --- 2. correlatord, HTTP, no Kafka ---------------------------------------
if want http; then
# Grouped like Alertmanager (group_by instance): the storm's hosts are not
# in a CMDB, so correlatord groups them by labels.
cat >"$work/http.yml" <<YAML
data_dir: $work/http-data
ingest:
  max_event_age: 0s
correlate:
  group_by: [instance]
YAML
"$correlatord" --config.file "$work/http.yml" --web.listen-address 127.0.0.1:19470 --log.level warn >"$work/http.log" 2>&1 &
cpid=$!
pids+=($cpid)
wait_http http://127.0.0.1:19470/healthz
echo "== correlatord over HTTP (no Kafka)"
t0=$(now)
c0=$(cpu_of $cpid)
out=$(bin/loadgen --http http://127.0.0.1:19470/api/v2/alerts --format am-v2 --events "$alerts" --hosts "$hosts" \
  --per-message $batch --resolved 0 --workers 4)
CPU[http]=$(per_alert "$c0" "$(cpu_of $cpid)")
echo "$out"
RATE[http]=$(echo "$out" | rate_of)
for _ in $(seq 1 3000); do
  n=$(metric http://127.0.0.1:19470 correlator_rules_events_total)
  [ "${n:-0}" -ge "$alerts" ] && break
  sleep 0.2
done
DONE[http]=$(sub "$t0" "$(now)")
MEM[http]=$(hwm $cpid)
inc=$(metric http://127.0.0.1:19470 correlator_incidents_created_total)
echo "   $n alerts decided, $inc incidents, after ${DONE[http]} s, peak RSS ${MEM[http]} MiB"
kill $cpid; wait $cpid 2>/dev/null || true
fi

# --- Broker warm-up ----------------------------------------------------------
# The broker's JVM compiles its hot paths over its first millions of
# messages. On 2026-11-25, just after a start, its CPU for the same 500,000
# alerts over HTTP with Kafka on was 12.4, 9.7 and 7.1 s in the first three
# runs and settled at 2.0 to 2.3 s after about ten: most of the spread of
# the Kafka runs between rounds was the broker's warmth, not correlatord.
# The Kafka runs are measured against a settled broker, as production has:
# an unmeasured drain of AMCOMPARE_WARMUP alerts (default 1,000,000; 0
# skips the whole warm-up), then unmeasured storms over HTTP with Kafka on,
# until the broker's CPU for two in a row is within a sixth of the storm's
# before each (at most AMCOMPARE_WARMUP_STORMS, default 12). Each storm's broker CPU is
# printed, so the report shows where it settled.
warm=${AMCOMPARE_WARMUP:-1000000}
if { want kafka || want kafka-http; } && [ "$warm" -gt 0 ] && kafka_up; then
  run=amcmpw_$(date +%s)
  topics+=("$run")
  echo "== warming the broker up: $warm alerts through Kafka (topic $run), not measured"
  produce_storm "$run" "$warm"
  kafka_config "$work/warm.yml" "$run" "$work/warm-data" "${AMCOMPARE_FETCH_WAIT:-}"
  "$correlatord" --config.file "$work/warm.yml" --web.listen-address 127.0.0.1:19474 --log.level warn >"$work/warm.log" 2>&1 &
  wpid=$!
  pids+=($wpid)
  for _ in $(seq 1 3000); do
    n=$(metric http://127.0.0.1:19474 correlator_rules_events_total 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$warm" ] && break
    sleep 0.2
  done
  kill $wpid; wait $wpid 2>/dev/null || true
  rm -rf "$work/warm-data"
  prev= settled=0
  for s in $(seq 1 "${AMCOMPARE_WARMUP_STORMS:-12}"); do
    run=amcmpw_$(date +%s)_$s
    topics+=("$run")
    kafka_config "$work/warm.yml" "$run" "$work/warm-data" "${AMCOMPARE_FETCH_WAIT:-}"
    "$correlatord" --config.file "$work/warm.yml" --web.listen-address 127.0.0.1:19474 --log.level warn >"$work/warm.log" 2>&1 &
    wpid=$!
    pids+=($wpid)
    wait_http http://127.0.0.1:19474/readyz
    b0=$(cpu "$broker")
    bin/loadgen --http http://127.0.0.1:19474/api/v2/alerts --format am-v2 --events "$alerts" --hosts "$hosts" \
      --per-message $batch --resolved 0 --workers 4 >/dev/null
    for _ in $(seq 1 6000); do
      n=$(metric http://127.0.0.1:19474 correlator_rules_events_total 2>/dev/null || echo 0)
      [ "${n:-0}" -ge "$alerts" ] && break
      sleep 0.1
    done
    b=$(sub "$b0" "$(cpu "$broker")")
    kill $wpid; wait $wpid 2>/dev/null || true
    rm -rf "$work/warm-data"
    bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --delete-topics "$run" --delete-topics "$run.dlq" \
      --delete-topics "$run.keyed" --delete-topics "$run.state" && unset 'topics[-1]'
    echo "   warm-up storm $s over HTTP with Kafka on: broker CPU $b s"
    # Settled: twice in a row within a sixth of the storm before.
    if [ -n "$prev" ] && awk -v a="$prev" -v b="$b" 'BEGIN {exit !(b <= a * 7 / 6 && b >= a * 5 / 6)}'; then
      settled=$((settled + 1))
      [ "$settled" -lt 2 ] || break
    else
      settled=0
    fi
    prev=$b
  done
fi

# --- 3. correlatord through Kafka -----------------------------------------
if want kafka && kafka_up; then
  run=amcmp_$(date +%s)
  topics+=("$run")
  echo "== correlatord through Kafka (topic $run)"
  produce_storm "$run" "$alerts"
  kafka_config "$work/kafka.yml" "$run" "$work/kafka-data" "${AMCOMPARE_FETCH_WAIT:-}"
  t0=$(now)
  "$correlatord" --config.file "$work/kafka.yml" --web.listen-address 127.0.0.1:19471 --log.level warn \
    ${AMCOMPARE_PROFILE:+--web.enable-pprof} >"$work/kafka.log" 2>&1 &
  kpid=$!
  pids+=($kpid)
  # The drain rate runs from the first alert received by the first stage to
  # the last one decided by the second: start-up (two consumer-group joins,
  # topic checks) is reported apart, as Alertmanager's start-up is not in its
  # rate either.
  t1=
  for _ in $(seq 1 6000); do
    if [ -z "$t1" ] && [ "$(metric http://127.0.0.1:19471 correlator_ingest_events_received_total 2>/dev/null || echo 0)" -gt 0 ]; then
      t1=$(now)
      c0=$(cpu_of $kpid $broker)
      if [ -n "${AMCOMPARE_PROFILE:-}" ]; then
        curl -s -o "$AMCOMPARE_PROFILE" "http://127.0.0.1:19471/debug/pprof/${AMCOMPARE_PROFILE_KIND:-profile}?seconds=${AMCOMPARE_PROFILE_SECONDS:-4}" &
        profpid=$!
      fi
    fi
    n=$(metric http://127.0.0.1:19471 correlator_rules_events_total 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$alerts" ] && break
    sleep 0.1
  done
  t2=$(now)
  CPU[kafka]=$(per_alert "$c0" "$(cpu_of $kpid $broker)")
  DONE[kafka]=$(sub "$t0" "$t2")
  RATE[kafka]=$(awk -v n="$alerts" -v s="$(sub "$t1" "$t2")" 'BEGIN {printf "%d", n / s}')
  kill -0 $kpid 2>/dev/null || { tail -20 "$work/kafka.log"; echo "correlatord (kafka) died" >&2; exit 1; }
  MEM[kafka]=$(hwm $kpid)
  echo "   $n alerts decided after ${DONE[kafka]} s: start-up $(sub "$t0" "$t1") s, drain $(sub "$t1" "$t2") s; peak RSS ${MEM[kafka]} MiB"
  [ -z "${profpid:-}" ] || wait "$profpid"
  kill $kpid; wait $kpid 2>/dev/null || true
fi

# --- 4. correlatord over HTTP with Kafka on ---------------------------------
# The production shape: the Alertmanager-compatible endpoint answers once
# the alerts are on the input topic (durable), and both stages drain it
# meanwhile, on the same cores.
if want kafka-http && kafka_up; then
  run=amcmph_$(date +%s)
  topics+=("$run")
  echo "== correlatord over HTTP with Kafka on (topic $run)"
  kafka_config "$work/kafka-http.yml" "$run" "$work/kafka-http-data" "${AMCOMPARE_FETCH_WAIT:-}"
  "$correlatord" --config.file "$work/kafka-http.yml" --web.listen-address 127.0.0.1:19473 --log.level warn \
    ${AMCOMPARE_PROFILE:+--web.enable-pprof} >"$work/kafka-http.log" 2>&1 &
  hpid=$!
  pids+=($hpid)
  wait_http http://127.0.0.1:19473/readyz
  profpid=
  if [ -n "${AMCOMPARE_PROFILE:-}" ]; then
    curl -s -o "$AMCOMPARE_PROFILE.kafka-http" "http://127.0.0.1:19473/debug/pprof/${AMCOMPARE_PROFILE_KIND:-profile}?seconds=${AMCOMPARE_PROFILE_SECONDS:-4}" &
    profpid=$!
  fi
  t0=$(now)
  c0=$(cpu_of $hpid $broker)
  out=$(bin/loadgen --http http://127.0.0.1:19473/api/v2/alerts --format am-v2 --events "$alerts" --hosts "$hosts" \
    --per-message $batch --resolved 0 --workers 4)
  CPU[kafka-http]=$(per_alert "$c0" "$(cpu_of $hpid $broker)")
  echo "$out"
  RATE[kafka-http]=$(echo "$out" | rate_of)
  for _ in $(seq 1 6000); do
    n=$(metric http://127.0.0.1:19473 correlator_rules_events_total 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$alerts" ] && break
    sleep 0.1
  done
  DONE[kafka-http]=$(sub "$t0" "$(now)")
  kill -0 $hpid 2>/dev/null || { tail -20 "$work/kafka-http.log"; echo "correlatord (kafka-http) died" >&2; exit 1; }
  MEM[kafka-http]=$(hwm $hpid)
  echo "   $n alerts decided after ${DONE[kafka-http]} s, peak RSS ${MEM[kafka-http]} MiB"
  [ -z "$profpid" ] || wait "$profpid"
  kill $hpid; wait $hpid 2>/dev/null || true
fi

echo
echo "| | alerts accepted/s | CPU per alert accepted | grouped output complete after | peak RSS | per active alert |"
echo "|---|---|---|---|---|---|"
for k in am http kafka kafka-http; do
  [ -n "${RATE[$k]:-}" ] || continue
  name=$([ $k = am ] && echo "Alertmanager" || echo "correlatord ($k)")
  per=$(awk -v m="${MEM[$k]}" -v n="$alerts" 'BEGIN {printf "%.0f", m * 1048576 / n}')
  done=${DONE[$k]}
  [[ $done == *[0-9] ]] && done="$done s" # a number of seconds, not a sentence
  echo "| $name | ${RATE[$k]} | ${CPU[$k]} µs | $done | ${MEM[$k]} MiB | $per B |"
done
# The rates of runs made one after the other differ with the load other
# work puts on the machine meanwhile (up to a third between minutes); the
# CPU time per alert much less. Both ratios are printed.
for k in http kafka kafka-http; do
  [ -n "${RATE[$k]:-}" ] && [ -n "${RATE[am]:-}" ] || continue
  awk -v a="${RATE[am]}" -v b="${RATE[$k]}" -v ca="${CPU[am]}" -v cb="${CPU[$k]}" -v k="$k" \
    'BEGIN {printf "correlatord (%s) / Alertmanager: accepted rate %.1fx, CPU per alert %.1fx less\n", k, b / a, ca / cb}'
done
