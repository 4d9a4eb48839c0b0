#!/usr/bin/env bash
# How many notifications an alert storm makes: correlatord (HTTP, no Kafka)
# with a webhook target, an Alertmanager API v2 storm of ALERTS distinct
# alerts over HOSTS hosts (grouped by instance: one incident per host), and
# a sink that counts the webhook POSTs by kind.
#
#   scripts/notify-storm.sh [ALERTS] [HOSTS] [WAIT_SECONDS]
#
# Prints the counts after WAIT_SECONDS (default 75: past the default
# incidents.update_interval of 1m, so that held "updated" notifications have
# gone out). NOTIFY_STORM_CORRELATORD=PATH runs another build. Needs make
# build and python3 (the sink).
set -euo pipefail
cd "$(dirname "$0")/.."
alerts=${1:-50000}
hosts=${2:-500}
wait_s=${3:-75}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
correlatord=${NOTIFY_STORM_CORRELATORD:-bin/correlatord}
[ -x "$correlatord" ] && [ -x bin/loadgen ] || { echo "run make build first" >&2; exit 1; }

python3 - 127.0.0.1 19097 <<'PY' &
import http.server, json, sys
counts = {}
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        try:
            kind = json.loads(body).get('kind', '?')
        except ValueError:
            kind = 'undecodable'
        counts[kind] = counts.get(kind, 0) + 1
        self.send_response(200)
        self.end_headers()
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({'posts': sum(counts.values()), 'kinds': counts}).encode())
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Sink).serve_forever()
PY
pids+=($!)
cat >"$work/c.yml" <<YAML
data_dir: $work/data
ingest:
  max_event_age: 0s
correlate:
  group_by: [instance]
notify:
  targets:
    - name: sink
      type: webhook
      url: http://127.0.0.1:19097/
YAML
"$correlatord" --config.file "$work/c.yml" --web.listen-address 127.0.0.1:19476 --log.level warn >"$work/log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:19476/healthz && break; sleep 0.1; done
bin/loadgen --http http://127.0.0.1:19476/api/v2/alerts --format am-v2 --events "$alerts" --hosts "$hosts" \
  --per-message 1000 --resolved 0 --workers 4
sleep "$wait_s"
echo "incidents: $(curl -s http://127.0.0.1:19476/metrics | awk '$1 ~ /^correlator_incidents_created_total/ {s += $NF} END {printf "%d", s}')"
echo "updates held back: $(curl -s http://127.0.0.1:19476/metrics | awk '$1 == "correlator_incident_updates_held_total" {printf "%d", $NF}')"
echo "webhook notifications after ${wait_s}s: $(curl -s http://127.0.0.1:19097/)"
