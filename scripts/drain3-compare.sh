#!/usr/bin/env bash
# Compares the speed of our template miner (ingest/logtemplate) with Drain3,
# the Python reference implementation, on the same input: the <Content> of
# the 16 Loghub 2k samples in ../shared/data, split off with the benchmark's
# header formats. Drain3 runs with its default configuration.
#
#   scripts/drain3-compare.sh            # needs python3 with drain3 (pip install drain3)
#
# Both sides time mining only, on one core: "cold" is one pass with a new
# parser per file (templates created on the way), "warm" a second pass over
# the same lines (every line joins a known template). The Go figures come
# from BenchmarkParseCold and BenchmarkParse.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA_DIR:-../shared/data}
if [ ! -d "$data/loghub" ]; then
  echo "drain3-compare: no Loghub data at $data/loghub (set DATA_DIR)" >&2
  exit 1
fi
if ! python3 -c 'import drain3' 2>/dev/null; then
  echo "drain3-compare: python3 cannot import drain3; install it with: pip install drain3" >&2
  exit 1
fi

py=$(python3 scripts/drain3_compare.py "$data")
read -r _ lines d3cold d3warm < <(grep '^TOTAL' <<<"$py")
d3v=$(python3 -c 'import importlib.metadata as m; print(m.version("drain3"))')

bench=$(GOMAXPROCS=1 go test -run '^$' -bench '^BenchmarkParse(Cold)?$' -benchtime 20x -cpu 1 ./ingest/logtemplate)
gocold=$(awk '/^BenchmarkParseCold/ {for (i=1;i<=NF;i++) if ($(i+1)=="lines/s") print $i}' <<<"$bench")
gowarm=$(awk '/^BenchmarkParse[ \t]/ {for (i=1;i<=NF;i++) if ($(i+1)=="lines/s") print $i}' <<<"$bench")

python3 - "$lines" "$d3cold" "$d3warm" "$gocold" "$gowarm" "$d3v" <<'PY'
import sys
lines, d3cold, d3warm, gocold, gowarm, ver = sys.argv[1:]
lines = int(lines)
d3c, d3w = lines / float(d3cold), lines / float(d3warm)
gc, gw = float(gocold), float(gowarm)
print("%d lines (16 Loghub 2k samples, <Content> only), one core" % lines)
print("| pass | Drain3 %s (default config) | ingest/logtemplate | ratio |" % ver)
print("|---|---:|---:|---:|")
print("| cold (new parser per file) | %.0f lines/s | %.0f lines/s | %.1fx |" % (d3c, gc, gc / d3c))
print("| warm (templates known) | %.0f lines/s | %.0f lines/s | %.1fx |" % (d3w, gw, gw / d3w))
PY
