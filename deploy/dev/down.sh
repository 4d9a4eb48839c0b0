#!/usr/bin/env bash
# deploy/dev/down.sh [--purge] [kafka|clickhouse|prometheus|alertmanager ...]
#
# Stops what up.sh started (found through the pid files in $CORRELATORD_DEV_DIR/run):
# SIGTERM, wait up to CORRELATORD_DEV_STOP_TIMEOUT seconds (default 60), then SIGKILL.
# No service arguments = all four. Processes not started by up.sh are never touched.
#
# --purge: also delete the services' data, generated configs and logs (Kafka is
# reformatted, ClickHouse/Prometheus/Alertmanager start empty on the next up.sh).
# The downloaded Kafka jars and Maven cache ($CORRELATORD_DEV_DIR/cache) are kept;
# rm -rf "$CORRELATORD_DEV_DIR" removes everything.
set -euo pipefail

# shellcheck source=deploy/dev/lib.sh
. "$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

STOP_TIMEOUT=${CORRELATORD_DEV_STOP_TIMEOUT:-60}
PURGE=
args=()
for a in "$@"; do
  case $a in
    --purge) PURGE=1 ;;
    -h | --help)
      sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $a" ;;
    *) args+=("$a") ;;
  esac
done
mapfile -t SERVICES < <(parse_services "${args[@]}")
((${#SERVICES[@]})) || exit 1

[[ -d ${CORRELATORD_DEV_DIR} ]] && dev_lock

pids=()
declare -A PID_OF=()
for svc in "${SERVICES[@]}"; do
  f=$(svc_pidfile "$svc")
  if pid=$(svc_pid "$svc"); then
    PID_OF[$svc]=$pid
    pids+=("$pid")
  elif [[ -e $f ]]; then
    rm -f "$f" # stale: the process is gone (or the pid now belongs to something else)
  fi
done

rc=0
if ((${#pids[@]})); then
  log "stopping ${!PID_OF[*]} (pids ${pids[*]})"
  stop_pids "${STOP_TIMEOUT}" "${pids[@]}" || rc=1
fi
for svc in "${SERVICES[@]}"; do
  if [[ -n ${PID_OF[$svc]:-} ]]; then
    if proc_alive "${PID_OF[$svc]}"; then
      printf '%-12s still running (pid %s)\n' "$svc" "${PID_OF[$svc]}"
    else
      rm -f "$(svc_pidfile "$svc")"
      printf '%-12s stopped (pid %s)\n' "$svc" "${PID_OF[$svc]}"
    fi
  else
    printf '%-12s not running\n' "$svc"
  fi
done
((rc == 0)) || die "some services did not stop"

if [[ -n $PURGE ]]; then
  d=${CORRELATORD_DEV_DIR}
  [[ -n $d && $d != / && -d $d ]] || { log "nothing to purge (${d} does not exist)"; exit 0; }
  for svc in "${SERVICES[@]}"; do
    rm -rf "${d:?}/${svc}" "${CORRELATORD_DEV_LOGS:?}/${svc}" "${CORRELATORD_DEV_LOGS}/${svc}".* "$(svc_pidfile "$svc")"
    printf '%-12s purged (%s)\n' "$svc" "${d}/${svc}"
  done
  if ((${#SERVICES[@]} == ${#ALL_SERVICES[@]})); then
    rm -rf "${CORRELATORD_DEV_LOGS:?}" "${DEV_RUN:?}"
  fi
fi
