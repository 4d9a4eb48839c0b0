# correlatord: see README.md. Every target runs on a fresh Debian machine with
# Go, Java 17 and Maven; deploy/dev/up.sh installs the rest.

SHELL     := /bin/bash
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
DEV_ENV   := . deploy/dev/env.sh
export CGO_ENABLED ?= 0

.PHONY: all build test unit integration fuzz bench vet dev-up dev-down demo clean deploy-check

all: build

build:
	$(GO) build -o $(BIN)/correlatord ./cmd/correlatord
	$(GO) build -o $(BIN)/loadgen ./cmd/loadgen

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

## test: the whole suite CI runs: unit tests, fuzzers on a fixed budget, and
## integration tests against the real Kafka broker and ClickHouse server.
test: vet unit fuzz dev-up deploy-check integration

unit:
	$(GO) test -count=1 ./...

## deploy-check: render the Helm chart, verify the systemd units, check and
## unit-test the Prometheus rules.
deploy-check:
	bash scripts/helm-test.sh
	bash scripts/systemd-verify.sh
	bash scripts/promtool-rules.sh

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

integration: build
	$(DEV_ENV) && \
	CORRELATORD_TEST_KAFKA=$$CORRELATORD_DEV_KAFKA \
	CORRELATORD_TEST_CLICKHOUSE=$$CORRELATORD_DEV_CLICKHOUSE_NATIVE \
	CORRELATORD_TEST_PROMETHEUS=$$CORRELATORD_DEV_PROMETHEUS \
	CORRELATORD_TEST_ALERTMANAGER=$$CORRELATORD_DEV_ALERTMANAGER \
	$(GO) test -tags integration -count=1 -p 1 -timeout 20m ./...

## bench: benchmarks; not part of make test (figures go to docs/PERFORMANCE.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

dev-up:
	bash deploy/dev/up.sh

dev-down:
	bash deploy/dev/down.sh

## demo: the dev stack, correlatord, and a sample alert storm.
demo: build dev-up
	bash scripts/demo.sh

clean:
	rm -rf $(BIN)
