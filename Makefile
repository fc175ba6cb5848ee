GO      ?= go
BIN     := bin/vestnik

.PHONY: build run test test-go test-js lint bench clean

build:
	$(GO) build -o $(BIN) ./cmd/vestnik

run: build
	mkdir -p data
	./$(BIN) serve --db sqlite:./data/vestnik.db --data ./data

test: build
	$(GO) test -race -count=1 ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2026.2.2 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
