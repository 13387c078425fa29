# Vouch — see README.md. Everything a newcomer needs is `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test check bench bench-compare fmt clean fuzz soak image

## build: the vouch binary at bin/vouch
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/vouch ./cmd/vouch

## run: vouch serve on the embedded SQLite database in ./vouch-data, no setup
run: build
	bin/vouch serve --log-format text

## test: everything — vet, formatting, unit and Rego tests, SQLite and real
## PostgreSQL store tests, end-to-end tests of the vouch binary, the Helm
## chart and the suite against a real kube-apiserver (test/kube, a module of
## its own; the first run builds kube-apiserver, kubectl and etcd), and the
## container image (test/image)
test:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run ./test/cluster/clusterbuild  # kube-apiserver, kubectl, etcd: ~10 min the first time, cached after
	$(GO) test -count=1 -timeout 20m ./...
	cd test/kube && $(GO) vet ./... && $(GO) test -count=1 -timeout 30m ./...
	cd test/image && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=10000x FUZZTIME_HEAVY=2000x

## fuzz: each `go test -fuzz` target, coverage-guided, for FUZZTIME (one
## worker: the machine has two cores). FUZZTIME is a duration or a count of
## executions (Nx); make test gives each 10,000 executions, because a
## duration can end in a spurious "context deadline exceeded" on a busy
## machine (Go 1.26's fuzz coordinator, golang/go#75804, fixed in Go 1.27).
## The targets in FUZZ_HEAVY run FUZZTIME_HEAVY: their instrumented binaries
## (client-go, the apiserver, OPA, goccy/go-json) manage 100-1,000
## executions/s. -fuzzminimizetime 50x: by default each new interesting
## input is minimized for up to 60 s, with no fuzzing meanwhile, which in
## those binaries looked like a stalled worker. A crasher is written to the
## package's testdata/fuzz and stays there as a seed, which `go test` then
## runs every time.
FUZZTIME ?= 30s
FUZZ_HEAVY := ./cmd/vouch ./webhook
FUZZTIME_HEAVY ?= $(FUZZTIME)
fuzz:
	@set -e; for f in $$(git ls-files '*_test.go' | xargs grep -l '^func Fuzz'); do \
	  d=./$$(dirname $$f); t=$(FUZZTIME); \
	  if echo " $(FUZZ_HEAVY) " | grep -q " $$d "; then t=$(FUZZTIME_HEAVY); fi; \
	  for n in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$d $$n for $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$n\$$" -fuzztime $$t -fuzzminimizetime 50x -parallel 1 $$d; \
	  done; \
	done

## check: fast feedback — vet and the tests that need no PostgreSQL or build
check:
	$(GO) vet ./...
	$(GO) test -short ./...

## bench: micro-benchmarks, then admissions/s and latency end to end on
## SQLite and PostgreSQL (see docs/benchmarks.md)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./journal ./policy ./webhook
	$(GO) build -o bin/vouch-load ./test/load/vouch-load
	$(GO) run ./test/bench

## bench-compare: Vouch on PostgreSQL (every decision durable) side by side
## with a plain OPA server (built from the OPA version of go.mod, via
## test/bench/opa), same reviews, concurrency and pinning; prints the table
## for docs/benchmarks.md. BENCH_FLAGS adds flags, e.g. --rounds 3,
## --server-cpus 0 --load-cpus 1, --vouch-cpuprofile cpu.pprof
bench-compare: build
	$(GO) build -o bin/vouch-load ./test/load/vouch-load
	$(GO) run ./test/bench --suite compare $(BENCH_FLAGS)

## soak: 10 minutes at 1,000 admissions/s on PostgreSQL with builds reported
## alongside; fails on any error, a missing journal entry, or memory or
## goroutines that grow (SOAK_FLAGS, e.g. --soak-duration 2m; see
## docs/reliability.md)
soak: build
	$(GO) run ./test/bench --suite soak $(SOAK_FLAGS)

## image: the container image, as an OCI image layout in bin/image (no
## Docker needed): vouch built static for IMAGE_PLATFORMS on an empty base,
## user 65532; the same commit gives the same digest. Push it with
## `crane push bin/image REF` or `skopeo copy --all oci:bin/image docker://REF`
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
image:
	$(GO) run ./cmd/vouch-image --out bin/image --platforms $(IMAGE_PLATFORMS) --version $(VERSION)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
