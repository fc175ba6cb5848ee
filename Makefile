GO      ?= go
BIN     := bin/vestnik

.PHONY: build run test test-go test-js test-web lint bench clean

build:
	$(GO) build -o $(BIN) ./cmd/vestnik

run: build
	mkdir -p data
	./$(BIN) serve --db sqlite:./data/vestnik.db --data ./data

test: build test-web
	$(GO) test -race -count=1 ./...

# The web client's JavaScript tests (node's test runner), and playwright-core
# for the browser tests that `go test ./webclient` runs (they skip without it,
# or fail under VESTNIK_REQUIRE_ALL=1).
test-web:
	@if command -v npm >/dev/null; then cd webclient && npm ci --no-audit --no-fund --loglevel=error || echo "npm ci failed: browser tests will be skipped"; fi
	@if command -v node >/dev/null; then cd webclient && node --test test/; \
	elif [ "$$VESTNIK_REQUIRE_ALL" = 1 ]; then echo "node is missing"; exit 1; \
	else echo "node is missing: web client tests skipped"; fi

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2026.2.2 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
