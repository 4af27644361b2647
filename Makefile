# gyre: build, test, fuzz and benchmark.  `make help` lists the targets.
#
#   make            build/gyre and build/gyre-mock
#   make run        gyre on its embedded default (starts gyre-mock when no provider key is set)
#   make test       the layer check, then every test; ends with "N passed, N failed"
#   make test SAN=1 the same suite, built with ASan+UBSan (into build-san/)
#   make fuzz       libFuzzer targets, each run for FUZZ_SECONDS
#   make bench      the proxy benchmark, side by side with nginx and Portkey
#   make install    gyre, gyre-mock, the systemd unit, an example config, docs (PREFIX, DESTDIR)
#   make uninstall  removes what install put there (a config that was there before stays)

PKGS      := libh2o-evloop yaml-0.1 libcjson openssl sqlite3 libzstd zlib libsodium
SAN       ?= 0
ifeq ($(SAN),1)
BUILD     ?= build-san
OPT       := -O1 -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD     ?= build
OPT       := -O2
endif

CC        ?= cc
# h2o's pkg-config file omits the define that selects its own event loop, and
# the OpenSSL libraries it needs: both are added here (docs/decisions.md).
# On a fresh machine the libraries are missing: install them before the
# flags below are computed, so the first `make` on a new machine just works.
DEPS_OK   := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
ifeq ($(filter clean help,$(MAKECMDGOALS)),)
$(info gyre: build dependencies missing; running scripts/install-deps.sh)
DEPS_RC   := $(shell bash scripts/install-deps.sh >&2; echo $$?)
DEPS_OK   := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
endif
endif
CFLAGS    := -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Isrc \
             $(if $(DEPS_OK),$(shell pkg-config --cflags $(PKGS)))
LDLIBS    := $(if $(DEPS_OK),$(shell pkg-config --libs $(PKGS))) -lssl -lcrypto -lpthread -lm
LDFLAGS   := $(filter -fsanitize=%,$(OPT))

