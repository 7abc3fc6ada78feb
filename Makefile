# bayeux: build, run and test. `make run` and `make test` are all a newcomer needs.
GO       ?= go
DATA_DIR ?= $(CURDIR)/data
export BAYEUX_DATA_DIR ?= $(DATA_DIR)
# APP_WASM_MAX_BR is the chat's download budget: app.wasm with brotli, in bytes.
APP_WASM_MAX_BR ?= 1600000

.PHONY: all build wasm run test test-go lint abuse conformance conformance-deps browser-deps redis-deps fuzz bench bench-peers clean

all: build

## build: the chat's app.wasm and the embeddable client bayeux.wasm (each
## with .br/.gz), then bin/bayeux with them embedded
build: wasm
	$(GO) build -o bin/bayeux ./cmd/bayeux
	$(GO) build -o bin/bayeux-bench ./cmd/bayeux-bench

# app.wasm is rebuilt by go (cached); it is replaced, and compressed again,
# only when its content changed.
wasm:
	@mkdir -p bin
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o bin/app.wasm.new ./cmd/chatwasm
	@if cmp -s bin/app.wasm.new assets/web/app.wasm && [ -f assets/web/app.wasm.br ] && [ -f assets/web/app.wasm.gz ]; then \
	  rm bin/app.wasm.new; else mv bin/app.wasm.new assets/web/app.wasm && $(GO) run ./internal/tools/precompress assets/web/app.wasm; fi
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o bin/bayeux.wasm.new ./cmd/embedwasm
	@if cmp -s bin/bayeux.wasm.new assets/embed/bayeux.wasm && [ -f assets/embed/bayeux.wasm.br ] && [ -f assets/embed/bayeux.wasm.gz ]; then \
	  rm bin/bayeux.wasm.new; else mv bin/bayeux.wasm.new assets/embed/bayeux.wasm && $(GO) run ./internal/tools/precompress assets/embed/bayeux.wasm; fi
	@n=$$(wc -c < assets/web/app.wasm.br); if [ $$n -gt $(APP_WASM_MAX_BR) ]; then \
	  echo "app.wasm is $$n bytes with brotli, over the budget of $(APP_WASM_MAX_BR): keep the chat's first load small"; exit 1; fi

## run: build and serve on :8080 (state under ./data)
run: build
	./bin/bayeux

## test: every suite: vet, gofmt, the abuse suite against bin/bayeux, Go
## tests with -race (browser tests in headless Chromium included), the peer
## conformance suite
test: lint build abuse browser-deps redis-deps conformance-deps test-go conformance

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

## abuse: attack bin/bayeux as an outsider would (login guessing, queue
## flooding, logout replay, slow bodies, JSONP with a login cookie, invalid
## UTF-8, wildcard lurking ...); fails when an attack succeeds. Against
## your own running server: make abuse ABUSE_ARGS="-url URL -pid PID -user NAME"
ABUSE_ARGS ?=
abuse: build
	$(GO) build -o bin/bayeux-abuse ./cmd/bayeux-abuse
	./bin/bayeux-abuse $(ABUSE_ARGS)

## conformance: the CometD JS and Faye clients against bin/bayeux
conformance: build conformance-deps
	cd conformance && BAYEUX_BIN=$(CURDIR)/bin/bayeux node --test --test-concurrency=2

# Debian's chromium for the chromedp tests (installed when missing and root).
browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is required for the browser tests (apt-get install chromium)"; exit 1; fi; }

# redis-server for the Redis engine's tests (installed when missing and root).
redis-deps:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "redis-server is required for the Redis engine tests (apt-get install redis-server)"; exit 1; fi; }

conformance-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq nodejs npm; \
	  else echo "node and npm are required (install Node.js 20+)"; exit 1; fi; }
	cd conformance && npm ci --no-audit --no-fund --loglevel=error

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz FuzzChannel -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz FuzzDecodeSimple -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz '^FuzzLinkify$$' -fuzztime $(FUZZTIME) ./wasmclient/chatui
	$(GO) test -run '^$$' -fuzz '^FuzzProcess$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzFormBody$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzJSONPQuery$$' -fuzztime $(FUZZTIME) ./server

## bench-peers: bin/bayeux against Faye 1.4.3 and cometd-nodejs-server 1.2.1 under
## bin/bayeux-bench (2+ cores, node; ~15 min; narrow with SCENARIOS=, SERVERS=, DURATION=)
bench-peers:
	bash bench/run-peers.sh

## bench: the Go benchmarks of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./protocol ./server ./server/redis ./server/bolthistory

clean:
	rm -rf bin
