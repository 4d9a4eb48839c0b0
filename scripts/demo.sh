#!/usr/bin/env bash
# make demo: start correlatord on the dev stack, send it an alert storm through
# Kafka and a few alerts through Alertmanager, and show where they went.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/dev/env.sh
mkdir -p "$CORRELATORD_DEV_LOGS" "$CORRELATORD_DEV_DIR/run"
pidfile=$CORRELATORD_DEV_DIR/run/correlatord.pid
log=$CORRELATORD_DEV_LOGS/correlatord.log
addr=$CORRELATORD_DEV_CORRELATORD

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "correlatord already running (pid $(cat "$pidfile")); restarting it"
  kill -TERM "$(cat "$pidfile")"
  while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.2; done
fi
bin/correlatord --config.file examples/dev.yml --web.listen-address "$addr" --log.format json >>"$log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 100); do
  curl -sf "http://$addr/readyz" >/dev/null && break
  sleep 0.2
done
curl -sf "http://$addr/readyz" >/dev/null || { tail -n 20 "$log"; echo "correlatord is not ready"; exit 1; }
echo "correlatord ready on http://$addr (log: $log)"

ch() { curl -sS --fail "http://$CORRELATORD_DEV_CLICKHOUSE_HTTP/" --data-binary "$1"; }
before=$(ch "SELECT count() FROM correlator.events" 2>/dev/null || echo 0)

echo "== 20,000 alerts over 500 hosts into Kafka topic correlator.alerts, plus 3 malformed messages"
bin/loadgen --kafka.brokers "$CORRELATORD_DEV_KAFKA" --topic correlator.alerts --events 20000 --hosts 500 \
  --per-message 10 --malformed 3

echo "== 4 alerts posted to Alertmanager (it groups them by instance and calls correlatord's webhook)"
now=$(date -u +%FT%TZ)
curl -sS --fail -XPOST "http://$CORRELATORD_DEV_ALERTMANAGER/api/v2/alerts" -H 'Content-Type: application/json' -d "[
 {\"labels\":{\"alertname\":\"InstanceDown\",\"instance\":\"web-01.prod.example.com:9100\",\"severity\":\"critical\"},\"annotations\":{\"summary\":\"web-01 down\"},\"startsAt\":\"$now\"},
 {\"labels\":{\"alertname\":\"HighLatency\",\"instance\":\"10.10.2.11:9100\",\"severity\":\"major\"},\"annotations\":{\"summary\":\"web-01 slow\"},\"startsAt\":\"$now\"},
 {\"labels\":{\"alertname\":\"Watchdog\",\"instance\":\"prometheus\",\"severity\":\"none\"},\"annotations\":{\"summary\":\"heartbeat\"},\"startsAt\":\"$now\"},
 {\"labels\":{\"alertname\":\"DiskWillFillIn24h\",\"instance\":\"hv-dc1-01\",\"severity\":\"warning\"},\"annotations\":{\"summary\":\"hv-dc1-01 disk filling\"},\"startsAt\":\"$now\"}]"

want=$((before + 20004))
for _ in $(seq 1 150); do
  n=$(ch "SELECT count() FROM correlator.events")
  [ "$n" -ge "$want" ] && break
  sleep 0.2
done
echo
echo "== events in ClickHouse (correlator.events), by source and status"
ch "SELECT source, toString(status) AS status, count() AS events FROM correlator.events GROUP BY source, status ORDER BY source, status FORMAT PrettyCompactNoEscapes"
echo "== what the rules stage decided (examples/rules), by class and outcome"
ch "SELECT class, outcome, count() AS events FROM correlator.events GROUP BY class, outcome ORDER BY events DESC FORMAT PrettyCompactNoEscapes"
echo "== the Alertmanager alerts, bound to CMDB CIs (examples/topology.yaml) and enriched with their site"
ch "SELECT label_values[indexOf(label_keys, 'alertname')] AS alert, ci, outcome, rule, label_values[indexOf(label_keys, 'site')] AS site FROM correlator.events WHERE source = 'alertmanager' ORDER BY alert FORMAT PrettyCompactNoEscapes"
echo "== incidents (correlation and the incidents stage), by priority and category, from ClickHouse"
for _ in $(seq 1 50); do
  n=$(ch "SELECT count() FROM correlator.incidents" 2>/dev/null || echo 0)
  [ "${n:-0}" -gt 0 ] && break
  sleep 0.2
done
ch "SELECT priority, category, count() AS incidents, sum(event_count) AS events FROM correlator.incidents FINAL GROUP BY priority, category ORDER BY priority, category FORMAT PrettyCompactNoEscapes"
echo "== the incident of the Alertmanager alerts on web-01, from the API (GET /api/v1/incidents?ci=vm-web-01)"
curl -s "http://$addr/api/v1/incidents?ci=vm-web-01&limit=1" | head -c 1200; echo
echo "== daemon metrics (http://$addr/metrics)"
curl -s "http://$addr/metrics" | grep -E '^correlator_(ingest_events_received_total|ingest_dead_letter_messages_total|incidents_created_total\{priority="P[12]")'
cat <<MSG

Open:
  http://$addr/api/v1/incidents?status=open   open incidents (docs/openapi.yaml documents the API)
  http://$addr/metrics      the daemon's metrics
  http://$addr/readyz       readiness
  http://$CORRELATORD_DEV_PROMETHEUS/graph?g0.expr=rate(correlator_ingest_events_received_total%5B1m%5D)
  clickhouse-client -q 'SELECT * FROM correlator.events LIMIT 5 FORMAT Vertical'
Dead letters are in the Kafka topic correlator.deadletter. Stop the daemon: kill \$(cat $pidfile)
MSG
