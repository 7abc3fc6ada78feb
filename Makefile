# bayeux: build, run and test. `make run` and `make test` are all a newcomer needs.
GO       ?= go
DATA_DIR ?= $(CURDIR)/data
export BAYEUX_DATA_DIR ?= $(DATA_DIR)

.PHONY: all build run test test-go lint conformance conformance-deps fuzz bench clean

all: build

## build: bin/bayeux (the server, with its assets embedded)
build:
	$(GO) build -o bin/bayeux ./cmd/bayeux

## run: build and serve on :8080 (state under ./data)
run: build
	./bin/bayeux

## test: every suite: vet, gofmt, Go tests with -race, the peer conformance suite
test: lint test-go conformance

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 ./...

## conformance: the CometD JS and Faye clients against bin/bayeux
conformance: build conformance-deps
	cd conformance && BAYEUX_BIN=$(CURDIR)/bin/bayeux node --test --test-concurrency=2

conformance-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq nodejs npm; \
	  else echo "node and npm are required (install Node.js 20+)"; exit 1; fi; }
	cd conformance && npm ci --no-audit --no-fund --loglevel=error

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz FuzzChannel -fuzztime $(FUZZTIME) ./protocol

## bench: the Go benchmarks of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./protocol ./server

clean:
	rm -rf bin
