GO ?= go
BIN := bin
PROTO := proto/mediagw/connector/v1/connector.proto

.PHONY: all build demo lint test test-short bench proto proto-check clean

all: build

build:
	$(GO) build -o $(BIN)/ $$($(GO) list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...)

proto:
	PATH="$$($(GO) env GOROOT)/bin:$$PATH" protoc -I proto \
	  --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
	  --plugin=protoc-gen-go-grpc="$$($(GO) tool -n protoc-gen-go-grpc)" \
	  --go_out=proto --go_opt=paths=source_relative \
	  --go-grpc_out=proto --go-grpc_opt=paths=source_relative \
	  $(PROTO)

proto-check: proto
	git diff --exit-code -- proto/ || (echo "generated code differs from proto/: run make proto and commit" >&2; exit 1)

demo: build
	$(BIN)/mediagw-demo

# lint: formatting, vet, staticcheck, a tidy go.mod and known vulnerabilities
# (staticcheck and govulncheck are pinned in go.mod as tools).
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted (run gofmt -w):" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff
	GO=$(GO) .ci/vulncheck

test: build
	$(GO) vet ./...
	$(GO) test -race -timeout 60m ./...

# bench: result lines only on stdout, as benchstat reads them; the logs of the
# plugins and peers the benchmarks run go to bin/bench.log.
bench: build
	rm -f $(BIN)/bench.log
	MEDIAGW_BENCH_LOG=$(CURDIR)/$(BIN)/bench.log $(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
