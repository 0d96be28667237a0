# acwstream — make targets. `make test` is what CI runs.
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: test deps vet bench build fuzz

## test: install what the tests need, vet, and run every test with -race.
test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

## deps: install the system packages the tests use when they are missing.
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; fi; }

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build -o bin/acwd ./cmd/acwd

## bench: micro-benchmarks of decode and engine.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./events/ ./processor/

## fuzz: a short run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./events/
	$(GO) test -run '^$$' -fuzz FuzzSnapshotRestore -fuzztime 30s ./processor/
