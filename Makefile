GO ?= go
BIN := bin
PROTO := proto/mediagw/connector/v1/connector.proto

.PHONY: all build demo test test-short bench proto proto-check clean

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

test: build
	$(GO) vet ./...
	$(GO) test -race -timeout 60m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
