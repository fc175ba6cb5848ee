GO      ?= go
BIN     := bin/vestnik

.PHONY: build run test test-web webdeps lint bench clean

build:
	$(GO) build -o $(BIN) ./cmd/vestnik

run: build
	mkdir -p data
	./$(BIN) serve --db sqlite:./data/vestnik.db --data ./data

# make test runs everything: Go tests (with -race) on SQLite, and on
# PostgreSQL when VESTNIK_TEST_PG is set (the Chromium end-to-end suite runs
# inside `go test ./webclient` when node, playwright-core and /usr/bin/chromium
# are there); then the web client's node tests.
test: build webdeps
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory test-web

# The web client's JavaScript tests (node's test runner).
test-web: webdeps
	@if command -v node >/dev/null; then cd webclient && node --test test/; \
	elif [ "$$VESTNIK_REQUIRE_ALL" = 1 ]; then echo "node is missing but VESTNIK_REQUIRE_ALL=1"; exit 1; \
	else echo "node is missing: web client tests skipped"; fi

# playwright-core for the browser tests (npm ci, again only when the lock changes).
webdeps:
	@if command -v npm >/dev/null; then \
	  if [ ! -f webclient/node_modules/.stamp ] || [ webclient/package-lock.json -nt webclient/node_modules/.stamp ]; then \
	    (cd webclient && npm ci --no-audit --no-fund --loglevel=error) && touch webclient/node_modules/.stamp; fi; \
	elif [ "$$VESTNIK_REQUIRE_ALL" = 1 ]; then echo "npm is missing but VESTNIK_REQUIRE_ALL=1"; exit 1; fi

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
