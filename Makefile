# loyalty — PGXS build, plus the project's own targets:
#   make demo    deps, build, install, throwaway server, sample programme
#   make test    deps, build, install, throwaway server, every test layer
#   make docs    deps, build, install, throwaway server; docs/tables.md's
#                sections of the tables rendered again from the catalogue
#   make bench   deps, build, install, throwaway server, the benchmarks
#                (BENCH_MODE=quick by default, full or smoke; see test/bench/run.sh)
#   make deps    install missing Debian packages (as root)
#   make stop    stop the throwaway server under ./tmp
#   make test-valgrind  the tests against a server under valgrind
#   make test-ha the failover scenarios: Patroni and etcd on loopback
#                (see test/ha/run.sh; make test runs them too)
#   make fuzz    deps, then libFuzzer on the condition language outside the
#                server for FUZZ_SECONDS (default 60; see test/fuzz/run.sh)

EXTENSION   = loyalty
EXTVERSION  = 0.22
MODULE_big  = loyalty
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/kinds/*.c)))

# The install script is assembled from one SQL part per concept, in this order.
SQL_PARTS   = src/loyalty.sql src/identifier.sql src/access.sql src/condition.sql src/program.sql \
              src/customer.sql src/ledger.sql src/product.sql \
              src/promotion.sql src/receipt.sql src/events.sql src/tiers.sql src/fraud.sql src/campaigns.sql src/experiment.sql src/referral.sql src/jobs.sql \
              src/recompute.sql src/reports.sql src/roles.sql
INSTALL_SQL = $(EXTENSION)--$(EXTVERSION).sql
DATA        = $(INSTALL_SQL) $(wildcard src/updates/$(EXTENSION)--*.sql)
EXTRA_CLEAN = $(INSTALL_SQL)
# -Wextra without -Wunused-parameter, which fires inside the server headers
# (ilist.h, bufpage.h) and on every PG_FUNCTION_ARGS left unused.
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter

# pg_regress: one test per feature in sql/ with expected output in expected/
REGRESS     = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --outputdir=tmp/regress
# isolationtester specs in test/isolation/specs, expected in test/isolation/expected
ISOLATION   = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=tmp/isolation

PG_CONFIG  ?= pg_config
export PG_CONFIG
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)

all: $(INSTALL_SQL)

# PGXS tracks no header dependencies: rebuild every object when a header moves.
$(OBJS): $(wildcard src/*.h)

$(INSTALL_SQL): $(SQL_PARTS)
	cat $(SQL_PARTS) > $@
else
# A fresh machine has no server headers yet: only deps, demo and test work,
# and they install the headers before they build.
all install installcheck:
	@echo "PostgreSQL server development files not found (pg_config: $(PG_CONFIG)); run 'make deps' first" >&2; exit 1
endif

.PHONY: deps demo test docs test-valgrind test-ha bench stop install-ext

deps:
	test/deps.sh

# Install into the server found by pg_config; use sudo when its directories
# are not writable, unless the installed files are already these.
install-ext: all
	@if [ -w "$(DESTDIR)$(pkglibdir)" ] && [ -w "$(DESTDIR)$(datadir)/extension" ]; then \
		$(MAKE) install; \
	elif cmp -s $(MODULE_big)$(DLSUFFIX) "$(DESTDIR)$(pkglibdir)/$(MODULE_big)$(DLSUFFIX)" && \
		cmp -s $(INSTALL_SQL) "$(DESTDIR)$(datadir)/extension/$(INSTALL_SQL)" && \
		cmp -s $(EXTENSION).control "$(DESTDIR)$(datadir)/extension/$(EXTENSION).control"; then \
		echo "loyalty is installed and up to date in $(pkglibdir)"; \
	else \
		sudo -n $(MAKE) install || { echo "make install needs write access to $(pkglibdir) and $(datadir)/extension: run it as root or with sudo" >&2; exit 1; }; \
	fi

demo: deps
	$(MAKE) install-ext
	test/demo.sh

test: deps
	$(MAKE) install-ext
	test/run-tests.sh

# docs/tables.md: each table's COMMENT, columns and constraints, from the
# catalogue of a fresh install (test/docs/tables.sh; make test checks them).
docs: deps
	$(MAKE) install-ext
	test/docs/tables.sh --write

# pgbench against the throwaway server: ledger operations beside a baseline UPDATE.
bench: deps
	$(MAKE) install-ext
	test/bench/run.sh

# The suite against a server running under valgrind memcheck (slow).
test-valgrind: deps
	$(MAKE) install-ext
	test/valgrind.sh

# Failover: a Patroni cluster of three nodes and etcd under ./tmp/ha, the
# kill-leader, switchover and stall scenarios under load.
test-ha: deps
	$(MAKE) install-ext
	test/ha/run.sh

stop:
	test/server.sh stop

# libFuzzer with ASan and UBSan on the condition core (src/cond{parse,code,
# eval,index}.c) linked with test/fuzz/shim.c instead of the server: builds
# tmp/fuzz/fuzz_condition, fuzzes for FUZZ_SECONDS, exits non-zero on a crash.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) test/fuzz/run.sh
