#!/usr/bin/env bash
# deploy/dev/up.sh [kafka|clickhouse|prometheus|alertmanager ...]
#
# Installs (if missing), starts (if not running) and waits for the local
# integration-test infrastructure. No arguments = all four services.
# Idempotent: a second run installs nothing, restarts nothing, and takes ~1-2s.
# Prints one line per service with its address on stdout; progress goes to stderr.
# Exits non-zero (after showing the tail of the relevant logs) if a service
# cannot be installed or does not become ready in time.
#
# Env (see env.sh for the addresses):
#   CORRELATORD_DEV_DIR                  state dir (default <repo>/.dev)
#   CORRELATORD_DEV_TIMEOUT              seconds to wait for each service to be ready (default 180)
#   CORRELATORD_DEV_KAFKA_HEAP_OPTS      JVM heap of the broker (default "-Xms256m -Xmx768m")
set -euo pipefail

# shellcheck source=deploy/dev/lib.sh
. "$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

READY_TIMEOUT=${CORRELATORD_DEV_TIMEOUT:-180}
KAFKA_HEAP_OPTS=${CORRELATORD_DEV_KAFKA_HEAP_OPTS:-"-Xms256m -Xmx768m"}
START_MS=$(now_ms)

mapfile -t SERVICES < <(parse_services "$@")
((${#SERVICES[@]})) || exit 1 # parse_services died

mkdir -p "${CORRELATORD_DEV_DIR}" "${DEV_RUN}" "${DEV_CACHE}" "${CORRELATORD_DEV_LOGS}"
dev_lock

want() { # true if service $1 was asked for
  local s
  for s in "${SERVICES[@]}"; do [[ $s == "$1" ]] && return 0; done
  return 1
}

# write_config DEST [restart]: writes stdin to DEST if the content differs.
# With "restart", a change sets CONFIG_CHANGED (the running service must
# reload/restart to see it).
CONFIG_CHANGED=
write_config() {
  local dest=$1 tmp="$1.tmp.$$"
  cat >"$tmp"
  if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    return 0
  fi
  mv -f "$tmp" "$dest"
  if [[ ${2:-} == restart ]]; then CONFIG_CHANGED=1; fi
  return 0
}

# ---------------------------------------------------------------------------
# Packages (Debian apt)
# ---------------------------------------------------------------------------

SUDO=()
need_root() {
  ((EUID == 0)) && return 0
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install these packages yourself: $*"
  SUDO=(sudo)
}

POLICY_RC_CREATED=
cleanup() {
  if [[ -n $POLICY_RC_CREATED ]]; then
    "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d || true
    POLICY_RC_CREATED=
  fi
}
trap cleanup EXIT

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# Installs the given Debian packages that are not installed yet, without
# letting their maintainer scripts start any daemon.
ensure_packages() {
  local p missing=() aptlog="${CORRELATORD_DEV_LOGS}/apt.log" t0
  for p in "$@"; do [[ -z $p ]] || pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} yourself"
  need_root "${missing[@]}"
  t0=$(now_ms)
  log "installing ${missing[*]} with apt (log: ${aptlog})"
  # Keep postinst scripts from starting the packaged daemons (invoke-rc.d and
  # deb-systemd-invoke both honour policy-rc.d). An existing policy is left alone.
  # (One left behind by an interrupted run of this script is recognised and removed.)
  if [[ ! -e /usr/sbin/policy-rc.d ]] || grep -q 'correlatord deploy/dev/up.sh' /usr/sbin/policy-rc.d 2>/dev/null; then
    POLICY_RC_CREATED=1
    "${SUDO[@]}" sh -c 'printf "#!/bin/sh\n# created by correlatord deploy/dev/up.sh during apt-get install\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  fi
  local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -q -o DPkg::Lock::Timeout=300)
  {
    echo "=== $(date -Is) apt-get update"
  } >>"$aptlog"
  if ! "${apt[@]}" update </dev/null >>"$aptlog" 2>&1; then
    warn "apt-get update failed (trying the install anyway); see ${aptlog}"
  fi
  echo "=== $(date -Is) apt-get install ${missing[*]}" >>"$aptlog"
  if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null >>"$aptlog" 2>&1; then
    tail_logs "$aptlog"
    die "apt-get install ${missing[*]} failed"
  fi
  cleanup
  # On a machine with systemd the packages enable their units (they would
  # start at next boot and take our ports): disable them.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    for p in "${missing[@]}"; do
      case $p in
        clickhouse-server | prometheus | prometheus-alertmanager)
          "${SUDO[@]}" systemctl disable --now "$p.service" >>"$aptlog" 2>&1 || true
          ;;
      esac
    done
  fi
  log "installed ${missing[*]} in $(($(now_ms) - t0))ms"
}

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
    echo "${JAVA_HOME}/bin/java"
  else
    command -v java
  fi
}

