# qcow2c - OpenNebula TM/DS storage driver in C.
#
#   make            build the programs into $(O)/bin
#   make check      every test: unit (Criterion), then end-to-end
#   make asan       the same tests, built with AddressSanitizer + UBSan
#   make lint       banned functions, shell scripts, formatting, cppcheck
#   make install    install.sh into $(DESTDIR)$(ONE_LOCATION or /var/lib/one)
#   make bench      the benchmarks (slow; see bench/README.md)

O ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config

ifeq ($(SAN),1)
O := build-asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1 -g
else
OPT := -O2 -g
endif

PKGS := libxml-2.0 libcurl openssl zlib liblzma
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lbz2
XMLRPC_CFLAGS := $(shell xmlrpc-c-config client --cflags 2>/dev/null)
XMLRPC_LIBS := $(shell xmlrpc-c-config client --libs 2>/dev/null)
XMLRPC_SERVER_LIBS := $(shell xmlrpc-c-config abyss-server --libs 2>/dev/null)
CRITERION_LIBS := $(shell $(PKG_CONFIG) --libs criterion 2>/dev/null || echo -lcriterion)

WARNINGS := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	-Wold-style-definition -Wvla -Wwrite-strings -Wformat=2 -Wshadow \
	-Wpointer-arith -Wundef -Wcast-align -Wimplicit-fallthrough \
	-Wmissing-declarations -Wnested-externs
# Library headers are not ours to fix: -isystem keeps their warnings out.
SYS_INCLUDES := $(patsubst -I%,-isystem %,$(filter-out -I/usr/include,$(PKG_CFLAGS) $(XMLRPC_CFLAGS)))

CPPFLAGS += -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -Icommon $(SYS_INCLUDES)
CFLAGS ?= $(OPT)
CFLAGS += -std=c11 $(WARNINGS) -fstack-protector-strong -fPIE -MMD -MP $(SANFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now $(SANFLAGS)
LDLIBS := $(XMLRPC_LIBS) $(PKG_LIBS)

COMMON_SRC := $(wildcard common/*.c)
TM_SRC := $(wildcard drivers/tm/*.c)
DS_SRC := $(wildcard drivers/datastore/*.c)
ONESNAP_SRC := $(wildcard drivers/onesnap/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# tests/harness/NAME.c is a program; NAME_PART.c files are modules shared by
# the harness programs.
HARNESS_MOD_SRC := $(wildcard tests/harness/*_*.c)
HARNESS_SRC := $(filter-out $(HARNESS_MOD_SRC),$(wildcard tests/harness/*.c))

obj = $(patsubst %.c,$(O)/obj/%.o,$(1))

LIB := $(O)/libqcow2c.a
PROGRAMS := $(O)/bin/qcow2c-tm $(O)/bin/qcow2c-ds
ifneq ($(ONESNAP_SRC),)
PROGRAMS += $(O)/bin/onesnap
endif
UNIT_TESTS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))
HARNESS := $(patsubst tests/harness/%.c,$(O)/harness/%,$(HARNESS_SRC))

.PHONY: all check check-unit check-e2e asan lint install uninstall bench clean conf
.PHONY: deps check-all demo demo-run
.DEFAULT_GOAL := all

all: $(PROGRAMS) $(HARNESS)

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(call obj,$(COMMON_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/bin/qcow2c-tm: $(call obj,$(TM_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/bin/qcow2c-ds: $(call obj,$(DS_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/bin/onesnap: $(call obj,$(ONESNAP_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The harness objects are intermediate files to make (built by a pattern
# rule for a pattern rule): keep them, or every make rebuilds the harness.
.SECONDARY:

# Test helpers (oned stand-in, transfer-file runner, DS runner...).
$(O)/harness/%: $(O)/obj/tests/harness/%.o $(call obj,$(HARNESS_MOD_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(XMLRPC_SERVER_LIBS) $(LDLIBS)

$(O)/tests/%: $(O)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CRITERION_LIBS) $(XMLRPC_SERVER_LIBS) $(LDLIBS)

deps:
	@tests/deps.sh

# check, asan and demo install the missing Debian packages first and then
# start a new make: the pkg-config and xmlrpc-c-config flags above are
# computed when make reads this file, so only a make started after the
# install sees them.
check: deps
	@$(MAKE) --no-print-directory check-all

# Unit tests, then end-to-end: one after the other even under -j (both start
# sshd), and the end-to-end tests run even when a unit test failed, so that
# one run shows every failure.
check-all: $(UNIT_TESTS) $(PROGRAMS) $(HARNESS)
	@rc=0; \
	$(MAKE) --no-print-directory check-unit || rc=1; \
	$(MAKE) --no-print-directory check-e2e || rc=1; \
	exit $$rc

check-unit: $(UNIT_TESTS) $(PROGRAMS) $(HARNESS)
	@BUILD=$(O) tests/run-unit.sh $(UNIT_TESTS)

# Two scripts at a time: most of an end-to-end script's time is spent
# waiting (ssh, qemu-img flushes, bounded waits it provokes).
E2E_JOBS ?= 2
check-e2e: $(PROGRAMS) $(HARNESS)
	@BUILD=$(abspath $(O)) E2E_JOBS=$(E2E_JOBS) E2E_EXCLUDE="$(E2E_EXCLUDE)" tests/e2e/run.sh

# The sanitizers watch the C code: every unit test, and every end-to-end
# script but the two long VM-life scenarios, whose actions the other scripts
# run too (about a quarter of the suite's time).
asan: deps
	@$(MAKE) --no-print-directory SAN=1 E2E_EXCLUDE="t0250 t0251" check-all

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: all
	@if [ -f demo/run.sh ]; then BUILD=$(abspath $(O)) bash demo/run.sh && \
	BUILD=$(abspath $(O)) bash demo/vm-life.sh; \
	else echo "make demo: demo/run.sh does not exist yet; nothing to show" >&2; exit 1; fi

lint:
	@tests/lint.sh

conf: $(O)/bin/qcow2c-tm
	$(O)/bin/qcow2c-tm --config | sed 1d > oned-conf/qcow2c.conf.new
	mv oned-conf/qcow2c.conf.new oned-conf/qcow2c.conf

install: all
	./install.sh --build $(O)

uninstall:
	./install.sh --uninstall

# The benchmarks that need no guest, one after the other (bench/README.md).
bench: all $(HARNESS)
	BUILD=$(abspath $(O)) bench/ds-copy.sh && BUILD=$(abspath $(O)) bench/deferred-save.sh && \
	BUILD=$(abspath $(O)) bench/tm-actions.sh

clean:
	rm -rf build build-asan

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
