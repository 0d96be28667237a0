# acwstream — make targets. `make test` is what CI runs.
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: test deps vet bench build fuzz

## test: install what the tests need, vet, and run every test with -race.
## The browser test must not skip here: chromium is installed by deps.
test: deps vet
	ACW_REQUIRE_BROWSER=1 $(GO) test -race -count=1 -timeout 20m ./...

## deps: install the system packages the tests use when they are missing:
## redis-server (Redis tests) and chromium (the wallboard's browser test).
DEPS_MISSING = $(strip $(if $(shell command -v redis-server),,redis-server) $(if $(shell command -v chromium || command -v chromium-browser),,chromium))
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)
deps:
	@if [ -n "$(DEPS_MISSING)" ]; then \
	  echo "installing $(DEPS_MISSING)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS_MISSING); \
	fi

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
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime 30s ./events/connect/
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime 30s ./events/asterisk/
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime 30s ./events/twilio/
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime 30s ./events/freeswitch/
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime 30s ./events/genesys/
