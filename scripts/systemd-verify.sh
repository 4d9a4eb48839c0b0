#!/usr/bin/env bash
# scripts/systemd-verify.sh: checks the systemd units in deploy/systemd.
#
# For correlatord.service and the template correlatord@.service (as the
# instance correlatord@9470.service):
#   1. systemd-analyze verify, with ExecStart pointed at a freshly built
#      bin/correlatord (verify insists the binary exists). Any message fails:
#      verify exits 0 on unknown keys and unparsable values, and only says so.
#   2. systemd-analyze security --offline: the exposure score must stay at or
#      below SYSTEMD_MAX_EXPOSURE (default 2.0; systemd calls < 2.0 "OK").
#   3. The ExecStart arguments parse with the real correlatord command line
#      (an unknown or misspelt flag fails).
# The stop timeout against the example configs' shutdown timeouts is checked
# by cmd/correlatord's TestSystemdUnitsFitExamples.
#
# Skips (exit 0, with a message) when systemd-analyze is not installed:
# apt-get install systemd. No running systemd is needed: verify and
# security --offline only read unit files.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-verify: SKIPPED: systemd-analyze not found (apt-get install systemd); deploy/systemd not checked"
  exit 0
fi
max_exposure=${SYSTEMD_MAX_EXPOSURE:-2.0}
threshold=$(awk -v e="$max_exposure" 'BEGIN { printf "%d", e * 10 }')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=${CGO_ENABLED:-0} go build -o "$tmp/correlatord" ./cmd/correlatord

status=0
fail() { echo "systemd-verify: FAIL: $*" >&2; status=1; }

# unit file -> name to verify (a template is verified as one instance)
declare -A UNITS=([correlatord.service]=correlatord.service [correlatord@.service]=correlatord@9470.service)
for file in correlatord.service correlatord@.service; do
  name=${UNITS[$file]}
  before=$status
  status=0
  sed "s#/usr/local/bin/correlatord#$tmp/correlatord#g" "deploy/systemd/$file" >"$tmp/$file"

  out=$(cd "$tmp" && systemd-analyze verify --man=no "./$name" 2>&1) || fail "$file: systemd-analyze verify exited non-zero"
  if [[ -n $out ]]; then
    printf '%s\n' "$out" >&2
    fail "$file: systemd-analyze verify reported the lines above"
  fi

  if out=$(cd "$tmp" && systemd-analyze security --offline=yes --threshold="$threshold" "./$name" 2>&1); then
    echo "systemd-verify: $file: $(printf '%s\n' "$out" | grep -a 'Overall exposure')"
  else
    printf '%s\n' "$out" >&2
    fail "$file: exposure above $max_exposure (systemd-analyze security)"
  fi

  # ExecStart with its continuation lines joined, the instance name filled in.
  exec_start=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$tmp/$file" | sed -n 's/^ExecStart=//p' | sed 's/%i/9470/g')
  read -r -a argv <<<"$exec_start"
  if [[ ${argv[0]} != "$tmp/correlatord" || ${argv[1]:-} != run ]]; then
    fail "$file: ExecStart is not '/usr/local/bin/correlatord run ...': ${exec_start}"
  elif ! out=$("${argv[@]}" --help 2>&1 >/dev/null); then
    printf '%s\n' "$out" >&2
    fail "$file: correlatord rejects the ExecStart arguments"
  fi
  if ((status == 0)); then echo "systemd-verify: $file: ok (verify, security, ExecStart arguments)"; fi
  status=$((status | before))
done
exit $status