required_packages() {
  local pkgs=()
  if want clickhouse || want prometheus || want alertmanager; then
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  fi
  command -v ss >/dev/null 2>&1 || pkgs+=(iproute2)
  want clickhouse && pkgs+=(clickhouse-server clickhouse-client)
  want prometheus && pkgs+=(prometheus)
  want alertmanager && pkgs+=(prometheus-alertmanager)
  if want kafka; then
    java_bin >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
    if [[ ! -f ${CORRELATORD_DEV_KAFKA_LIBS}/.complete ]] && ! command -v mvn >/dev/null 2>&1; then
      pkgs+=(maven)
    fi
  fi
  if ((${#pkgs[@]})); then printf '%s\n' "${pkgs[@]}"; fi
}

# ---------------------------------------------------------------------------
# Starting services
# ---------------------------------------------------------------------------

# launch SERVICE WORKDIR OUTLOG CMD...: starts CMD in its own session, detached
# from this script (stdin /dev/null, output appended to OUTLOG, no inherited
# fds), and writes its pid file.
launch() {
  local svc=$1 dir=$2 out=$3 pidfile deadline
  shift 3
  pidfile=$(svc_pidfile "$svc")
  rm -f "$pidfile"
  mkdir -p "$(dirname "$out")"
  printf '=== %s up.sh: starting %s: %s\n' "$(date -Is)" "$svc" "$*" >>"$out"
  # setsid -f always forks: the service is reparented to init and outlives us.
  # The wrapper shell records its own pid, then execs the service (same pid).
  # shellcheck disable=SC2016 # expanded by the wrapper shell
  setsid -f bash -c '
    pidfile=$1 dir=$2
    shift 2
    fds=$(ls /proc/$$/fd)
    for fd in $fds; do
      if ((fd > 2)); then eval "exec ${fd}>&-"; fi
    done
    cd "$dir" || exit 1
    echo $$ >"$pidfile.tmp" && mv -f "$pidfile.tmp" "$pidfile"
    exec "$@"' _ "$pidfile" "$dir" "$@" </dev/null >>"$out" 2>&1
  deadline=$((SECONDS + 10))
  until [[ -s $pidfile ]]; do
    ((SECONDS < deadline)) || die "$svc: launcher did not write ${pidfile}"
    sleep 0.05
  done
}

# Something listens on host:port $2 but it is not our pid-file instance of $1.
# Adopts our own instance (pid file lost), stops an instance run by the Debian
# package's init script/systemd unit (runs as the package's user or with its
# /etc config), and fails for anything else (e.g. another checkout's .dev).
# Returns 0 if an instance was adopted.
resolve_port_conflict() {
  local svc=$1 addr=$2 port pids pid exe cmd user unit pkguser etcdir
  port=$(addr_port "$addr")
  pids=$(port_listeners "$port")
  [[ -n $pids ]] || die "$svc: ${addr} is already in use by a process this script cannot identify (no ss, or another user/namespace)"
  for pid in $pids; do
    if proc_is_ours "$svc" "$pid"; then
      log "$svc: adopting running instance pid ${pid} (its pid file was missing)"
      echo "$pid" >"$(svc_pidfile "$svc")"
      return 0
    fi
  done
  case $svc in
    clickhouse) unit=clickhouse-server pkguser=clickhouse etcdir=/etc/clickhouse-server/ ;;
    prometheus) unit=prometheus pkguser=prometheus etcdir=/etc/prometheus/ ;;
    alertmanager) unit=prometheus-alertmanager pkguser=prometheus etcdir=/etc/prometheus/ ;;
    *) unit='' pkguser='' etcdir='' ;;
  esac
  for pid in $pids; do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    cmd=$(proc_cmdline "$pid" || true)
    user=$(stat -c %U "/proc/$pid" 2>/dev/null || true)
    if [[ -n $unit && ${exe##*/} == "$(svc_cmd_marker "$svc")"* ]] &&
      [[ $user == "$pkguser" || $cmd == *"$etcdir"* ]]; then
      warn "$svc: the Debian package's own instance (pid ${pid}, user ${user}: ${cmd}) holds ${addr}: stopping and disabling it"
      if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        need_root "$unit"
        "${SUDO[@]}" systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
      fi
      if proc_alive "$pid"; then
        need_root "$unit"
        "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
        stop_pids 30 "$pid" || die "$svc: could not stop pid ${pid}"
      fi
    else
      die "$svc: ${addr} is already in use by pid ${pid} (user ${user:-?}: ${cmd:-${exe:-?}}); stop it or override the address (see deploy/dev/env.sh)"
    fi
  done
  return 1
}

# ----- Kafka ---------------------------------------------------------------

KAFKA_DIR=${CORRELATORD_DEV_DIR}/kafka
KAFKA_LOGS=${CORRELATORD_DEV_LOGS}/kafka
KAFKA_TOOL_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
  "-Dlog4j2.configurationFile=${KAFKA_DIR}/tools-log4j2.xml")

kafka_java() { # runs a class from the Kafka jars as a short-lived tool
  "$(java_bin)" "${KAFKA_TOOL_OPTS[@]}" -cp "${CORRELATORD_DEV_KAFKA_LIBS}/*" "$@"
}

kafka_libs() {
  local pom="${DEV_SCRIPTS}/kafka/pom.xml" want_sum tmp mvnlog="${CORRELATORD_DEV_LOGS}/mvn.log" t0
  want_sum=$(sha256sum "$pom" | cut -c1-64)
  if [[ -f ${CORRELATORD_DEV_KAFKA_LIBS}/.complete && $(<"${CORRELATORD_DEV_KAFKA_LIBS}/.complete") == "$want_sum" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "kafka: mvn not found"
  t0=$(now_ms)
  log "kafka: resolving Kafka ${KAFKA_VERSION} jars with Maven (log: ${mvnlog})"
  tmp="${CORRELATORD_DEV_KAFKA_LIBS}.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "${CORRELATORD_DEV_KAFKA_LIBS}")"
  echo "=== $(date -Is) mvn dependency:copy-dependencies" >>"$mvnlog"
  if ! mvn -B -q -f "$pom" -Dmaven.repo.local="${DEV_CACHE}/m2" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" </dev/null >>"$mvnlog" 2>&1; then
    rm -rf "$tmp"
    tail_logs "$mvnlog"
    die "kafka: mvn dependency:copy-dependencies failed"
  fi
  [[ -f $tmp/kafka_2.13-${KAFKA_VERSION}.jar ]] || die "kafka: mvn did not produce kafka_2.13-${KAFKA_VERSION}.jar"
  echo "$want_sum" >"$tmp/.complete"
  rm -rf "${CORRELATORD_DEV_KAFKA_LIBS}"
  mv "$tmp" "${CORRELATORD_DEV_KAFKA_LIBS}"
  log "kafka: $(find "${CORRELATORD_DEV_KAFKA_LIBS}" -name '*.jar' | wc -l) jars in ${CORRELATORD_DEV_KAFKA_LIBS} ($(($(now_ms) - t0))ms)"
}

kafka_check_java() {
  local jb spec
  jb=$(java_bin) || die "kafka: java not found"
  spec=$("$jb" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
  [[ ${spec%%.*} =~ ^[0-9]+$ && ${spec%%.*} -ge 17 ]] || die "kafka: Kafka ${KAFKA_VERSION} needs Java >= 17, ${jb} is ${spec:-unknown}"
}

kafka_configs() {
  mkdir -p "${KAFKA_DIR}/data" "${KAFKA_LOGS}"
  write_config "${KAFKA_DIR}/log4j2.xml" restart <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/dev/up.sh: broker logging (log4j2), to files only.
     shutdownHook="disable": keep logging while the broker runs its own shutdown hook. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <RollingFile name="server" fileName="\${sys:kafka.logs.dir}/server.log" filePattern="\${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="server"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel\$" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
  </Loggers>
</Configuration>
EOF
  write_config "${KAFKA_DIR}/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/dev/up.sh: logging of short-lived Kafka CLI tools (warnings to stderr). -->
<Configuration status="WARN">
  <Appenders><Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF
  write_config "${KAFKA_DIR}/admin.properties" <<'EOF'
# Generated by deploy/dev/up.sh: client settings of the readiness probe (fail fast).
request.timeout.ms=5000
default.api.timeout.ms=8000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=2000
EOF
  write_config "${KAFKA_DIR}/server.properties" restart <<EOF
# Generated by deploy/dev/up.sh: single-node KRaft Kafka ${KAFKA_VERSION} (combined broker + controller).
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://${CORRELATORD_DEV_KAFKA},CONTROLLER://${CORRELATORD_DEV_KAFKA_CONTROLLER}
advertised.listeners=PLAINTEXT://${CORRELATORD_DEV_KAFKA},CONTROLLER://${CORRELATORD_DEV_KAFKA_CONTROLLER}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
# Dynamic quorum (KIP-853): the storage is formatted with --standalone.
controller.quorum.bootstrap.servers=${CORRELATORD_DEV_KAFKA_CONTROLLER}
log.dirs=${KAFKA_DIR}/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
EOF
}

kafka_format() {
  local meta="${KAFKA_DIR}/data/meta.properties" id out
  [[ -f $meta ]] && return 0
  if [[ -s ${KAFKA_DIR}/cluster.id ]]; then
    id=$(<"${KAFKA_DIR}/cluster.id")
  else
    id=$(kafka_java kafka.tools.StorageTool random-uuid 2>>"${KAFKA_LOGS}/format.log") || {
      tail_logs "${KAFKA_LOGS}/format.log"
      die "kafka: StorageTool random-uuid failed"
    }
    echo "$id" >"${KAFKA_DIR}/cluster.id"
  fi
  log "kafka: formatting storage (cluster id ${id})"
  if ! out=$(kafka_java kafka.tools.StorageTool format --standalone -t "$id" \
    -c "${KAFKA_DIR}/server.properties" 2>&1); then
    echo "$out" >>"${KAFKA_LOGS}/format.log"
    tail_logs "${KAFKA_LOGS}/format.log"
    die "kafka: StorageTool format failed"
  fi
  echo "$out" >>"${KAFKA_LOGS}/format.log"
}

probe_kafka() {
  tcp_open "${CORRELATORD_DEV_KAFKA}" || return 1
  # A real metadata round trip: list the topics through the broker.
  timeout 30 "$(java_bin)" "${KAFKA_TOOL_OPTS[@]}" -cp "${CORRELATORD_DEV_KAFKA_LIBS}/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "${CORRELATORD_DEV_KAFKA}" \
    --command-config "${KAFKA_DIR}/admin.properties" --list >/dev/null 2>&1
}

# Sets CMD (the command line), WORKDIR, OUTLOG and RESTART_CONFIGS (the files
# whose change needs a restart) of the service.
kafka_cmd() {
  # shellcheck disable=SC2206 # KAFKA_HEAP_OPTS is a list of JVM flags
  CMD=("$(java_bin)" ${KAFKA_HEAP_OPTS} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=${KAFKA_DIR}/log4j2.xml" "-Dkafka.logs.dir=${KAFKA_LOGS}"
    -cp "${CORRELATORD_DEV_KAFKA_LIBS}/*" kafka.Kafka "${KAFKA_DIR}/server.properties")
  WORKDIR=${KAFKA_DIR} OUTLOG=${CORRELATORD_DEV_LOGS}/kafka.out
  RESTART_CONFIGS=("${KAFKA_DIR}/server.properties" "${KAFKA_DIR}/log4j2.xml")
}

prelaunch_kafka() { kafka_format; }

# ----- ClickHouse ----------------------------------------------------------

CH_DIR=${CORRELATORD_DEV_DIR}/clickhouse
CH_LOGS=${CORRELATORD_DEV_LOGS}/clickhouse

clickhouse_configs() {
  mkdir -p "${CH_DIR}/data" "${CH_DIR}/tmp" "${CH_DIR}/user_files" "${CH_DIR}/format_schemas" "${CH_LOGS}"
  local nh hh listen
  nh=$(addr_host "${CORRELATORD_DEV_CLICKHOUSE_NATIVE}")
  hh=$(addr_host "${CORRELATORD_DEV_CLICKHOUSE_HTTP}")
  listen="    <listen_host>${nh}</listen_host>"
  [[ $hh != "$nh" ]] && listen+=$'\n'"    <listen_host>${hh}</listen_host>"
  # users.xml is re-read by a running server, so it is not a restart reason.
  write_config "${CH_DIR}/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Generated by deploy/dev/up.sh. ClickHouse 18.16 format (root element <yandex>). -->
<yandex>
    <profiles>
        <default>
            <!-- Per query / all queries together; ClickHouse 18.16 has no max_server_memory_usage. -->
            <max_memory_usage>2000000000</max_memory_usage>
            <max_memory_usage_for_all_queries>4000000000</max_memory_usage_for_all_queries>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <!-- LowCardinality is experimental in 18.16: allow it. -->
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <!-- "default", no password, only from localhost. -->
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
                <ip>::ffff:127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
  write_config "${CH_DIR}/config.xml" restart <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/dev/up.sh. ClickHouse 18.16 format (root element <yandex>). -->
<yandex>
    <logger>
        <level>information</level>
        <log>${CH_LOGS}/clickhouse-server.log</log>
        <errorlog>${CH_LOGS}/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>3</count>
        <console>0</console>
    </logger>
${listen}
    <tcp_port>$(addr_port "${CORRELATORD_DEV_CLICKHOUSE_NATIVE}")</tcp_port>
    <http_port>$(addr_port "${CORRELATORD_DEV_CLICKHOUSE_HTTP}")</http_port>
    <!-- No interserver_http_port: single node, no replication. -->
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <!-- Small caches: a 2-core / 24 GB machine shared with Kafka, Prometheus and the tests. -->
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>${CH_DIR}/data/</path>
    <tmp_path>${CH_DIR}/tmp/</tmp_path>
    <user_files_path>${CH_DIR}/user_files/</user_files_path>
    <format_schema_path>${CH_DIR}/format_schemas/</format_schema_path>
    <users_config>${CH_DIR}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <umask>022</umask>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <!-- Tests may drop tables of any size. -->
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
EOF
}

probe_clickhouse() {
  local r
  r=$(curl -s --max-time 2 "http://${CORRELATORD_DEV_CLICKHOUSE_HTTP}/ping" 2>/dev/null) || return 1
  [[ $r == Ok.* ]] || return 1
  timeout 10 clickhouse-client --host "$(addr_host "${CORRELATORD_DEV_CLICKHOUSE_NATIVE}")" \
    --port "$(addr_port "${CORRELATORD_DEV_CLICKHOUSE_NATIVE}")" -q 'SELECT version()' >/dev/null 2>&1
}

clickhouse_cmd() {
  CMD=(/usr/sbin/clickhouse-server "--config-file=${CH_DIR}/config.xml")
  WORKDIR=${CH_DIR} OUTLOG=${CORRELATORD_DEV_LOGS}/clickhouse.out
  RESTART_CONFIGS=("${CH_DIR}/config.xml")
}

prelaunch_clickhouse() { :; }

# ----- Prometheus ----------------------------------------------------------

PROM_DIR=${CORRELATORD_DEV_DIR}/prometheus

prometheus_configs() {
  mkdir -p "${PROM_DIR}/data" "${PROM_DIR}/rules"
  # correlatord's own recording and alerting rules (deploy/prometheus).
  write_config "${PROM_DIR}/rules/correlatord-rules.yml" restart <"${CORRELATORD_DEV_REPO}/deploy/prometheus/correlatord-rules.yml"
  write_config "${PROM_DIR}/prometheus.yml" restart <<EOF
# Generated by deploy/dev/up.sh.
global:
  scrape_interval: 5s
  evaluation_interval: 1s
# Tests may drop rule files here and POST http://${CORRELATORD_DEV_PROMETHEUS}/-/reload.
rule_files:
  - ${PROM_DIR}/rules/*.yml
  - ${PROM_DIR}/rules/*.yaml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['${CORRELATORD_DEV_ALERTMANAGER}']
scrape_configs:
  - job_name: correlatord
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['${CORRELATORD_DEV_CORRELATORD}']
  - job_name: prometheus
    static_configs:
      - targets: ['${CORRELATORD_DEV_PROMETHEUS}']
EOF
}

prometheus_check() {
  local out
  out=$(promtool check config "${PROM_DIR}/prometheus.yml" 2>&1) || {
    echo "$out" >&2
    die "prometheus: promtool check config ${PROM_DIR}/prometheus.yml failed"
  }
}

probe_prometheus() {
  curl -fs -o /dev/null --max-time 2 "http://${CORRELATORD_DEV_PROMETHEUS}/-/ready"
}

prometheus_cmd() {
  CMD=(/usr/bin/prometheus "--config.file=${PROM_DIR}/prometheus.yml"
    "--storage.tsdb.path=${PROM_DIR}/data" --storage.tsdb.retention.time=2d
    "--web.listen-address=${CORRELATORD_DEV_PROMETHEUS}" --web.enable-lifecycle)
  WORKDIR=${PROM_DIR} OUTLOG=${CORRELATORD_DEV_LOGS}/prometheus.log
  RESTART_CONFIGS=() # prometheus.yml is applied with POST /-/reload
}

prelaunch_prometheus() { prometheus_check; }

# ----- Alertmanager --------------------------------------------------------

AM_DIR=${CORRELATORD_DEV_DIR}/alertmanager

alertmanager_configs() {
  mkdir -p "${AM_DIR}/data"
  write_config "${AM_DIR}/alertmanager.yml" restart <<EOF
# Generated by deploy/dev/up.sh: every alert goes to correlatord's webhook,
# but correlatord's alerts about itself (deploy/prometheus), which would
# page the daemon they are about.
route:
  receiver: correlatord
  group_by: ['instance']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname=~"Correlatord.*"']
      receiver: 'null'
receivers:
  - name: 'null'
  - name: correlatord
    webhook_configs:
      - url: 'http://${CORRELATORD_DEV_CORRELATORD}/api/v1/alerts'
        send_resolved: true
EOF
}

alertmanager_check() {
  command -v amtool >/dev/null 2>&1 || return 0
  local out
  out=$(amtool check-config "${AM_DIR}/alertmanager.yml" 2>&1) || {
    echo "$out" >&2
    die "alertmanager: amtool check-config ${AM_DIR}/alertmanager.yml failed"
  }
}

probe_alertmanager() {
  curl -fs -o /dev/null --max-time 2 "http://${CORRELATORD_DEV_ALERTMANAGER}/-/ready"
}

alertmanager_cmd() {
  CMD=(/usr/bin/prometheus-alertmanager "--config.file=${AM_DIR}/alertmanager.yml"
    "--storage.path=${AM_DIR}/data" "--web.listen-address=${CORRELATORD_DEV_ALERTMANAGER}"
    --cluster.listen-address=)
  WORKDIR=${AM_DIR} OUTLOG=${CORRELATORD_DEV_LOGS}/alertmanager.log
  RESTART_CONFIGS=() # alertmanager.yml is applied with POST /-/reload
}

prelaunch_alertmanager() { alertmanager_check; }

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

declare -A STATUS=() T_START=()
PENDING=()

# What a running instance was started with: its command line and the content
# of its restart-only config files. Saved at launch in run/<svc>.sig.
svc_signature() {
  local f
  "${1}_cmd"
  printf '%q ' "${CMD[@]}"
  echo
  for f in "${RESTART_CONFIGS[@]}"; do
    echo "== $f"
    cat "$f"
  done
}

svc_reload() {
  local svc=$1 addr
  addr=$(svc_addr "$svc")
  "${svc}_check"
  curl -fs -o /dev/null -X POST "http://${addr}/-/reload" || die "$svc: POST http://${addr}/-/reload failed (see $(svc_logs "$svc"))"
}

# Makes sure service $1 is running or starting; queues it for the readiness wait.
start_service() {
  local svc=$1 pid changed addr stale='' sigfile
  sigfile="${DEV_RUN}/${svc}.sig"
  CONFIG_CHANGED=
  "${svc}_configs"
  changed=${CONFIG_CHANGED}
  if ! svc_pid "$svc" >/dev/null; then
    rm -f "$(svc_pidfile "$svc")" "$sigfile"
    # Our ports must be free, unless our own instance holds them (adopted).
    for addr in $(svc_ports "$svc"); do
      if tcp_open "$addr" && resolve_port_conflict "$svc" "$addr"; then break; fi
    done
  fi
  if pid=$(svc_pid "$svc"); then
    if [[ -f $sigfile ]] && ! cmp -s "$sigfile" <(svc_signature "$svc"); then
      stale=1
    fi
    if ! "probe_${svc}"; then
      if [[ -n $stale ]]; then
        die "$svc: pid ${pid} runs with other settings than the current ones (addresses or config changed) and is not ready at $(svc_addr "$svc"): restart it: deploy/dev/down.sh $svc && deploy/dev/up.sh $svc"
      fi
      log "$svc: pid ${pid} is running but not ready yet: waiting"
      STATUS[$svc]="was starting (pid ${pid})"
      T_START[$svc]=$(now_ms)
      PENDING+=("$svc")
      return 0
    fi
    STATUS[$svc]="already running (pid ${pid})"
    if [[ -n $changed && ($svc == prometheus || $svc == alertmanager) ]]; then
      svc_reload "$svc"
      STATUS[$svc]+=", config reloaded"
    fi
    if [[ -n $stale ]]; then
      warn "$svc: pid ${pid} was started with other settings than the current ones; restart it to apply them: deploy/dev/down.sh $svc && deploy/dev/up.sh $svc"
      STATUS[$svc]+=", STALE SETTINGS: restart to apply"
    fi
    return 0
  fi
  log "$svc: starting"
  T_START[$svc]=$(now_ms)
  "prelaunch_${svc}"
  "${svc}_cmd"
  launch "$svc" "$WORKDIR" "$OUTLOG" "${CMD[@]}"
  svc_signature "$svc" >"$sigfile"
  STATUS[$svc]="started (pid $(<"$(svc_pidfile "$svc")"))"
  PENDING+=("$svc")
}

# Polls every pending service until each is ready, has died, or timed out.
# Prints the failed ones' log tails; sets FAILED.
FAILED=()
wait_all_ready() {
  local svc pending=("$@") still deadline pid
  deadline=$((SECONDS + READY_TIMEOUT))
  while ((${#pending[@]})); do
    still=()
    for svc in "${pending[@]}"; do
      if "probe_${svc}"; then
        STATUS[$svc]+=", ready in $(($(now_ms) - ${T_START[$svc]}))ms"
      elif ! pid=$(svc_pid "$svc"); then
        printf '[dev] ERROR: %s exited during startup\n' "$svc" >&2
        # shellcheck disable=SC2046
        tail_logs $(svc_logs "$svc")
        FAILED+=("$svc")
      elif ((SECONDS >= deadline)); then
        printf '[dev] ERROR: %s not ready after %ss (pid %s still running)\n' "$svc" "$READY_TIMEOUT" "$pid" >&2
        # shellcheck disable=SC2046
        tail_logs $(svc_logs "$svc")
        FAILED+=("$svc")
      else
        still+=("$svc")
      fi
    done
    pending=("${still[@]}")
    if ((${#pending[@]})); then sleep 0.25; fi
  done
}

main() {
  local svc pkgs
  mapfile -t pkgs < <(required_packages)
  if ((${#pkgs[@]})); then ensure_packages "${pkgs[@]}"; fi

  if want kafka; then
    kafka_check_java
    # Jars are only (re)resolved when Kafka is not running from them.
    if ! svc_pid kafka >/dev/null; then kafka_libs; fi
  fi

  for svc in "${SERVICES[@]}"; do start_service "$svc"; done
  if ((${#PENDING[@]})); then wait_all_ready "${PENDING[@]}"; fi

  for svc in "${SERVICES[@]}"; do
    local addr
    case $svc in
      clickhouse) addr="native=${CORRELATORD_DEV_CLICKHOUSE_NATIVE} http=${CORRELATORD_DEV_CLICKHOUSE_HTTP}" ;;
      kafka) addr="${CORRELATORD_DEV_KAFKA} (controller ${CORRELATORD_DEV_KAFKA_CONTROLLER})" ;;
      *) addr=$(svc_addr "$svc") ;;
    esac
    local state=ready
    for f in "${FAILED[@]}"; do [[ $f == "$svc" ]] && state=FAILED; done
    printf '%-12s %-6s %-48s %s\n' "$svc" "$state" "$addr" "${STATUS[$svc]:-}"
  done
  if ((${#FAILED[@]})); then
    die "not ready: ${FAILED[*]} (logs: ${CORRELATORD_DEV_LOGS})"
  fi
  log "all ready in $(($(now_ms) - START_MS))ms (state: ${CORRELATORD_DEV_DIR}, logs: ${CORRELATORD_DEV_LOGS})"
}

main
