# Everything the project needs is installed here, at pinned versions, from the
# tools module in internal/tools: nothing but Go is assumed on the machine.
GO        ?= go
TOOLS_BIN := $(CURDIR)/.tools
OCB       := $(TOOLS_BIN)/ocb
MDATAGEN  := $(TOOLS_BIN)/mdatagen
COLLECTOR := $(CURDIR)/bin/otelcol-tracelookup
CONFIG    ?= config.yaml
TOOLS_MOD := internal/tools/go.mod internal/tools/go.sum

.PHONY: all build run test unit bench fuzz generate lint tools clean browser image image-test soak

all: build

tools: $(OCB) $(MDATAGEN)

$(OCB): $(TOOLS_MOD)
	cd internal/tools && $(GO) build -o $(OCB) go.opentelemetry.io/collector/cmd/builder

$(MDATAGEN): $(TOOLS_MOD)
	cd internal/tools && $(GO) build -o $(MDATAGEN) go.opentelemetry.io/collector/cmd/mdatagen

## build: the collector, with ocb, at bin/otelcol-tracelookup
build: $(OCB)
	@mkdir -p build
	$(OCB) --config builder-config.yaml
	@mkdir -p bin
	cp build/otelcol-tracelookup/otelcol-tracelookup $(COLLECTOR)

## run: build, then run the collector with config.yaml
run: build
	$(COLLECTOR) --config $(CONFIG)

## browser: Debian's chromium, for the viewer's browser test, when it is missing
## (elsewhere than on Debian, install Chromium yourself; without it the test is skipped)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	else echo "no chromium and no apt-get: the browser test will be skipped"; fi

## test: the whole suite (unit, integration, end-to-end, the viewer in headless
## Chromium) with the race detector; screenshots and other artifacts go to test-output/
test: build browser
	@mkdir -p test-output
	TRACELOOKUP_COLLECTOR=$(COLLECTOR) $(GO) test -race -count=1 -timeout 20m -artifacts -outputdir $(CURDIR)/test-output ./...
	# What a lookup allocates is measured without the race detector, which changes it.
	$(GO) test -count=1 -run 'TestLookupCostCoversAllocations' ./extension/tracelookupextension/internal/api/

## unit: the tests that need no built collector
unit:
	$(GO) test -race -count=1 ./...

## image: the container image (Dockerfile), and its size; CONTAINER_TOOL=podman builds it without a Docker engine
IMAGE          ?= otelcol-tracelookup:0.1.0
CONTAINER_TOOL ?= docker
image:
	$(CONTAINER_TOOL) build -t $(IMAGE) .
	$(CONTAINER_TOOL) image inspect --format '{{.Size}} bytes' $(IMAGE)

## image-test: build the image, then run it (host network, loopback only): it indexes, snapshots as its user, restarts
image-test: image
	TRACELOOKUP_IMAGE=$(IMAGE) TRACELOOKUP_CONTAINER_TOOL=$(CONTAINER_TOOL) $(GO) test -count=1 -run '^TestImage$$' -v ./internal/e2e/

## bench: the Go benchmarks, then the load benchmark's table (bounded; loopback only)
bench: build
	$(GO) test -run '^$$' -bench 'Ingest|Get100|Lookup|Build|Encode|Search|List' -benchmem -benchtime 2000x ./extension/tracelookupextension/internal/store/ ./extension/tracelookupextension/internal/api/
	$(GO) test -run '^$$' -bench 'HeapPerSpan|RSSPerSpan|RSSBound' -benchtime 1x ./extension/tracelookupextension/internal/store/
	$(GO) test -run '^$$' -bench 'CheckProto|UnmarshalProto' -benchmem ./receiver/tracelookupreceiver/internal/nesting/
	$(GO) test -run '^$$' -bench 'Snapshot512MiB' -benchtime 1x ./extension/tracelookupextension/internal/snapshot/
	$(GO) run ./internal/loadbench -collector $(COLLECTOR) -rounds 3

## soak: SOAK_DURATION (10m) at 80% of the measured ingest capacity with lookups and searches, then a shutdown under load (not part of make test)
SOAK_DURATION ?= 10m
soak: build
	$(GO) run ./internal/loadbench -collector $(COLLECTOR) -phases soak -soak-duration $(SOAK_DURATION) -bound-mib 256

## fuzz: each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./extension/tracelookupextension/internal/traceid/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./extension/tracelookupextension/internal/spancodec/
	$(GO) test -run '^$$' -fuzz FuzzHandler -fuzztime $(FUZZTIME) ./extension/tracelookupextension/internal/api/
	$(GO) test -run '^$$' -fuzz FuzzCheck -fuzztime $(FUZZTIME) ./receiver/tracelookupreceiver/internal/nesting/
	$(GO) test -run '^$$' -fuzz FuzzIngestLookup -fuzztime $(FUZZTIME) ./extension/tracelookupextension/internal/store/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./extension/tracelookupextension/internal/traceql/
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME) ./extension/tracelookupextension/internal/snapshot/

## generate: metadata code and documentation.md from metadata.yaml (mdatagen)
generate: $(MDATAGEN)
	PATH="$(TOOLS_BIN):$$PATH" $(GO) generate ./...

## lint: go vet and a gofmt check
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin build .tools
