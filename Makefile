# gohsm build. `make demo` builds everything and runs the demo on the
# embedded default configuration; `make test` runs every test.
GO      ?= go
BUILD   := build
LIB     := $(BUILD)/libgohsm.so
CLI     := $(BUILD)/gohsm
DEMO    := $(BUILD)/gohsm-demo
LDMAP   := $(CURDIR)/pkcs11/libgohsm.map
GOFILES := $(shell find . -name '*.go' -not -path './build/*') $(wildcard pkcs11/*.c pkcs11/*.h include/*.h) go.mod go.sum

.PHONY: all lib cli demo test test-unit test-lib test-clients deps generate clean

all: $(LIB) $(CLI)

lib: $(LIB)
cli: $(CLI)

# -trimpath for reproducible paths; the version script exports only C_*.
$(LIB): $(GOFILES) pkcs11/libgohsm.map
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath \
		-ldflags "-extldflags -Wl,--version-script=$(LDMAP)" -o $@ ./cmd/libgohsm
	@rm -f $(BUILD)/libgohsm.h

$(CLI): $(GOFILES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/gohsm

$(DEMO): cmd/gohsm-demo/demo.c $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -Iinclude -o $@ $< -ldl

# The demo loads libgohsm.so through dlopen and its C ABI, with no config:
# the embedded default token under the user's data directory.
demo: $(LIB) $(CLI) $(DEMO)
	$(DEMO) $(CURDIR)/$(LIB)

generate:
	cd internal/ck && $(GO) generate

# Packages without cgo, then everything against the built library, then
# the real clients.
test: all $(DEMO)
	./tests/run.sh

deps:
	./tests/deps.sh

clean:
	rm -rf $(BUILD)

.PHONY: bench
# gohsm side by side with SoftHSMv2 in one run (docs/bench.md); installs
# softhsm2 when missing. Not part of `make test`: it measures, it does not pass or fail.
bench: $(LIB)
	./scripts/bench.sh $(BENCH_FLAGS)
