# shellcheck shell=bash
# deploy/dev/lib.sh: helpers shared by up.sh and down.sh (bash only; not for outside use).

DEV_SCRIPTS=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/dev/env.sh
. "${DEV_SCRIPTS}/env.sh"

ALL_SERVICES=(kafka clickhouse prometheus alertmanager)
DEV_RUN=${CORRELATORD_DEV_DIR}/run
# shellcheck disable=SC2034
DEV_CACHE=${CORRELATORD_DEV_DIR}/cache
# shellcheck disable=SC2034
KAFKA_VERSION=4.1.1

log() { printf '[dev] %s\n' "$*" >&2; }
warn() { printf '[dev] WARNING: %s\n' "$*" >&2; }
die() { printf '[dev] ERROR: %s\n' "$*" >&2; exit 1; }

now_ms() { local t; t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Prints the last lines of each given file that exists, framed, to stderr.
tail_logs() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
  done
}

# Validates service names; prints them, or all services when none given.
parse_services() {
  if (($# == 0)); then
    printf '%s\n' "${ALL_SERVICES[@]}"
    return
  fi
  local s ok a
  for s in "$@"; do
    ok=
    for a in "${ALL_SERVICES[@]}"; do [[ $s == "$a" ]] && ok=1; done
    [[ -n $ok ]] || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
    printf '%s\n' "$s"
  done
}

addr_host() { echo "${1%:*}"; }
addr_port() { echo "${1##*:}"; }

svc_addr() {
  case $1 in
    kafka) echo "${CORRELATORD_DEV_KAFKA}" ;;
    clickhouse) echo "${CORRELATORD_DEV_CLICKHOUSE_NATIVE}" ;;
    prometheus) echo "${CORRELATORD_DEV_PROMETHEUS}" ;;
    alertmanager) echo "${CORRELATORD_DEV_ALERTMANAGER}" ;;
  esac
}

# Every host:port a service listens on.
svc_ports() {
  case $1 in
    kafka) echo "${CORRELATORD_DEV_KAFKA} ${CORRELATORD_DEV_KAFKA_CONTROLLER}" ;;
    clickhouse) echo "${CORRELATORD_DEV_CLICKHOUSE_NATIVE} ${CORRELATORD_DEV_CLICKHOUSE_HTTP}" ;;
    prometheus) echo "${CORRELATORD_DEV_PROMETHEUS}" ;;
    alertmanager) echo "${CORRELATORD_DEV_ALERTMANAGER}" ;;
  esac
}

svc_pidfile() { echo "${DEV_RUN}/$1.pid"; }

# The log files worth showing when a service fails.
svc_logs() {
  local l=${CORRELATORD_DEV_LOGS}
  case $1 in
    kafka) echo "$l/kafka.out $l/kafka/server.log" ;;
    clickhouse) echo "$l/clickhouse.out $l/clickhouse/clickhouse-server.err.log" ;;
    prometheus) echo "$l/prometheus.log" ;;
    alertmanager) echo "$l/alertmanager.log" ;;
  esac
}

# How to recognise the service's process: kafka by its main class, the others
# by the name of the executable (argv[0]).
svc_cmd_marker() {
  case $1 in
    kafka) echo "kafka.Kafka" ;;
    clickhouse) echo "clickhouse-server" ;;
    prometheus) echo "prometheus" ;;
    alertmanager) echo "prometheus-alertmanager" ;;
  esac
}

# True if the process exists and is not a zombie.
proc_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]]
}

proc_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# True if pid is an instance of service $1 started from this state dir.
proc_is_ours() {
  local svc=$1 pid=$2 cmd argv0 marker
  proc_alive "$pid" || return 1
  cmd=$(proc_cmdline "$pid") || return 1
  [[ $cmd == *"${CORRELATORD_DEV_DIR}/"* ]] || return 1
  marker=$(svc_cmd_marker "$svc")
  if [[ $svc == kafka ]]; then
    [[ " $cmd " == *" $marker "* ]]
  else
    argv0=${cmd%% *}
    [[ ${argv0##*/} == "$marker" ]]
  fi
}

# Prints the pid of our running instance of the service (from its pid file).
svc_pid() {
  local f pid
  f=$(svc_pidfile "$1")
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  proc_is_ours "$1" "$pid" || return 1
  echo "$pid"
}

# True if something accepts TCP connections on host:port.
tcp_open() {
  local host port
  host=$(addr_host "$1")
  port=$(addr_port "$1")
  # shellcheck disable=SC2016
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# Prints the pids of the processes listening on TCP port $1 (needs ss).
port_listeners() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# Sends SIGTERM to each pid, waits up to $1 seconds for all of them to exit,
# then SIGKILLs the survivors. Usage: stop_pids TIMEOUT PID...
stop_pids() {
  local timeout=$1 pid alive deadline
  shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + timeout))
  while :; do
    alive=()
    for pid in "$@"; do proc_alive "$pid" && alive+=("$pid"); done
    ((${#alive[@]} == 0)) && return 0
    ((SECONDS >= deadline)) && break
    sleep 0.2
  done
  warn "pid(s) ${alive[*]} still running ${timeout}s after SIGTERM: sending SIGKILL"
  for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    alive=()
    for pid in "$@"; do proc_alive "$pid" && alive+=("$pid"); done
    ((${#alive[@]} == 0)) && return 0
    sleep 0.2
  done
  warn "pid(s) ${alive[*]} survived SIGKILL"
  return 1
}

# Serialises up.sh/down.sh runs on the same state dir (e.g. parallel CI steps).
dev_lock() {
  mkdir -p "${DEV_RUN}"
  command -v flock >/dev/null 2>&1 || return 0
  exec {DEV_LOCK_FD}>"${DEV_RUN}/.lock"
  if ! flock -n "${DEV_LOCK_FD}"; then
    log "waiting for another up.sh/down.sh on ${CORRELATORD_DEV_DIR} to finish"
    flock -w 900 "${DEV_LOCK_FD}" || die "timed out waiting for the lock ${DEV_RUN}/.lock"
  fi
}
