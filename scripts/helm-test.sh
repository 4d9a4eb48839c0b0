#!/usr/bin/env bash
# scripts/helm-test.sh: tests the Helm chart deploy/helm/correlatord.
#
# 1. deploy/helm/test (a Go module of its own, so the main module does not get
#    Helm's dependency tree) renders the chart with Helm's engine (client-only
#    install, as `helm template` does) with the default values and a
#    multi-instance values file, runs helm lint's checks, decodes every
#    manifest strictly into its Kubernetes type, asserts replicas, probes,
#    ports, secret references and mounts, and compares the rendered
#    correlatord.yml with deploy/helm/test/testdata/*.correlatord.yml.
# 2. The daemon's own strict config loader loads those files
#    (cmd/correlatord TestHelmRenderedConfigs).
#
# After a deliberate change to the chart's configuration:
#   (cd deploy/helm/test && go test ./... -update) && scripts/helm-test.sh
# The first run compiles Helm and client-go: about 2-3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=${CGO_ENABLED:-0}
(cd deploy/helm/test && go test -count=1 "$@" ./...)
go test -count=1 -run '^TestHelmRenderedConfigs$' ./cmd/correlatord