GYRE_SRCS := $(filter-out src/main.c,$(wildcard src/*/*.c))
GYRE_OBJS := $(GYRE_SRCS:%.c=$(BUILD)/obj/%.o)
MOCK_SRCS := $(wildcard mock/*.c)
MOCK_OBJS := $(MOCK_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps run test unit fuzz bench bench-curate clean help format install uninstall
all: $(BUILD)/gyre $(BUILD)/gyre-mock

help:
	@sed -n '3,11p' Makefile | sed 's/^# *//'

# Installs what is missing (tools too: wrk, nginx, clang, node); fast when
# nothing is.
deps:
	@bash scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libgyre.a: $(GYRE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/src/config/prices.o: data/prices.json

$(BUILD)/gyre: $(BUILD)/obj/src/main.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gyre-mock: $(MOCK_OBJS) $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

run: deps all
	@bash scripts/run.sh

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

# The layer check comes first: an include that goes up the layers fails the
# run before the suites start (scripts/check-layers.sh, docs/architecture.md).
test: deps all $(BUILD)/unit-tests node_modules/.package-lock.json
	@bash scripts/check-layers.sh
	@GYRE_BUILD=$(BUILD) bash tests/run.sh

FUZZ_SECONDS ?= 30
fuzz: deps
	@GYRE_BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) GYRE_PKGS="$(PKGS)" bash fuzz/run.sh

bench: deps all $(BUILD)/stream-cpu $(BUILD)/access-cpu $(BUILD)/alerts-cpu $(BUILD)/limits-cpu $(BUILD)/guard-cpu $(BUILD)/curate-fill
	@bash bench/run.sh

# The curation benchmark alone (bench/curate/run.sh; make bench runs it too).
bench-curate: deps all $(BUILD)/curate-fill
	@GYRE_BUILD=$(BUILD) bash bench/curate/run.sh

# Agent traces written straight into a store, for the curation benchmark (bench/curate/fill.c; bench/curate/run.sh).
$(BUILD)/curate-fill: $(BUILD)/obj/bench/curate/fill.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The stream pipeline's CPU, translated against passed through (bench/stream_cpu.c; bench/run.sh runs it).
$(BUILD)/stream-cpu: $(BUILD)/obj/bench/stream_cpu.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The access stage's cost per request (bench/access/access_cpu.c; bench/run.sh runs it).
$(BUILD)/access-cpu: $(BUILD)/obj/bench/access/access_cpu.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Alert evaluation's CPU at 20k req/s with 20 rules (bench/alerts/alerts_cpu.c; bench/run.sh runs it).
$(BUILD)/alerts-cpu: $(BUILD)/obj/bench/alerts/alerts_cpu.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The access and limits stages' cost per request (bench/access/limits_cpu.c; bench/run.sh runs it).
$(BUILD)/limits-cpu: $(BUILD)/obj/bench/access/limits_cpu.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# An in-line guardrail's cost per request on a 2 KB answer (bench/guard/guard_cpu.c; bench/run.sh runs it).
$(BUILD)/guard-cpu: $(BUILD)/obj/bench/guard/guard_cpu.o $(BUILD)/libgyre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Where `make install` puts things: PREFIX (default /usr/local) with the usual
# directories under it, each of which may be overridden; DESTDIR (for
# packaging) is prepended to every path and never written into a file.  The
# config directory is $(PREFIX)/etc, or /etc when PREFIX is /usr.  gyre-mock is
# installed too: `make run`'s fake provider, for trying gyre (and its docs'
# examples) with no provider account.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DATADIR     ?= $(PREFIX)/share
DOCDIR      ?= $(DATADIR)/doc/gyre
SYSTEMDDIR  ?= $(PREFIX)/lib/systemd/system
INSTALL     ?= install

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/gyre $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDDIR)
	$(INSTALL) -m 0755 $(BUILD)/gyre $(BUILD)/gyre-mock $(DESTDIR)$(BINDIR)/
	sed -e 's|/usr/local/bin|$(BINDIR)|g' -e 's|/usr/local/etc|$(SYSCONFDIR)|g' -e 's|/usr/local/share|$(DATADIR)|g' \
		contrib/systemd/gyre.service >$(DESTDIR)$(SYSTEMDDIR)/gyre.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/gyre.service
	@# The operator's config is never overwritten: the example goes beside it instead.
	if [ -e $(DESTDIR)$(SYSCONFDIR)/gyre/gyre.yaml ]; then \
		$(INSTALL) -m 0644 contrib/gyre.example.yaml $(DESTDIR)$(SYSCONFDIR)/gyre/gyre.yaml.example; \
	else \
		$(INSTALL) -m 0644 contrib/gyre.example.yaml $(DESTDIR)$(SYSCONFDIR)/gyre/gyre.yaml; \
	fi
	$(INSTALL) -m 0644 README.md LICENSE docs/*.md contrib/gyre.example.yaml $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gyre $(DESTDIR)$(BINDIR)/gyre-mock $(DESTDIR)$(SYSTEMDDIR)/gyre.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/gyre/gyre.yaml.example
	rm -rf $(DESTDIR)$(DOCDIR)
	@# gyre.yaml stays: it is the operator's (the example it started as is in the docs).
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/gyre/gyre.yaml ]; then echo "kept $(DESTDIR)$(SYSCONFDIR)/gyre/gyre.yaml"; fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz

-include $(GYRE_OBJS:.o=.d) $(MOCK_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(BUILD)/obj/src/main.d $(BUILD)/obj/bench/stream_cpu.d \
	$(BUILD)/obj/bench/access/access_cpu.d $(BUILD)/obj/bench/alerts/alerts_cpu.d $(BUILD)/obj/bench/access/limits_cpu.d \
	$(BUILD)/obj/bench/guard/guard_cpu.d \
	$(BUILD)/obj/bench/curate/fill.d
