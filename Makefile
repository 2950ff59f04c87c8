# raftkms — make targets. `make run` starts a dev node; `make test` runs every test.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 5s
DATA      ?= .tmp/dev

.PHONY: all build run cluster cluster-stop test test-unit test-race test-e2e test-readme test-upgrade release fuzz-short deps lint clean jepsen test-jepsen image image-hsm compose-up compose-down test-deploy bench bench-peers bench-scale

all: build

## build: compile bin/kmsd and bin/kmsctl
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/kmsd ./cmd/kmsd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/kmsctl ./cmd/kmsctl
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/kms-jepsen ./cmd/kms-jepsen
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/kms-load ./cmd/kms-load
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/kms-scale ./cmd/kms-scale

## run: start one dev node (state kept in $(DATA)); prints how to talk to it
run: build
	@mkdir -p $(DATA)
	$(BIN)/kmsd --dev --data-dir $(DATA)

## cluster: start three local nodes on loopback (stop with make cluster-stop)
cluster: build
	@scripts/cluster.sh start

cluster-stop:
	@scripts/cluster.sh stop

## test: every test — unit, race, in-process clusters, processes, SDK, short fuzzing
test: build test-race test-unit test-upgrade fuzz-short test-jepsen

# Core packages under the race detector.
RACE_PKGS := ./crypto/... ./fsm/... ./store/... ./transport/... ./cluster/... ./kms/... ./api/... ./signature/... ./client/... ./internal/... ./hsm/... ./audit/... ./console/...

test-race:
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

# Everything else (binaries, end-to-end with real processes). ./e2e/...
# includes the README test (every ```sh block of README.md, run as written
# in a scratch copy; see e2e/readme_test.go and `make test-readme`). The
# rolling-upgrade test runs in test-upgrade.
test-unit:
	$(GO) test -count=1 -timeout 20m -skip 'TestUpgrade_' ./cmd/... ./e2e/...

## test-upgrade: build an earlier commit of main (newest v* tag, else scripts/upgrade-base) and upgrade a 3-node cluster of it to this build under load (needs full git history)
test-upgrade:
	$(GO) test -count=1 -timeout 5m -run 'TestUpgrade_' -v ./e2e/

## release: check HEAD, tag it v0.<n+1>.0 (or RELEASE=vX.Y.Z) and build bin/ with that version (scripts/release.sh)
release:
	GO=$(GO) scripts/release.sh

## test-readme: run README.md's shell blocks as written (ports 9700-9902 must be free)
test-readme:
	$(GO) test -count=1 -timeout 15m -run 'TestReadme_' -v ./e2e/

test-e2e: build
	$(GO) test -count=1 -timeout 20m -v ./e2e/...

## bench: raftkms next to a bare Go floor server (bench/baseline) in one run, as ratios, the instance API, the audit log, durable writes, 100k keys (restart, RSS, snapshots) and the CPU of an idle 3-node cluster (~7 min; not part of make test)
bench:
	@scripts/bench.sh

## bench-peers: the issue's two tables — raftkms, the floor and its peers (OPENBAO=path/to/bao, LOCAL_KMS=path/to/local-kms, each built from its own source; rows left out without them) in one window (~10 min; not part of make test; docs/BENCHMARKS.md)
OPENBAO   ?=
LOCAL_KMS ?=
bench-peers: build
	@scripts/bench-peers.sh $(if $(OPENBAO),--openbao $(OPENBAO)) $(if $(LOCAL_KMS),--local-kms $(LOCAL_KMS))

## jepsen: a short full fault-injection run (all workloads, all nemeses; root; docs/JEPSEN.md)
JEPSEN_TIME ?= 120s
JEPSEN_SEED ?= 0
JEPSEN_TEST_SEED ?= 1
jepsen: build
	$(BIN)/kms-jepsen run --nodes 5 --time-limit $(JEPSEN_TIME) --nemesis all --workload all --seed $(JEPSEN_SEED) --out .tmp/jepsen/run

# The run inside make test: checker unit tests, then at most three minutes of
# faults against a real cluster (needs root, as CI has).
test-jepsen: build
	$(GO) test -count=1 -timeout 5m ./jepsen/... ./cmd/kms-jepsen/...
	$(BIN)/kms-jepsen run --nodes 5 --time-limit 100s --nemesis all --workload all --seed $(JEPSEN_TEST_SEED) --out .tmp/jepsen/test

## image: container image raftkms:$(VERSION) FROM scratch, static binaries, nothing pulled (deploy/image)
image:
	GO=$(GO) scripts/image.sh $(VERSION)

## image-hsm: raftkms:$(VERSION)-hsm, kmsd with PKCS#11 and SoftHSM2, libraries copied from this Debian host
image-hsm:
	GO=$(GO) scripts/image-hsm.sh $(VERSION)

## compose-up: 5 nodes in 3 zones with TLS in containers (deploy/compose; run make image image-hsm first)
COMPOSE := docker-compose -p raftkms -f deploy/compose/docker-compose.yml
compose-up:
	RAFTKMS_VERSION=$(VERSION) $(COMPOSE) up -d

## compose-down: stop the Compose cluster and delete its volumes (keys, certificates, data)
compose-down:
	RAFTKMS_VERSION=$(VERSION) $(COMPOSE) down -v --remove-orphans

## test-deploy: build the images, run the Compose cluster, cut off and kill a zone under load, restore drill (docker; ~3 min)
test-deploy: image image-hsm
	$(GO) build -o .tmp/bin/zoneload ./e2e/zoneload
	RAFTKMS_VERSION=$(VERSION) scripts/test-deploy.sh

## fuzz-short: run every fuzz target briefly (FUZZTIME each)
fuzz-short:
	@scripts/fuzz.sh $(FUZZTIME)

## deps: install the Debian packages the tests need
deps:
	scripts/deps.sh

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt needed"; exit 1)
	$(GO) vet ./...

clean:
	rm -rf $(BIN) .tmp

## bench-scale: a million keys in one dev node (issue 16, item 6): RSS per key, DescribeKey and ListKeys latency at 1k/100k/1M, snapshot save/restore, restart (minutes; not part of make test; docs/BENCHMARKS.md)
SCALE_KEYS        ?= 1000000
SCALE_CHECKPOINTS ?= 1000,100000,1000000
SCALE_CONCURRENCY ?= 64
bench-scale: build
	$(BIN)/kms-scale --kmsd $(BIN)/kmsd --kmsctl $(BIN)/kmsctl --keys $(SCALE_KEYS) --checkpoints $(SCALE_CHECKPOINTS) --concurrency $(SCALE_CONCURRENCY) --dir .tmp/scale
