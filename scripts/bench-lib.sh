# Helpers the benchmark scripts share (am-compare.sh, am-compare-rounds.sh,
# kafka-http-ab.sh): source it. Kafka helpers need deploy/dev/env.sh first.

# cpu PID: the CPU seconds (user and system) the process has used so far.
bench_hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$bench_hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# cpu_of PIDS: their CPU seconds together.
cpu_of() { local t=0 p; for p in "$@"; do t=$(awk -v a="$t" -v b="$(cpu "$p")" 'BEGIN {printf "%.2f", a + b}'); done; echo "$t"; }

# hwm PID: the process's peak resident memory (VmHWM) in MiB.
hwm() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

# sub A B: B - A, to two decimals.
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

# metric BASE_URL NAME: the sum of NAME's series on BASE_URL/metrics.
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 ~ "^"m"({|$)" {s += $NF} END {printf "%d", s}'; }

# rate_of reads loadgen's output and prints its events per second.
rate_of() { sed -n 's/.* \([0-9]*\) events\/s$/\1/p'; }

# median [DECIMALS] reads numbers, one per line, and prints their median
# (default 1 decimal).
median() { sort -g | awk -v f="%.${1:-1}f" '{v[NR] = $1} END {if (NR == 0) exit 1; m = int((NR + 1) / 2); printf f, NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2}'; }

# kafka_config FILE TOPIC DATA_DIR [FETCH_WAIT] writes correlatord's
# configuration for a storm: Kafka on, consuming TOPIC with a group, keyed
# and state topics of its own, grouping by instance (the storm's hosts are in
# no CMDB), kafka.fetch_wait FETCH_WAIT when given.
kafka_config() {
  cat >"$1" <<YAML
data_dir: $3
ingest:
  max_event_age: 0s
kafka:
  brokers: [$CORRELATORD_DEV_KAFKA]
  topics: [$2]
  group_id: $2
  dead_letter_topic: $2.dlq
  keyed_topic: $2.keyed
  state_topic: $2.state
${4:+  fetch_wait: $4}
correlate:
  group_by: [instance]
YAML
}
