# shellcheck shell=sh
# deploy/dev/env.sh: addresses and paths of the local integration-test infrastructure.
#
# Source it (". deploy/dev/env.sh") from bash, or from POSIX sh (a Makefile recipe);
# run it ("bash deploy/dev/env.sh") to print "export NAME=value" lines instead.
# Every variable can be overridden by setting it before this file is sourced.
# This file changes no shell options, so it is safe to source into any shell.

# Repository root: two levels above this file. In bash the path of this file is
# known; POSIX sh cannot tell a sourced file's path, so there we fall back to
# CORRELATORD_DEV_REPO, then to the git work tree of the current directory.
if [ -n "${BASH_VERSION:-}" ]; then
  eval '_cdev_src=${BASH_SOURCE[0]}'
elif [ -n "${ZSH_VERSION:-}" ]; then
  eval '_cdev_src=${(%):-%x}'
else
  _cdev_src=
fi
if [ -n "${_cdev_src}" ]; then
  CORRELATORD_DEV_REPO=$(cd -P "$(dirname "${_cdev_src}")/../.." && pwd)
elif [ -z "${CORRELATORD_DEV_REPO:-}" ]; then
  CORRELATORD_DEV_REPO=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
fi
unset _cdev_src

# State dir: everything the dev scripts write (data, logs, pid files, jars).
CORRELATORD_DEV_DIR=${CORRELATORD_DEV_DIR:-${CORRELATORD_DEV_REPO}/.dev}
case ${CORRELATORD_DEV_DIR} in
  /*) ;;
  *) CORRELATORD_DEV_DIR=$(pwd)/${CORRELATORD_DEV_DIR} ;;
esac

# Addresses (host:port).
CORRELATORD_DEV_KAFKA=${CORRELATORD_DEV_KAFKA:-127.0.0.1:9092}                       # Kafka PLAINTEXT (clients)
CORRELATORD_DEV_KAFKA_CONTROLLER=${CORRELATORD_DEV_KAFKA_CONTROLLER:-127.0.0.1:9094}  # KRaft CONTROLLER listener
CORRELATORD_DEV_CLICKHOUSE_NATIVE=${CORRELATORD_DEV_CLICKHOUSE_NATIVE:-127.0.0.1:9000}
CORRELATORD_DEV_CLICKHOUSE_HTTP=${CORRELATORD_DEV_CLICKHOUSE_HTTP:-127.0.0.1:8123}
CORRELATORD_DEV_PROMETHEUS=${CORRELATORD_DEV_PROMETHEUS:-127.0.0.1:9090}
CORRELATORD_DEV_ALERTMANAGER=${CORRELATORD_DEV_ALERTMANAGER:-127.0.0.1:9093}
# Where correlatord itself listens in tests: Prometheus scrapes it and
# Alertmanager posts its webhooks to http://$CORRELATORD_DEV_CORRELATORD/api/v1/alerts.
CORRELATORD_DEV_CORRELATORD=${CORRELATORD_DEV_CORRELATORD:-127.0.0.1:9470}

# Derived from the state dir (always recomputed, not overridable).
CORRELATORD_DEV_LOGS=${CORRELATORD_DEV_DIR}/logs
# Kafka 4.1.1 jars (broker + CLI tools): java -cp "$CORRELATORD_DEV_KAFKA_LIBS/*" ...
CORRELATORD_DEV_KAFKA_LIBS=${CORRELATORD_DEV_DIR}/cache/kafka-4.1.1/libs

export CORRELATORD_DEV_REPO CORRELATORD_DEV_DIR CORRELATORD_DEV_LOGS CORRELATORD_DEV_KAFKA_LIBS \
  CORRELATORD_DEV_KAFKA CORRELATORD_DEV_KAFKA_CONTROLLER \
  CORRELATORD_DEV_CLICKHOUSE_NATIVE CORRELATORD_DEV_CLICKHOUSE_HTTP \
  CORRELATORD_DEV_PROMETHEUS CORRELATORD_DEV_ALERTMANAGER CORRELATORD_DEV_CORRELATORD

# Executed rather than sourced (bash only): print the values as shell assignments.
if [ -n "${BASH_VERSION:-}" ] && eval '[ "${BASH_SOURCE[0]}" = "$0" ]'; then
  eval 'for _cdev_v in CORRELATORD_DEV_REPO CORRELATORD_DEV_DIR CORRELATORD_DEV_LOGS CORRELATORD_DEV_KAFKA_LIBS \
      CORRELATORD_DEV_KAFKA CORRELATORD_DEV_KAFKA_CONTROLLER \
      CORRELATORD_DEV_CLICKHOUSE_NATIVE CORRELATORD_DEV_CLICKHOUSE_HTTP \
      CORRELATORD_DEV_PROMETHEUS CORRELATORD_DEV_ALERTMANAGER CORRELATORD_DEV_CORRELATORD; do
    printf "export %s=%q\n" "$_cdev_v" "${!_cdev_v}"
  done'
  unset _cdev_v
fi
