# gohsm build. `make demo` builds everything and runs the demo on a token
# of its own under build/demo; `make test` runs every test.
GO      ?= go

# The toolchain is go.mod's toolchain line (Go 1.27: Go 1.26 takes a runtime
# lock on every call from a host thread into the library; docs/building.md,
# "Toolchain"). GOTOOLCHAIN=auto lets the go command fetch it from the module
# proxy once, even where the Go installation's go.env says local. Where it
# cannot be fetched, the installed Go builds (1.26 passes every test), with
# a warning. A GOTOOLCHAIN in the environment wins: GOTOOLCHAIN=local make ...
ifeq ($(origin GOTOOLCHAIN),undefined)
GOTOOLCHAIN := $(shell GOTOOLCHAIN=auto $(GO) version >/dev/null 2>&1 && echo auto || echo local)
ifeq ($(GOTOOLCHAIN),local)
$(warning go.mod's toolchain could not be fetched (GOTOOLCHAIN=auto $(GO) version failed): building with the installed Go)
endif
endif
export GOTOOLCHAIN
BUILD   := build
LIB     := $(BUILD)/libgohsm.so
PGLIB   := $(BUILD)/libgohsm-pg.so
CLI     := $(BUILD)/gohsm
CHCLI   := $(BUILD)/cloudhsm-cli
DEMO    := $(BUILD)/gohsm-demo
LDMAP   := $(CURDIR)/pkcs11/libgohsm.map
GOFILES := $(shell find . -name '*.go' -not -path './build/*') $(wildcard pkcs11/*.c pkcs11/*.h include/*.h) go.mod go.sum

.PHONY: all lib pglib cli demo demo-reset test test-unit test-lib test-clients deps generate clean install uninstall fuzz

all: $(LIB) $(PGLIB) $(CLI) $(CHCLI)

lib: $(LIB)
pglib: $(PGLIB)
cli: $(CLI)

# The library's external link: the version script exports only C_*, and
# where the linker and libc support it (binutils 2.38, glibc 2.36: Debian
# 12) -z pack-relative-relocs stores the ~59,000 relative relocations as
# RELR (20 KB) instead of RELA (1.4 MB): the loader reads 1.4 MB less at
# every dlopen (docs/bench.md, "Start-up"). ld enables it only when the
# libc it links against provides GLIBC_ABI_DT_RELR, so the library then
# needs glibc >= 2.36 -- as it already needs the build host's glibc.
RELR    := $(shell echo 'int main(void){return 0;}' | $(CC) -x c - -o /dev/null -Wl,--fatal-warnings -Wl,-z,pack-relative-relocs >/dev/null 2>&1 && echo ' -Wl,-z,pack-relative-relocs')
LIBLINK := -extldflags '-Wl,--version-script=$(LDMAP)$(RELR)'

# Two libraries, the same C_* exports (pkcs11/libgohsm.map; tests/abi
# checks): libgohsm.so, the module users load by default, is built
# without the PostgreSQL store (-tags nopostgres: pgx and its
# dependencies left out, a third of the file, and with them their
# inits and relocations in every process that loads it); a postgres://
# store in its configuration is refused at C_Initialize, naming the
# other one. libgohsm-pg.so is the full build, for deployments whose
# store is a postgres:// URL (docs/store.md). A one-shot login and sign
# peaks at 2.06-2.08x SoftHSM's RSS with the full build and 1.68-1.85x
# without (issue 19's target: 2x; docs/bench.md, "The PostgreSQL
# client's share of a one-shot process"). The CLIs keep the store.
# -trimpath for reproducible paths.
$(LIB): $(GOFILES) pkcs11/libgohsm.map
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -tags nopostgres -buildmode=c-shared -trimpath \
		-ldflags "$(LIBLINK)" -o $@ ./cmd/libgohsm
	@rm -f $(BUILD)/libgohsm.h

$(PGLIB): $(GOFILES) pkcs11/libgohsm.map
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath \
		-ldflags "$(LIBLINK)" -o $@ ./cmd/libgohsm
	@rm -f $(BUILD)/libgohsm-pg.h

$(CLI): $(GOFILES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/gohsm

$(CHCLI): $(GOFILES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/cloudhsm-cli

$(DEMO): cmd/gohsm-demo/demo.c $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -Iinclude -o $@ $< -ldl

# The demo loads libgohsm.so through dlopen and its C ABI, on a token of
# its own: make writes build/demo/gohsm.conf (token_dir build/demo/tokens)
# and hands it to the module through GOHSM_CONF, so the user's default
# token (~/.local/share/gohsm) is never touched and the user configures
# nothing. Run again, the demo logs in to the token it made before;
# `make demo-reset` erases that token (`make clean` too).
DEMODIR  := $(CURDIR)/$(BUILD)/demo
DEMOCONF := $(DEMODIR)/gohsm.conf

demo: $(LIB) $(CLI) $(DEMO) $(DEMOCONF)
	GOHSM_CONF=$(DEMOCONF) $(DEMO) $(abspath $(LIB))

demo-reset: $(CLI) $(DEMOCONF)
	$(CLI) --config $(DEMOCONF) token reset --yes

$(DEMOCONF):
	@mkdir -p $(DEMODIR)/tokens
	printf '# written by make demo: the demo token, apart from your own\ntoken_dir = "%s"\n\n[slot 0]\nlabel = gohsm-demo\n' '$(DEMODIR)/tokens' > $@

generate:
	cd internal/ck && $(GO) generate

# Packages without cgo, then everything against the built library, then
# the real clients.
test: all $(DEMO)
	./tests/run.sh

deps:
	./tests/deps.sh

# Every Go fuzz target for FUZZTIME each (`make test` runs them for 5 s),
# then the C-ABI fuzzer (tests/fuzz) for FUZZTIME per seed (four seeds).
FUZZTIME ?= 60s
fuzz: all
	FUZZTIME=$(FUZZTIME) ./tests/fuzz.sh
	GOHSM_LIB=$(CURDIR)/$(LIB) GOHSM_CLI=$(CURDIR)/$(CLI) GOHSM_FUZZ_TIME=$(FUZZTIME) \
		go test -count=1 -timeout 60m -run . ./tests/fuzz/

clean:
	rm -rf $(BUILD)

.PHONY: bench
# gohsm side by side with SoftHSMv2 in one run (docs/bench.md); installs
# softhsm2 when missing. Not part of `make test`: it measures, it does not pass or fail.
bench: $(LIB) $(PGLIB) $(BUILD)/libgohsm-nohook.so $(BUILD)/p11bench
	./scripts/bench.sh $(BENCH_FLAGS)

# The default library with the metrics hook compiled out (-tags
# nopostgres,nometrics), for the bench's gohsm-nohook column
# (docs/metrics.md).
$(BUILD)/libgohsm-nohook.so: $(GOFILES) pkcs11/libgohsm.map
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -tags nopostgres,nometrics -buildmode=c-shared -trimpath \
		-ldflags "$(LIBLINK)" -o $@ ./cmd/libgohsm
	@rm -f $(BUILD)/libgohsm-nohook.h

# The start-up probe `p11bench startup` runs: a C process that only loads a
# module and asks for its token (docs/bench.md, "Start-up").
$(BUILD)/startprobe: cmd/p11bench/startprobe/startprobe.c $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -Iinclude -o $@ $< -ldl

# The login+sign probe: the memory and time of each step of a one-shot
# login and ECDSA signature (docs/bench.md, "Login and sign: where the
# memory goes").
$(BUILD)/loginprobe: cmd/p11bench/startprobe/loginprobe.c $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -Iinclude -o $@ $< -ldl

# The ECDSA path's driver: the module's C_SignInit + C_Sign against
# OpenSSL's ECDSA_do_sign in one C process, for callgrind and alternated
# timings (docs/bench.md, "ECDSA P-256 path (2026-12-07)").
$(BUILD)/signloop: cmd/p11bench/startprobe/signloop.c cmd/p11bench/startprobe/loopstat.h $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -Iinclude -o $@ $< -ldl -pthread

# The digest path's driver: modules' C_DigestInit + C_Digest against
# libcrypto's SHA256() in one C process, for alternated timings (wall and
# thread CPU time; docs/bench.md, "SHA-256 1 MiB (2026-12-07)").
$(BUILD)/digestloop: cmd/p11bench/startprobe/digestloop.c cmd/p11bench/startprobe/loopstat.h $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -Iinclude -o $@ $< -ldl

# The launcher `p11bench proc -launcher` times commands through, so that
# their peak RSS is their own (docs/bench.md, "Whole process").
$(BUILD)/maxrss: cmd/p11bench/startprobe/maxrss.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Werror -o $@ $<

# The floor under any Go module's start-up: the smallest Go c-shared
# library startprobe can load (cmd/p11bench/startprobe/floor).
$(BUILD)/libfloor.so: $(wildcard cmd/p11bench/startprobe/floor/*) $(wildcard include/*.h)
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath -o $@ ./cmd/p11bench/startprobe/floor
	@rm -f $(BUILD)/libfloor.h

$(BUILD)/p11bench: $(GOFILES) $(wildcard cmd/p11bench/*.c cmd/p11bench/*.h)
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -o $@ ./cmd/p11bench

# Install like a native PKCS#11 module on Debian: both libraries in the
# multiarch PKCS#11 directory (libgohsm.so the default, libgohsm-pg.so for
# a postgres:// store), a p11-kit module file for the default one (p11-kit reads
# /usr/share/p11-kit/modules whatever the PREFIX), the CLI, and a commented
# default configuration (kept if one exists). DESTDIR stages the tree.
PREFIX     ?= /usr/local
MULTIARCH  ?= $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
PKCS11DIR  ?= $(PREFIX)/lib/$(MULTIARCH)/pkcs11
P11KITDIR  ?= /usr/share/p11-kit/modules
SYSCONFDIR ?= /etc
BINDIR     ?= $(PREFIX)/bin

install: $(LIB) $(PGLIB) $(CLI) $(CHCLI)
	install -d $(DESTDIR)$(PKCS11DIR) $(DESTDIR)$(P11KITDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/gohsm
	install -m 0644 $(LIB) $(DESTDIR)$(PKCS11DIR)/libgohsm.so
	install -m 0644 $(PGLIB) $(DESTDIR)$(PKCS11DIR)/libgohsm-pg.so
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/gohsm
	install -m 0755 $(CHCLI) $(DESTDIR)$(BINDIR)/cloudhsm-cli
	printf 'module: %s\n' $(PKCS11DIR)/libgohsm.so > $(DESTDIR)$(P11KITDIR)/gohsm.module
	chmod 0644 $(DESTDIR)$(P11KITDIR)/gohsm.module
	test -e $(DESTDIR)$(SYSCONFDIR)/gohsm/gohsm.conf || install -m 0644 packaging/gohsm.conf $(DESTDIR)$(SYSCONFDIR)/gohsm/gohsm.conf

# Removes what install put in place; a configuration changed since (or a
# token directory) is left alone.
uninstall:
	rm -f $(DESTDIR)$(PKCS11DIR)/libgohsm.so $(DESTDIR)$(PKCS11DIR)/libgohsm-pg.so $(DESTDIR)$(P11KITDIR)/gohsm.module $(DESTDIR)$(BINDIR)/gohsm $(DESTDIR)$(BINDIR)/cloudhsm-cli
	if cmp -s packaging/gohsm.conf $(DESTDIR)$(SYSCONFDIR)/gohsm/gohsm.conf; then rm -f $(DESTDIR)$(SYSCONFDIR)/gohsm/gohsm.conf; fi
	-rmdir $(DESTDIR)$(SYSCONFDIR)/gohsm 2>/dev/null
